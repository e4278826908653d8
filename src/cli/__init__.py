"""``python -m cli``: the operator entry point; hands over to ``weltklassebot.cli.main``."""
