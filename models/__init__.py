"""The shipped model and its card; installed as ``cocktail_cli.shipped`` (see pyproject.toml)."""
