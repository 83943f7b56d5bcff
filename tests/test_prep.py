"""prep: a synth output -> a store that holds exactly the resampled, cropped stems; resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.audio import resample
from cocktail_cli.classes import CLASSES
from cocktail_cli.prep import PrepConfig, StoreError, StoreSplit, crop_offsets, prepare, read_manifest

from fake_synth import make_synth

CFG = dict(sample_rate=22050, seconds=0.5, n_fft=512, hop=128, shard_size=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synth(tmp_path_factory.mktemp("synth"), {"train": 7, "val": 3}, seconds=1.0, sr=44100, seed=1)


def source_stems(folder, sr_out):
    return np.stack([resample(sf.read(str(folder / f"{c}.wav"), dtype="float32")[0], 44100, sr_out) for c in CLASSES])


@pytest.mark.parametrize("codec,crops", [("flac", 1), ("pcm", 2)])
def test_store_holds_the_resampled_cropped_stems(synth, tmp_path, codec, crops):
    cfg = PrepConfig(codec=codec, crops=crops, **CFG)
    summary = prepare(synth, tmp_path / "store", cfg)
    manifest = read_manifest(tmp_path / "store")
    assert manifest["complete"] and manifest["stft"]["n_fft"] == 512 and manifest["stft"]["hop"] == 128
    assert manifest["norm"] == "cmvn" and manifest["samples"] == 11025
    assert summary.splits["train"]["examples"] == 7 * crops and summary.splits["val"]["examples"] == 3 * crops
    for split, count in (("train", 7), ("val", 3)):
        data = StoreSplit(tmp_path / "store", split)
        assert len(data) == count * crops
        for i in range(len(data)):
            folder = synth / split / data.sources[i]
            ref = source_stems(folder, 22050)
            starts = crop_offsets(ref.shape[1], 11025, crops, 0, f"{split}/{folder.name}")
            ref = ref[:, starts[i % crops] : starts[i % crops] + 11025]
            got = data[i]
            assert got.shape == (5, 11025) and got.dtype == np.float32
            # equal within int16 quantisation (half a step, times the example's scale)
            assert np.abs(got - ref).max() <= 0.5 / 32768 * data.scales[i] + 1e-6
            silent = ~ref.any(axis=1)
            assert np.array_equal(~data.active(i), silent), "silent stems are stored as nothing"
    if crops == 2:  # spread evenly: first from the start, last to the end
        assert crop_offsets(22050, 11025, 2, 0, "x") == [0, 11025]


def test_silent_stems_cost_nothing_and_flac_is_smaller(synth, tmp_path):
    flac = prepare(synth, tmp_path / "f", PrepConfig(codec="flac", **CFG))
    pcm = prepare(synth, tmp_path / "p", PrepConfig(codec="pcm", **CFG))
    stored = sum(r["examples"] * 5 - r["silent_stems"] for r in pcm.splits.values())
    assert sum(r["bytes"] for r in pcm.splits.values()) == stored * 11025 * 2
    assert flac.bytes_per_example < pcm.bytes_per_example


def test_prep_resumes_after_a_kill_and_checks_its_settings(synth, tmp_path):
    fresh = prepare(synth, tmp_path / "a", PrepConfig(**CFG))
    shards = []
    out = prepare(synth, tmp_path / "b", PrepConfig(**CFG), on_shard=shards.append)
    # work is done shard by shard (memory bounded by one shard, not by the dataset)
    assert [s["shard"] for s in shards] == ["shard-00000", "shard-00001", "shard-00002", "shard-00000"]
    assert max(s["examples"] for s in shards) <= CFG["shard_size"]
    # a kill mid-shard leaves a temporary file and no index: that shard is redone, the rest kept
    (tmp_path / "b" / "train" / "shard-00001.json").unlink()
    (tmp_path / "b" / "train" / "shard-00001.bin").rename(tmp_path / "b" / "train" / ".shard-00001.bin.tmp")
    again = prepare(synth, tmp_path / "b", PrepConfig(**CFG))
    assert again.shards_done == 1 and again.shards_skipped == 3
    assert again.splits == out.splits == fresh.splits
    for split in ("train", "val"):
        for f in sorted((tmp_path / "a" / split).glob("shard-*")):
            assert f.read_bytes() == (tmp_path / "b" / split / f.name).read_bytes()
    with pytest.raises(StoreError, match="other input or settings"):
        prepare(synth, tmp_path / "b", PrepConfig(**{**CFG, "sample_rate": 16000}))


def test_parallel_jobs_write_the_same_store(synth, tmp_path):
    prepare(synth, tmp_path / "one", PrepConfig(**CFG), jobs=1)
    prepare(synth, tmp_path / "two", PrepConfig(**CFG), jobs=2)
    for split in ("train", "val"):
        for f in sorted((tmp_path / "one" / split).glob("shard-*")):
            assert f.read_bytes() == (tmp_path / "two" / split / f.name).read_bytes()


def test_cli_json_and_bad_input(synth, tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "cocktail_cli", "prep", str(synth), "-o", str(tmp_path / "s"), "--seconds", "0.5",
         "--n-fft", "512", "--hop", "128", "-j", "1", "--json"],
        capture_output=True, text=True, env=env,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["splits"]["train"]["examples"] == 7 and summary["bytes_per_example"] > 0
    # a damaged mixture: named in one line, the others still done, non-zero exit
    bad = make_synth(tmp_path / "bad", {"train": 3}, seconds=1.0, sr=44100)
    (bad / "train" / "train-000001" / "dog.wav").write_bytes(b"not audio" * 50)
    run = subprocess.run([sys.executable, "-m", "cocktail_cli", "prep", str(bad), "-o", str(tmp_path / "t"), "--json"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "train-000001/dog.wav" in run.stderr
    assert json.loads(run.stdout)["splits"]["train"]["examples"] == 2
    run = subprocess.run([sys.executable, "-m", "cocktail_cli", "prep", str(tmp_path / "nope"), "-o", str(tmp_path / "u")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "not found" in run.stderr and "Traceback" not in run.stderr
