"""Build ``helppages.json``: what Typer and Rich would print for each ``--help`` page, as data.

``python -m cocktail_cli.helpmodel`` rewrites the file; tests/test_helppages.py fails when it is
stale. Each page is recorded by letting Typer lay it out with a console that keeps the renderables
instead of printing them (usage line, description, panels of options and commands), and storing
each one's text, style spans and layout settings. :mod:`.helppages` prints a page from that data at
any terminal width, in about the time Python takes to start, without importing Typer or Rich.

Only the renderables and settings Typer uses for cocktail's pages are understood; anything else
stops the build with the reason, so a Typer upgrade that draws pages differently is noticed here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

from . import helppages

PROG = "cocktail"


def _style(console, style) -> list:
    """A Rich style as ``[attributes, set attributes, colour SGR code or None]``."""
    from rich.color import ColorType

    style = console.get_style(style) if isinstance(style, str) else style
    if style.bgcolor is not None or style.link:
        raise ValueError(f"unsupported style {style!r}: background or link")
    colour = None
    if style.color is not None:
        if style.color.type not in (ColorType.STANDARD, ColorType.DEFAULT):
            raise ValueError(f"unsupported colour in {style!r}: only the 16 standard colours")
        colour = ";".join(style.color.get_ansi_codes())
    return [style._attributes, style._set_attributes, colour]


class _Recorder:
    """Turns the renderables of one page into JSON-ready data, with a shared table of styles."""

    def __init__(self, console, styles: list):
        self.console, self.styles = console, styles

    def style(self, style) -> int:
        encoded = _style(self.console, style or "")
        if encoded not in self.styles:
            self.styles.append(encoded)
        return self.styles.index(encoded)

    def text(self, text) -> dict:
        from rich.text import Text

        if isinstance(text, str):
            text = Text(text)
        if not isinstance(text, Text):
            raise ValueError(f"expected text, got {type(text).__name__}")
        plain = text.plain
        if "\t" in plain:
            raise ValueError(f"unsupported tab in {plain!r}")
        from rich.cells import cell_len

        if any(cell_len(line) != len(line) for line in plain.split("\n")):
            raise ValueError(f"wide or zero-width characters in {plain!r}")
        return {
            "plain": plain,
            "style": self.style(text.style),
            "spans": [[s.start, s.end, self.style(s.style)] for s in text.spans],
            "justify": text.justify,
            "overflow": text.overflow,
            "no_wrap": text.no_wrap,
        }

    def cell(self, renderable):
        from rich.columns import Columns

        if isinstance(renderable, Columns):
            expected = dict(padding=(0, 1), expand=False, equal=False, column_first=False, right_to_left=False,
                            align=None, width=None, title=None)
            for name, value in expected.items():
                if getattr(renderable, name) != value:
                    raise ValueError(f"unsupported Columns setting {name}={getattr(renderable, name)!r}")
            return {"columns": [self.text(r) for r in renderable.renderables]}
        return self.text(renderable)

    def table(self, table) -> dict:
        from rich.table import Table

        if not isinstance(table, Table):
            raise ValueError(f"expected a table, got {type(table).__name__}")
        expected = dict(box=None, padding=(0, 1, 0, 1), pad_edge=False, expand=True, show_header=False,
                        show_footer=False, collapse_padding=False, show_lines=False, leading=0, width=None,
                        min_width=None, row_styles=[], title=None, caption=None)
        for name, value in expected.items():
            if getattr(table, name) != value:
                raise ValueError(f"unsupported table setting {name}={getattr(table, name)!r}")
        if table.style not in ("none", "") or any(row.style for row in table.rows):
            raise ValueError("unsupported table or row style")
        columns = []
        for column in table.columns:
            if column.vertical != "top" or column.min_width is not None or column.max_width is not None:
                raise ValueError("unsupported column setting")
            columns.append({
                "style": self.style(column.style), "justify": column.justify, "overflow": column.overflow,
                "no_wrap": column.no_wrap, "width": column.width, "ratio": column.ratio,
                "cells": [self.cell(c) for c in column._cells],
            })
        return {"columns": columns}

    def block(self, renderable, style) -> dict:
        from rich.align import Align
        from rich.console import Group
        from rich.padding import Padding
        from rich.panel import Panel
        from rich.text import Text

        if isinstance(renderable, Padding) and isinstance(renderable.renderable, Text):
            if (renderable.top, renderable.right, renderable.bottom, renderable.left) != (1, 1, 1, 1):
                raise ValueError("unsupported usage padding")
            return {"kind": "usage", "style": self.style(style), "text": self.text(renderable.renderable)}
        if isinstance(renderable, Padding) and isinstance(renderable.renderable, Align):
            align = renderable.renderable
            pads = (renderable.top, renderable.right, renderable.bottom, renderable.left)
            if pads != (0, 1, 1, 1) or align.align != "left" or align.pad or not isinstance(align.renderable, Group):
                raise ValueError("unsupported description layout")
            return {"kind": "description", "style": self.style(style),
                    "texts": [self.text(t) for t in align.renderable.renderables]}
        if isinstance(renderable, Panel):
            if (renderable.title_align != "left" or renderable.subtitle or renderable.padding != (0, 1)
                    or not renderable.expand or renderable.width is not None
                    or renderable.style not in ("none", "")):
                raise ValueError("unsupported panel setting")
            if type(renderable.title) is not str or renderable.box.top_left != "╭":
                raise ValueError("unsupported panel title or box")
            return {"kind": "panel", "style": self.style(style), "title": renderable.title,
                    "border_style": self.style(renderable.border_style), "table": self.table(renderable.renderable)}
        raise ValueError(f"unsupported renderable {type(renderable).__name__}")


def record_page(app, args: list[str], styles: list) -> list[dict]:
    """The blocks Typer prints for ``cocktail ARGS --help``."""
    import typer
    from typer import rich_utils

    blocks: list[dict] = []
    original = rich_utils._get_rich_console

    def recording_console(stderr: bool = False):
        console = original(stderr)
        recorder = _Recorder(console, styles)

        def print_(*renderables, style=None, **kwargs):
            if kwargs or len(renderables) != 1:
                raise ValueError(f"unsupported print call {kwargs!r}")
            blocks.append(recorder.block(renderables[0], style))

        console.print = print_
        return console

    rich_utils._get_rich_console = recording_console
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Click echoes the (empty) rendered page
            typer.main.get_command(app).main([*args, "--help"], prog_name=PROG, standalone_mode=False)
    finally:
        rich_utils._get_rich_console = original
    return blocks


def cli_sources() -> list[str]:
    """cocktail's modules that ``import cocktail_cli.cli`` loads, relative to the package: what a
    help page can depend on. Found in a fresh interpreter, so the caller's own imports do not count."""
    import subprocess

    code = (
        "import os, sys, cocktail_cli.cli as c; d = os.path.dirname(os.path.abspath(c.__file__)); "
        "print('\\n'.join(sorted(os.path.relpath(m.__file__, d).replace(os.sep, '/') for n, m in "
        "list(sys.modules.items()) if n.split('.')[0] == 'cocktail_cli' and getattr(m, '__file__', None))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def recorded_with() -> dict:
    """The Typer and Rich versions that laid the pages out."""
    from importlib.metadata import version

    return {"typer": version("typer"), "rich": version("rich")}


def build() -> dict:
    import typer

    from . import cli

    styles: list = []
    pages = {"": record_page(cli.app, [], styles)}
    for name in cli.COMMANDS:
        pages[name] = record_page(cli.app, [name], styles)
    sources = cli_sources()
    group = typer.main.get_command(cli.app)
    no_args_help = [""] if group.no_args_is_help else []
    no_args_help += [name for name in cli.COMMANDS if group.commands[name].no_args_is_help]
    return {"prog": PROG, "sources": sources, "no_args_help": no_args_help, "recorded_with": recorded_with(), "digest": helppages.source_digest(sources), "styles": styles,
            "pages": pages}


def write(path: str | os.PathLike = helppages.MODEL_PATH) -> bool:
    """Rewrite the model; True when it changed."""
    text = json.dumps(build(), ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    path = Path(path)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = write()
    print(f"{helppages.MODEL_PATH}: {'rewritten' if changed else 'up to date'}")
