"""``cocktail events`` and the post-processing behind it (events.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.checkpoint import export, load_checkpoint
from cocktail_cli.classes import CLASSES
from cocktail_cli.errors import CheckpointError
from cocktail_cli.events import EVENT_CHUNK_SECONDS, EventSettings, EventTracker, detect, events_of_file, settings_for
from cocktail_cli.separator import Separator

from tones import tone_scene

#: (class, start, end) of the tone scene used below: every class, two events of one class, a
#: short gap between them, an overlap of two classes.
TRUTH = [("siren", 1.0, 3.0), ("dog", 2.5, 4.0), ("speech", 5.0, 6.5), ("siren", 7.0, 9.5), ("baby_cry", 10.2, 11.0)]
SECONDS = 12.0


def _same(a, b):
    assert [(e.cls, e.start, e.end, e.peak_db) for e in a] == [(e.cls, e.start, e.end, e.peak_db) for e in b]
    assert [e.confidence for e in a] == pytest.approx([e.confidence for e in b], abs=1e-9)


def _walk(rng, t):
    """Evidence that wanders over the thresholds: smoothed noise in [0, 1] per class, with
    flickers (single frames) the median filter has to remove."""
    from scipy.ndimage import uniform_filter1d

    x = uniform_filter1d(rng.standard_normal((len(CLASSES), t)), 40, axis=1) * 12
    x += (rng.random((len(CLASSES), t)) < 0.02) * rng.choice([-4, 4], (len(CLASSES), t))
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("settings", [
    EventSettings(on={c: 0.5 for c in CLASSES}, off={c: 0.3 for c in CLASSES}, median_seconds=0.25,
                  min_event_seconds=0.2, min_gap_seconds=0.25),
    EventSettings(median_seconds=0.0, min_event_seconds=0.0, min_gap_seconds=0.0),
    EventSettings(on={c: 0.7 for c in CLASSES}, off={c: 0.2 for c in CLASSES}, median_seconds=0.5,
                  min_event_seconds=0.5, min_gap_seconds=1.0),
    # a length per class: each class its own filter, shortest event and gap
    EventSettings(on={c: 0.6 for c in CLASSES}, off={c: 0.3 for c in CLASSES},
                  median_seconds=dict(zip(CLASSES, (0.0, 0.75, 0.1, 0.5, 0.25))),
                  min_event_seconds=dict(zip(CLASSES, (0.5, 0.1, 0.0, 0.3, 0.2))),
                  min_gap_seconds=dict(zip(CLASSES, (0.1, 1.0, 0.25, 0.0, 0.5)))),
])
def test_tracker_gives_the_events_detect_gives_whatever_the_blocks(settings):
    rng = np.random.default_rng(1)
    fr = 8000 / 64
    prob, level = _walk(rng, 3000), rng.uniform(-60, 0, (len(CLASSES), 3000))
    whole = detect(prob, level, fr, settings, classes=CLASSES)
    assert len(whole) > 10  # the walk crosses the thresholds often
    for sizes in ([3000], [1] * 50 + [2950], list(rng.integers(1, 200, 60))):
        tracker = EventTracker(fr, settings, CLASSES)
        changes, at = [], 0
        for n in sizes:
            changes += tracker.push(prob[:, at : at + n], level[:, at : at + n])
            at += n
        changes += tracker.push(prob[:, at:], level[:, at:])
        changes += tracker.finish()
        ended = sorted((c.event for c in changes if c.kind == "end"), key=lambda e: (e.start, CLASSES.index(e.cls)))
        _same(ended, whole)
        starts = sorted((c.cls, c.time) for c in changes if c.kind == "start")
        assert starts == sorted((e.cls, e.start) for e in whole)  # one start per event, at its start
        assert tracker.open_events() == []


@pytest.mark.parametrize("trim_db", [20.0, dict(zip(CLASSES, (10.0, 0.0, 25.0, 6.0, 40.0)))])
def test_tracker_trims_as_detect_trims_whatever_the_blocks(trim_db):
    rng = np.random.default_rng(2)
    fr = 8000 / 64
    prob = _walk(rng, 3000)
    level = np.cumsum(rng.normal(0, 2.0, (len(CLASSES), 3000)), axis=1) - 40  # a wandering stem level
    settings = EventSettings(on={c: 0.5 for c in CLASSES}, off={c: 0.3 for c in CLASSES}, median_seconds=0.1,
                             min_event_seconds=0.1, min_gap_seconds=0.25, trim_db=trim_db)
    whole = detect(prob, level, fr, settings, classes=CLASSES)
    untrimmed = detect(prob, level, fr, EventSettings(**{**settings.to_dict(), "trim_db": 0.0}), classes=CLASSES)
    assert whole != untrimmed  # the trim moved edges or split events
    for sizes in ([3000], list(rng.integers(1, 200, 60))):
        tracker = EventTracker(fr, settings, CLASSES)
        at = 0
        for n in sizes:
            tracker.push(prob[:, at : at + n], level[:, at : at + n])
            at += n
        tracker.push(prob[:, at:], level[:, at:])
        tracker.finish()
        _same(sorted(tracker.events, key=lambda e: (e.start, CLASSES.index(e.cls))), whole)


def test_trim_cuts_an_event_to_where_its_stem_is_loud():
    fr = 100.0
    prob = np.zeros((len(CLASSES), 800))
    level = np.full_like(prob, -60.0)
    c = CLASSES.index("baby_cry")
    prob[c, 100:500] = 0.9  # the head: one cry from 1 to 5 s
    level[c, 100:500] = -55.0
    level[c, 120:200] = -20.0  # the stem: two cries, 1.2-2.0 s and 3.5-4.5 s, quiet between
    level[c, 350:450] = -22.0
    base = dict(on={k: 0.5 for k in CLASSES}, off={k: 0.3 for k in CLASSES}, median_seconds=0.0,
                min_event_seconds=0.1, min_gap_seconds=0.5)
    (whole,) = detect(prob, level, fr, EventSettings(**base), classes=["baby_cry"])
    assert (whole.start, whole.end) == (1.0, 5.0)
    cries = detect(prob, level, fr, EventSettings(**base, trim_db=20.0), classes=["baby_cry"])
    # the level is averaged over 50 ms, so each edge may move by up to 2 frames
    assert [(e.start, e.end) for e in cries] == [pytest.approx((1.2, 2.0), abs=0.021), pytest.approx((3.5, 4.5), abs=0.021)]
    assert [e.peak_db for e in cries] == [-20.0, -22.0]
    # a trim deeper than the dip between them keeps it: one event
    level[c, 200:350] = -45.0
    assert len(detect(prob, level, fr, EventSettings(**base, trim_db=30.0), classes=["baby_cry"])) == 1
    # a live stream never trims: its starts are already out
    assert EventSettings(**base, trim_db=20.0).live().trim_db == 0.0


def test_post_processing_steps_do_what_they_say():
    fr = 100.0
    prob = np.zeros((len(CLASSES), 1000))
    level = np.full_like(prob, -40.0)
    s = CLASSES.index("siren")
    prob[s, 100:300] = 0.9  # one event
    prob[s, 310:400] = 0.9  # 0.1 s later: the same event (gap < 0.25 s)
    prob[s, 600:610] = 0.9  # 0.1 s: too short
    prob[s, 700:800] = 0.4  # above off, never above on: nothing
    prob[s, 150] = 0.0  # one frame dip: the median filter smooths it away
    level[s, 200] = -5.0
    # the post-processing named here, not the tuned defaults, which move with the shipped model
    settings = EventSettings(on={c: 0.5 for c in CLASSES}, off={c: 0.3 for c in CLASSES},
                             median_seconds=0.25, min_event_seconds=0.2, min_gap_seconds=0.25)
    (event,) = detect(prob, level, fr, settings, classes=["siren"])
    assert (event.cls, event.start, event.end, event.peak_db) == ("siren", 1.0, 4.0, -5.0)
    assert detect(prob, level, fr, settings, classes=["dog"]) == []
    # hysteresis: from 0.4 to 0.2 it only goes on when it first reaches "on", and stays on above "off"
    prob[s, 700:800] = 0.35
    prob[s, 720:740] = 0.6  # 0.2 s: survives the 0.25 s median filter
    events = detect(prob, level, fr, settings, classes=["siren"])
    assert [(e.start, e.end) for e in events] == [(1.0, 4.0), (7.2, 8.0)]
    # evidence in a stem of digital silence is no event, in detect and in the tracker alike
    d = CLASSES.index("dog")
    prob[d, 500:700] = 0.95
    level[d, 500:700] = -120.0
    level[d, 600:650] = -30.0  # heard here only
    (bark,) = detect(prob, level, fr, settings, classes=["dog"])
    assert (bark.start, bark.end) == (6.0, 6.5)
    tracker = EventTracker(fr, settings, classes=["dog"])
    tracker.push(prob, level)
    tracker.finish()
    assert [(e.start, e.end) for e in tracker.events] == [(6.0, 6.5)]


def test_settings_are_validated_and_travel_in_the_checkpoint(tmp_path, band_model):
    for bad in ({"on": {"siren": 1.5}}, {"on": {"siren": 0.2}, "off": {"siren": 0.4}}, {"median_seconds": -1},
                {"on": {"cat": 0.5}}, {"min_gap_seconds": float("nan")}, {"threshold": 0.5}, [0.5],
                {"median_seconds": {"cat": 0.5}}, {"min_event_seconds": {"siren": -0.1}}, {"trim_db": -1},
                {"trim_db": 61}, {"trim_db": {"siren": float("inf")}}):
        with pytest.raises(ValueError):
            EventSettings.from_dict(bad)
    tuned = EventSettings(on={**EventSettings().on, "siren": 0.8}, median_seconds=0.1)
    export(band_model, tmp_path / "tuned.pt", inference={"events": tuned.to_dict()})
    assert settings_for(load_checkpoint(tmp_path / "tuned.pt")) == tuned
    assert settings_for(load_checkpoint(band_model)) == EventSettings()  # none recorded: the defaults
    # a length per class, the classes it leaves out at the default; live streams their own settings
    per_class = EventSettings.from_dict({"median_seconds": {"siren": 0.7}})
    assert per_class.length("median_seconds", "siren") == 0.7
    assert per_class.length("median_seconds", "dog") == EventSettings().median_seconds
    assert per_class.median_frames(100.0, "siren") == 71 and per_class.median_frames(100.0, "dog") == 11
    export(band_model, tmp_path / "both.pt", inference={"events": per_class.to_dict(), "watch_events": tuned.to_dict()})
    both = load_checkpoint(tmp_path / "both.pt")
    assert settings_for(both) == per_class and settings_for(both, live=True) == tuned
    assert settings_for(load_checkpoint(tmp_path / "tuned.pt"), live=True) == tuned  # no live settings: the file ones
    with pytest.raises(CheckpointError, match="watch_events"):
        export(band_model, tmp_path / "bad.pt", inference={"watch_events": {"median_seconds": {"siren": 99.0}}})
    with pytest.raises(CheckpointError, match="events"):
        export(band_model, tmp_path / "bad.pt", inference={"events": {"on": {"siren": 2.0}}})
    assert not (tmp_path / "bad.pt").exists()


def test_events_runs_on_the_chunks_the_model_was_tuned_on(band_model, cli, monkeypatch, scene_file, tmp_path):
    from cocktail_cli.separator import Separator as Sep

    chunks = []
    real = Sep.activity_blocks
    monkeypatch.setattr(Sep, "activity_blocks", lambda self, *a, **k: (chunks.append(self.chunk / self.sample_rate), real(self, *a, **k))[1])
    tuned = tmp_path / "tuned3.pt"
    export(band_model, tuned, inference={"events": EventSettings(chunk_seconds=3.0).to_dict()})
    for model, flag, expected in ((band_model, [], EVENT_CHUNK_SECONDS), (tuned, [], 3.0), (tuned, ["--chunk-seconds", "5"], 5.0)):
        code, out, err = cli("events", scene_file, "--json", "--model", model, *flag)
        assert code == 0, err
        assert chunks[-1] == pytest.approx(expected, abs=0.02), (model, flag)
    with pytest.raises(ValueError, match="chunk_seconds"):
        EventSettings.from_dict({"chunk_seconds": 0.5})


@pytest.mark.parametrize("sr,channels", [(8000, 1), (44100, 2), (16000, 1)])
def test_events_of_a_scene_with_known_onsets_land_within_0_2_s(band_model, tmp_path, sr, channels):
    audio = tone_scene(TRUTH, SECONDS, sr, channels)
    path = tmp_path / "scene.wav"
    sf.write(str(path), audio.T, sr, subtype="PCM_16")
    sep = Separator.from_checkpoint(band_model, chunk_seconds=2.0, overlap_seconds=0.5)  # seams in the events
    result = events_of_file(sep, str(path), str(path), block_frames=3001)
    found = sorted((e.cls, e.start, e.end) for e in result.events)
    truth = sorted(TRUTH)
    assert [f[0] for f in found] == [t[0] for t in truth], found
    for (_, start, end), (_, t0, t1) in zip(found, truth):
        assert abs(start - t0) <= 0.2 and abs(end - t1) <= 0.2, (found, truth)
    assert all(0.5 < e.confidence <= 1 for e in result.events)
    assert all(-30 < e.peak_db < -15 for e in result.events)  # a 0.1-peak sine is -23 dBFS
    assert result.duration == pytest.approx(SECONDS, abs=1e-3)


def test_frames_are_the_same_whatever_the_blocks_and_chunks(band_model):
    audio = tone_scene(TRUTH, SECONDS, 16000, 2)
    sep = Separator.from_checkpoint(band_model, chunk_seconds=2.0, overlap_seconds=0.5)
    whole = sep.activity(audio, 16000)
    pieces = [audio[:, i : i + 777] for i in range(0, audio.shape[1], 777)]
    np.testing.assert_array_equal(np.concatenate(list(sep.activity_blocks(pieces, 16000)), axis=-1), whole)
    assert whole.shape == (2, len(CLASSES), 1 + int(SECONDS * 8000) // 64)
    # masks that do not depend on the input: chunk seams (2 s chunks) change next to nothing (the
    # STFT's padding at a chunk's edge, weighted down by the cross-fade)
    long = Separator.from_checkpoint(band_model, chunk_seconds=60.0).activity(audio, 16000)
    np.testing.assert_allclose(whole[0], long[0], atol=3e-3)
    assert np.median(np.abs(whole[0] - long[0])) < 1e-6


@pytest.fixture
def scene_file(tmp_path):
    path = tmp_path / "scene.wav"
    sf.write(str(path), tone_scene(TRUTH, SECONDS, 16000).T, 16000, subtype="PCM_16")
    return path


@pytest.fixture
def events_cli(band_model, cli, monkeypatch):
    monkeypatch.setenv("COCKTAIL_MODEL", band_model)
    return lambda *args: cli("events", *args)


def test_json_and_tsv_round_trip_through_sed_eval(events_cli, scene_file, tmp_path):
    sed_eval = pytest.importorskip("sed_eval")
    code, out, err = events_cli(scene_file, "--json")
    assert code == 0, err
    (line,) = out.splitlines()
    obj = json.loads(line)
    assert obj["file"] == str(scene_file)
    assert [set(e) for e in obj["events"]] == [{"class", "start", "end", "peak_db", "confidence"}] * len(TRUTH)
    assert sorted(e["class"] for e in obj["events"]) == sorted(t[0] for t in TRUTH)
    for fmt, name in (("tsv", "events.tsv"), ("csv", "events.csv")):
        target = tmp_path / name
        code, out, err = events_cli(scene_file, "--format", fmt, "-o", target)
        assert code == 0 and out == "", err
        loaded = sed_eval.io.load_event_list(str(target))
        got = sorted((e["filename"], e["event_label"], e["onset"], e["offset"]) for e in loaded)
        want = sorted((obj["file"], e["class"], e["start"], e["end"]) for e in obj["events"])
        assert got == [(f, c, pytest.approx(a, abs=1e-3), pytest.approx(b, abs=1e-3)) for f, c, a, b in want]
    # -o x.tsv alone: the extension says the format; standard output stays empty
    code, out, _ = events_cli(scene_file, "-o", tmp_path / "same.tsv")
    assert code == 0 and out == "" and (tmp_path / "same.tsv").read_text() == (tmp_path / "events.tsv").read_text()


def test_table_and_timelines_fit_80_columns(events_cli, scene_file):
    code, out, err = events_cli(scene_file, "--classes", "siren,dog")
    assert code == 0, err
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    siren = next(line for line in lines if line.startswith("siren "))
    bar = siren.split("│")[1]
    lit = [i for i, ch in enumerate(bar) if ch == "█"]
    # siren at 1-3 s and 7-9.5 s of 12 s: two runs of lit cells, where they belong
    assert lit and abs(lit[0] / len(bar) * SECONDS - 1.0) < 0.5 and abs((lit[-1] + 1) / len(bar) * SECONDS - 9.5) < 0.5
    assert "█" not in bar[int(len(bar) * 4 / SECONDS) : int(len(bar) * 6.5 / SECONDS)]
    assert not any(line.startswith("speech ") for line in lines)  # only the classes asked for


def test_folders_stdin_and_shards_as_for_separate(events_cli, scene_file, tmp_path, monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(3):
        sf.write(str(folder / f"s{k}.wav"), tone_scene(TRUTH[k : k + 1], 7.0, 16000).T, 16000)
    code, out, err = events_cli(folder, "--json")
    assert code == 0, err
    files = [json.loads(line) for line in out.splitlines()]
    assert [Path(f["file"]).name for f in files] == ["s0.wav", "s1.wav", "s2.wav"]
    assert [[e["class"] for e in f["events"]] for f in files] == [[t[0]] for t in TRUTH[:3]]
    shards = [events_cli(folder, "--json", "--shard", f"{k}/2")[1].splitlines() for k in (1, 2)]
    assert sorted(shards[0] + shards[1]) == sorted(out.splitlines()) and shards[0] and shards[1]
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "events", "-", "--json"], stdin=open(scene_file, "rb"),
                          capture_output=True, text=True, env={**os.environ, "COCKTAIL_MODEL": os.environ["COCKTAIL_MODEL"]})
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["file"] == "<stdin>" and len(obj["events"]) == len(TRUTH)


def test_bad_inputs_one_line_each_batch_goes_on_no_partial_file(events_cli, scene_file, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 100)
    sf.write(str(tmp_path / "short.wav"), np.zeros(10, np.float32), 16000)
    target = tmp_path / "out" / "events.tsv"
    (tmp_path / "out").mkdir()
    bad = [tmp_path / "missing.wav", tmp_path / "empty.wav", tmp_path / "junk.wav", tmp_path / "short.wav"]
    code, out, err = events_cli(*bad, "--json")
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [set(obj) for obj in lines] == [{"file", "error"}] * len(bad)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad) + 1 and "Traceback" not in err  # one line each, then the count
    for path, line in zip(bad, errors):
        assert str(path) in line
    assert "file not found" in errors[0] and "empty" in errors[1] and "too short" in errors[3]
    # a bad file among good ones: the good ones are written, whole, and the exit says one failed
    code, out, err = events_cli(tmp_path / "junk.wav", scene_file, "-o", target)
    assert code == 1 and str(tmp_path / "junk.wav") in err
    assert sum(1 for _ in target.read_text().splitlines()) == 1 + len(TRUTH)  # the header, the events
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["events.tsv"]  # no temporaries left
    # all bad: no file at all
    code, _, err = events_cli(tmp_path / "junk.wav", "-o", tmp_path / "out" / "none.tsv")
    assert code == 1 and not (tmp_path / "out" / "none.tsv").exists()


@pytest.mark.parametrize("args,expected", [
    (["--format", "xml"], "unsupported --format"),
    (["--json", "--format", "tsv"], "give one"),
    (["-o", "x.bin"], "-o x.bin"),
    (["--classes", "cat"], "--classes: unknown class(es) cat"),
    (["--shard", "3/2"], "--shard"),
    (["--precision", "fp8"], "--precision"),
])
def test_option_errors(events_cli, scene_file, tmp_path, args, expected):
    code, out, err = events_cli(scene_file, *args)
    assert code != 0 and expected in err and len(err.strip().splitlines()) == 1 and out == ""


def test_plot_draws_each_input_with_its_events(events_cli, scene_file, tmp_path):
    from PIL import Image

    code, out, err = events_cli(scene_file, "--plot", tmp_path / "pics", "--json")
    assert code == 0, err
    assert json.loads(out)["file"] == str(scene_file)
    with Image.open(tmp_path / "pics" / "scene.png") as im:
        im.verify()
    with Image.open(tmp_path / "pics" / "scene.png") as im:
        width, height = im.size
    assert width >= 800 and 250 <= height <= 900  # the mixture's panel and the events lanes


def test_plot_of_standard_input_is_refused_in_one_line(band_model, scene_file, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "COCKTAIL_MODEL": band_model}
    proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "events", "-", "--plot", str(tmp_path / "pics")],
                          input=Path(scene_file).read_bytes(), capture_output=True, env=env, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "--plot cannot draw standard input" in err, err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.glob("pics/*.png"))


def test_separate_events_writes_events_json_from_the_same_pass(band_model, cli, monkeypatch, scene_file, tmp_path):
    monkeypatch.setenv("COCKTAIL_MODEL", band_model)
    code, out, err = cli("separate", scene_file, "-o", tmp_path / "out", "--events", "--json")
    assert code == 0, err
    assert json.loads(out)["events"] == str(tmp_path / "out" / "scene" / "events.json")
    written = json.loads((tmp_path / "out" / "scene" / "events.json").read_text())
    code, out, _ = cli("events", scene_file, "--json", "--chunk-seconds", "20")  # separate's chunks
    alone = json.loads(out)
    assert [(e["class"], e["start"], e["end"]) for e in written["events"]] == [(e["class"], e["start"], e["end"]) for e in alone["events"]]
    assert written["file"] == alone["file"]
    # the stems are those of a plain run
    code, _, err = cli("separate", scene_file, "-o", tmp_path / "plain")
    for c in CLASSES:
        a, _ = sf.read(str(tmp_path / "out" / "scene" / f"{c}.wav"))
        b, _ = sf.read(str(tmp_path / "plain" / "scene" / f"{c}.wav"))
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "plain" / "scene" / "events.json").exists()
    code, _, err = cli("separate", scene_file, "--stems", "speech", "-o", "-", "--events")
    assert code == 1 and "--events" in err


def test_separate_with_activity_runs_a_network_with_a_head_once():
    import torch

    from cocktail_cli.nets import build
    from cocktail_cli.stft import STFTConfig

    net = build("tcn", n_bins=129, channels=8, hidden=16, depth=1, repeats=1, activity=True, activity_hidden=4).eval()
    sep = Separator(net, STFTConfig(sample_rate=8000, n_fft=256, hop=64), mask_temperature=1.3)
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    wave = torch.from_numpy(np.random.default_rng(5).standard_normal((1, 2, 8000)).astype(np.float32) * 0.1)
    stems, act = sep.separate_with_activity(wave)
    assert len(calls) == 1
    # what the separate paths give: the stems of separate, the frames of events
    torch.testing.assert_close(stems, sep.separate_channels(wave), atol=1e-5, rtol=0)
    apart = sep.frame_activity(wave)
    torch.testing.assert_close(act["prob"], apart["prob"], atol=1e-5, rtol=0)
    torch.testing.assert_close(act["level_db"], apart["level_db"], atol=1e-3, rtol=0)


def test_shipped_model_finds_a_corpus_siren_and_speech(tmp_path):
    """The shipped model on test clips of the corpus: a siren and a voice over a quiet background."""
    import csv

    corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
    if not (corpus / "manifest.csv").is_file():
        corpus = Path("/work/shared/corpus")
    if not (corpus / "manifest.csv").is_file():
        pytest.skip("no corpus (../shared/corpus)")
    import soxr

    rows = [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["split"] == "test"]
    sr = 22050
    scene = np.random.default_rng(0).standard_normal(sr * 16).astype(np.float32) * 1e-3
    placed = []
    for cls, at in (("speech", 2.0), ("siren", 9.0)):
        row = next(r for r in rows if r["class"] == cls and float(r["duration_s"]) >= 4)
        x, rate = sf.read(str(corpus / row["path"]), dtype="float32", always_2d=True)
        x = soxr.resample(x.mean(axis=1), rate, sr)[: 4 * sr]
        x *= 0.1 / (np.sqrt(np.mean(x**2)) + 1e-9)
        scene[int(at * sr) : int(at * sr) + len(x)] += x
        # the clip's own onset: its first 50 ms within 20 dB of its loudest
        hop = sr // 20
        energy = np.array([np.mean(x[i : i + hop] ** 2) for i in range(0, len(x) - hop, hop)])
        placed.append((cls, at + np.flatnonzero(energy > energy.max() / 100)[0] * hop / sr))
    path = tmp_path / "scene.wav"
    sf.write(str(path), np.clip(scene, -1, 1), sr)
    result = events_of_file(Separator.from_checkpoint(), str(path), str(path))
    for cls, at in placed:
        starts = [e.start for e in result.events if e.cls == cls]
        assert starts and min(abs(s - at) for s in starts) <= 0.5, (cls, at, result.events)
