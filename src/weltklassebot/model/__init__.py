"""Typed records for what is rare and must be exact: instruments, orders, fills, denials.

Records are frozen; a changed order is a new record (``dataclasses.replace``). Prices and
quantities are integer ticks of the instrument's increments; money is integer units of the
cash increment. No I/O here.
"""
