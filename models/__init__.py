"""The shipped model(s); installed as ``cocktail_cli.shipped`` (see pyproject.toml)."""
