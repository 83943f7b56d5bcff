"""The example recording (``cocktail separate --example``); installed as ``cocktail_cli.examples``
(see pyproject.toml). ``example.ogg.license`` gives its copyright and licence (GPL-2.0-or-later),
``example.md`` lists its sources, ``COPYING.example`` is the licence text."""

from __future__ import annotations

from pathlib import Path

#: The example recording: a 20 s scene built by ``scripts/make_example.py``.
EXAMPLE = "example.ogg"


def example_path() -> Path:
    """The example recording installed with the package."""
    from importlib import resources

    return Path(str(resources.files(__name__) / EXAMPLE))
