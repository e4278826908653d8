"""Command-line edge: parses flags, resolves settings, calls into the engine, prints results.

Each sub-command lives in its own module and imports heavy dependencies inside its function, so
``--help`` and short commands start fast. Errors derive from ``weltklassebot.errors`` and are
printed as one paragraph with their exit status, never as a traceback.
"""
