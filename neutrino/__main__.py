from neutrino.cli.main import app

app()
