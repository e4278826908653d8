from weltklassebot.cli.main import run

run()
