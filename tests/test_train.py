"""train: the paper's net as described, masks that sum to one, exact resume, checkpoints, torchrun."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cocktail_cli.checkpoint import load_checkpoint, read_raw
from cocktail_cli.classes import CLASSES
from cocktail_cli.errors import CheckpointError, CocktailError
from cocktail_cli.nets import ARCHS, build, n_parameters
from cocktail_cli.prep import PrepConfig, StoreSplit, prepare
from cocktail_cli.separator import Separator
from cocktail_cli.train import Batches, TrainConfig, train

from fake_synth import make_synth

TINY = {
    "tcn": {"channels": 16, "hidden": 32, "depth": 2, "repeats": 1},
    "paper": {"time_kernel": 10, "freq_channels": 6, "time_channels": 4, "bottleneck": 8},
    "blstm": {"hidden": 16, "layers": 1},
    "bandsplit": {"dim": 8, "hidden": 16, "depth": 2, "blocks": 2},
    "unet": {"channels": [4, 6], "bottleneck": 16, "hidden": 32, "depth": 2},
    "stcn": {"skip": 8, "channels": 16, "hidden": 32, "depth": 2, "repeats": 1, "stride": 4, "activity": True},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    synth = make_synth(root / "synth", {"train": 24, "val": 6}, seconds=1.0, sr=16000, seed=3)
    # 0.5 s at 8 kHz, n_fft 256 / hop 64: 129 bins x 63 frames
    prepare(synth, root / "store", PrepConfig(sample_rate=8000, seconds=0.5, n_fft=256, hop=64, shard_size=8))
    return root / "store"


def tiny(store, out, arch="tcn", **kw) -> TrainConfig:
    args = dict(store=str(store), output=str(out), arch=arch, arch_args=TINY[arch], batch_size=4, steps=4,
                threads=1, val_examples=6, checkpoint_minutes=60.0, device="cpu")
    args.update(kw)
    return TrainConfig(**args)


def test_paper_net_matches_the_paper_description():
    net = build("paper")  # n_fft 512 at 22050 Hz, 3 s, hop 128: 257 bins x 517 frames
    f, t, c1, c2, k, fc = 257, 517, 50, 30, 150, 128
    t2 = t - k + 1  # frames left after the 150-frame conv
    encoder = (f * c1 + c1) + (c1 * c2 * k + c2) + (c2 * t2 * fc + fc)
    decoder = (fc * c2 * t2 + c2 * t2) + (c2 * c1 * k + c1) + (c1 * f + 1)
    assert n_parameters(net) == encoder + 5 * decoder
    assert tuple(net.conv_freq.weight.shape) == (c1, 1, f, 1)
    assert tuple(net.conv_time.weight.shape) == (c2, c1, 1, k)
    assert tuple(net.fc.weight.shape) == (fc, c2 * t2)
    assert len(net.decoders) == 5
    for dec in net.decoders:
        assert tuple(dec.fc.weight.shape) == (c2 * t2, fc)
        assert tuple(dec.deconv_time.weight.shape) == (c2, c1, 1, k)
        assert tuple(dec.deconv_freq.weight.shape) == (c1, 1, f, 1)
    with torch.no_grad():
        masks = net(torch.rand(2, f, t))
    assert masks.shape == (2, 5, f, t)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_masks_sum_to_one_for_every_arch(arch):
    args = dict(TINY[arch], n_bins=129)
    if arch == "paper":
        args["frames"] = 63
    net = build(arch, **args)
    torch.manual_seed(0)
    with torch.no_grad():
        masks = net(torch.rand(3, 129, 63) * 10)
    assert masks.shape == (3, 5, 129, 63)
    assert (masks >= 0).all()
    total = masks.sum(1)
    if arch == "paper":
        # the paper's o_i / sum o_n after a ReLU: one wherever any decoder output is positive, zero
        # where all are (the Separator's projection then shares the mixture equally)
        torch.manual_seed(0)
        with torch.no_grad():
            x = net.input_norm(net.features(torch.rand(3, 129, 63) * 10)).unsqueeze(1)
            z = torch.relu(net.fc(net.conv_time(net.conv_freq(x)).flatten(1)))
            raw = torch.relu(torch.cat([dec(z) for dec in net.decoders], dim=1)).sum(1)
        on = raw > 1e-4
        assert on.any() and torch.allclose(total[on], torch.ones_like(total[on]), atol=1e-3)
        assert torch.all(total[raw == 0] == 0) and torch.all(total <= 1 + 1e-6)
    else:
        assert torch.allclose(total, torch.ones(3, 129, 63), atol=1e-5)
    # and through the Separator the stems sum to the mixture
    from cocktail_cli.stft import STFTConfig

    sep = Separator(net, STFTConfig(sample_rate=8000, n_fft=256, hop=64))
    wave = torch.randn(2, 62 * 64) * 0.1
    with torch.no_grad():
        stems = sep(wave)
    assert stems.shape == (2, 5, 62 * 64) and torch.allclose(stems.sum(1), wave, atol=1e-5)


@pytest.mark.parametrize("arch", ["tcn", "paper", "bandsplit", "unet"])
def test_train_then_separate_from_the_checkpoint(store, tmp_path, arch):
    out = tmp_path / f"{arch}.pt"
    summary = train(tiny(store, out, arch=arch, eval_every=2))
    assert summary["steps"] == 4 and summary["examples"] == 16 and summary["cpu_seconds"] > 0
    ckpt = read_raw(out)
    assert ckpt["arch"] == arch and ckpt["classes"] == list(CLASSES)
    # the store suggests n_fft 256 / hop 64; the paper's net keeps the paper's 512 / 128
    n_fft, hop = (256, 64) if arch != "paper" else (512, 128)
    assert ckpt["stft"] == {"sample_rate": 8000, "n_fft": n_fft, "hop": hop, "window": "hann", "center": True}
    assert ckpt["arch_args"]["n_bins"] == n_fft // 2 + 1 and ckpt["arch_args"]["norm"] == "cmvn"
    assert set(ckpt["resume"]) >= {"step", "optimizer", "rng", "config", "history"}
    training = ckpt["training"]
    assert training["steps"] == 4 and len(training["history"]) == 2 and ckpt["package_version"]
    val = training["val"]
    assert set(val["classes"]) == set(CLASSES) and val["examples"] == 6
    assert all(np.isfinite(v["loss"]) for v in val["classes"].values())
    # normalisation statistics were fitted from the data and travel in the weights
    norm = load_checkpoint(out).model.input_norm
    assert not torch.all(norm.shift == 0) and not torch.all(norm.scale == 1)
    sep = Separator.from_checkpoint(out)
    mix = np.random.default_rng(0).standard_normal((1, 12000)).astype(np.float32) * 0.1
    stems = sep.separate(mix, 16000)
    assert stems.shape == (5, 1, 12000)
    assert np.abs(stems.sum(0) - mix).max() < 1e-5


def test_stft_settings_can_be_chosen_at_train_time(store, tmp_path):
    out = tmp_path / "tcn512.pt"
    train(tiny(store, out, n_fft=512, steps=1))
    loaded = load_checkpoint(out)
    assert (loaded.stft.n_fft, loaded.stft.hop) == (512, 128)
    assert loaded.model.config["n_bins"] == 257


def test_separate_command_reads_the_checkpoint(store, tmp_path):
    from cocktail_cli.cli import app

    if "separate" not in {c.name for c in app.registered_commands}:
        pytest.skip("separate command not built yet")
    out = tmp_path / "m.pt"
    train(tiny(store, out, steps=2))
    import soundfile as sf

    mix = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    sf.write(str(tmp_path / "mix.wav"), mix, 8000)
    run = subprocess.run([sys.executable, "-m", "cocktail_cli", "separate", str(tmp_path / "mix.wav"), "--model", str(out),
                          "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "out").rglob("*.wav"))) == 5


@pytest.mark.parametrize("arch", ["tcn", "paper", "bandsplit", "unet"])
def test_resume_continues_exactly(store, tmp_path, arch):
    straight = tmp_path / "straight.pt"
    train(tiny(store, straight, arch=arch, steps=6, eval_every=3))
    resumed = tmp_path / "resumed.pt"
    part = train(tiny(store, resumed, arch=arch, steps=6, eval_every=3), stop_after=3)  # "killed" after step 3
    assert part["steps"] == 3 and read_raw(resumed)["resume"]["step"] == 3
    # resume takes its settings from the checkpoint (a different seed here is ignored)
    train(tiny(store, resumed, arch=arch, seed=99, steps=None), resume=True)
    a, b = read_raw(straight), read_raw(resumed)
    assert b["training"]["steps"] == 6
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for k, v in a["resume"]["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], b["resume"]["optimizer"]["state"][k]["exp_avg_sq"])


def test_a_packed_handover_is_refused_by_resume_and_continues_once_unpacked(store, tmp_path):
    script = Path(__file__).resolve().parent.parent / "scripts" / "compact_resume.py"
    run = tmp_path / "run.pt"
    train(tiny(store, run, steps=6, eval_every=3), stop_after=3)
    full = read_raw(run)
    packed, unpacked = tmp_path / "resume.pt", tmp_path / "again" / "run.pt"
    for args in (["--pack", run, packed], ["--unpack", packed, unpacked]):
        done = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert packed.stat().st_size < 0.4 * run.stat().st_size  # fp16 weights, 8-bit v, no m
    with pytest.raises(CheckpointError, match="unpack"):
        train(tiny(store, packed, steps=None), resume=True)
    back = read_raw(unpacked)
    for key, value in full["state_dict"].items():
        assert back["state_dict"][key].dtype == value.dtype
        assert torch.allclose(back["state_dict"][key], value, rtol=1e-3, atol=1e-4), key
    for k, state in full["resume"]["optimizer"]["state"].items():
        v, w = state["exp_avg_sq"], back["resume"]["optimizer"]["state"][k]["exp_avg_sq"]
        assert torch.equal(v == 0, w == 0)  # a weight without a gradient keeps its exact zero
        assert torch.allclose(w.sqrt(), v.sqrt(), rtol=0.05), k  # the step sizes within 5%
        assert not back["resume"]["optimizer"]["state"][k]["exp_avg"].any()
    result = train(tiny(store, unpacked, steps=None), resume=True)
    assert result["steps"] == 6 and read_raw(unpacked)["training"]["steps"] == 6


def test_cpu_budget_stops_the_run_annealed_and_resume_extends_it(store, tmp_path):
    out = tmp_path / "budget.pt"
    lr = 2e-3
    first = train(tiny(store, out, steps=100000, lr=lr, cpu_minutes=0.02, eval_every=100000))
    assert 1 <= first["steps"] < 100000 and first["total_steps"] == first["steps"]
    assert 1.2 <= first["cpu_seconds"] < 30
    # the cosine ran over the budget, not over the 100,000 steps, so the run ended annealed
    assert read_raw(out)["training"]["history"][-1]["lr"] < 0.2 * lr
    # a larger budget on --resume continues the same run
    second = train(tiny(store, out, steps=None, cpu_minutes=0.04), resume=True)
    assert second["steps"] > first["steps"] and second["cpu_seconds"] >= 2.4
    # resuming a run whose budget is spent takes no further step
    third = train(tiny(store, out, steps=None), resume=True)
    assert third["steps"] == second["steps"]


def test_remix_draws_each_stem_from_a_stored_example(store, tmp_path):
    data = StoreSplit(store, "train")
    segment = data.samples // 2
    plain = Batches(data, 4, seed=1, segment=segment, gain_db=0.0)
    mixed = Batches(data, 4, seed=1, segment=segment, gain_db=0.0, remix=True)
    stems = np.stack([data[i] for i in range(len(data))])

    def donors(crop: np.ndarray, c: int) -> set[int]:
        """The examples whose class-c stem contains this exact crop (candidates by first sample)."""
        found = set()
        for i, o in zip(*np.nonzero(stems[:, c, : data.samples - segment + 1] == crop[0])):
            if np.array_equal(stems[i, c, o : o + segment], crop):
                found.add(int(i))
        return found

    mixed_items = 0
    for step in range(8):
        batch = mixed.batch(step).numpy()
        assert torch.equal(mixed.batch(step), torch.from_numpy(batch))  # a pure function of the step
        straight = plain.batch(step).numpy()
        order = plain.indices(step)
        for k in range(len(batch)):
            sources = set()
            for c in range(len(CLASSES)):
                # without remixing, every present stem of an item is a crop of the item's example
                if straight[k, c].any():
                    assert order[k] in donors(straight[k, c], c)
                if not batch[k, c].any():
                    continue
                # with it, every present stem is still an exact crop of that class in some
                # example; class 0 keeps the epoch order, so every example is still visited
                found = donors(batch[k, c], c)
                assert found, (step, k, c)
                assert c != 0 or order[k] in found
                sources.add(min(found))
            mixed_items += len(sources) > 1
    # and the items do combine stems of different examples
    assert mixed_items >= 8
    # the setting is part of the run: a checkpoint records it and a resume keeps it
    out = tmp_path / "remix.pt"
    train(tiny(store, out, steps=2, remix=True), stop_after=1)
    assert read_raw(out)["resume"]["config"]["remix"] is True
    assert train(tiny(store, out, steps=None), resume=True)["steps"] == 2
    assert read_raw(out)["resume"]["config"]["remix"] is True


def test_init_from_fine_tunes_on_another_store(store, tmp_path):
    parent = tmp_path / "parent.pt"
    train(tiny(store, parent, steps=6))
    # another training set: where --resume refuses, --init-from starts a new run from the weights
    other = tmp_path / "other"
    shutil.copytree(store, other)
    manifest = (other / "manifest.json").read_text().replace('"listing": "', '"listing": "y')
    (other / "manifest.json").write_text(manifest)
    child = tmp_path / "child.pt"
    # the architecture comes from the checkpoint, whatever --arch says; a vanishing learning rate
    # leaves the first step's weights where the parent's were
    summary = train(tiny(other, child, arch="blstm", arch_args={}, steps=1, lr=1e-12, init_from=str(parent)))
    p, c = read_raw(parent), read_raw(child)
    assert c["arch"] == "tcn" and c["arch_args"] == p["arch_args"]
    for key, value in p["state_dict"].items():
        assert torch.allclose(value, c["state_dict"][key], atol=1e-6), key
    fresh = tmp_path / "fresh.pt"
    train(tiny(other, fresh, steps=1, lr=1e-12, seed=5))
    assert not torch.allclose(read_raw(fresh)["state_dict"]["encode.weight"], c["state_dict"]["encode.weight"])
    # the lineage is recorded, and survives a resume of the fine-tuning run
    assert summary["init_from"]["steps"] == 6 and summary["init_from"]["path"] == str(parent.resolve())
    again = train(tiny(other, child, steps=3), resume=True)
    assert again["steps"] == 3 and again["init_from"]["steps"] == 6
    # a damaged start checkpoint, and one whose STFT does not fit the store, are refused by name
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(parent.read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="damaged") as err:
        train(tiny(other, tmp_path / "x.pt", init_from=str(damaged)))
    assert str(damaged) in str(err.value)
    synth16 = make_synth(tmp_path / "synth16", {"train": 4}, seconds=1.0, sr=16000, seed=4)
    store16 = tmp_path / "store16"
    prepare(synth16, store16, PrepConfig(sample_rate=16000, seconds=0.5, n_fft=256, hop=64))
    with pytest.raises(CocktailError, match="does not fit the store") as err:
        train(tiny(store16, tmp_path / "y.pt", init_from=str(parent)))
    assert str(parent) in str(err.value)
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


def test_init_from_adds_context_blocks_and_a_head_without_changing_the_masks(store, tmp_path):
    parent = tmp_path / "parent.pt"
    train(tiny(store, parent, steps=3, arch_args={**TINY["tcn"], "block_norm": "frame"}))
    child = tmp_path / "child.pt"
    # blocks after the parent's own (wider dilations) and an activity head: the only new modules
    extra = {"context_dilations": [4, 8], "activity": True}
    train(tiny(store, child, steps=1, lr=1e-12, init_from=str(parent), arch_args=extra))
    p, c = load_checkpoint(str(parent)), load_checkpoint(str(child))
    assert c.model.config["context_dilations"] == [4, 8] and len(c.model.blocks) == len(p.model.blocks) + 2
    assert c.model.receptive_field() == p.model.receptive_field() + 2 * (4 + 8)
    mag = torch.rand(2, 129, 80) * 3
    with torch.no_grad():
        before, after = p.model.float().eval()(mag), c.model.float().eval()(mag)
    # the new blocks' projections start at zero: the network starts as the same function
    assert torch.allclose(before, after, atol=1e-5)
    # a network whose existing blocks differ is still refused, by name
    with pytest.raises(CheckpointError, match="do not fit") as err:
        train(tiny(store, tmp_path / "x.pt", steps=1, init_from=str(parent), arch_args={"hidden": 24}))
    assert str(parent) in str(err.value) and not (tmp_path / "x.pt").exists()


def test_init_from_widens_a_tcn_as_the_same_function_whose_copies_then_part(store, tmp_path):
    parent = tmp_path / "parent.pt"
    head = {"block_norm": "window", "norm_window": 9, "norm_weighting": "amplitude", "activity": True, "activity_hidden": 4}
    train(tiny(store, parent, steps=3, lr=1e-2, arch_args={**TINY["tcn"], **head}))
    still, moved = tmp_path / "still.pt", tmp_path / "moved.pt"
    wider = {"channels": 32, "hidden": 96}  # twice the stream, three times each block's width
    train(tiny(store, still, steps=1, lr=1e-12, init_from=str(parent), arch_args=wider))
    train(tiny(store, moved, steps=3, lr=1e-2, init_from=str(parent), arch_args=wider))
    p, s, m = (load_checkpoint(str(x)) for x in (parent, still, moved))
    assert s.model.config["channels"] == 32 and s.model.blocks[0].expand.weight.shape == (96, 32, 1)
    mag = torch.rand(2, 129, 80) * 3
    with torch.no_grad():
        (before, act_before), (after, act_after) = (x.model.float().eval()(mag, activity=True) for x in (p, s))
    assert torch.allclose(before, after, atol=1e-5) and torch.allclose(act_before, act_after, atol=1e-4)
    # a channel's copies start equal; given unequal shares of what reads them, training moves them apart
    for x, parted in ((s, False), (m, True)):
        stream, inner = x.model.encode.weight, x.model.blocks[0].depthwise.weight
        assert torch.allclose(stream[:16], stream[16:], atol=1e-6) != parted
        assert all(torch.allclose(inner[:32], inner[c:c + 32], atol=1e-6) != parted for c in (32, 64))
    with pytest.raises(CheckpointError, match="do not fit"):  # not a whole factor
        train(tiny(store, tmp_path / "x.pt", steps=1, init_from=str(parent), arch_args={"hidden": 48}))
    assert not (tmp_path / "x.pt").exists()


def test_head_only_trains_the_head_and_leaves_the_separation_bit_for_bit(store, tmp_path):
    parent = tmp_path / "parent.pt"
    train(tiny(store, parent, steps=3))
    head = {"activity": True, "activity_hidden": 8}
    still, moved = tmp_path / "still.pt", tmp_path / "moved.pt"
    train(tiny(store, still, steps=1, lr=1e-12, init_from=str(parent), head_only=True, arch_args=head))
    train(tiny(store, moved, steps=6, lr=1e-2, init_from=str(parent), head_only=True, arch_args=head))
    p, s, m = (load_checkpoint(str(x)) for x in (parent, still, moved))
    for name, value in p.model.state_dict().items():  # every separation weight is the parent's
        assert torch.equal(m.model.state_dict()[name], value), name
    changed = [k for k, v in m.model.state_dict().items() if k.startswith("activity_head.") and not torch.equal(v, s.model.state_dict()[k])]
    assert changed  # the same seed starts the head the same: only training moved it
    mix = torch.randn(2, 4000) * 0.1
    with torch.inference_mode():
        assert torch.equal(Separator(p.model.float().eval(), p.stft)(mix), Separator(m.model.float().eval(), m.stft)(mix))
        _, logits = Separator(m.model.float().eval(), m.stft)(mix, activity=True)
    assert logits.shape[:2] == (2, len(CLASSES))
    with pytest.raises(CocktailError, match="activity head"):  # nothing to train
        train(tiny(store, tmp_path / "x.pt", steps=1, init_from=str(parent), head_only=True))
    assert not (tmp_path / "x.pt").exists()


def test_context_dilations_widen_what_a_frame_hears_and_nothing_more():
    net = build("tcn", n_bins=33, channels=8, hidden=16, depth=2, repeats=1, block_norm="frame", context_dilations=[4])
    for block in net.blocks:  # the new block must act: give its projection weights
        torch.nn.init.normal_(block.project.weight, std=0.3)
    net.eval()
    field = net.receptive_field()
    assert field == 1 + 2 * (1 + 2 + 4)
    mag = torch.rand(1, 33, 60) + 0.5
    changed = mag.clone()
    changed[..., 40:] = 0.01  # everything from frame 40 on
    with torch.no_grad():
        a, b = net(mag), net(changed)
    reach = field // 2
    differs = (a - b).abs().amax(dim=(0, 1, 2)) > 1e-6
    assert not differs[: 40 - reach].any() and differs[40 - reach : 40].any()
    with pytest.raises(ValueError, match="context_dilations"):
        build("tcn", n_bins=33, context_dilations=[0])


def test_damaged_or_foreign_checkpoints_are_refused(store, tmp_path):
    out = tmp_path / "m.pt"
    train(tiny(store, out, steps=2))
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(out.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="damaged"):
        train(tiny(store, damaged), resume=True)
    run = subprocess.run([sys.executable, "-m", "cocktail_cli", "train", str(store), "-o", str(damaged), "--resume"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and "damaged" in run.stderr
    # a checkpoint from another store cannot be resumed on this one
    other = tmp_path / "other"
    shutil.copytree(store, other)
    manifest = (other / "manifest.json").read_text().replace('"listing": "', '"listing": "x')
    (other / "manifest.json").write_text(manifest)
    with pytest.raises(CheckpointError, match="different store"):
        train(tiny(other, out, steps=4), resume=True)
    # an exported model (no resume state) is refused for --resume, still loads for separation
    from cocktail_cli.checkpoint import export

    export(out, tmp_path / "shipped.pt")
    with pytest.raises(CheckpointError, match="no resume state"):
        train(tiny(store, tmp_path / "shipped.pt"), resume=True)
    Separator.from_checkpoint(tmp_path / "shipped.pt")


def test_two_process_torchrun(store, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to python")
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "cocktail_cli", "train", str(store), "-o", str(out),
           "--steps", "3", "-b", "4", "--threads", "1", "--device", "cpu", "--json", "--val-examples", "4"]
    for k, v in TINY["tcn"].items():
        cmd += ["--arch-arg", f"{k}={v}"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    done = [line for line in run.stdout.splitlines() if '"event": "done"' in line]
    assert len(done) == 1, "only rank 0 reports"
    training = read_raw(out)["training"]
    assert training["world"] == 2 and training["steps"] == 3 and training["examples"] == 12
    Separator.from_checkpoint(out)
    assert not list(tmp_path.glob(".*.tmp"))


def _clock_rank(rank: int, port: int, queue) -> None:
    """One rank of test_distributed_clock: rank 1 burns about 0.6 s of CPU, rank 0 none."""
    import time

    import torch.distributed as tdist

    from cocktail_cli.train import Clock, Dist

    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    clock = Clock({"cpu_seconds": 30.0}, cpu_minutes=1.0)
    if rank == 1:
        t = time.process_time()
        while time.process_time() - t < 0.6:
            pass
    over = clock.out_of_budget(Dist(rank=rank, world=2, local_rank=rank))
    queue.put((rank, clock.cpu_used(), clock._agreed_used(), clock.schedule_step(0, 1000), over))
    tdist.destroy_process_group()


def test_distributed_clock_counts_every_rank_and_agrees():
    """A two-process run's CPU time is both ranks' (it once was rank 0's alone, half the CPU), and
    both ranks read the same budget and learning-rate schedule from it."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_clock_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r[0], r[1:]) for r in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    (used0, agreed0, sched0, over0), (used1, agreed1, sched1, over1) = results[0], results[1]
    assert agreed0 == agreed1 and sched0 == sched1 and over0 == over1
    assert 30.55 <= agreed0 < 32.0  # 30 s spent before + rank 1's 0.6 s + a little of each start-up
    assert sched0 == int(1000 * agreed0 / 60.0)
    assert used0 >= agreed0 and used1 >= agreed1
