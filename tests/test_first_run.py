"""What a new user hits first: the shipped example, start-up, kills, damaged inputs, terminals, --json."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.classes import CLASSES

ROOT = Path(__file__).resolve().parents[1]


# -- 1. the example recording ----------------------------------------------------------------------
def test_example_is_shipped_with_its_sources():
    from cocktail_cli.examples import example_path

    path = example_path()
    info = sf.info(str(path))
    assert info.samplerate == 44100 and info.channels == 1 and 10 <= info.duration <= 30
    assert path.stat().st_size < 1_000_000
    sources = (path.parent / "example.md").read_text(encoding="utf-8")
    assert "tuxpaint-stamps-default" in sources and "GPL-2" in sources
    assert (path.parent / "COPYING.example").is_file()
    # the licence and copyright sit beside the audio, in the form licence scanners read (REUSE/SPDX)
    sidecar = (path.parent / "example.ogg.license").read_text(encoding="utf-8")
    assert "SPDX-License-Identifier: GPL-2.0-or-later" in sidecar and "SPDX-FileCopyrightText:" in sidecar


def test_separate_example_writes_five_stems_that_sum_to_it(cli, tmp_path, monkeypatch):
    from cocktail_cli.examples import example_path

    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)  # the shipped model, as a new user has it
    code, out, err = cli("separate", "--example", "-o", tmp_path, "--json")
    assert code == 0, err
    assert __import__("json").loads(out)["input"] == "<example>"  # not its path in site-packages
    mix, sr = sf.read(str(example_path()), dtype="float32")
    stems = {}
    for name in CLASSES:
        data, stem_sr = sf.read(str(tmp_path / "example" / f"{name}.wav"), dtype="float32")
        assert stem_sr == sr and data.shape == mix.shape
        stems[name] = data
    # 16-bit stems: five roundings of half an LSB each, plus the separator's 1e-4
    np.testing.assert_allclose(sum(stems.values()), mix, atol=2e-4)
    # a busy scene: more than one stem carries sound
    loud = [n for n, x in stems.items() if np.sqrt(np.mean(x**2)) > 10 ** (-40 / 20)]
    assert len(loud) >= 2, loud


def test_readme_command_1_prints_its_closing_line_on_a_terminal_only(cli, tmp_path, monkeypatch):
    """What the README shows command 1 ending with, and where: on a terminal, not when piped; and
    its output folder out/ is one git ignores."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("Command 1 takes", 1)[1].split("```", 2)
    assert "in a terminal" in section[0]
    shown = section[1].strip()
    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("separate", "--example", "-o", "out/")
    assert code == 0 and out == "" and err == ""  # piped: nothing but errors and warnings
    monkeypatch.setenv("COCKTAIL_PROGRESS", "1")  # as on a terminal
    code, out, err = cli("separate", "--example", "-o", "out/")
    pattern = re.escape(shown).replace(r"20\.0\ s\ of\ audio\ in\ 1\.3\ s\ \(15x", r"20\.0\ s\ of\ audio\ in\ [\d.]+\ s\ \([\d.]+x")
    assert code == 0 and re.fullmatch(pattern, err.strip().splitlines()[-1]), (shown, err)
    ignored = [line.strip() for line in (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()]
    assert "/out/" in ignored


def test_separate_without_inputs_names_the_example(cli, tmp_path):
    code, out, err = cli("separate", "-o", tmp_path, "--json")
    assert code == 1 and "--example" in err and len(err.strip().splitlines()) == 1


# -- 2. start-up: the CLI loads without the heavy libraries ----------------------------------------------
HEAVY = ("torch", "numpy", "scipy", "soundfile", "soxr", "librosa", "mir_eval", "matplotlib", "PIL")
# Light enough to import, heavy enough to matter: Typer coerces options through pydantic (~150 ms)
# and its help module imports rich.markdown (markdown-it) and rich.traceback (pygments); cocktail
# needs none of them to answer --help or a Tab (see cli._no_pydantic_without_values, _defer_import).
SLOW = ("pydantic", "markdown_it", "pygments")

_PROBE = """
import json, os, sys
args = json.loads(sys.argv[1])
env = json.loads(sys.argv[2])
watched = set(json.loads(sys.argv[3]))
os.environ.update(env)
if args is None:
    import cocktail_cli.cli
else:  # through the entry point, as the installed `cocktail` runs
    from cocktail_cli.__main__ import main
    sys.argv = ["cocktail", *args]
    try:
        main()
    except SystemExit:
        pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & watched)
print("\\nHEAVY=" + json.dumps(heavy))
"""


@pytest.mark.parametrize(
    "args,env",
    [
        (None, {}),  # import cocktail_cli.cli
        (["--version"], {}),
        (["--help"], {}),
        (["separate", "--help"], {}),
        (["synth", "--help"], {}),
        (["prep", "--help"], {}),
        (["train", "--help"], {}),
        (["eval", "--help"], {}),
        ([], {"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail separate --fo", "COMP_CWORD": "2"}),
        ([], {"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail synth x --split ", "COMP_CWORD": "4"}),
    ],
    ids=["import", "version", "help", "separate-help", "synth-help", "prep-help", "train-help", "eval-help",
         "complete-option", "complete-choice"],
)
def test_cli_start_up_does_not_import_torch_or_numpy(args, env):
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(env), json.dumps(HEAVY + SLOW)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stdout.rsplit("HEAVY=", 1)[1])
    assert heavy == [], f"cocktail {args} imported {heavy}"
    if env:  # the completion request did answer
        assert "--format" in proc.stdout or "train" in proc.stdout


def test_version_is_answered_before_typer_loads():
    import subprocess

    probe = "import sys; sys.argv = ['cocktail', '--version']\nfrom cocktail_cli.__main__ import main\nmain()\nprint(sorted(m for m in ('typer', 'rich', 'torch') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    from cocktail_cli import __version__

    assert proc.returncode == 0 and proc.stdout.splitlines() == [f"cocktail {__version__}", "[]"], proc


def test_deferred_modules_load_when_used():
    """The stand-ins for rich.markdown and rich.traceback hand over to the real modules."""
    import subprocess

    probe = """
import sys
from cocktail_cli import cli
assert type(sys.modules["rich.markdown"]).__name__ == "module" and "markdown_it" not in sys.modules
from rich.markdown import Markdown
from rich.console import Console
console = Console(record=True, width=40)
console.print(Markdown("# Title\\n\\n*some* text"))
assert "markdown_it" in sys.modules and "some text" in console.export_text()
from rich.traceback import Traceback
try:
    1 / 0
except ZeroDivisionError:
    tb = Traceback()
import rich.traceback
assert isinstance(tb, rich.traceback.Traceback) and callable(rich.traceback.install)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "ok", proc.stderr


def test_option_defaults_mirror_the_library():
    from cocktail_cli import defaults, evaluate, metrics, nets, separate, sources

    assert defaults.SPLITS == sources.SPLITS
    assert defaults.ORACLES == evaluate.ORACLES
    assert defaults.ABSENT_THRESHOLD_DB == metrics.ABSENT_THRESHOLD_DB
    assert defaults.ARCH_NAMES == tuple(nets.ARCHS) and defaults.DEFAULT_ARCH == nets.DEFAULT_ARCH
    assert defaults.DEFAULT_TEMPLATE == separate.DEFAULT_TEMPLATE


# -- 3. killed runs: SIGTERM cleans up, and a kill -9's leftovers go with the next run ---------------
def _scene(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def _temps(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name)


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale_name(target: str, pid: int) -> str:
    from cocktail_cli.atomic import _HOST

    return f".{target}.cocktail-{_HOST}-{pid}-k3j2h1g0.tmp"


def _wait_for(predicate, timeout: float = 300.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _cocktail_subprocess(args, **kwargs):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "COCKTAIL_MODEL"}
    return subprocess.Popen([sys.executable, "-m", "cocktail_cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _terminate_when(proc, ready, what: str) -> str:
    """Send SIGTERM once ``ready()`` holds (failing if ``proc`` ended first); returns its stderr."""
    import signal

    try:
        assert _wait_for(lambda: proc.poll() is not None or ready())
        assert proc.poll() is None, f"{what} ended before it was killed: {proc.communicate()}"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return err


def test_sigterm_during_separate_leaves_no_temporaries(tmp_path):
    src = tmp_path / "long.wav"
    sf.write(str(src), _scene(240.0), 16000)
    out = tmp_path / "out"
    proc = _cocktail_subprocess(["separate", src, "-o", out])
    err = _terminate_when(proc, lambda: out.exists() and _temps(out), "separate")
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["error: terminated"], err
    assert not out.exists() or list(out.rglob("*")) == [], list(out.rglob("*"))


def test_sigterm_during_parallel_synth_leaves_no_temporaries(tmp_path, make_class_tree):
    src = make_class_tree(tmp_path / "src", files=6, seconds=1.0, sr=8000)
    out = tmp_path / "mixes"
    args = ["synth", src, "-o", out, "--count", "5000", "--seconds", "1", "--sample-rate", "8000", "--jobs", "2"]
    proc = _cocktail_subprocess(args)
    split = out / "train"
    err = _terminate_when(proc, lambda: split.is_dir() and sum(1 for _ in split.iterdir()) > 3, "synth")
    assert proc.returncode == 143, err
    assert _temps(out) == []


def _plant(folder: Path, target: str) -> dict[str, Path]:
    """A dead run's temporary (to go), a live one (this process's) and two user files (to stay)."""
    folder.mkdir(parents=True, exist_ok=True)
    planted = {
        "stale": folder / _stale_name(target, _dead_pid()),
        "live": folder / _stale_name(target, os.getpid()),
        "user": folder / f".{target}.notes.tmp",
        "old-style": folder / f".{target}.a1b2c3d4.tmp",
    }
    for p in planted.values():
        p.write_bytes(b"partial")
    return planted


def _check_planted(planted: dict[str, Path]) -> None:
    assert not planted["stale"].exists()
    assert all(planted[k].exists() for k in ("live", "user", "old-style"))


@pytest.mark.parametrize("skip_existing", [False, True])
def test_separate_removes_a_dead_runs_temporaries(cli, tmp_path, skip_existing):
    from cocktail_cli.atomic import TEMP_RE

    src = tmp_path / "mix.wav"
    sf.write(str(src), _scene(1.0), 16000)
    out = tmp_path / "out"
    if skip_existing:
        assert cli("separate", src, "-o", out)[0] == 0
    planted = _plant(out / "mix", "speech.wav")
    other = _plant(out / "other-track", "dog.wav")  # a folder the template makes, this run does not write
    assert TEMP_RE.match(planted["stale"].name) and not TEMP_RE.match(planted["user"].name)
    code, _, err = cli("separate", src, "-o", out, *(["--skip-existing"] if skip_existing else []))
    assert code == 0, err
    _check_planted(planted)
    _check_planted(other)


def test_synth_prep_train_eval_remove_a_dead_runs_temporaries(cli, tmp_path, make_class_tree):
    src = make_class_tree(tmp_path / "src", files=6, seconds=1.0, sr=8000)
    mixes, store, model = tmp_path / "mixes", tmp_path / "store", tmp_path / "models" / "m.pt"
    cache = _plant(mixes / ".cache" / "variants", "clip.npy")
    code, _, err = cli("synth", src, "-o", mixes, "--count", "6", "--seconds", "1", "--sample-rate", "8000")
    assert code == 0, err
    _check_planted(cache)

    shards = _plant(store / "train", "shard-00000.bin")
    code, _, err = cli("prep", mixes, "-o", store, "--sample-rate", "8000", "--seconds", "1", "--jobs", "1")
    assert code == 0, err
    _check_planted(shards)

    ckpt = _plant(model.parent, "m.pt")
    code, _, err = cli("train", store, "-o", model, "--steps", "1", "--batch-size", "2", "--val-examples", "2", "--threads", "1",
                       "--arch-arg", "channels=8", "--arch-arg", "hidden=8", "--val", store, "--val-split", "train")
    assert code == 0, err
    _check_planted(ckpt)

    csv_dir = tmp_path / "scores"
    table = _plant(csv_dir, "scores.csv")
    mixture = next(p for p in (mixes / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    code, _, err = cli("eval", "--reference", mixture, "--estimate", mixture, "--csv", csv_dir / "scores.csv")
    assert code == 0, err
    _check_planted(table)


def test_stale_temporaries_from_another_host_go_after_a_day(tmp_path):
    import time

    from cocktail_cli.atomic import STALE_SECONDS, remove_stale_temps

    other_host = "ffff" if "ffff" != __import__("cocktail_cli.atomic").atomic._HOST else "fffe"
    old = tmp_path / f".a.wav.cocktail-{other_host}-1-abcdefgh.tmp"
    new = tmp_path / f".b.wav.cocktail-{other_host}-1-abcdefgh.tmp"
    for p in (old, new):
        p.write_bytes(b"x")
    past = time.time() - STALE_SECONDS - 60
    os.utime(old, (past, past))
    assert remove_stale_temps(tmp_path) == [str(old)]
    assert new.exists()


# -- 4. truncated input: a warning naming the file and both lengths; what is there is separated -------
def _truncated_wav(path: Path, seconds: float = 10.0, keep: float = 0.17, sr: int = 44100) -> Path:
    sf.write(str(path), _scene(seconds, sr), sr, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + int(keep * sr) * 2])  # the 44-byte header still says 10 s
    return path


def test_truncated_wav_is_separated_with_one_warning(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    src = _truncated_wav(tmp_path / "cut.wav")
    code, out, err = cli("separate", src, "-o", tmp_path / "out")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(src) in lines[0] and "truncated" in lines[0] and "header says 10.0 s, file holds 0.17 s" in lines[0]
    for stem in CLASSES:
        info = sf.info(str(tmp_path / "out" / "cut" / f"{stem}.wav"))
        assert info.frames == int(0.17 * 44100)


def test_truncated_and_too_short_says_both(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    src = _truncated_wav(tmp_path / "cut.wav", keep=0.001)
    code, out, err = cli("separate", src, "-o", tmp_path / "out")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "too short" in err and "truncated: header says 10.0 s" in err


def test_announced_frames_reads_wav_and_aiff_headers(tmp_path):
    from cocktail_cli.audio import announced_frames

    for name, subtype in (("a.wav", "PCM_16"), ("b.wav", "FLOAT"), ("c.aiff", "PCM_24")):
        sf.write(str(tmp_path / name), np.zeros(12345, np.float32), 8000, subtype=subtype)
        assert announced_frames(tmp_path / name) == 12345
    sf.write(str(tmp_path / "d.flac"), np.zeros(100, np.float32), 8000)
    assert announced_frames(tmp_path / "d.flac") is None
    assert announced_frames(_truncated_wav(tmp_path / "e.wav", seconds=2.0, sr=8000)) == 16000


# -- 5. error text: one line in cocktail's words, no decoder notes, no torch text ---------------------
def _needs_mp3():
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")


def test_truncated_mp3_is_reported_too(cli, tmp_path, monkeypatch):
    _needs_mp3()
    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    src = tmp_path / "cut.mp3"
    sf.write(str(src), _scene(10.0, 44100), 44100, format="MP3")
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    code, out, err = cli("separate", src, "-o", tmp_path / "out")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and "truncated: header says 10.0 s, file holds" in lines[0], err


@pytest.mark.parametrize("name,make", [
    ("noise.mp3", lambda p: p.write_bytes(np.random.default_rng(0).bytes(20000))),
    ("stub.mp3", "head400"),  # a real MP3 cut inside its first frames
    ("noise.wav", lambda p: p.write_bytes(np.random.default_rng(1).bytes(20000))),
])
def test_corrupt_audio_is_one_line_in_our_words(cli, tmp_path, monkeypatch, name, make):
    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    path = tmp_path / name
    if make == "head400":
        _needs_mp3()
        sf.write(str(path), _scene(5.0, 44100), 44100, format="MP3")
        path.write_bytes(path.read_bytes()[:400])
    else:
        make(path)
    good = tmp_path / "good.wav"
    sf.write(str(good), _scene(1.0), 16000)
    code, out, err = cli("separate", path, good, "-o", tmp_path / "out")
    assert code == 1
    lines = err.strip().splitlines()
    assert lines == [f"error: {path}: cannot decode audio (corrupt or unsupported format)", "error: 1 of 2 inputs failed"], err
    assert (tmp_path / "out" / "good" / "speech.wav").exists()  # the batch went on


@pytest.mark.parametrize("damage", ["truncated", "garbage", "text"])
def test_corrupt_checkpoint_is_one_line_in_our_words(cli, tmp_path, damage):
    from cocktail_cli.checkpoint import default_model_path

    good = Path(os.environ.get("COCKTAIL_MODEL") or default_model_path()).read_bytes()
    bad = tmp_path / "model.pt"
    bad.write_bytes({"truncated": good[: len(good) // 2], "garbage": b"\x80\x02" + np.random.default_rng(0).bytes(4000),
                     "text": b"hello"}[damage])
    src = tmp_path / "mix.wav"
    sf.write(str(src), _scene(1.0), 16000)
    code, out, err = cli("separate", src, "-o", tmp_path / "out", "--model", bad)
    assert code == 1
    assert err.strip().splitlines() == [f"error: {bad}: not a cocktail checkpoint (damaged or not a torch file)"], err



# -- 6. -o - on a terminal is refused, as gzip does -----------------------------------------------------
def test_audio_to_a_terminal_is_refused(tmp_path):
    import pty
    import subprocess

    src = tmp_path / "mix.wav"
    sf.write(str(src), _scene(1.0), 16000)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cocktail_cli", "separate", str(src), "--stems", "speech", "-o", "-"],
            stdout=slave, stderr=subprocess.PIPE, text=True, timeout=120,
        )
        os.set_blocking(master, False)
        try:
            written = os.read(master, 65536)
        except (BlockingIOError, OSError):
            written = b""
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: refusing to write audio to a terminal; redirect standard output (> stem.wav) or use -o DIR"
    ], proc.stderr
    assert b"RIFF" not in written and len(written) == 0, written[:80]


# -- 7. --json: a failed input is a JSON line too, and the others are still done --------------------------
def test_json_reports_failed_inputs_and_the_batch_goes_on(cli, tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)
    good, good2 = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(str(good), _scene(1.0), 16000)
    sf.write(str(good2), _scene(1.0, seed=1), 16000)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(np.random.default_rng(0).bytes(20000))
    missing = tmp_path / "missing.wav"
    code, out, err = cli("separate", good, missing, bad, good2, "-o", tmp_path / "out", "--json")
    assert code == 1
    rows = {Path(r["input"]).name: r for r in map(json.loads, out.strip().splitlines())}
    assert set(rows) == {"a.wav", "missing.wav", "bad.mp3", "b.wav"}
    assert rows["missing.wav"] == {"input": str(missing), "error": f"{missing}: file not found"}
    assert rows["bad.mp3"] == {"input": str(bad), "error": f"{bad}: cannot decode audio (corrupt or unsupported format)"}
    for name in ("a.wav", "b.wav"):
        assert "error" not in rows[name] and all(Path(p).is_file() for p in rows[name]["outputs"].values())
    assert f"error: {missing}: file not found" in err and "2 of 4 inputs failed" in err
