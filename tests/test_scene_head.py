"""scripts/scene_head.py on a synthetic corpus (no ../shared): scenes built by bench/scenes.py from
tone clips, what the head reads cached, and a head trained on the cache that finds the tones'
frames far better than the untrained head it replaces, in a checkpoint that loads and keeps the
separation's weights and mask temperature."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cocktail_cli.checkpoint import export, load_checkpoint, read_raw, save_checkpoint
from cocktail_cli.classes import CLASSES, TARGET_CLASSES
from cocktail_cli.nets import build
from cocktail_cli.separator import Separator
from cocktail_cli.stft import STFTConfig
from tones import BANDS

ROOT = Path(__file__).resolve().parents[1]
SR = 8000


def _script():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("scene_head", ROOT / "scripts" / "scene_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus(root: Path) -> Path:
    """Train-split clips: each target class a tone in its band that sounds for part of the clip;
    "other" quiet noise of a background category."""
    rng = np.random.default_rng(0)
    rows = []
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for k in range(4):
            n = int(3.0 * SR)
            if cls == "other":
                x = 0.05 * rng.standard_normal(n)
            else:
                t = np.arange(n) / SR
                lo, hi = BANDS[cls]
                start, stop = rng.uniform(0.2, 0.8), rng.uniform(1.8, 2.8)
                x = np.where((t >= start) & (t < stop), 0.5 * np.sin(2 * np.pi * rng.uniform(lo + 50, hi - 50) * t), 0.0)
            path = root / cls / f"clip_{k}.wav"
            sf.write(str(path), x.astype(np.float32), SR, subtype="PCM_16")
            rows.append({"path": f"{cls}/clip_{k}.wav", "class": cls, "split": "train",
                         "category": "rain" if cls == "other" else cls})
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "class", "split", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _band_model_with_head(path: Path) -> Path:
    """The band model of conftest (each bin owned by one class) with an untrained context head,
    exported with a mask temperature."""
    stft = STFTConfig(sample_rate=SR, n_fft=256, hop=64)
    model = build("tcn", n_bins=stft.n_bins, channels=8, hidden=16, depth=1, repeats=1, activity=True, activity_hidden=8)
    freqs = np.arange(stft.n_bins) * SR / stft.n_fft
    owner = np.full(stft.n_bins, CLASSES.index("other"))
    for cls, (lo, hi) in BANDS.items():
        owner[(freqs >= lo) & (freqs < hi)] = CLASSES.index(cls)
    bias = np.zeros((len(CLASSES), stft.n_bins), np.float32)
    bias[owner, np.arange(stft.n_bins)] = 30.0
    with torch.no_grad():
        model.decode.weight.zero_()
        model.decode.bias.copy_(torch.from_numpy(bias.reshape(-1)))
    save_checkpoint(path.with_suffix(".raw.pt"), model.eval(), "tcn", stft)
    export(path.with_suffix(".raw.pt"), path, inference={"mask_temperature": 1.2})
    return path


def _frame_f1(model: str, mixture: np.ndarray, labels: np.ndarray) -> float:
    sep = Separator.from_checkpoint(model, precision="fp32")
    with torch.inference_mode():
        prob = sep.frame_activity(torch.from_numpy(mixture)[None])["prob"][0].numpy()
    f1 = []
    for cls in TARGET_CLASSES:
        c = CLASSES.index(cls)
        hit, truth = prob[c] > 0.5, labels[c].astype(bool)
        tp = (hit & truth).sum()
        f1.append(2 * tp / max(hit.sum() + truth.sum(), 1))
    return float(np.mean(f1))


def test_a_head_trained_on_cached_scenes_finds_the_events(tmp_path):
    scene_head = _script()
    corpus = _corpus(tmp_path / "corpus")
    model = _band_model_with_head(tmp_path / "band.pt")
    scene_head.main(["cache", "--model", str(model), "--scenes", "6", "--corpus", str(corpus), "-o", str(tmp_path / "cache")])
    shard = torch.load(tmp_path / "cache" / "shard_000.pt")
    assert shard["z"].shape[:2] == (6, 8 + len(CLASSES)) and shard["y"].shape[:2] == (6, len(CLASSES))
    assert shard["y"][:, CLASSES.index("other")].all() and shard["y"][:, :4].any()
    out = tmp_path / "head.pt"
    scene_head.main(["train", "--model", str(model), "--cache", str(tmp_path / "cache"), "--hidden", "8", "--steps", "2000",
                     "--cpu-minutes", "5", "--crop-seconds", "4", "--batch-size", "4", "--lr", "3e-3", "-o", str(out),
                     "--arch-arg", "activity_dilations=[1, 4, 16]"])
    loaded = load_checkpoint(out)
    assert loaded.model.config["activity_dilations"] == [1, 4, 16]
    raw, old = read_raw(out), read_raw(model)
    assert raw["inference"] == {"mask_temperature": 1.2}  # the temperature stays
    from cocktail_cli.precision import resolve

    assert raw["training"]["scene_head"]["precision"] == resolve("auto")  # bf16 only where the CPU has it
    for key, value in old["state_dict"].items():  # the separation is the input model's
        if not key.startswith("activity_head."):
            assert torch.equal(raw["state_dict"][key], value)
    # a scene the cache never held (another seed), with its reference frames
    scenes = scene_head.scenes_bench
    pools = scenes.corpus_clips("train", [corpus])
    scene = next(scenes.iter_scenes(pools, 1, seed=99, sr=SR, seconds=30.0))
    n_frames = len(scene.mixture) // 64 + 1
    labels = scene_head.frame_labels(scene.events, n_frames, 64, SR)
    before, after = _frame_f1(str(model), scene.mixture, labels), _frame_f1(str(out), scene.mixture, labels)
    assert after > 0.7 and after > before + 0.3, (before, after)  # seen: 0.18 -> 0.78


def test_frame_labels_follow_the_reference_events():
    scene_head = _script()
    labels = scene_head.frame_labels([("siren", 1.0, 2.0), ("dog", 0.5, 0.6)], 200, 80, 8000)  # 10 ms frames
    siren, dog = labels[CLASSES.index("siren")], labels[CLASSES.index("dog")]
    assert siren.sum() == 100 and siren[100] and not siren[99] and siren[199] and not labels[0].any()
    assert dog.sum() == 10 and labels[CLASSES.index("other")].all()
