"""synth: the recipe (activity, gains, pitch, stretch, band-limit), the output contract (stems sum
to the mix, no clipping, metadata), determinism, resume after kill -9, splits and bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from cocktail_cli.classes import CLASSES, TARGET_CLASSES
from cocktail_cli.cli import app
from cocktail_cli.errors import CocktailError
from cocktail_cli.sources import SourceSet, Clip, scan_sources, split_of
from cocktail_cli.sirens import KINDS, draw_siren, render_siren
from cocktail_cli.synth import SynthConfig, draw_recipe, rebuild, synthesize

SR = 16000
#: Small and fast: 1 s mixtures at 16 kHz from 1 s clips.
SMALL = dict(seconds=1.0, sample_rate=SR)
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def read_int16(path: Path) -> np.ndarray:
    data, sr = sf.read(str(path), dtype="int16")
    assert sr == SR or sr > 0
    return data


def mixture_files(split_dir: Path) -> dict[str, bytes]:
    """Every output file's bytes, keyed by relative path (caches and locks excluded)."""
    return {
        str(p.relative_to(split_dir)): p.read_bytes()
        for p in sorted(split_dir.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.name != "synth.json"
    }


@pytest.fixture
def tree(tmp_path, make_class_tree):
    return make_class_tree(tmp_path / "src", files=12, seconds=1.0, sr=SR)


def fake_sources(n: int = 20) -> SourceSet:
    clips = {c: [Clip(c, f"{c}/{k:02d}.wav", f"/nowhere/{c}/{k:02d}.wav") for k in range(n)] for c in CLASSES}
    return SourceSet("/nowhere", "train", clips, from_manifest=False)


# --- the recipe --------------------------------------------------------------------------------


def test_recipe_draws_follow_the_settings():
    sources, config = fake_sources(), SynthConfig()
    recipes = [draw_recipe(i, sources, config) for i in range(3000)]
    for cls in TARGET_CLASSES:
        share = np.mean([cls in r["active"] for r in recipes])
        assert abs(share - 0.7) < 0.03, (cls, share)
    assert all(sum(s["class"] == "other" for s in r["sources"]) == 2 for r in recipes)
    srcs = [s for r in recipes for s in r["sources"]]
    gains = np.array([s["gain_db"] for s in srcs])
    assert gains.min() >= -5 and gains.max() <= 5 and gains.min() < -4.9 and gains.max() > 4.9
    assert abs(gains.mean()) < 0.2
    assert sorted({s["pitch"] for s in srcs}) == [-4.0, -2.0, 2.0, 4.0]
    assert {s["stretch"] for s in srcs} == {1.2}
    assert all(s["lowpass_hz"] is None for s in srcs)
    # Off switches: --pitch 0 and --stretch 1 leave sources unshifted.
    plain = SynthConfig(pitch=(0,), stretch=(1.0,), lowpass_prob=1.0)
    srcs = [s for i in range(200) for s in draw_recipe(i, sources, plain)["sources"]]
    assert {s["pitch"] for s in srcs} == {0.0} and {s["stretch"] for s in srcs} == {1.0}
    assert all(3000 <= s["lowpass_hz"] <= 8000 for s in srcs)


def test_recipe_depends_only_on_seed_split_and_index():
    sources = fake_sources()
    a = draw_recipe(7, sources, SynthConfig(seed=3))
    assert draw_recipe(7, sources, SynthConfig(seed=3)) == a
    assert draw_recipe(7, sources, SynthConfig(seed=4)) != a
    val = SourceSet("/nowhere", "val", sources.clips, from_manifest=False)
    assert draw_recipe(7, val, SynthConfig(seed=3))["sources"] != a["sources"]


def test_mixtures_are_written_with_complete_metadata(tree, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(out), "--count", "6", "--seconds", "1",
                                      "--sample-rate", str(SR), "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["written"] == 6 and summary["total"] == 6 and summary["skipped_files"] == 0
    split_dir = out / "train"
    ids = sorted(p.name for p in split_dir.iterdir() if not p.name.startswith(".") and p.is_dir())
    assert ids == [f"{i:06d}" for i in range(6)]
    for name in ids:
        files = {p.name for p in (split_dir / name).iterdir()}
        assert files == {"mix.wav", "recipe.json", *(f"{c}.wav" for c in CLASSES)}
        info = sf.info(str(split_dir / name / "mix.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, SR, "PCM_16")
    rows = [json.loads(line) for line in (split_dir / "metadata.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ids
    for row in rows:
        assert row["active"] == [c for c in CLASSES if any(s["class"] == c for s in row["sources"])]
        for src in row["sources"]:
            assert {"file", "pitch", "stretch", "gain_db", "lowpass_hz", "src_offset", "dst_offset", "length", "level"} <= src.keys()
            assert (tree / src["file"]).is_file()
        # Silent stems are written as silence.
        for cls in CLASSES:
            stem = read_int16(split_dir / row["id"] / f"{cls}.wav")
            assert stem.any() == (cls in row["active"])
    assert summary["active"]["other"] == 6
    assert summary["active"]["dog"] == sum("dog" in r["active"] for r in rows)


def test_m4a_and_webm_clips_are_mixed_like_wav_ones(tree, tmp_path):
    """Clips recorded on phones (M4A/AAC) or in browsers (Opus in WebM) decode through PyAV."""
    from encode import encode

    for cls, ext in (("dog", ".m4a"), ("speech", ".webm")):
        for wav in sorted((tree / cls).glob("*.wav")):
            x, sr = sf.read(str(wav), dtype="float32")
            encode(wav.with_suffix(ext), x[None], 48000 if ext == ".webm" else sr)
            wav.unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(out), "--count", "8", "--seconds", "1",
                                      "--sample-rate", str(SR), "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["written"] == 8 and summary["skipped_files"] == 0
    rows = [json.loads(line) for line in (out / "train" / "metadata.jsonl").read_text().splitlines()]
    used = {Path(src["file"]).suffix for row in rows for src in row["sources"] if src["class"] in ("dog", "speech")}
    assert used == {".m4a", ".webm"}
    for row in rows:
        for cls in ("dog", "speech"):
            assert read_int16(out / "train" / row["id"] / f"{cls}.wav").any() == (cls in row["active"])


def test_stems_sum_to_the_mix_and_nothing_clips(tree, tmp_path):
    # Loud sources (0 dBFS RMS each) force the common scaling.
    config = SynthConfig(**SMALL, level_dbfs=0.0, seed=2)
    synthesize(tree, tmp_path / "out", config, count=6)
    rows = [json.loads(x) for x in (tmp_path / "out" / "train" / "metadata.jsonl").read_text().splitlines()]
    assert all(r["scale"] < 1 for r in rows)
    for row in rows:
        folder = tmp_path / "out" / "train" / row["id"]
        mix = read_int16(folder / "mix.wav").astype(np.int64)
        stems = np.stack([read_int16(folder / f"{c}.wav") for c in CLASSES]).astype(np.int64)
        assert np.array_equal(stems.sum(0), mix)  # exact: the mix is the sum of the 16-bit stems
        limit = 0.99 * 32768 + 3  # 0.99 of full scale, plus rounding of five stems
        assert np.abs(mix).max() <= limit and np.abs(stems).max() <= limit
        assert np.abs(mix).max() > 0.9 * 32768  # scaled to the limit, not far below


def test_each_source_lands_at_its_drawn_gain(tree, tmp_path):
    config = SynthConfig(**SMALL, others=1, seed=5)
    synthesize(tree, tmp_path / "out", config, count=8)
    checked = 0
    for line in (tmp_path / "out" / "train" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        for src in row["sources"]:  # one source per class here
            stem = read_int16(tmp_path / "out" / "train" / row["id"] / f"{src['class']}.wav") / 32768
            part = stem[src["dst_offset"] : src["dst_offset"] + src["length"]]
            level_db = 10 * np.log10(np.mean(part.astype(np.float64) ** 2))
            expected = config.level_dbfs + src["gain_db"] + 20 * np.log10(row["scale"])
            assert abs(level_db - expected) < 0.1, (row["id"], src["class"], level_db, expected)
            assert -5 <= src["gain_db"] <= 5
            checked += 1
    assert checked >= 20


def tone_1khz(cls, n, sr, rng):
    return (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr)).astype(np.float32)


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    return float(np.argmax(spectrum) * sr / (8 * len(x)))


@pytest.mark.parametrize("pitch,stretch", [("2,4", "1.2"), ("0", "1")])
def test_pitch_shift_and_stretch_are_applied(tmp_path, make_class_tree, pitch, stretch):
    tree = make_class_tree(tmp_path / "tones", files=10, seconds=1.0, sr=SR, signal=tone_1khz)
    out = tmp_path / "out"
    # Mixtures longer than a stretched clip, so each source lies whole inside its stem.
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(out), "--count", "3", "--seconds", "2",
                                      "--sample-rate", str(SR), "--active-prob", "1", "--others", "0",
                                      "--pitch", pitch, "--stretch", stretch])
    assert result.exit_code == 0, result.output
    factor = float(stretch)
    seen = set()
    for line in (out / "train" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        for src in row["sources"]:
            stem = read_int16(out / "train" / row["id"] / f"{src['class']}.wav").astype(np.float64)
            assert abs(src["length"] - SR * factor) <= 2, src  # stretched by the factor, not by the pitch
            body = stem[src["dst_offset"] + 400 : src["dst_offset"] + src["length"] - 400]
            expected = 1000 * 2 ** (src["pitch"] / 12)
            assert abs(dominant_hz(body, SR) / expected - 1) < 0.01, (src, dominant_hz(body, SR))
            seen.add(src["pitch"])
    assert seen <= ({0.0} if pitch == "0" else {-4.0, -2.0, 2.0, 4.0}) and len(seen) >= (1 if pitch == "0" else 3)


def test_lowpass_band_limits_a_source(tree, tmp_path):
    config = SynthConfig(**SMALL, active_prob=0.0, others=1, pitch=(0,), stretch=(1.0,), lowpass_prob=1.0,
                         lowpass_hz=(3000.0, 4000.0))
    synthesize(tree, tmp_path / "out", config, count=3)
    for line in (tmp_path / "out" / "train" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        (src,) = row["sources"]
        assert 3000 <= src["lowpass_hz"] <= 4000
        other = read_int16(tmp_path / "out" / "train" / row["id"] / "other.wav").astype(np.float64)
        power = np.abs(np.fft.rfft(other)) ** 2
        freqs = np.fft.rfftfreq(len(other), 1 / SR)
        above = power[freqs > src["lowpass_hz"] * 1.5].sum() / power.sum()
        assert above < 1e-3  # broadband noise, now almost nothing above the cutoff


def test_rebuild_from_metadata_is_exact(tree, tmp_path):
    synthesize(tree, tmp_path / "out", SynthConfig(**SMALL, lowpass_prob=0.5, seed=9), count=4)
    rows = [json.loads(x) for x in (tmp_path / "out" / "train" / "metadata.jsonl").read_text().splitlines()]
    for row in rows:
        # A fresh variant cache: the row and the source files alone define the mixture.
        mix, stems = rebuild(row, tree, tmp_path / "fresh-cache")
        folder = tmp_path / "out" / "train" / row["id"]
        assert np.array_equal(mix, read_int16(folder / "mix.wav"))
        for cls, stem in zip(CLASSES, stems):
            assert np.array_equal(stem, read_int16(folder / f"{cls}.wav"))


def pitch_track(x: np.ndarray, sr: int, frame: int = 1024) -> np.ndarray:
    """The strongest frequency of each frame (Hz)."""
    frames = x[: len(x) // frame * frame].reshape(-1, frame) * np.hanning(frame)
    spectra = np.abs(np.fft.rfft(frames, n=4 * frame, axis=1))
    return spectra.argmax(axis=1) * sr / (4 * frame)


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_sirens_sweep_or_alternate_within_their_range(kind):
    sr, n = 22050, 22050 * 4
    rng = np.random.default_rng(5)
    params = dict(draw_siren(rng), kind=kind, harmonics=1, doppler=0.0, reverb_s=0.0, f_lo=600.0, f_hi=1200.0)
    params["period"] = {"wail": 3.0, "yelp": 0.3, "hilo": 1.2, "piercer": 0.1}[kind]
    x = render_siren(params, n, sr)
    assert x.dtype == np.float32 and np.isfinite(x).all() and abs(np.abs(x).max() - 1) < 1e-6
    if kind in ("wail", "hilo"):  # slow enough that a 46 ms frame sees one pitch
        track = pitch_track(x, sr)
        assert track.min() > 560 and track.max() < 1260
        if kind == "wail":  # sweeps through the whole range
            assert np.percentile(track, 5) < 700 and np.percentile(track, 95) > 1100
        else:  # two tones, and almost nothing in between
            assert np.mean((track > 660) & (track < 1100)) < 0.15
            assert np.mean(track <= 660) > 0.3 and np.mean(track >= 1100) > 0.3
    else:  # fast sweeps smear within a frame: the long-term spectrum fills the range instead
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(n, 1 / sr)
        assert power[(freqs > 550) & (freqs < 1300)].sum() > 0.9 * power.sum()
    # drawn parameters always give a clean, bounded signal (no aliasing blow-up, no NaN)
    for _ in range(20):
        y = render_siren(draw_siren(rng), n, sr)
        assert np.isfinite(y).all() and 0.99 < np.abs(y).max() <= 1.0


def test_synthetic_sirens_replace_only_siren_clips(tree, tmp_path):
    base = dict(SMALL, active_prob=1.0, seed=4)
    plain = [draw_recipe(i, scan_sources(tree, "train"), SynthConfig(**base)) for i in range(30)]
    # off (the default) draws exactly the recipes it always did: no generator call is spent on it
    assert all(not src.get("synthetic") for r in plain for src in r["sources"])
    half = [draw_recipe(i, scan_sources(tree, "train"), SynthConfig(**base, synthetic_sirens=0.5)) for i in range(30)]
    swapped = 0
    for a, b in zip(plain, half):
        for sa, sb in zip(a["sources"], b["sources"]):
            if sb.get("synthetic"):
                assert sa["class"] == sb["class"] == "siren" and sb["file"] is None
                assert sa["gain_db"] == sb["gain_db"] and sa["lowpass_hz"] == sb["lowpass_hz"]
                swapped += 1
            else:
                assert sa == sb
    assert 5 <= swapped <= 25
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(out), "--count", "4", "--seconds", "1",
                                      "--sample-rate", str(SR), "--active-prob", "1", "--synthetic-sirens", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "train" / "metadata.jsonl").read_text().splitlines()]
    for row in rows:
        (siren,) = [src for src in row["sources"] if src["class"] == "siren"]
        assert siren["synthetic"]["kind"] in KINDS
        # the stem is the tone at its drawn level (the tree's clips are noise; this is not)
        stem = read_int16(out / "train" / row["id"] / "siren.wav").astype(np.float64) / 32768
        peak_hz = dominant_hz(stem, SR)
        assert 0.9 * siren["synthetic"]["f_lo"] <= peak_hz <= 1.1 * siren["synthetic"]["f_hi"] * 3  # a harmonic at most
        level_db = 10 * np.log10(np.mean(stem**2)) - 20 * np.log10(row["scale"])
        assert abs(level_db - (SMALL.get("level_dbfs", -25.0) + siren["gain_db"])) < 0.5
        # and the metadata alone rebuilds the mixture
        mix, stems = rebuild(row, tree, tmp_path / "fresh-cache")
        assert np.array_equal(mix, read_int16(out / "train" / row["id"] / "mix.wav"))


# --- determinism and resume --------------------------------------------------------------------


def test_same_files_whatever_the_job_count(tree, tmp_path):
    config = SynthConfig(**SMALL, lowpass_prob=0.3, seed=11)
    one = synthesize(tree, tmp_path / "one", config, count=10, jobs=1)
    two = synthesize(tree, tmp_path / "two", config, count=10, jobs=2)
    assert one.written == two.written == 10
    a, b = mixture_files(tmp_path / "one" / "train"), mixture_files(tmp_path / "two" / "train")
    assert a.keys() == b.keys() and len(a) == 10 * 7 + 1  # mix, 5 stems, recipe; metadata.jsonl
    assert all(a[k] == b[k] for k in a)


def test_sources_reached_through_a_symlink(tree, tmp_path):
    """A corpus folder that is a symlink (../shared -> elsewhere) is used like the real one."""
    link = tmp_path / "linked"
    link.symlink_to(tree, target_is_directory=True)
    summary = synthesize(link, tmp_path / "out", SynthConfig(seconds=1.0, sample_rate=SR, seed=2), count=4)
    assert summary.written == 4 and summary.skipped == {}
    assert len(list((tmp_path / "out" / "train").glob("*/mix.wav"))) == 4


def test_resume_after_kill_9_finishes_without_loss_or_duplicates(tree, tmp_path):
    args = ["synth", str(tree), "--count", "40", "--seconds", "1", "--sample-rate", str(SR), "--seed", "4"]
    reference = tmp_path / "reference"
    assert CliRunner().invoke(app, [*args, "-o", str(reference)]).exit_code == 0

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cocktail_cli", *args, "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "train").is_dir() and sum(p.name.isdigit() for p in (out / "train").iterdir()) >= 5:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sum(p.name.isdigit() for p in (out / "train").iterdir())
    assert done_before < 40, "the run finished before it could be killed"
    # Leftovers of a mid-write kill: a half-written mixture folder and a half-written file.
    half = out / "train" / ".tmp-000039-12345"
    half.mkdir(exist_ok=True)
    (half / "mix.wav").write_bytes(b"RIFF")
    (out / "train" / ".metadata.jsonl.tmp").write_text('{"id": "000000"')

    result = CliRunner().invoke(app, [*args, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["already_done"] == done_before and summary["written"] == 40 - done_before
    assert mixture_files(out / "train") == mixture_files(reference / "train")
    assert not [p for p in (out / "train").iterdir() if p.name.startswith((".tmp", ".metadata"))]


def test_resume_rebuilds_metadata_and_redoes_deleted_mixtures(tree, tmp_path):
    config = SynthConfig(**SMALL, seed=6)
    synthesize(tree, tmp_path / "a", config, count=8)
    reference = mixture_files(tmp_path / "a" / "train")
    split_dir = tmp_path / "a" / "train"
    for name in ("000002", "000005"):
        for f in (split_dir / name).iterdir():
            f.unlink()
        (split_dir / name).rmdir()
    (split_dir / "metadata.jsonl").write_text("")
    again = synthesize(tree, tmp_path / "a", config, count=8)
    assert (again.written, again.already_done, again.total) == (2, 6, 8)
    assert mixture_files(split_dir) == reference


def test_folder_made_before_a_setting_existed_resumes_with_its_default(tree, tmp_path):
    synthesize(tree, tmp_path / "a", SynthConfig(**SMALL, seed=1), count=2)
    settings = tmp_path / "a" / "train" / "synth.json"
    old = json.loads(settings.read_text())
    del old["config"]["synthetic_sirens"]  # as written by cocktail before --synthetic-sirens
    settings.write_text(json.dumps(old))
    assert synthesize(tree, tmp_path / "a", SynthConfig(**SMALL, seed=1), count=3).written == 1
    with pytest.raises(CocktailError, match="different settings.*synthetic_sirens"):
        synthesize(tree, tmp_path / "a", SynthConfig(**SMALL, seed=1, synthetic_sirens=0.5), count=4)


def test_resume_with_other_settings_is_refused(tree, tmp_path):
    synthesize(tree, tmp_path / "a", SynthConfig(**SMALL, seed=1), count=2)
    with pytest.raises(CocktailError, match="different settings.*seed"):
        synthesize(tree, tmp_path / "a", SynthConfig(**SMALL, seed=2), count=2)


# --- splits ------------------------------------------------------------------------------------


def test_split_rule_without_manifest_is_by_file_and_disjoint(tmp_path, make_class_tree):
    shares = [split_of(f"x/{k}.wav") for k in range(5000)]
    assert abs(shares.count("train") / 5000 - 0.8) < 0.03 and abs(shares.count("val") / 5000 - 0.1) < 0.02
    tree = make_class_tree(tmp_path / "src", files=40, seconds=0.2, sr=8000)
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for clips in scan_sources(tree, split).clips.values():
            for clip in clips:
                assert clip.rel not in seen
                seen[clip.rel] = split
    assert len(seen) == 5 * 40
    assert scan_sources(tree, "val").clips == scan_sources(tree, "val").clips


def test_manifest_split_and_groups_are_honoured(tmp_path, make_class_tree):
    tree = make_class_tree(tmp_path / "src", files=6, seconds=1.0, sr=SR)
    rows = []
    for cls in CLASSES:
        for k in range(6):
            rows.append({"path": f"{cls}/clip_{k:02d}.wav", "class": cls, "group": f"{cls}-{k // 2}",
                         "split": "val" if k < 2 else "train"})
    with open(tree / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "class", "group", "split"])
        writer.writeheader()
        writer.writerows(rows)
    summary = synthesize(tree, tmp_path / "out", SynthConfig(**SMALL), count=10, split="val")
    assert summary.written == 10
    val_files = {r["path"] for r in rows if r["split"] == "val"}
    for line in (tmp_path / "out" / "val" / "metadata.jsonl").read_text().splitlines():
        assert {s["file"] for s in json.loads(line)["sources"]} <= val_files
    # Without a split column, whole groups go to one split.
    with open(tree / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "class", "group"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("path", "class", "group")} for r in rows)
    where = {}
    for split in ("train", "val", "test"):
        try:
            sources = scan_sources(tree, split)
        except CocktailError:
            continue  # a class with no group in this split
        for clips in sources.clips.values():
            for clip in clips:
                where[clip.rel] = split
    for r in rows:
        if r["path"] in where:
            mates = [x["path"] for x in rows if x["group"] == r["group"]]
            assert {where.get(m) for m in mates} == {where[r["path"]]}


# --- bad input ---------------------------------------------------------------------------------


def test_missing_class_folder_is_a_one_line_error(tree, tmp_path):
    for f in (tree / "dog").iterdir():
        f.unlink()
    (tree / "dog").rmdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cocktail_cli", "synth", str(tree), "-o", str(out), "--count", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tree / "dog") in lines[0] and "missing class folder" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (out / "train").exists() or not any(p.name.isdigit() for p in (out / "train").iterdir())


def test_empty_class_folder_is_an_error_naming_it(tree, tmp_path):
    for f in (tree / "siren").iterdir():
        f.unlink()
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(tmp_path / "out"), "--count", "2"])
    assert result.exit_code != 0
    assert isinstance(result.exception, CocktailError)
    assert str(tree / "siren") in str(result.exception) and "no audio files" in str(result.exception)


def test_unreadable_clips_are_skipped_and_counted(tree, tmp_path):
    train = [c.rel for c in scan_sources(tree, "train").clips["speech"]]
    (tree / train[0]).write_bytes(b"this is not audio at all")
    (tree / train[1]).write_bytes(b"")
    result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(tmp_path / "out"), "--count", "30",
                                      "--seconds", "1", "--sample-rate", str(SR), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["skipped_files"] == 2 and set(summary["skipped"]) == {train[0], train[1]}
    assert summary["written"] == 30
    assert "warning" in result.stderr and train[0] in result.stderr
    used = {s["file"] for line in (tmp_path / "out" / "train" / "metadata.jsonl").read_text().splitlines()
            for s in json.loads(line)["sources"]}
    assert not used & {train[0], train[1]}


def test_bad_settings_are_refused(tree, tmp_path):
    for bad in (["--pitch", "two"], ["--active-prob", "1.5"], ["--stretch", "5"], ["--sample-rate", "100"]):
        result = CliRunner().invoke(app, ["synth", str(tree), "-o", str(tmp_path / "out"), *bad])
        assert result.exit_code != 0 and isinstance(result.exception, CocktailError), bad


# --- the real corpus -----------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.skipif(not (CORPUS / "manifest.csv").is_file(), reason="needs ../shared/corpus")
def test_corpus_mixtures_use_only_their_split(tmp_path):
    with open(CORPUS / "manifest.csv", newline="") as fh:
        split_of_file = {r["path"]: r["split"] for r in csv.DictReader(fh)}
    config = SynthConfig(seconds=2.0, sample_rate=22050, lowpass_prob=0.5, seed=1)
    summary = synthesize(CORPUS, tmp_path / "out", config, count=3, split="test")
    assert summary.written == 3 and summary.skipped == {}
    for line in (tmp_path / "out" / "test" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert all(split_of_file[s["file"]] == "test" for s in row["sources"])
        folder = tmp_path / "out" / "test" / row["id"]
        stems = np.stack([sf.read(str(folder / f"{c}.wav"), dtype="int16")[0] for c in CLASSES]).astype(np.int64)
        assert np.array_equal(stems.sum(0), sf.read(str(folder / "mix.wav"), dtype="int16")[0])
