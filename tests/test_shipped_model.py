"""The model shipped in models/: present, small, self-describing, and (with the corpus) not broken.

The corpus tests assert floors far below the model card's figures: they catch a broken or
mis-exported model (a random net scores about 0 dB SI-SDRi and spreads a clip over all stems),
not small regressions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.checkpoint import MODEL_ENV, default_model_path, read_raw
from cocktail_cli.classes import CLASSES, TARGET_CLASSES
from cocktail_cli.metrics import si_sdr
from cocktail_cli.nets import DEFAULT_ARCH
from cocktail_cli.separator import Separator
from cocktail_cli.sources import scan_sources

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not (CORPUS / "manifest.csv").is_file(), reason="needs ../shared/corpus")


@pytest.fixture(scope="module")
def shipped() -> Path:
    os.environ.pop(MODEL_ENV, None)
    return default_model_path()


@pytest.fixture(scope="module")
def separator(shipped) -> Separator:
    return Separator.from_checkpoint(shipped)


def test_the_default_model_ships_with_the_package(shipped):
    assert shipped.is_file(), f"{shipped} is missing: the package must carry its default model"
    assert shipped.stat().st_size < 25 * 2**20
    ckpt = read_raw(shipped)
    assert ckpt["arch"] == DEFAULT_ARCH and ckpt["classes"] == list(CLASSES)
    assert "resume" not in ckpt, "ship an exported checkpoint (no optimizer state)"
    assert ckpt["training"].get("steps", 0) > 0, "the shipped model must be trained"


def test_the_default_model_separates_and_keeps_the_mixture(separator):
    rng = np.random.default_rng(0)
    sr = 44100
    t = np.arange(3 * sr) / sr
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * rng.standard_normal(t.size)]).astype(np.float32)
    stems = separator.separate(audio, sr)
    assert stems.shape == (5, 2, 3 * sr)
    assert np.abs(stems.sum(0) - audio).max() < 1e-4


# -- with the corpus: real recordings of the test split ------------------------------------------


def _test_clips() -> dict[str, list[Path]]:
    """The test split's clips of at least 2 s, read the way synth reads the corpus."""
    found = scan_sources(CORPUS, "test").clips
    return {c: [Path(clip.path) for clip in found.get(c, []) if sf.info(clip.path).duration >= 2.0] for c in CLASSES}


def _excerpt(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = sf.read(str(path), dtype="float32")
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    start = rng.integers(0, len(x) - n + 1)
    x = x[start : start + n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.05  # -26 dBFS RMS


#: Classes the interim model is known to get wrong alone (models/README.md, "Known limitations"):
#: clean siren clips of the test split go partly to "other" (median share in the siren stem 0.26
#: for the phase-6 model, about 0.6 for the phase-7 one; 26 clips from three recordings).
KNOWN_WEAK = {"siren"}


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
def test_a_clean_clip_comes_out_mostly_in_its_own_stem(separator):
    """Listen-style check: one real recording alone goes (mostly) to its class's stem."""
    rng = np.random.default_rng(1)
    clips = _test_clips()
    sr = 22050
    medians = {}
    for cls in CLASSES:
        shares = []
        for path in rng.choice(clips[cls], size=min(8, len(clips[cls])), replace=False):
            x = _excerpt(path, 3 * sr, rng)
            stems = separator.separate(x[None], sr)[:, 0]
            energy = (stems.astype(np.float64) ** 2).sum(-1)
            shares.append(energy[CLASSES.index(cls)] / energy.sum())
        medians[cls] = float(np.median(shares))
    # a random net gives about 0.2 everywhere; the shipped model's figures are in models/README.md
    for cls, share in medians.items():
        assert share > (0.05 if cls in KNOWN_WEAK else 0.35), f"{cls}: median energy share in its own stem {share:.2f}"
    assert np.mean(list(medians.values())) > 0.5, medians


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
def test_test_split_mixtures_separate_above_a_floor(separator):
    rng = np.random.default_rng(2)
    clips = _test_clips()
    sr, n = 22050, 3 * 22050
    gains = []
    for _ in range(12):
        stems = np.zeros((5, n), np.float32)
        active = [c for c in TARGET_CLASSES if rng.random() < 0.7] or [TARGET_CLASSES[rng.integers(4)]]
        for cls in active:
            stems[CLASSES.index(cls)] = _excerpt(rng.choice(clips[cls]), n, rng) * 10 ** (rng.uniform(-5, 5) / 20)
        stems[-1] = sum(_excerpt(rng.choice(clips["other"]), n, rng) for _ in range(2))
        mix = stems.sum(0)
        est = separator.separate(mix[None], sr)[:, 0]
        for cls in active:
            i = CLASSES.index(cls)
            gains.append(si_sdr(est[i], stems[i]) - si_sdr(mix, stems[i]))
    # a broken model gives about 0 dB or below
    assert np.mean(gains) > 2.0, f"mean SI-SDRi {np.mean(gains):.2f} dB over {len(gains)} active stems"
