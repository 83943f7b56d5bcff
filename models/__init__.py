"""The shipped model(s) and example recording; installed as ``cocktail_cli.shipped`` (see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

#: The example recording (``cocktail separate --example``); ``example.md`` lists its sources.
EXAMPLE = "example.ogg"


def example_path() -> Path:
    """The example recording installed with the package (a 20 s scene; see ``example.md``)."""
    from importlib import resources

    return Path(str(resources.files(__name__) / EXAMPLE))
