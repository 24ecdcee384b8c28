"""The user's door: a typer app with one thin module per command."""
