"""The service edge: what binds the pure risk engine to a state directory.

``operator`` hands operator commands (``risk halt`` / ``risk resume``) to a running service
through its state directory (service lock, command and ack files); ``risk_journal`` persists
risk transitions to the state store before they take effect. Both touch files, the environment
and the wall clock, which the core (``risk`` included) never does. The service loop itself
comes later; see docs/risk.md.
"""
