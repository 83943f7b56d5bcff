"""`cocktail separate` and the Separator's streaming path, on generated signals and random-init models.

Nothing here depends on model quality: the checks are about files, rates, channels, mixture
consistency, chunking, pipes, errors and batch behaviour.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cocktail_cli import separate as api
from cocktail_cli.checkpoint import save_checkpoint
from cocktail_cli.classes import CLASSES
from cocktail_cli.errors import AudioError, CheckpointError, CocktailError
from cocktail_cli.nets import build
from cocktail_cli.separator import Separator
from cocktail_cli.stft import STFTConfig

MODEL_SR = 8000
STFT = STFTConfig(sample_rate=MODEL_SR, n_fft=256, hop=64)


def small_tcn():
    return build("tcn", n_bins=STFT.n_bins, channels=16, hidden=32, depth=2, repeats=1)


def scene(seconds: float, sr: int, channels: int = 1, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Tones, a chirp and noise: (channels, samples) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    chans = []
    for c in range(channels):
        x = np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.5 * np.sin(2 * np.pi * (300 + 900 * t / max(seconds, 1)) * t)
        x += 0.3 * rng.standard_normal(t.size)
        chans.append(x / np.abs(x).max() * level)
    return np.stack(chans).astype(np.float32)


def write(path, audio, sr, subtype="PCM_16"):
    sf.write(str(path), audio.T, sr, subtype=subtype)
    return str(path)


def read_stems(folder, track="mix", ext="wav", stems=CLASSES):
    out = {}
    for s in stems:
        data, sr = sf.read(str(Path(folder) / track / f"{s}.{ext}"), dtype="float32", always_2d=True)
        out[s] = (data.T, sr)
    return out


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "small.pt"
    save_checkpoint(path, small_tcn(), "tcn", STFT)
    return str(path)


@pytest.fixture
def default_model(model_path, monkeypatch):
    """Point the default model at the small random checkpoint (what COCKTAIL_MODEL is for)."""
    monkeypatch.setenv("COCKTAIL_MODEL", model_path)
    return model_path


@pytest.fixture
def run(default_model, cli):
    """Run ``cocktail separate ARGS`` in-process; returns (exit code, stdout, stderr)."""
    return lambda *args: cli("separate", *args)


def no_partial_files(folder) -> bool:
    folder = Path(folder)
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


# -- outputs: files, rates, channels, consistency ----------------------------------------------------
@pytest.mark.parametrize("sr,channels", [(MODEL_SR, 1), (44100, 2), (48000, 2), (16000, 3)])
def test_stems_keep_rate_and_channels_and_sum_to_input(run, tmp_path, sr, channels):
    audio = scene(2.5, sr, channels)
    src = write(tmp_path / "mix.wav", audio, sr, subtype="FLOAT")
    code, out, err = run(src, "-o", tmp_path / "out", "--bits", "32")
    assert code == 0, err
    stems = read_stems(tmp_path / "out")
    total = np.zeros_like(audio)
    for s in CLASSES:
        data, rate = stems[s]
        assert rate == sr and data.shape == audio.shape
        assert sf.info(str(tmp_path / "out" / "mix" / f"{s}.wav")).subtype == "FLOAT"
        total += data
    assert np.abs(total - audio).max() < 1e-4


def test_streaming_equals_whole_array_whatever_the_blocks(model_path, tmp_path, monkeypatch):
    sep = Separator.from_checkpoint(model_path, chunk_seconds=1.0, overlap_seconds=0.25)
    sr = 44100
    audio = scene(4.3, sr, 2)
    whole = sep.separate(audio, sr)
    for block in (1000, 4096, 65536):
        pieces = [audio[:, i : i + block] for i in range(0, audio.shape[1], block)]
        streamed = np.concatenate(list(sep.separate_blocks(pieces, sr)), axis=-1)
        np.testing.assert_array_equal(streamed, whole)
    # the file path (read block by block, written block by block) gives the same stems
    monkeypatch.setattr(api, "BLOCK_FRAMES", 3000)
    src = write(tmp_path / "mix.wav", audio, sr, subtype="FLOAT")
    opts = api.SeparateOptions(out=str(tmp_path / "out"), bits=32)
    api.separate_file(sep, api.plan([src], opts)[0], opts)
    for i, s in enumerate(CLASSES):
        data, _ = sf.read(str(tmp_path / "out" / "mix" / f"{s}.wav"), dtype="float32", always_2d=True)
        np.testing.assert_array_equal(data.T, whole[i])


@pytest.mark.parametrize("chunk,overlap", [(1.0, 0.25), (1.3, 0.1), (2.0, 0.5), (20.0, 1.0)])
def test_chunking_keeps_stems_summing_to_input(model_path, chunk, overlap):
    sep = Separator.from_checkpoint(model_path, chunk_seconds=chunk, overlap_seconds=overlap)
    audio = scene(5.0, 22050, 2, seed=3)
    stems = sep.separate(audio, 22050)
    assert stems.shape == (len(CLASSES), 2, audio.shape[1])
    assert np.abs(stems.sum(0) - audio).max() < 1e-4


def test_channels_share_one_set_of_masks(model_path, monkeypatch):
    """Stereo runs the network once per chunk; identical channels give the mono stems; with
    independent_channels every channel is separated exactly as it would be alone."""
    sep = Separator.from_checkpoint(model_path, chunk_seconds=1.0, overlap_seconds=0.25)
    solo = Separator.from_checkpoint(model_path, chunk_seconds=1.0, overlap_seconds=0.25, independent_channels=True)
    sr = 16000
    audio = scene(2.0, sr, 2, seed=11)
    batches = []
    original = sep.model.forward
    monkeypatch.setattr(sep.model, "forward", lambda mag: batches.append(mag.shape[0]) or original(mag))
    stems = sep.separate(audio, sr)
    assert set(batches) == {1} and stems.shape == (len(CLASSES), 2, audio.shape[1])  # one mask set per chunk
    assert np.abs(stems.sum(0) - audio).max() < 1e-4
    mono = [sep.separate(audio[c : c + 1], sr) for c in range(2)]
    twin = sep.separate(np.repeat(audio[:1], 2, axis=0), sr)
    np.testing.assert_allclose(twin, np.concatenate([mono[0], mono[0]], axis=1), atol=2e-6)
    alone = solo.separate(audio, sr)
    np.testing.assert_allclose(alone, np.concatenate(mono, axis=1), atol=2e-6)
    assert np.abs(alone.sum(0) - audio).max() < 1e-4


def test_independent_channels_option(run, model_path, tmp_path):
    audio = scene(1.5, MODEL_SR, 2, seed=2)
    src = write(tmp_path / "mix.wav", audio, MODEL_SR, subtype="FLOAT")
    # --precision fp32: the Separator below computes in fp32 (auto is bf16 on an AVX512-BF16 CPU)
    code, _, err = run(src, "-o", tmp_path / "out", "--bits", "32", "--stems", "dog", "--independent-channels",
                       "--precision", "fp32")
    assert code == 0, err
    dog, _ = sf.read(str(tmp_path / "out" / "mix" / "dog.wav"), dtype="float32", always_2d=True)
    expected = Separator.from_checkpoint(model_path, independent_channels=True).separate(audio, MODEL_SR)
    np.testing.assert_allclose(dog.T, expected[CLASSES.index("dog")], atol=1e-6)


def test_inference_path_matches_the_training_path(model_path):
    """Inference computes one stem fewer by inverse STFT (the last is the mixture minus the
    others) and applies the temperature in place: the same stems as the differentiable path."""
    sep = Separator.from_checkpoint(model_path, mask_temperature=1.4)
    wave = torch.from_numpy(scene(2.0, MODEL_SR, 3, seed=4))
    with torch.inference_mode():
        fast = sep(wave)
    with torch.enable_grad():
        slow = sep(wave.clone().requires_grad_(True)).detach()
    assert torch.allclose(fast, slow, atol=1e-6)
    assert torch.abs(fast.sum(1) - wave).max() < 1e-6


def test_cross_fade_weights_sum_to_one():
    """A net with equal masks gives input / 5 per stem: chunk seams add nothing and lose nothing."""
    model = small_tcn().eval()
    with torch.no_grad():
        model.decode.weight.zero_()
        model.decode.bias.zero_()
    audio = scene(6.0, MODEL_SR, 1, seed=5)
    for chunk, overlap in [(1.0, 0.25), (1.7, 0.3), (60.0, 1.0)]:
        stems = Separator(model, STFT, chunk_seconds=chunk, overlap_seconds=overlap).separate(audio, MODEL_SR)
        np.testing.assert_allclose(stems, np.broadcast_to(audio / 5, stems.shape), atol=1e-5)


def test_long_input_streams_in_blocks(model_path, tmp_path, monkeypatch):
    """3 minutes at 8 kHz with 1 s chunks: nothing cut, stems sum to the input."""
    sr = MODEL_SR
    audio = scene(180.0, sr, 1, seed=7)
    src = write(tmp_path / "long.flac", audio, sr, subtype="PCM_24")
    audio, _ = sf.read(src, dtype="float32", always_2d=True)
    audio = audio.T
    monkeypatch.setattr(api, "BLOCK_FRAMES", 5000)
    sep = api.load_separator(model_path, chunk_seconds=1.0)
    opts = api.SeparateOptions(out=str(tmp_path / "out"), bits=32, stems=list(CLASSES))
    res = api.separate_file(sep, api.plan([src], opts)[0], opts)
    assert res.duration == pytest.approx(180.0)
    stems = read_stems(tmp_path / "out", track="long")
    total = sum(stems[s][0] for s in CLASSES)
    assert total.shape == audio.shape
    assert np.abs(total - audio).max() < 1e-4


# -- pipes ------------------------------------------------------------------------------------------
def test_stdin_to_stdout_pipe(model_path, tmp_path):
    sr = 22050
    audio = scene(2.0, sr, 2)
    buf = io.BytesIO()
    sf.write(buf, audio.T, sr, format="WAV", subtype="FLOAT")
    env = {**os.environ, "COCKTAIL_MODEL": model_path}
    cmd = [sys.executable, "-m", "cocktail_cli", "separate", "-", "--stems", "speech", "-o", "-", "--bits", "32",
           "--precision", "fp32"]  # as the Separator below (auto is bf16 on an AVX512-BF16 CPU)
    proc = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    speech, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    assert rate == sr and speech.shape == (audio.shape[1], 2)
    expected = Separator.from_checkpoint(model_path).separate(audio, sr)[CLASSES.index("speech")]
    np.testing.assert_allclose(speech.T, expected, atol=1e-6)
    assert proc.stderr.decode().strip() == ""


# -- naming, formats, subsets, scaling --------------------------------------------------------------
def test_filename_template_and_stem_subset(run, tmp_path):
    src = write(tmp_path / "a.wav", scene(1.0, 16000), 16000)
    code, _, err = run(src, "-o", tmp_path / "out", "--stems", "speech,dog", "--filename", "{stem}/{track}-x.{ext}", "--format", "flac")
    assert code == 0, err
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["dog/a-x.flac", "speech/a-x.flac"]


@pytest.mark.parametrize("fmt,bits,subtype", [("wav", 16, "PCM_16"), ("wav", 24, "PCM_24"), ("wav", 32, "FLOAT"), ("flac", 16, "PCM_16"), ("flac", 24, "PCM_24")])
def test_formats_and_bits(run, tmp_path, fmt, bits, subtype):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000, 2), 16000)
    code, _, err = run(src, "-o", tmp_path / "out", "--format", fmt, "--bits", bits, "--stems", "other")
    assert code == 0, err
    info = sf.info(str(tmp_path / "out" / "mix" / f"other.{fmt}"))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt.upper(), subtype, 16000, 2)
    if bits == 32:  # float WAV with the fmt chunk's cbSize field (18 bytes), as sox wants
        assert (tmp_path / "out" / "mix" / "other.wav").read_bytes()[12:20] == b"fmt " + (18).to_bytes(4, "little")


@pytest.mark.parametrize("fmt,sr,channels", [("mp3", 44100, 2), ("mp3", 16000, 1), ("ogg", 48000, 2), ("ogg", 16000, 3)])
def test_compressed_output_decodes_to_the_input_length_and_rate(run, tmp_path, fmt, sr, channels):
    audio = scene(2.3, sr, channels)
    src = write(tmp_path / "mix.wav", audio, sr)
    code, _, err = run(src, "-o", tmp_path / "out", "--format", fmt, "--stems", "speech,other")
    assert code == 0, err
    for s in ("speech", "other"):
        info = sf.info(str(tmp_path / "out" / "mix" / f"{s}.{fmt}"))
        assert (info.format, info.samplerate, info.channels, info.frames) == (fmt.upper(), sr, channels, audio.shape[1])
        data, _ = sf.read(str(tmp_path / "out" / "mix" / f"{s}.{fmt}"), dtype="float32", always_2d=True)
        assert data.shape == (audio.shape[1], channels) and np.abs(data).max() > 1e-3


def test_compressed_output_refusals(run, tmp_path, monkeypatch):
    # audio an MP3 cannot hold: one line naming the input, before any work
    src = write(tmp_path / "wide.wav", scene(1.0, 16000, 3), 16000)
    code, _, err = run(src, "-o", tmp_path / "out", "--format", "mp3")
    assert code == 1 and "wide.wav" in err and "at most 2 channels" in err and len(err.strip().splitlines()) == 1
    src = write(tmp_path / "hi.wav", scene(1.0, 96000), 96000)
    code, _, err = run(src, "-o", tmp_path / "out", "--format", "mp3")
    assert code == 1 and "hi.wav" in err and "96000 Hz" in err
    assert no_partial_files(tmp_path / "out")
    # a libsndfile without MP3 support is refused cleanly
    monkeypatch.setattr(sf, "available_formats", lambda: {"WAV": "", "FLAC": "", "OGG": ""})
    code, _, err = run(src, "-o", tmp_path / "out", "--format", "mp3")
    assert code == 1 and "cannot write mp3" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_two_stems_chosen_and_rest_sum_to_the_input(run, tmp_path, fmt):
    sr = 44100
    audio = scene(2.0, sr, 2)
    src = write(tmp_path / "mix.wav", audio, sr, subtype="FLOAT")
    args = ["--bits", "32"] if fmt == "wav" else ["--format", fmt]
    code, out, err = run(src, "-o", tmp_path / "out", "--stems", "speech", "--rest", "--json", *args)
    assert code == 0, err
    assert list(json.loads(out)["outputs"]) == ["speech", "rest"]
    assert sorted(p.name for p in (tmp_path / "out" / "mix").iterdir()) == [f"rest.{fmt}", f"speech.{fmt}"]
    stems = read_stems(tmp_path / "out", ext=fmt, stems=("speech", "rest"))
    total = stems["speech"][0] + stems["rest"][0]
    if fmt == "wav":
        assert np.abs(total - audio).max() < 1e-4
        # rest is the sum of the four other stems of a full separation
        code, _, err = run(src, "-o", tmp_path / "all", "--bits", "32")
        full = read_stems(tmp_path / "all")
        others = sum(full[s][0] for s in CLASSES if s != "speech")
        assert np.abs(stems["rest"][0] - others).max() < 1e-5
    else:  # lossy: the sum is the input to within the codec's error (the scene's white noise
        # reaches 22 kHz, above MP3's ~19 kHz low-pass)
        err_db = 10 * np.log10(np.sum((total - audio) ** 2) / np.sum(audio**2))
        assert err_db < -12, err_db


def test_integer_output_is_scaled_together_with_a_warning(run, tmp_path):
    sr = 16000
    audio = scene(2.0, sr, 1, level=8.0)  # float input far beyond full scale: stems would clip
    src = write(tmp_path / "loud.wav", audio, sr, subtype="FLOAT")
    code, out, err = run(src, "-o", tmp_path / "out", "--bits", "16", "--json")
    assert code == 0, err
    assert "warning" in err and "loud.wav" in err and "scaled all stems" in err
    assert f"so they sum to {json.loads(out)['scale']:.2f}x the input" in err
    scale = json.loads(out)["scale"]
    assert 0 < scale < 1
    stems = read_stems(tmp_path / "out", track="loud")
    assert max(np.abs(stems[s][0]).max() for s in CLASSES) <= 0.9991
    total = sum(stems[s][0] for s in CLASSES)
    assert np.abs(total - audio * scale).max() < 5 * 2**-15 + 1e-4  # one factor for all stems
    # float output is written as is, no warning
    code, _, err = run(src, "-o", tmp_path / "float", "--bits", "32")
    assert code == 0 and "warning" not in err
    stems = read_stems(tmp_path / "float", track="loud")
    assert np.abs(sum(stems[s][0] for s in CLASSES) - audio).max() < 1e-4


def test_json_lines(run, tmp_path):
    srcs = [write(tmp_path / f"{n}.wav", scene(1.0, 16000, seed=i), 16000) for i, n in enumerate(["x", "y"])]
    code, out, err = run(*srcs, "-o", tmp_path / "out", "--json", "--jobs", "2")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert sorted(r["input"] for r in rows) == sorted(srcs)
    for r in rows:
        assert set(r) >= {"input", "outputs", "seconds", "rtf"}
        assert list(r["outputs"]) == list(CLASSES) and all(os.path.exists(p) for p in r["outputs"].values())
        assert r["seconds"] > 0 and r["rtf"] > 0


# -- what a person sees: progress columns and the closing summary -------------------------------------
def test_progress_columns_count_seconds_of_audio_and_speed():
    from types import SimpleNamespace

    from cocktail_cli import console

    assert console.audio_progress_text(12.34, 600.0) == "12.3/600.0 s audio"
    assert console.audio_progress_text(0.0, None) == "0.0/? s audio"
    assert console.speed_text(35.2) == "35x real time" and console.speed_text(2.46) == "2.5x real time"
    assert console.speed_text(None) == "" and console.speed_text(0.0) == ""
    progress = console.make_audio_progress(enabled=False)
    amount, speed = progress.columns[3], progress.columns[4]
    file_task = SimpleNamespace(fields={"unit": "audio"}, completed=12.3, total=600.0, speed=41.0)
    batch_task = SimpleNamespace(fields={}, completed=1, total=3, speed=0.02)
    assert amount.render(file_task).plain == "12.3/600.0 s audio" and speed.render(file_task).plain == "41x real time"
    assert amount.render(batch_task).plain == "1/3" and speed.render(batch_task).plain == ""


@pytest.mark.parametrize("width", [80, 120])
def test_progress_lines_fit_the_terminal(monkeypatch, width):
    """A 10-minute (and an hour-long) file's bar, with its speed, on one line of an 80-column terminal."""
    from rich.console import Console

    from cocktail_cli import console

    term = Console(width=width, force_terminal=True, record=True, color_system=None)
    monkeypatch.setattr(console, "_err_console", term)
    progress = console.make_audio_progress(enabled=True)
    clock = iter(np.arange(0.0, 100.0, 0.5))
    progress.get_time = lambda: next(clock)
    progress.add_task("3 files", total=3, completed=1)
    tasks = [progress.add_task(name, total=total, unit="audio")
             for name, total in (("a-ten-minute-field-recording-2026-12-02.wav", 600.0), ("long.flac", 3600.0))]
    for step in range(1, 6):
        for task, total in zip(tasks, (600.0, 3600.0)):
            progress.update(task, completed=total * step / 6)
    term.print(progress.make_tasks_table(progress.tasks))
    lines = term.export_text().splitlines()
    assert len(lines) == 3 and max(len(line) for line in lines) <= width
    assert "500.0/600.0 s audio" in lines[1] and "x real time" in lines[1]
    assert "3000.0/3600.0 s audio" in lines[2] and "x real time" in lines[2]


def test_json_goes_to_standard_output_while_a_terminal_shows_progress(default_model, tmp_path):
    """``cocktail separate x --json > x.jsonl`` on a terminal: the lines reach the file (Rich's
    live display used to take over standard output and print them on the terminal)."""
    import pty

    src = write(tmp_path / "mix.wav", scene(2.0, 16000), 16000)
    primary, secondary = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI=true turns progress off on a terminal too
        proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", src, "-o", str(tmp_path / "out"), "--json"],
                              stdout=subprocess.PIPE, stderr=secondary, timeout=120, env=env)
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["input"] == src
    assert b'"outputs"' not in shown and b"5 stems in" in shown  # the terminal got the summary, not the JSON


def test_summary_says_where_the_stems_went(run, tmp_path, monkeypatch):
    srcs = [write(tmp_path / f"{n}.wav", scene(1.5, 16000, seed=i), 16000) for i, n in enumerate(["a", "b"])]
    out = tmp_path / "out"
    code, _, err = run(srcs[0], "-o", out)  # standard error is not a terminal: quiet
    assert code == 0 and err.strip() == ""
    monkeypatch.setenv("COCKTAIL_PROGRESS", "1")  # as on a terminal
    code, _, err = run(*srcs, "-o", out, "--stems", "speech,dog")
    assert code == 0, err
    lines = [line.strip() for line in err.splitlines()]
    for name in ("a", "b"):
        expected = f"{tmp_path / name}.wav: 2 stems in {out / name}/ (dog.wav speech.wav); 1.5 s of audio in "
        assert any(line.startswith(expected) and line.endswith("real time)") for line in lines), err
    assert f"2 of 2 files separated; stems in {out}/" in lines
    code, _, err = run(srcs[0], "-o", out, "--stems", "speech", "--filename", "{stem}/{track}.{ext}")
    assert f"{tmp_path / 'a'}.wav: 1 stem in {out / 'speech'}/ (a.wav); 1.5 s of audio in" in err


# -- batches and errors -----------------------------------------------------------------------------
def test_folder_batch_with_good_and_bad_files(run, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write(folder / "good.wav", scene(1.0, 16000), 16000)
    write(folder / "sub" / "also.flac", scene(1.0, 16000), 16000, subtype="PCM_16")
    (folder / "broken.wav").write_text("not audio")
    (folder / "notes.txt").write_text("skipped: not an audio file")
    code, out, err = run(folder, "-o", tmp_path / "out")
    assert code == 1
    assert (tmp_path / "out" / "good" / "speech.wav").exists()
    assert (tmp_path / "out" / "sub" / "also" / "speech.wav").exists()
    assert not (tmp_path / "out" / "broken").exists()
    lines = err.strip().splitlines()
    assert any("broken.wav" in line for line in lines) and not any("notes.txt" in line for line in lines)
    assert "Traceback" not in err


def test_skip_existing_finishes_an_interrupted_batch(run, tmp_path):
    srcs = [write(tmp_path / f"{n}.wav", scene(1.0, 16000, seed=i), 16000) for i, n in enumerate(["a", "b", "c"])]
    out = tmp_path / "out"
    assert run(srcs[0], "-o", out)[0] == 0  # "a" finished before the interruption
    (out / "b").mkdir()
    sf.write(str(out / "b" / "dog.wav"), np.zeros(100, np.float32), 16000)  # "b" left with one stem
    done_before = {p: p.stat().st_mtime_ns for p in (out / "a").iterdir()}
    code, stdout, err = run(*srcs, "-o", out, "--skip-existing", "--json")
    assert code == 0, err
    rows = {Path(r["input"]).stem: r for r in map(json.loads, stdout.strip().splitlines())}
    assert rows["a"].get("skipped") is True and "rtf" in rows["b"] and "rtf" in rows["c"]
    assert {p: p.stat().st_mtime_ns for p in (out / "a").iterdir()} == done_before  # untouched
    for track in "bc":  # redone whole: every stem full length
        assert all(sf.info(str(out / track / f"{s}.wav")).frames == 16000 for s in CLASSES)
    # an input changed after its stems were written is separated again
    os.utime(srcs[0], (os.path.getmtime(out / "a" / "dog.wav") + 10,) * 2)
    rows = [json.loads(line) for line in run(*srcs, "-o", out, "--skip-existing", "--json")[1].strip().splitlines()]
    assert [Path(r["input"]).stem for r in rows if not r.get("skipped")] == ["a"]


def _nan_file(path):
    x = scene(1.0, 16000)
    x[0, 9000] = np.nan
    write(path, x, 16000, subtype="FLOAT")


def _inf_late_file(path):  # the bad sample comes after several blocks have been written
    x = scene(6.0, 16000)
    x[0, -10] = np.inf
    write(path, x, 16000, subtype="FLOAT")


def _cut_m4a(path):  # a phone recording copied half-way: the index at its end never came
    from encode import encode

    encode(path, scene(2.0, 44100), 44100)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def _short_webm(path):  # one Opus frame
    from encode import encode

    encode(path, scene(0.001, 48000), 48000)


def _truncated_flac(path):
    write(path, scene(2.0, 16000), 16000)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:60])


@pytest.mark.parametrize(
    "name,make,expected",
    [
        ("missing.wav", None, "not found"),
        ("empty.wav", lambda p: p.write_bytes(b""), "empty"),
        ("zero.wav", lambda p: write(p, np.zeros((1, 0), np.float32), 16000), "no audio samples"),
        ("text.wav", lambda p: p.write_text("hello, not audio"), "cannot decode"),
        ("notes.txt", lambda p: p.write_text("hello"), "cannot decode"),
        ("cut.flac", _truncated_flac, "decode"),
        ("short.wav", lambda p: write(p, scene(0.01, 16000), 16000), "too short"),
        ("one.wav", lambda p: write(p, scene(0.01, 16000)[:, :1], 16000), "(1 sample;"),
        ("cut.m4a", _cut_m4a, "cannot decode audio (corrupt or unsupported format)"),
        ("short.webm", _short_webm, "too short"),
        ("nan.wav", _nan_file, "NaN"),
        ("inf.wav", _inf_late_file, "NaN or infinite"),
    ],
)
def test_bad_inputs_one_line_no_partial_output(run, tmp_path, monkeypatch, name, make, expected):
    monkeypatch.setattr(api, "BLOCK_FRAMES", 4000)
    path = tmp_path / name
    if make is not None:
        make(path)
    code, out, err = run(path, "-o", tmp_path / "out", "--chunk-seconds", "1")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "out").exists()  # not even an empty folder


def test_phone_and_webm_recordings_are_separated_like_any_file(run, tmp_path):
    """M4A/AAC (what phones record) and Opus in WebM, which libsndfile cannot read, decode
    through PyAV, found in a folder search like any audio file."""
    from encode import encode

    from cocktail_cli.audio import read_audio

    (tmp_path / "rec").mkdir()
    encode(tmp_path / "rec" / "phone.m4a", scene(2.5, 44100, channels=2), 44100)
    encode(tmp_path / "rec" / "voice.webm", scene(2.0, 48000, seed=1), 48000)
    code, out, err = run(tmp_path / "rec", "-o", tmp_path / "out", "--bits", "32", "--json")
    assert code == 0, err
    for track, rate, channels in (("phone", 44100, 2), ("voice", 48000, 1)):
        decoded, sr = read_audio(tmp_path / "rec" / f"{track}{'.m4a' if track == 'phone' else '.webm'}")
        assert sr == rate and decoded.shape[0] == channels
        stems = read_stems(tmp_path / "out", track=track)
        total = sum(stems[s][0] for s in CLASSES)
        assert all(stems[s][1] == rate for s in CLASSES) and total.shape == decoded.shape
        assert np.abs(total - decoded).max() < 1e-4


@pytest.mark.parametrize("ext,sr", [(".m4a", 44100), (".webm", 48000)])
def test_pyav_decodes_faithfully_block_by_block(tmp_path, monkeypatch, ext, sr):
    from encode import encode

    from cocktail_cli.audio import open_audio, read_audio

    n = 6 * sr
    t = np.arange(n) / sr
    chirp = (0.3 * np.sin(2 * np.pi * (200 + 150 * t) * t)).astype(np.float32)[None]
    path = encode(tmp_path / f"chirp{ext}", chirp, sr)
    with open_audio(path) as reader:
        assert (reader.samplerate, reader.channels, reader.frames) == (sr, 1, None)
        assert abs(reader.estimated_frames - n) < 0.05 * sr  # the container's duration, for progress
        blocks = list(reader.blocks(20000))
    assert len(blocks) > 5 and max(b.shape[1] for b in blocks[:-1]) < 20000 + 4096  # streamed, not whole
    whole, rate = read_audio(path)
    assert rate == sr and np.array_equal(np.concatenate(blocks, axis=1), whole)
    from scipy.signal import correlate

    lag = int(np.argmax(correlate(whole[0, : n - 1], chirp[0, : n - 4096], "valid", method="fft")))  # codec delay
    assert lag <= 2048
    m = min(n, whole.shape[1] - lag)
    error = whole[0, lag : lag + m] - chirp[0, :m]
    assert 10 * np.log10(np.sum(chirp[0, :m] ** 2) / np.sum(error**2)) > 15


def test_a_cut_webm_is_separated_with_the_truncation_warning(run, tmp_path):
    from encode import encode

    path = encode(tmp_path / "cut.webm", scene(4.0, 48000), 48000)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    code, out, err = run(path, "-o", tmp_path / "out")
    assert code == 0, err
    assert "truncated: header says 4.0" in err and "separated what is there" in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_is_refused_before_work(run, tmp_path):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(src, "-o", blocker / "out")
    assert code == 1 and str(blocker / "out") in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda p, good: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]), "damaged"),
        (lambda p, good: p.write_bytes(np.random.default_rng(0).bytes(4000)), "damaged"),
        (lambda p, good: torch.save({"weights": [1, 2]}, p), "not a cocktail checkpoint"),
        (lambda p, good: save_checkpoint(p, small_tcn(), "tcn", STFTConfig()), "incompatible"),
    ],
)
def test_damaged_checkpoint_one_line(run, tmp_path, model_path, damage, expected):
    bad = tmp_path / "bad.pt"
    damage(bad, Path(model_path))
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    code, _, err = run(src, "-o", tmp_path / "out", "--model", bad)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and expected in lines[0], err
    assert no_partial_files(tmp_path / "out")


def test_a_bad_cocktail_model_is_named_with_its_value(run, tmp_path, monkeypatch):
    """COCKTAIL_MODEL is set: the line names it and its value, and does not ask to set it."""
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    (tmp_path / "garbled.pt").write_bytes(b"not a checkpoint")
    for value, problem in ((tmp_path / "nowhere.pt", "checkpoint not found"), (tmp_path / "garbled.pt", "not a cocktail checkpoint")):
        monkeypatch.setenv("COCKTAIL_MODEL", str(value))
        code, _, err = run(src, "-o", tmp_path / "out")
        assert code == 1 and f"error: COCKTAIL_MODEL={value}: {problem}" in err and "or set COCKTAIL_MODEL" not in err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_model_folder_is_called_a_folder(run, tmp_path):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    (tmp_path / "runs").mkdir()
    code, _, err = run(src, "--model", tmp_path / "runs", "-o", tmp_path / "out")
    assert code == 1 and f"{tmp_path / 'runs'}: is a folder, not a checkpoint" in err and "damaged" not in err


def test_model_option_rebuilds_any_architecture(run, tmp_path):
    torch.manual_seed(1)
    paper = tmp_path / "paper.pt"
    save_checkpoint(paper, build("paper", n_bins=129, frames=160), "paper", STFT)
    src = write(tmp_path / "mix.wav", scene(3.0, 11025, 2), 11025, subtype="FLOAT")
    code, _, err = run(src, "-o", tmp_path / "out", "--model", paper, "--bits", "32")
    assert code == 0, err
    stems = read_stems(tmp_path / "out")
    audio, _ = sf.read(src, dtype="float32", always_2d=True)
    assert np.abs(sum(stems[s][0] for s in CLASSES) - audio.T).max() < 1e-4


@pytest.mark.parametrize(
    "args,expected",
    [
        (["-o", "-"], "one stem"),
        (["--format", "flac", "--bits", "32"], "--bits 32"),
        (["--format", "aac"], "unsupported output format"),
        (["--format", "mp3", "--bits", "24"], "takes no --bits"),
        (["--rest"], "--rest writes the mixture minus"),
        (["--stems", "speech", "--rest", "-o", "-"], "one stem"),
        (["--filename", "{track}.{ext}"], "{stem}"),
        (["--filename", "{nope}/{stem}.{ext}"], "unknown field"),
        (["--stems", "speech,cat"], "unknown stem"),
        (["--stems", "speech", "-o", "-", "--json"], "--json"),
        (["-o", "OUT/out.wav"], "-o OUT/out.wav writes one stem to the file OUT/out.wav; choose one with --stems"),
        (["-o", "OUT/out.wav", "--stems", "speech", "--format", "flac"], "names a wav file but --format is flac"),
        (["--filename", "../../x/{stem}.{ext}"], "leaves the output folder"),
        (["--filename", "/tmp/x/{stem}.{ext}"], "leaves the output folder"),
        (["--shard", "0/4"], "K counts from 1 to N"),
        (["--shard", "5/4"], "K counts from 1 to N"),
        (["--shard", "two"], "--shard takes K/N"),
    ],
)
def test_option_errors(run, tmp_path, args, expected):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    args = [str(a).replace("OUT", str(tmp_path / "o")) for a in args]
    code, out, err = run(src, *args)
    expected = expected.replace("OUT", str(tmp_path / "o"))
    assert code != 0 and expected in err and "Traceback" not in err and out == ""
    assert not (tmp_path / "o").exists() and not (tmp_path / "separated").exists()


def test_one_stem_into_one_file(run, tmp_path):
    src = write(tmp_path / "mix.wav", scene(1.5, 16000), 16000)
    code, out, err = run(src, "--stems", "speech", "-o", tmp_path / "speech.flac", "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"speech": str(tmp_path / "speech.flac")}
    info = sf.info(str(tmp_path / "speech.flac"))
    assert (info.format, info.samplerate, info.frames) == ("FLAC", 16000, 24000)
    code, _, err = run(src, "--stems", "speech", "--rest", "-o", tmp_path / "two.wav")
    assert code != 0 and "choose one with --stems (got speech, rest)" in err and not (tmp_path / "two.wav").exists()
    other = write(tmp_path / "b.wav", scene(1.0, 16000), 16000)
    code, _, err = run(src, other, "--stems", "dog", "-o", tmp_path / "dog.wav")
    assert code != 0 and "takes exactly one input (got 2)" in err and not (tmp_path / "dog.wav").exists()


def test_stem_names_are_case_insensitive(run, tmp_path):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    code, _, err = run(src, "--stems", "Speech,DOG", "-o", tmp_path / "out")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out" / "mix").iterdir()) == ["dog.wav", "speech.wav"]


def test_running_twice_on_a_folder_separates_the_same_files(run, tmp_path, monkeypatch):
    """Neither the output folder nor stems cocktail wrote elsewhere are inputs of a folder search."""
    folder = tmp_path / "dir"
    folder.mkdir()
    for i in range(2):
        write(folder / f"rec{i}.wav", scene(1.0, 16000, seed=i), 16000)
    monkeypatch.chdir(folder)

    def wavs() -> int:
        return sum(1 for _ in folder.rglob("*.wav"))

    assert run(".")[0] == 0 and wavs() == 2 + 10
    assert run(".")[0] == 0 and wavs() == 2 + 10  # ./separated/ is this run's output folder
    code, out, err = run(".", "-o", "again", "--json")  # ./separated/ now only holds cocktail's stems
    assert code == 0, err
    assert sorted(json.loads(line)["input"] for line in out.splitlines()) == ["rec0.wav", "rec1.wav"]
    assert wavs() == 2 + 20
    code, _, err = run("separated")
    assert code == 1 and "folder contains no audio files (leaving out 10: the output folder and stems cocktail wrote)" in err
    code, _, err = run("separated/rec0/speech.wav", "-o", "explicit")  # named on its own: separated
    assert code == 0, err
    code, out, err = run(".", "-o", ".", "--json")  # into the searched folder itself: the tags still tell
    assert code == 0, err
    assert sorted(json.loads(line)["input"] for line in out.splitlines()) == ["rec0.wav", "rec1.wav"]


def test_a_terminal_on_standard_input_is_refused(default_model, tmp_path):
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", "-", "-o", str(tmp_path / "out")],
                              stdin=secondary, capture_output=True, text=True, timeout=120)
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: <stdin>: standard input is a terminal; pipe audio into it (sox in.wav -t wav - | cocktail separate -) "
        "or give a file"
    ]
    assert not (tmp_path / "out").exists()


def test_a_failed_run_leaves_no_folder(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run("missing.wav")
    assert code == 1 and "missing.wav: file not found" in err
    assert not (tmp_path / "separated").exists()
    bad = tmp_path / "late.wav"
    _inf_late_file(bad)  # fails after stems were being written
    code, _, err = run(bad, "-o", tmp_path / "deep" / "out")
    assert code == 1 and not (tmp_path / "deep").exists()


def test_a_full_disk_is_named_as_one(default_model, tmp_path):
    """Standard output to /dev/full: the write fails as on a full disk (ENOSPC)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", src, "--stems", "speech", "-o", "-"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: <stdout>: cannot write to standard output (no space left on device)"]


def test_a_full_file_system_is_named_as_one(default_model, tmp_path):
    """A 256 KiB file system (tmpfs, where this runs as root): libsndfile says "System error"."""
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        src = write(tmp_path / "long.wav", scene(10.0, 44100, channels=2), 44100)
        for args in ((), ("--bits", "32"), ("--format", "flac")):
            proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", src, "-o", str(small / "out"), *args],
                                  capture_output=True, text=True, timeout=300)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 1 and len(lines) == 1, proc.stderr
            assert lines[0].startswith(f"error: {small / 'out' / 'long'}/") and lines[0].endswith(
                ": cannot write (no space left on device)"), lines
            assert not any(small.iterdir())  # nothing left, not even the folders
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_shards_together_do_every_file_once(run, tmp_path):
    folder = tmp_path / "many"
    (folder / "sub").mkdir(parents=True)
    names = [f"f{i:02d}.wav" for i in range(7)] + ["sub/g.wav", "sub/h.wav"]
    for i, name in enumerate(names):
        write(folder / name, scene(0.5, 16000, seed=i), 16000)
    done = []
    for k in range(1, 5):
        code, out, err = run(folder, "-o", tmp_path / "out", "--shard", f"{k}/4", "--json")
        assert code == 0, err
        done.append([json.loads(line)["input"] for line in out.splitlines()])
    every = [i for shard in done for i in shard]
    assert sorted(every) == sorted(str(folder / n) for n in names)  # each file once
    assert [len(shard) for shard in done] == [3, 2, 2, 2]
    code, out, _ = run(folder, "-o", tmp_path / "out", "--shard", "2/4", "--skip-existing", "--json")
    assert code == 0 and all(json.loads(line).get("skipped") for line in out.splitlines())  # a re-run: nothing to do


def test_same_output_from_two_inputs_is_refused(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write(tmp_path / d / "mix.wav", scene(1.0, 16000), 16000)
    opts = api.SeparateOptions(out=str(tmp_path / "out"))
    with pytest.raises(CocktailError, match="would both write.*different -o folders, or give the folder that holds both"):
        api.plan([str(tmp_path / "a" / "mix.wav"), str(tmp_path / "b" / "mix.wav")], opts)
    # the advice works: their folder as the input keeps each track's path below it
    assert sorted(j.track for j in api.plan([str(tmp_path)], opts)) == ["a/mix", "b/mix"]


def test_same_track_name_with_different_extensions(run, tmp_path):
    """x.wav and x.flac: by default each gets a folder named like the input; {input_ext} is a field."""
    srcs = [write(tmp_path / "x.wav", scene(1.0, 16000), 16000), write(tmp_path / "x.flac", scene(1.0, 16000, seed=1), 16000)]
    code, out, err = run(*srcs, "-o", tmp_path / "out", "--stems", "speech", "--json")
    assert code == 0, err
    assert {r["input"]: r["outputs"]["speech"] for r in map(json.loads, out.splitlines())} == {
        srcs[0]: str(tmp_path / "out" / "x.wav" / "speech.wav"),
        srcs[1]: str(tmp_path / "out" / "x.flac" / "speech.wav"),
    }
    assert all(os.path.exists(p) for p in (tmp_path / "out" / "x.wav" / "speech.wav", tmp_path / "out" / "x.flac" / "speech.wav"))
    # alone, an input keeps the plain track folder
    opts = api.SeparateOptions(out=str(tmp_path / "out"), stems=["speech"])
    assert api.plan([srcs[0]], opts)[0].outputs["speech"] == str(tmp_path / "out" / "x" / "speech.wav")
    # a template of one's own: {input_ext} tells them apart, and leaving it out is refused with that advice
    opts = api.SeparateOptions(out=str(tmp_path / "out"), stems=["speech"], filename="{stem}/{track}_{input_ext}.{ext}")
    assert [j.outputs["speech"] for j in api.plan(srcs, opts)] == [
        str(tmp_path / "out" / "speech" / "x_wav.wav"), str(tmp_path / "out" / "speech" / "x_flac.wav")]
    opts = api.SeparateOptions(out=str(tmp_path / "out"), stems=["speech"], filename="{stem}/{track}.{ext}")
    with pytest.raises(CocktailError, match=r"add \{input_ext\} to --filename"):
        api.plan(srcs, opts)


def test_api_errors_are_typed(model_path, tmp_path):
    sep = api.load_separator(model_path)
    opts = api.SeparateOptions(out=str(tmp_path / "out"))
    with pytest.raises(AudioError):
        api.separate_file(sep, api.Job(str(tmp_path / "none.wav"), "none", {"speech": str(tmp_path / "x.wav")}), opts)
    with pytest.raises(CheckpointError):
        api.load_separator(tmp_path / "none.pt")


def test_help_shows_the_pipe_example():
    out = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "cocktail separate - --stems speech -o -" in out.stdout


def test_output_never_overwrites_the_input(tmp_path):
    src = write(tmp_path / "mix.wav", scene(1.0, 16000), 16000)
    opts = api.SeparateOptions(out=str(tmp_path), filename="{track}.{ext}", stems=["speech"])
    with pytest.raises(CocktailError, match="overwrite its input"):
        api.plan([src], opts)
