"""One module per subcommand, each a thin Typer layer over a library module."""


def _out_alias(name: str) -> str:
    return "out" if name == "output" else name


#: ``context_settings`` of the commands that write to ``-o/--out``: the older spelling ``--output``
#: (once used by ``prep`` and ``train``) is read as ``--out``, and left out of the help.
OUT_ALIAS = {"token_normalize_func": _out_alias}
