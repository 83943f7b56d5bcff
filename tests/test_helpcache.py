"""--help pages are printed from a copy once rendered (cocktail_cli/helpcache.py), and the copy is
never stale: a different terminal, environment or version renders afresh."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cocktail_cli import helpcache


def _help(args, cache, **env):
    full = {k: v for k, v in os.environ.items() if k != "COCKTAIL_NO_HELP_CACHE"}
    full.update({"XDG_CACHE_HOME": str(cache), "COLUMNS": "100", **env})
    # -X importtime lists every module imported, on stderr: the cached page must need no Typer.
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "cocktail_cli", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def _imported(proc) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["train", "-h"]])
def test_second_help_is_the_same_page_without_typer(tmp_path, args):
    first = _help(args, tmp_path)
    assert first.returncode == 0 and "Usage: python -m cocktail_cli" in first.stdout
    assert "typer" in _imported(first)
    pages = list((tmp_path / "cocktail" / "help").glob("*.txt"))
    assert len(pages) == 1
    second = _help(args, tmp_path)
    assert second.returncode == 0
    assert second.stdout == first.stdout
    assert not {"typer", "rich", "click"} & _imported(second)


def test_another_width_renders_another_page(tmp_path):
    wide = _help(["separate", "--help"], tmp_path, COLUMNS="120")
    narrow = _help(["separate", "--help"], tmp_path, COLUMNS="70")
    assert wide.stdout != narrow.stdout
    assert max(map(len, narrow.stdout.splitlines())) <= 70 < max(map(len, wide.stdout.splitlines()))
    assert len(list((tmp_path / "cocktail" / "help").glob("*.txt"))) == 2


def test_failed_help_is_not_kept_and_switch_turns_the_cache_off(tmp_path):
    bad = _help(["nosuch", "--help"], tmp_path)
    assert bad.returncode == 2 and "No such command" in bad.stderr
    off = _help(["--help"], tmp_path, COCKTAIL_NO_HELP_CACHE="1")
    assert off.returncode == 0 and "Usage: python -m cocktail_cli" in off.stdout
    assert not list(tmp_path.rglob("*.txt"))


def test_unusable_cache_folder_still_prints_help(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    proc = _help(["eval", "--help"], blocker)
    assert proc.returncode == 0 and "cocktail_cli eval" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_key_follows_terminal_environment_and_version(monkeypatch):
    import cocktail_cli

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NO_COLOR", raising=False)
    base = helpcache.page_key(["--help"])
    assert helpcache.page_key(["--help"]) == base
    assert helpcache.page_key(["train", "--help"]) != base
    monkeypatch.setenv("NO_COLOR", "1")
    assert helpcache.page_key(["--help"]) != base
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("COLUMNS", "90")
    assert helpcache.page_key(["--help"]) != base
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(cocktail_cli, "__version__", "9.9.9")
    assert helpcache.page_key(["--help"]) != base


def test_key_follows_the_code(monkeypatch, tmp_path):
    """An edited module (size or time) is a new key: an editable install never shows an old page."""
    real = helpcache._files_of
    base = helpcache.page_key(["--help"])
    monkeypatch.setattr(helpcache, "_files_of", lambda d: [*real(d)[:-1], (real(d)[-1][0], 1, 2)])
    assert helpcache.page_key(["--help"]) != base


@pytest.mark.parametrize("args,expected", [
    (["--help"], True), (["-h"], True), (["train", "--help"], True),
    (["train", "x", "--help"], False), (["--version"], False), ([], False), (["train", "-o", "--help"], False),
])
def test_only_plain_help_requests_are_cached(args, expected):
    assert helpcache.is_help_request(args) is expected


def test_cache_keeps_a_bounded_number_of_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(helpcache, "MAX_PAGES", 3)
    for k in range(6):
        helpcache._keep(tmp_path / f"{k}.txt", f"page {k}")
        os.utime(tmp_path / f"{k}.txt", (k, k))
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["3.txt", "4.txt", "5.txt"]
