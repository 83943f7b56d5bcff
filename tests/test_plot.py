"""Pictures (``--plot``): PNG files of the expected size, spectrograms in bounded columns whatever
the length, sounds drawn where they are, and the commands' files and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image  # matplotlib's dependency (a runtime one)

from cocktail_cli.checkpoint import save_checkpoint  # noqa: E402
from cocktail_cli.classes import CLASS_COLOURS, CLASSES  # noqa: E402
from cocktail_cli.nets import build  # noqa: E402
from cocktail_cli.plot import SpectrogramSketch, plot_scores, plot_separation  # noqa: E402
from cocktail_cli.stft import STFTConfig  # noqa: E402

SR = 16000


def tone_scene(seconds: float, sr: int = SR, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stems (C, samples): a 1 kHz siren-like tone in 2-4 s, noise in "other" throughout."""
    n = int(seconds * sr)
    rng = np.random.default_rng(seed)
    stems = np.zeros((len(CLASSES), n), np.float32)
    stems[-1] = 0.01 * rng.standard_normal(n)
    t = np.arange(2 * sr) / sr
    stems[1, 2 * sr:4 * sr] = 0.3 * np.sin(2 * np.pi * 1000 * t)
    return stems.sum(0), stems


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.verify()
        return Image.open(path).size


def test_plot_separation_writes_a_png_with_a_panel_per_stem_and_an_events_lane(tmp_path):
    mix, stems = tone_scene(6.0)
    events = [SimpleNamespace(cls="siren", start=2.0, end=4.0, confidence=0.9), {"class": "dog", "start": 1, "end": 1.5}]
    plot_separation(tmp_path / "a.png", mix, SR, stems, events, title="t")
    plot_separation(tmp_path / "b.png", mix, SR, stems)  # no events looked for: no lane
    plot_separation(tmp_path / "c.png", np.stack([mix, mix]), SR)  # stereo mixture alone
    (wa, ha), (wb, hb), (wc, hc) = png_size(tmp_path / "a.png"), png_size(tmp_path / "b.png"), png_size(tmp_path / "c.png")
    assert wa == wb == wc == 990  # 11 in at 90 dpi
    assert ha > hb > hc  # the lane, then five stem panels, add height
    assert hb - hc == 5 * 90  # 1 in a stem panel
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_the_event_bars_carry_the_class_colour(tmp_path):
    mix, stems = tone_scene(6.0)
    plot_separation(tmp_path / "a.png", mix, SR, stems, [SimpleNamespace(cls="dog", start=1.0, end=5.0, confidence=1.0)])
    rgb = np.asarray(Image.open(tmp_path / "a.png").convert("RGB")).reshape(-1, 3).astype(int)
    dog = np.array([int(CLASS_COLOURS["dog"][i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(rgb - dog).sum(1) <= 12).sum() > 2000  # a bar of 4 s: thousands of pixels of it


def test_spectrogram_columns_are_bounded_and_in_time_whatever_the_length():
    sr, seconds = 8000, 1200.0  # 20 minutes, fed in blocks as separate streams them
    sketch = SpectrogramSketch(sr, max_columns=100)
    n = int(seconds * sr)
    rng = np.random.default_rng(0)
    block = 1 << 16
    for start in range(0, n, block):
        m = min(block, n - start)
        x = 1e-3 * rng.standard_normal(m).astype(np.float32)
        t = (start + np.arange(m)) / sr
        x[(t >= 600) & (t < 720)] += 0.5 * np.sin(2 * np.pi * 1000 * t[(t >= 600) & (t < 720)]).astype(np.float32)
        sketch.feed(x)
    power, column_s = sketch.columns()
    assert 100 <= power.shape[1] <= 202 and power.shape[0] == 96
    assert power.shape[1] * column_s == pytest.approx(seconds, abs=column_s)
    loud = np.nansum(power, 0) > 100 * np.nanmedian(np.nansum(power, 0))
    times = (np.flatnonzero(loud) + 0.5) * column_s
    assert times.min() == pytest.approx(600, abs=2 * column_s) and times.max() == pytest.approx(720, abs=2 * column_s)
    assert sketch.stride > sketch.n_fft  # thinned: bounded work per hour


def test_plot_scores_draws_a_table_with_missing_values(tmp_path):
    def block(v):
        row = {"si_sdri_mean": v, "sdr_mean": v - 3}
        return {"classes": {c: dict(row) for c in CLASSES}, "overall": dict(row)}

    table = {"mixtures": 3, "systems": {"mixture": block(0.0), "model": block(5.0), "oracle_irm1": block(12.0)}}
    table["systems"]["model"]["classes"]["dog"] = {"si_sdri_mean": None, "sdr_mean": None}
    plot_scores(tmp_path / "s.png", table)
    w, h = png_size(tmp_path / "s.png")
    assert (w, h) == (990, 378)


# -- the commands -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    stft = STFTConfig(sample_rate=8000, n_fft=256, hop=64)
    path = tmp_path_factory.mktemp("model") / "small.pt"
    save_checkpoint(path, build("tcn", n_bins=stft.n_bins, channels=16, hidden=32, depth=2, repeats=1), "tcn", stft)
    return str(path)


@pytest.fixture
def separate(model_path, monkeypatch, cli):
    monkeypatch.setenv("COCKTAIL_MODEL", model_path)
    return lambda *args: cli("separate", *map(str, args))


def test_separate_plot_writes_one_png_beside_each_inputs_stems(separate, tmp_path):
    mix, _ = tone_scene(5.0)
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", mix, SR)
    sf.write(tmp_path / "in" / "b.wav", mix[: 3 * SR], SR)
    code, out, err = separate(tmp_path / "in", "-o", tmp_path / "in" / "out", "--plot", "--json", "--jobs", "2")  # threads draw
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert {Path(x["plot"]).name for x in lines} == {"a.png", "b.png"}
    for x in lines:
        assert Path(x["plot"]).parent == Path(x["outputs"]["speech"]).parent
        assert png_size(x["plot"])[0] == 990
    code, out, err = separate(tmp_path / "in", "-o", tmp_path / "in" / "out", "--plot", "--skip-existing", "--json")
    assert code == 0 and all(json.loads(x)["skipped"] for x in out.splitlines())  # the PNGs are no inputs
    (tmp_path / "in" / "out" / "a" / "a.png").unlink()  # a missing picture is work to do
    code, out, err = separate(tmp_path / "in", "-o", tmp_path / "in" / "out", "--plot", "--skip-existing", "--json")
    skipped = {Path(x["input"]).name: x.get("skipped", False) for x in map(json.loads, out.splitlines())}
    assert skipped == {"a.wav": False, "b.wav": True}
    assert png_size(tmp_path / "in" / "out" / "a" / "a.png")[0] == 990


def test_separate_plot_beside_one_stem_file_and_refused_for_standard_output(separate, tmp_path):
    mix, _ = tone_scene(4.0)
    sf.write(tmp_path / "a.wav", mix, SR)
    code, out, err = separate(tmp_path / "a.wav", "-o", tmp_path / "speech.wav", "--stems", "speech", "--plot")
    assert code == 0, err
    assert (tmp_path / "speech.png").is_file()
    code, out, err = separate(tmp_path / "a.wav", "-o", "-", "--stems", "speech", "--plot")
    assert code != 0 and "--plot" in err and len(err.strip().splitlines()) == 1 and out == ""


def test_separate_plot_of_a_bad_input_leaves_nothing(separate, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    code, out, err = separate(tmp_path / "bad.wav", "-o", tmp_path / "out", "--plot")
    assert code != 0 and "bad.wav" in err
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_eval_plot_scores_the_oracle_too(cli, tmp_path):
    from test_eval import estimates_of, stem_signals, write_stems

    rng = np.random.default_rng(0)
    refs = stem_signals(rng, [True, True, False, True, True])
    write_stems(tmp_path / "ref" / "m1", refs)
    write_stems(tmp_path / "est" / "m1", estimates_of(refs, rng), with_mix=False)
    code, out, err = cli("eval", "--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"),
                         "--plot", str(tmp_path / "scores.png"), "--json")
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert set(summary["systems"]) == {"mixture", "estimate", "oracle_irm1"}
    assert png_size(tmp_path / "scores.png") == (990, 378)
    code, out, err = cli("eval", "--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"),
                         "--plot", str(tmp_path / "scores.jpg"))
    assert code != 0 and ".png" in err and not (tmp_path / "scores.jpg").exists()
