"""--help pages come from cocktail_cli/helppages.json, laid out without Typer or Rich, and are the
pages Typer and Rich would print: same characters at every width, same styles in colour, same
width and colour choice for the terminal, same exit status. Typer renders whenever the shipped
model cannot be trusted."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import types

import pytest
import typer
from rich.color import ColorSystem
from typer import rich_utils

from cocktail_cli import __main__ as entry
from cocktail_cli import cli, helpmodel, helppages

PAGES = ["", *cli.COMMANDS]


def typer_page(name: str, width: int, colour: bool) -> str:
    """What Typer and Rich print for ``cocktail [NAME] --help`` on a terminal ``width`` wide."""
    original = rich_utils._get_rich_console
    out = io.StringIO()

    def console(stderr: bool = False):
        made = original(stderr)
        made.file, made.width = out, width
        made._force_terminal = colour  # Rich's own switches: a terminal with 16 colours, or a pipe
        made._color_system = ColorSystem.STANDARD if colour else None
        return made

    rich_utils._get_rich_console = console
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            typer.main.get_command(cli.app).main([*([name] if name else []), "--help"], prog_name="cocktail",
                                                 standalone_mode=False)
    finally:
        rich_utils._get_rich_console = original
    return out.getvalue()


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def styled_chars(text: str) -> list[tuple[str, frozenset]]:
    """Each printed character with the SGR codes in force for it."""
    out, state, position = [], frozenset(), 0
    for match in _SGR.finditer(text):
        out.extend((c, state) for c in text[position:match.start()])
        codes = match.group(1)
        state = frozenset() if codes in ("", "0") else frozenset(codes.split(";"))
        position = match.end()
    out.extend((c, state) for c in text[position:])
    return out


def assert_same_styles(want: str, got: str) -> None:
    a, b = styled_chars(want), styled_chars(got)
    assert "".join(c for c, _ in a) == "".join(c for c, _ in b)
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if not x[0].isspace() and x != y]
    assert not differ, f"first style difference at character {differ[0]}: {a[differ[0]]} != {b[differ[0]]}"


@pytest.fixture(scope="module")
def model():
    """The model built from the installed Typer and Rich, to check the layout against them."""
    return json.loads(json.dumps(helpmodel.build()))


def test_shipped_model_is_current(model):
    """Changing an option or a help text without rebuilding the model fails here (at run time the
    stale model would be ignored, and help slow again): run ``python -m cocktail_cli.helpmodel``."""
    with open(helppages.MODEL_PATH, encoding="utf-8") as f:
        shipped = json.load(f)
    assert helppages.load_model() == shipped, "helppages.json is stale: run python -m cocktail_cli.helpmodel"
    if shipped["recorded_with"] != model["recorded_with"]:
        pytest.skip(f"helppages.json was recorded with {shipped['recorded_with']}, this environment has "
                    f"{model['recorded_with']}: its pages keep the recorded look")
    assert shipped == model, "run python -m cocktail_cli.helpmodel"


@pytest.mark.parametrize("name", PAGES)
def test_pages_match_typer_character_for_character(model, name):
    page = helppages.Page(model, name)
    for width in (helppages.MIN_WIDTH, 33, 41, 52, 64, 80, 99, 100, 117, 143, 200, 301):
        assert page.render(width) == typer_page(name, width, colour=False), f"width {width}"


@pytest.mark.parametrize("name", PAGES)
def test_pages_match_typer_style_for_style(model, name):
    page = helppages.Page(model, name)
    for width in (44, 80, 131):
        got = page.render(width, colour=True)
        assert_same_styles(typer_page(name, width, colour=True), got)
        assert "\x1b[1;36m--help" in got or "\x1b[1;36m-" in got  # options in bold cyan, as Typer
    no_colour = page.render(80, colour=True, no_color=True)
    assert "\x1b[1m" in no_colour and not re.search(r"\x1b\[[0-9;]*3[0-7]m", no_colour)


# -- the terminal: width and colour as Typer's Rich console decides them ---------------------------
_PROBE = """
import json, sys
from typer import rich_utils
from cocktail_cli import helppages
console = rich_utils._get_rich_console()
print(json.dumps({"rich": [console.width, console.color_system is not None, console.no_color],
                  "ours": helppages.terminal()}), file=sys.stderr)
"""


def _probe_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERM",
                        "TTY_COMPATIBLE", "_TYPER_FORCE_DISABLE_TERMINAL", "TERMINAL_WIDTH", "COLORTERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def run_in_terminal(cmd: list[str], env: dict, columns: int = 90) -> tuple[int, str]:
    """Run ``cmd`` with a pseudo-terminal ``columns`` wide as its standard streams."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({}, (80, False, False)),  # a pipe: Rich's default width, no colour
        ({"COLUMNS": "123"}, (123, False, False)),
        ({"COLUMNS": "123", "LINES": "30"}, (123, False, False)),
        ({"FORCE_COLOR": "1", "COLUMNS": "90"}, (90, True, False)),
        ({"FORCE_COLOR": "", "COLUMNS": "90"}, (90, False, False)),
        ({"PY_COLORS": "1", "COLUMNS": "90"}, (90, True, False)),
        ({"TTY_COMPATIBLE": "1", "COLUMNS": "90"}, (90, True, False)),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "90"}, (90, True, True)),
        ({"FORCE_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1", "COLUMNS": "90"}, (90, False, False)),
        ({"FORCE_COLOR": "1", "TERM": "dumb", "COLUMNS": "130"}, (80, False, False)),
        ({"COLUMNS": "abc"}, (80, False, False)),
        ({"TERMINAL_WIDTH": "100"}, None),
        ({"COLUMNS": str(helppages.MIN_WIDTH - 1)}, None),
        ({"COCKTAIL_RICH_HELP": "1"}, None),
        ({"PYTHONIOENCODING": "latin-1"}, None),
    ],
)
def test_terminal_choice_is_riches_when_piped(extra, expected):
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=_probe_env(extra), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stderr.strip().splitlines()[-1])
    assert seen["ours"] == (list(expected) if expected else None)
    if expected is not None:
        assert seen["rich"] == list(expected)


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({}, (90, True, False)),  # the terminal's own width, in colour
        ({"NO_COLOR": "1"}, (90, True, True)),
        ({"COLUMNS": "70"}, (70, True, False)),
        ({"TERM": "dumb"}, (80, False, False)),
        ({"TTY_COMPATIBLE": "0"}, (90, False, False)),
    ],
)
def test_terminal_choice_is_riches_on_a_terminal(extra, expected):
    code, out = run_in_terminal([sys.executable, "-c", _PROBE], _probe_env(extra))
    assert code == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["ours"] == list(expected) and seen["rich"] == list(expected)


# -- the command: same output and status as Typer's, without loading Typer ------------------------
_MAIN = ("import sys; sys.argv[0] = 'cocktail'\nfrom cocktail_cli.__main__ import main\ntry:\n    main()\n"
         "finally:\n    print('TYPER' if 'typer' in sys.modules else 'FAST', file=sys.stderr)")


def _cocktail(args: list[str], env: dict) -> tuple[int, str, str, str]:
    """Exit status, standard output, standard error and who printed (FAST or TYPER)."""
    proc = subprocess.run([sys.executable, "-c", _MAIN, *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    err, _, who = proc.stderr.rstrip("\n").rpartition("\n")
    return proc.returncode, proc.stdout, err, who or err


@pytest.mark.parametrize("args,code,fast", [
    (["--help"], 0, True), (["-h"], 0, True), (["train", "--help"], 0, True), (["eval", "-h"], 0, True),
    ([], 2, True), (["separate"], 2, True),  # a bare command that answers with its help, exit status 2
    (["train"], 2, False), (["nosuch", "--help"], 2, False),  # errors: Typer's to print
])
def test_command_prints_what_typer_prints(args, code, fast):
    env = _probe_env({"COLUMNS": "97"})
    ours, theirs = _cocktail(args, env), _cocktail(args, {**env, "COCKTAIL_RICH_HELP": "1"})
    assert ours[:3] == theirs[:3]
    assert ours[0] == code and ours[3] == ("FAST" if fast else "TYPER") and theirs[3] == "TYPER"


def test_a_completion_request_is_not_a_bare_command():
    """Shells ask for completions by running a bare ``cocktail`` with _COCKTAIL_COMPLETE set."""
    env = _probe_env({"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail tr", "COMP_CWORD": "1"})
    code, out, _, who = _cocktail([], env)
    assert (code, who) == (0, "TYPER") and "train" in out and "Usage" not in out


def test_a_reader_that_stops_early_gets_no_traceback():
    """``cocktail train --help | true``: the pipe is closed before the page is written."""
    proc = subprocess.Popen([sys.executable, "-c", _MAIN, "train", "--help"], env=_probe_env({"COLUMNS": "80"}),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err.strip() == "FAST", err


def test_help_in_a_terminal_is_typers_page():
    env = _probe_env({"PYTHONDONTWRITEBYTECODE": "1"})
    cmd = [sys.executable, "-c", _MAIN, "train", "--help"]
    code, ours = run_in_terminal(cmd, env, columns=87)
    code_typer, theirs = run_in_terminal(cmd, {**env, "COCKTAIL_RICH_HELP": "1"}, columns=87)
    assert code == code_typer == 0
    (ours, _, who), (theirs, _, who_typer) = ours.rstrip("\n").rpartition("\n"), theirs.rstrip("\n").rpartition("\n")
    assert (who, who_typer) == ("FAST", "TYPER")
    assert_same_styles(theirs, ours)
    assert ours.splitlines()[1].endswith(" \x1b[0m") and "\x1b[1;36m" in ours
    assert max(len(line) for line in _SGR.sub("", ours).splitlines()) == 87


def test_help_is_answered_without_typer_or_rich():
    probe = ("import sys; sys.argv = ['cocktail', 'train', '--help']\nfrom cocktail_cli.__main__ import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code\n"
             "print(sorted(m for m in ('typer', 'rich', 'click', 'torch', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], env=_probe_env({"COLUMNS": "100"}), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]" and "Usage: cocktail train" in proc.stdout


def test_python_dash_m_is_rendered_by_typer():
    proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "--help"], env=_probe_env({"COLUMNS": "100"}),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0 and "Usage: python -m cocktail_cli [OPTIONS]" in proc.stdout


# -- a model that cannot be trusted is not used -------------------------------------------------------
def test_stale_or_damaged_model_is_refused(tmp_path):
    model = helppages.load_model()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(model), encoding="utf-8")
    assert helppages.load_model(str(good)) == model
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**model, "digest": "0"}), encoding="utf-8")
    assert helppages.load_model(str(stale)) is None
    damaged = tmp_path / "damaged.json"
    damaged.write_text(good.read_text(encoding="utf-8")[:-100], encoding="utf-8")
    assert helppages.load_model(str(damaged)) is None
    assert helppages.load_model(str(tmp_path / "missing.json")) is None


def test_digest_follows_every_source(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    before = helppages.source_digest(["a.py", "b.py"], package=str(tmp_path))
    (tmp_path / "b.py").write_text("y = 3\n")
    assert helppages.source_digest(["a.py", "b.py"], package=str(tmp_path)) != before
    assert helppages.source_digest(["a.py", "gone.py"], package=str(tmp_path)) == "missing"


def test_without_a_model_typer_prints_the_same_page(monkeypatch, capsys, model):
    """``model`` is the installed Typer's: the page Typer prints in-process must be its page."""
    monkeypatch.setattr(helppages, "load_model", lambda path=helppages.MODEL_PATH: None)
    monkeypatch.setattr(sys, "argv", ["cocktail", "eval", "--help"])
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # as the installed script
    monkeypatch.setenv("COLUMNS", "88")
    for name in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERMINAL_WIDTH", "COCKTAIL_RICH_HELP"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert not exit_.value.code
    assert capsys.readouterr().out == helppages.Page(model, "eval").render(88) + "\n"
