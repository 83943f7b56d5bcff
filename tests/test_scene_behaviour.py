"""Issue 27's behaviour of the shipped model: a sound keeps its stem whatever surrounds it, sounds
that resemble a class stay in "other", and a bark under speech goes to "dog".

The synthetic test always runs (sirens and cries drawn with seeds no training run draws); the
corpus tests run when ../shared/corpus (and data/corpus-extra) are there. The figures behind them
come from ``python scripts/scene_checks.py`` (models/README.md).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from cocktail_cli.checkpoint import MODEL_ENV, default_model_path
from cocktail_cli.classes import CLASSES
from cocktail_cli.separator import Separator
from cocktail_cli.shares import context_variants, stem_shares

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not (CORPUS / "manifest.csv").is_file(), reason="needs ../shared/corpus")
#: the largest change of a sound's share in its own stem that a new context may cause
MAX_CHANGE = 0.05

#: The shipped model's statistics are local (8 s around each frame, weighted by level), but its
#: weights were learnt on crops filled with sound: silence or quiet noise *within its receptive
#: field* still moves a synthetic cry by +0.06 (issue 27; with GroupNorm over the chunk, the
#: model before, every context test failed, by up to 1.00). Strict, so that the day a model that
#: passes is shipped, this test reports it (XPASS fails) and the mark goes.
context_fails_with_shipped_model = pytest.mark.xfail(
    strict=True, reason="a synthetic cry moves by +0.06 with noise before it (issue 27)")


def _checks():
    spec = importlib.util.spec_from_file_location("scene_checks", ROOT / "scripts" / "scene_checks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def separator() -> Separator:
    os.environ.pop(MODEL_ENV, None)
    return Separator.from_checkpoint(default_model_path())


def _worst_change(sep: Separator, cls: str, x: np.ndarray, sr: int) -> tuple[float, str]:
    c = CLASSES.index(cls)
    base = stem_shares(sep, x, sr)[c]
    changes = {k: stem_shares(sep, v, sr)[c] - base for k, v in context_variants(x, sr, np.random.default_rng(0)).items()}
    worst = max(changes, key=lambda k: abs(changes[k]))
    return float(changes[worst]), worst


def test_context_variants_are_the_sound_with_silence_or_noise_around_it():
    x = np.ones(1000, np.float32)
    variants = context_variants(x, 1000, np.random.default_rng(0), chunk_seconds=20.0)
    assert len(variants) == 15
    assert np.array_equal(variants["2 s silence before"][2000:], x) and not variants["2 s silence before"][:2000].any()
    noise = variants["10 s noise after"][1000:]
    assert 0 < np.abs(noise).max() < 0.01 and len(noise) == 10_000
    assert np.array_equal(variants["end of a 20 s chunk"][-1000:], x) and len(variants["end of a 20 s chunk"]) == 20_000


@pytest.mark.slow
@context_fails_with_shipped_model
def test_a_synthetic_siren_or_cry_keeps_its_stem_whatever_surrounds_it(separator):
    sr = separator.sample_rate
    for cls, name, x in _checks().synthetic_sounds(sr):
        change, where = _worst_change(separator, cls, x, sr)
        assert abs(change) <= MAX_CHANGE, f"{name}: its share in {cls} moves by {change:+.2f} with {where}"


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
def test_test_clips_keep_their_stem_whatever_surrounds_them(separator):
    sr = separator.sample_rate
    for cls, name, x in _checks().corpus_sounds(sr, per_class=1):
        change, where = _worst_change(separator, cls, x, sr)
        assert abs(change) <= MAX_CHANGE, f"{name}: its share in {cls} moves by {change:+.2f} with {where}"


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
def test_sounds_that_resemble_a_class_stay_in_other(separator):
    rows = _checks().hard_negatives(separator, separator.sample_rate, limit=30)
    assert len(rows) >= 5  # 8 look-alike test clips in the corpus alone, more with corpus-extra
    median = float(np.median([r["other"] for r in rows]))
    assert median >= 0.8, f"median share of {len(rows)} look-alike clips in other: {median:.2f}"


@pytest.mark.corpus
@pytest.mark.slow
@needs_corpus
def test_a_bark_under_speech_goes_to_dog(separator):
    shares = _checks().barks_under_speech(separator, separator.sample_rate, count=12)
    assert float(np.median(shares)) >= 0.6, f"median share of the bark in dog: {np.median(shares):.2f}"
