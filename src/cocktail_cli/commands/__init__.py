"""One module per subcommand, each a thin Typer layer over a library module."""
