"""Pure building blocks: exact decimals, integer-nanosecond time, clocks and seeded random streams.

No wall-clock reads (except ``WallClock``, used only by the live service edge) and no global RNG.
"""
