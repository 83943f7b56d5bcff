"""bench/scenes.py and bench/events.py on synthetic clips (no corpus): the ground truth is where
the builder put the sound, and sed_eval scores a perfect system 1.0 and a wrong one less."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from cocktail_cli.classes import CLASSES, TARGET_CLASSES

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


scenes = _load("scenes")
SR = 8000


def bursts(spans, seconds: float, sr: int = SR, freq: float = 700.0, floor: float = 0.0, seed: int = 0) -> np.ndarray:
    """A clip of ``seconds``: a tone in each ``(start, end)``, (optionally) faint noise elsewhere."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = floor * rng.standard_normal(t.size)
    for s, e in spans:
        on = (t >= s) & (t < e)
        x[on] += 0.5 * np.sin(2 * np.pi * freq * t[on])
    return x.astype(np.float32)


def test_clip_events_merge_short_gaps_and_drop_short_pieces():
    # 0.30-1.00 and 1.20-1.60 (gap 0.2 s: one event); 2.20-2.25 (50 ms, 0.6 s from both: dropped); 3.0-3.5
    x = bursts([(0.3, 1.0), (1.2, 1.6), (2.2, 2.25), (3.0, 3.5)], 4.0, floor=1e-4)
    got = scenes.clip_events(x, SR)
    assert len(got) == 2
    (s1, e1), (s2, e2) = got
    assert abs(s1 - 0.3) <= 0.05 and abs(e1 - 1.6) <= 0.05
    assert abs(s2 - 3.0) <= 0.05 and abs(e2 - 3.5) <= 0.05


def test_clip_events_ignore_what_is_more_than_20_db_down():
    x = bursts([(0.5, 1.5)], 3.0)
    x[int(2.0 * SR):int(2.8 * SR)] += 0.5 * 10 ** (-30 / 20) * np.sin(np.arange(int(0.8 * SR)))  # 30 dB down
    assert len(scenes.clip_events(x, SR)) == 1


class FakeClip:
    def __init__(self, cls: str, spans, seconds: float, category: str = "", k: int = 0):
        self.cls, self.category, self.path = cls, category, f"{cls}/{k}.wav"
        self.signal = bursts(spans, seconds, freq=300 + 200 * CLASSES.index(cls) + 37 * k, seed=k) if spans else (
            0.1 * np.random.default_rng(k).standard_normal(int(seconds * SR)).astype(np.float32))


def fake_pools():
    pools = {c: [FakeClip(c, [(0.2, 0.9), (1.6, 2.0)], 2.4, k=k) for k in range(3)] for c in TARGET_CLASSES}
    pools["other"] = [FakeClip("other", None, 3.0, category="hum", k=k) for k in range(2)]
    return pools


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scene_ground_truth_is_where_the_clips_were_placed(seed):
    pools = fake_pools()
    scene = scenes.build_scene(np.random.default_rng(seed), pools, lambda clip: clip.signal, sr=SR, seconds=12.0)
    n = int(12.0 * SR)
    assert scene.mixture.shape == (n,) and scene.stems.shape == (len(CLASSES), n)
    assert np.allclose(scene.stems.sum(0), scene.mixture, atol=1e-5)
    assert np.sqrt(np.mean(scene.stems[-1] ** 2)) > 0 and np.mean(np.abs(scene.stems[-1][-SR:])) > 0  # runs on
    placed = [r for r in scene.recipe if r["class"] != "other"]
    assert placed, "the seed should place some events"
    for r in placed:  # each placed clip gives exactly its two bursts, shifted by its onset
        mine = [(s, e) for c, s, e in scene.events if c == r["class"] and r["onset"] - 0.06 <= s <= r["onset"] + 2.1]
        assert len(mine) == 2, (r, mine)
        (s1, e1), (s2, e2) = mine
        assert abs(s1 - (r["onset"] + 0.2)) <= 0.06 and abs(e1 - (r["onset"] + 0.9)) <= 0.06
        assert abs(s2 - (r["onset"] + 1.6)) <= 0.06 and abs(e2 - (r["onset"] + 2.0)) <= 0.06
    for cls, s, e in scene.events:  # and the stem does sound there, and is silent outside its events
        stem = scene.stems[CLASSES.index(cls)]
        inside = stem[int((s + 0.05) * SR):int((e - 0.05) * SR)]
        assert np.sqrt(np.mean(inside ** 2)) > 1e-3
    for ci, cls in enumerate(TARGET_CLASSES):
        quiet = np.ones(n, bool)
        for c, s, e in scene.events:
            if c == cls:
                quiet[max(0, int((s - 0.06) * SR)):int((e + 0.06) * SR)] = False
        assert np.max(np.abs(scene.stems[ci][quiet]), initial=0.0) < 1e-6


def test_same_seed_same_scene():
    pools = fake_pools()
    a = scenes.build_scene(np.random.default_rng([0, 5]), pools, lambda c: c.signal, sr=SR, seconds=10.0)
    b = scenes.build_scene(np.random.default_rng([0, 5]), pools, lambda c: c.signal, sr=SR, seconds=10.0)
    c = scenes.build_scene(np.random.default_rng([0, 6]), pools, lambda c: c.signal, sr=SR, seconds=10.0)
    assert a.events == b.events and np.array_equal(a.mixture, b.mixture)
    assert a.events != c.events


@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")  # dcase_util's import
def test_reference_tsv_round_trips_and_reads_in_sed_eval(tmp_path):
    events = {"a.wav": [("dog", 1.0, 2.5), ("siren", 3.25, 9.0)], "b.wav": [("speech", 0.5, 1.0)]}
    scenes.write_reference(tmp_path / "ref.tsv", events)
    assert scenes.read_reference(tmp_path / "ref.tsv") == events
    import dcase_util  # with sed_eval, in the test extra

    loaded = dcase_util.containers.MetaDataContainer().load(filename=str(tmp_path / "ref.tsv"))
    assert sorted((e.filename, e.event_label, e.onset, e.offset) for e in loaded) == sorted(
        (f, c, s, e) for f, evs in events.items() for c, s, e in evs)


@pytest.mark.filterwarnings("ignore:pkg_resources is deprecated")
def test_sed_eval_scores_a_perfect_system_one_and_a_late_one_less():
    events = _load("events")
    pools = fake_pools()
    reference = {}
    for i in range(4):
        scene = scenes.build_scene(np.random.default_rng([1, i]), pools, lambda c: c.signal, sr=SR, seconds=12.0)
        reference[f"s{i}.wav"] = scene.events
    present = {c for evs in reference.values() for c, _, _ in evs}
    assert present == set(TARGET_CLASSES)
    perfect = events.score(reference, reference, seconds=12.0)
    assert perfect["event"]["class_average"]["f_measure"] == pytest.approx(1.0)
    assert perfect["segment"]["class_average"]["f_measure"] == pytest.approx(1.0)
    late = {k: [(c, s + 0.5, e + 0.5) for c, s, e in v] for k, v in reference.items()}  # beyond the 200 ms collar
    scored = events.score(reference, late, seconds=12.0)
    assert scored["event"]["class_average"]["f_measure"] < 0.2
    assert 0.3 < scored["segment"]["class_average"]["f_measure"] < 1.0


def test_the_threshold_baseline_finds_a_stem_that_dominates_the_mixture():
    events = _load("events")
    n = 6 * SR
    stems = np.zeros((len(CLASSES), n), np.float32)
    rng = np.random.default_rng(0)
    stems[-1] = 0.01 * rng.standard_normal(n)
    stems[1, 2 * SR:4 * SR] = 0.3 * np.sin(2 * np.pi * 900 * np.arange(2 * SR) / SR)
    got = events.threshold_events(stems, stems.sum(0), SR)
    sirens = [(s, e) for c, s, e in got if c == "siren"]
    assert len(sirens) == 1 and abs(sirens[0][0] - 2.0) <= 0.05 and abs(sirens[0][1] - 4.0) <= 0.05
    assert not [c for c, _, _ in got if c in ("baby_cry", "dog", "speech")]


def test_system_json_lines_are_matched_by_file_name():
    events = _load("events")
    lines = ['{"file": "/x/scene_000.wav", "events": [{"class": "dog", "start": 1.0, "end": 2.0, "peak_db": -20, "confidence": 0.9}]}',
             '{"input": "bad.wav", "error": "cannot decode"}', ""]
    got = events.parse_system_lines(lines, ["scene_000.wav", "scene_001.wav"])
    assert got == {"scene_000.wav": [("dog", 1.0, 2.0)], "scene_001.wav": []}
