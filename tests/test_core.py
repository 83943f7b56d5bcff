"""The shared core: audio I/O, resampling, the STFT config, checkpoints, the Separator, the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cocktail_cli import CLASSES
from cocktail_cli.audio import peak_scale, read_audio, resample, write_audio, check_writable_dir
from cocktail_cli.checkpoint import export, load_checkpoint, save_checkpoint
from cocktail_cli.classes import parse_stems
from cocktail_cli.errors import AudioError, CheckpointError
from cocktail_cli.nets import build
from cocktail_cli.separator import Separator
from cocktail_cli.stft import STFTConfig


def tone(freq: float, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x * (0.5 + 0.5 * c) for c in range(channels)])


def test_class_order_is_fixed():
    assert CLASSES == ("baby_cry", "siren", "dog", "speech", "other")
    assert parse_stems("speech,dog") == ["dog", "speech"]
    with pytest.raises(ValueError, match="cat"):
        parse_stems("cat")


@pytest.mark.parametrize("fmt,subtype,bits", [("wav", "PCM_16", 16), ("wav", "PCM_24", 24), ("wav", "FLOAT", 32), ("flac", "PCM_16", 16), ("flac", "PCM_24", 24)])
def test_write_then_read_round_trip(tmp_path, fmt, subtype, bits):
    x = tone(440, 0.5, 16000, channels=2)
    path = tmp_path / f"a.{fmt}"
    write_audio(path, x, 16000, bits=bits)
    assert sf.info(str(path)).subtype == subtype
    y, sr = read_audio(path)
    assert sr == 16000 and y.shape == x.shape and y.dtype == np.float32
    assert np.abs(x - y).max() < 2.0 ** -(bits - 1) * 2 if bits < 32 else np.array_equal(x, y)
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


def _chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    chunks, pos = {}, 12
    while pos < len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunks[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_float_wav_header_is_one_every_reader_accepts(tmp_path, channels):
    """32-bit float WAV: WAVE_FORMAT_IEEE_FLOAT with the cbSize field (18-byte fmt) and a fact
    chunk, which sox reads without "header missing extended part of fmt chunk"."""
    import librosa
    import scipy.io.wavfile

    from cocktail_cli.audio import FloatWav

    x = tone(440, 0.5, 22050, channels=channels)
    path = tmp_path / "f.wav"
    write_audio(path, x, 22050, bits=32)
    blockwise = tmp_path / "blocks.wav"
    with FloatWav(str(blockwise), 22050, channels) as out:
        for i in range(0, x.shape[1], 1000):
            out.write(x[:, i : i + 1000].T)
    assert blockwise.read_bytes() == path.read_bytes()
    chunks = _chunks(path.read_bytes())
    fmt = chunks[b"fmt "]
    assert len(fmt) == 18
    tag, ch, rate, byte_rate, align, bits, cb_size = np.frombuffer(fmt[:4], "<u2").tolist() + np.frombuffer(
        fmt[4:12], "<u4").tolist() + np.frombuffer(fmt[12:18], "<u2").tolist()
    assert (tag, ch, rate, byte_rate, align, bits, cb_size) == (3, channels, 22050, 22050 * 4 * channels, 4 * channels, 32, 0)
    assert int.from_bytes(chunks[b"fact"], "little") == x.shape[1]
    assert np.array_equal(np.frombuffer(chunks[b"data"], "<f4").reshape(-1, channels).T, x)
    # every reader gets the samples back exactly
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.frames) == ("WAV", "FLOAT", x.shape[1])
    assert np.array_equal(sf.read(str(path), dtype="float32", always_2d=True)[0].T, x)
    rate, data = scipy.io.wavfile.read(str(path))
    assert rate == 22050 and data.dtype == np.float32 and np.array_equal(data.reshape(-1, channels).T, x)
    y, rate = librosa.load(str(path), sr=None, mono=False)
    assert rate == 22050 and np.array_equal(np.atleast_2d(y), x)
    sox = shutil.which("sox")
    if sox:  # not needed for the test to pass; checked where sox is installed
        out = subprocess.run([sox, "-V2", str(path), "-n", "stat"], capture_output=True, text=True)
        assert out.returncode == 0 and "WARN" not in out.stderr and "missing" not in out.stderr, out.stderr


def test_read_any_bit_depth_and_channel_count(tmp_path):
    x = tone(300, 0.25, 8000, channels=3)
    sf.write(str(tmp_path / "u8.wav"), x.T, 8000, subtype="PCM_U8")
    y, sr = read_audio(tmp_path / "u8.wav")
    assert y.shape == (3, 2000) and sr == 8000
    mono, _ = read_audio(tmp_path / "u8.wav", mono=True)
    assert mono.shape == (1, 2000)
    assert np.allclose(mono[0], y.mean(0))


def test_read_resamples_with_soxr(tmp_path):
    x = tone(1000, 1.0, 44100)
    write_audio(tmp_path / "a.wav", x, 44100, bits=32)
    y, sr = read_audio(tmp_path / "a.wav", sample_rate=22050)
    assert sr == 22050 and abs(y.shape[1] - 22050) <= 1
    spectrum = np.abs(np.fft.rfft(y[0]))
    assert abs(np.argmax(spectrum) * 22050 / y.shape[1] - 1000) < 2
    assert resample(x, 44100, 44100) is x


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not audio at all" * 20), "cannot decode"),
        (lambda p: p.mkdir(), "folder"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=expected) as info:
        read_audio(path)
    assert str(path) in str(info.value)


def test_nan_and_zero_length_inputs_are_refused(tmp_path):
    x = tone(440, 0.1, 8000)
    x[0, 10] = np.nan
    sf.write(str(tmp_path / "nan.wav"), x.T, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        read_audio(tmp_path / "nan.wav")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 1), np.float32), 8000)
    with pytest.raises(AudioError, match="no audio samples"):
        read_audio(tmp_path / "zero.wav")


def test_unwritable_output_is_detected(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(AudioError, match="not a folder"):
        check_writable_dir(blocker)
    with pytest.raises(AudioError, match="not writable"):
        check_writable_dir(blocker / "sub")
    with pytest.raises(AudioError, match="cannot write"):
        write_audio(blocker / "sub" / "a.wav", tone(440, 0.1, 8000), 8000)


def test_peak_scale_keeps_stems_below_full_scale():
    stems = np.array([[0.5, -1.6], [0.2, 0.1]])
    g = peak_scale(stems)
    assert g < 1 and np.abs(stems * g).max() <= 0.999 + 1e-9
    assert peak_scale(stems * 0.1) == 1.0


@pytest.mark.parametrize("cfg", [STFTConfig(), STFTConfig(n_fft=512, hop=128), STFTConfig(sample_rate=44100, n_fft=2048, hop=512, window="hamming")])
def test_stft_reconstructs_within_1e5(cfg):
    torch.manual_seed(0)
    wave = torch.randn(2, 3, cfg.sample_rate // 2) * 0.3
    spec = cfg.stft(wave)
    assert spec.shape == (2, 3, cfg.n_bins, cfg.n_frames(wave.shape[-1]))
    back = cfg.istft(spec, wave.shape[-1])
    assert (back - wave).abs().max() < 1e-5
    assert STFTConfig.from_dict(cfg.to_dict()) == cfg


def small_tcn():
    return build("tcn", n_bins=257, channels=16, hidden=32, depth=2, repeats=1)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = small_tcn()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, "tcn", STFTConfig(n_fft=512, hop=128), training={"steps": 3}, resume={"step": 3})
    return path, model


def test_checkpoint_round_trip_rebuilds_the_model(checkpoint, tmp_path):
    path, model = checkpoint
    loaded = load_checkpoint(path)
    assert loaded.arch == "tcn" and loaded.stft.n_fft == 512 and loaded.training == {"steps": 3}
    x = torch.rand(1, 257, 40)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model.eval()(x))
    shipped = export(path, tmp_path / "shipped.pt", half=True)
    again = load_checkpoint(shipped)
    assert again.resume is None
    with torch.no_grad():
        assert torch.allclose(again.model(x), loaded.model(x), atol=1e-2)


def test_average_of_checkpoints_is_the_weighted_mean_of_their_weights(checkpoint, tmp_path):
    from cocktail_cli.checkpoint import average

    path_a, model_a = checkpoint
    torch.manual_seed(1)
    model_b = small_tcn()
    path_b = tmp_path / "b.pt"
    save_checkpoint(path_b, model_b, "tcn", STFTConfig(n_fft=512, hop=128), training={"steps": 5}, resume={"step": 5})
    out = average({path_a: 1.0, path_b: 3.0}, tmp_path / "mean.pt")  # weights normalised: 0.25 / 0.75
    mean = load_checkpoint(out)
    a, b = model_a.state_dict(), model_b.state_dict()
    for key, value in mean.model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.25 * a[key] + 0.75 * b[key], atol=1e-6), key
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the two really differ
    assert mean.resume is None and mean.inference == {}
    assert [(s["checkpoint"], s["weight"], s["steps"]) for s in mean.training["averaged_from"]] == [("model.pt", 0.25, 3), ("b.pt", 0.75, 5)]
    # the mean of a network with itself is that network
    same = load_checkpoint(average({path_a: 0.5, tmp_path / "mean.pt": 0.0}, tmp_path / "same.pt"))
    x = torch.rand(1, 257, 30)
    with torch.no_grad():
        assert torch.allclose(same.model(x), model_a.eval()(x), atol=1e-6)
    # another network cannot be averaged in; the error names the file and what differs
    other = tmp_path / "other.pt"
    save_checkpoint(other, build("tcn", n_bins=257, channels=8, hidden=32, depth=2, repeats=1), "tcn", STFTConfig(n_fft=512, hop=128))
    with pytest.raises(CheckpointError, match="arch_args differs") as info:
        average({path_a: 1, other: 1}, tmp_path / "never.pt")
    assert str(other) in str(info.value) and not (tmp_path / "never.pt").exists()
    with pytest.raises(ValueError, match="weights"):
        average({path_a: -1, path_b: 1}, tmp_path / "never.pt")
    # the script: one line naming the file, exit 1, nothing written
    script = Path(__file__).resolve().parents[1] / "scripts" / "average_checkpoints.py"
    run = lambda *a: subprocess.run([sys.executable, script, *map(str, a)], capture_output=True, text=True)  # noqa: E731
    bad = run(f"{path_a}=0.5", f"{other}=0.5", "-o", tmp_path / "never.pt")
    assert bad.returncode == 1 and str(other) in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert run(f"{path_a}=half", "-o", tmp_path / "never.pt").returncode != 0 and not (tmp_path / "never.pt").exists()
    good = run(f"{path_a}=1", f"{path_b}=3", "-o", tmp_path / "cli.pt")
    assert good.returncode == 0, good.stderr
    assert torch.equal(load_checkpoint(tmp_path / "cli.pt").model.state_dict()["encode.weight"], mean.model.state_dict()["encode.weight"])
    # constructor arguments that keep the weights (the shipped model's windowed norms) are set on
    # the result; one that does not fit is refused in one line and nothing is written
    windowed = run(f"{path_a}=1", f"{path_b}=3", "-o", tmp_path / "win.pt", "--arch-arg", "block_norm=window",
                   "--arch-arg", "norm_window=9", "--arch-arg", "norm_weighting=amplitude")
    assert windowed.returncode == 0, windowed.stderr
    win = load_checkpoint(tmp_path / "win.pt")
    assert win.model.config["block_norm"] == "window" and win.model.config["norm_window"] == 9
    assert win.training["arch_args_set"] == {"block_norm": "window", "norm_window": 9, "norm_weighting": "amplitude"}
    assert torch.equal(win.model.state_dict()["encode.weight"], mean.model.state_dict()["encode.weight"])
    with torch.no_grad():  # the same weights, other statistics: another function
        assert not torch.allclose(win.model(x), mean.model(x), atol=1e-4)
    misfit = run(f"{path_a}=1", "-o", tmp_path / "never.pt", "--arch-arg", "channels=9")
    assert misfit.returncode == 1 and len(misfit.stderr.strip().splitlines()) == 1 and not (tmp_path / "never.pt").exists()


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "damaged"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "damaged"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: torch.save({"weights": 1}, p), "not a cocktail checkpoint"),
    ],
)
def test_damaged_checkpoints_are_refused(checkpoint, damage, expected):
    path, _ = checkpoint
    damage(path)
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_incompatible_checkpoint_is_refused(checkpoint):
    path, _ = checkpoint
    ckpt = torch.load(path, weights_only=True)
    ckpt["classes"] = ["a", "b"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="incompatible"):
        load_checkpoint(path)
    ckpt["classes"] = list(CLASSES)
    ckpt["state_dict"].pop(next(iter(ckpt["state_dict"])))
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="weights"):
        load_checkpoint(path)


def test_mask_temperature_is_stored_with_the_model_and_softens_its_masks(checkpoint, tmp_path):
    path, _ = checkpoint
    calibrated = export(path, tmp_path / "calibrated.pt", inference={"mask_temperature": 2.0})
    plain, soft = Separator.from_checkpoint(path), Separator.from_checkpoint(calibrated)
    assert plain.mask_temperature == 1.0 and soft.mask_temperature == 2.0
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((1, 22050)) * 0.1).astype(np.float32)
    a, b = plain.separate(audio, 22050), soft.separate(audio, 22050)
    # still a partition of the input, but a different one: softer masks spread energy more evenly
    assert np.abs(b.sum(0) - audio).max() < 1e-4 and np.abs(a - b).max() > 1e-3
    share = lambda stems: (stems**2).sum(axis=(1, 2)) / (stems**2).sum()
    assert share(b).max() < share(a).max() and share(b).min() > share(a).min()
    # for softmax masks it is the softmax of the logits divided by the temperature
    from cocktail_cli.separator import soften

    logits = torch.randn(2, 5, 9, 4)
    assert torch.allclose(soften(torch.softmax(logits, 1), 2.0), torch.softmax(logits / 2.0, 1), atol=1e-6)
    # ... which the tcn computes itself (no power of every mask): the same masks as soften's
    mag = torch.from_numpy(np.abs(rng.standard_normal((1, plain.stft.n_bins, 40))).astype(np.float32))
    with torch.inference_mode():
        assert getattr(soft.model, "softmax_masks", False)
        assert torch.allclose(soft.masks(mag), soften(plain.masks(mag), 2.0), atol=1e-5)
    # a setting the loader cannot use is a damaged checkpoint, and export refuses to write one
    for bad in (-1.0, "hot", float("nan")):
        ckpt = torch.load(calibrated, weights_only=True)
        ckpt["inference"] = {"mask_temperature": bad}
        torch.save(ckpt, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="inference settings") as info:
            load_checkpoint(tmp_path / "bad.pt")
        assert str(tmp_path / "bad.pt") in str(info.value)
    with pytest.raises(CheckpointError, match="inference settings"):
        export(path, tmp_path / "never.pt", inference={"mask_temperature": 0.0})
    assert not (tmp_path / "never.pt").exists()


@pytest.mark.parametrize("arch", ["tcn", "paper"])
def test_separator_stems_sum_to_input_across_chunks(arch):
    torch.manual_seed(0)
    stft = STFTConfig(sample_rate=8000, n_fft=256, hop=64)
    if arch == "tcn":
        model = build("tcn", n_bins=129, channels=16, hidden=32, depth=2, repeats=1)
    else:  # fixed-length input: the Separator pads the last chunk
        model = build("paper", n_bins=129, frames=160)
    sep = Separator(model.eval(), stft, chunk_seconds=1.0, overlap_seconds=0.25)
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((2, 8000 * 5 + 123)) * 0.2).astype(np.float32)
    stems = sep.separate(audio, 16000)
    assert stems.shape == (len(CLASSES), 2, audio.shape[1])
    assert np.abs(stems.sum(0) - audio).max() < 1e-4


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "cocktail_cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("cocktail ")
    out = subprocess.run([sys.executable, "-m", "cocktail_cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "baby_cry" in out.stdout


def test_residual_goes_to_stems_by_energy_share():
    """Content the model cannot see (above its band) follows the active stems; silent stays silent."""
    from cocktail_cli.separator import _project_np

    sr = 44100
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    stems = np.zeros((5, 1, sr), np.float32)
    stems[1, 0] = low  # siren active in the first half only
    stems[1, 0, sr // 2 :] = 0
    stems[3, 0, sr // 2 :] = low[sr // 2 :]  # speech in the second half
    high = 0.1 * np.sin(2 * np.pi * 15000 * t).astype(np.float32)
    mixture = stems.sum(0) + high
    out = _project_np(stems, mixture)
    assert np.abs(out.sum(0) - mixture).max() < 1e-6
    for silent in (0, 2, 4):
        assert np.abs(out[silent]).max() == 0.0
    # the high band goes with whichever stem is sounding
    assert np.abs(out[1, 0, 1000 : sr // 2 - 1000] - stems[1, 0, 1000 : sr // 2 - 1000]).max() > 0.09
    assert np.abs(out[3, 0, 1000 : sr // 2 - 1000]).max() == 0.0
