"""Train a model's activity head on cached features of bench-style scenes (issue 25).

The head `train --head-only` trains learns from on-the-fly mixtures whose labels follow the
stem's own peak over the example; the events bench scores scenes whose reference follows each
clip's own loudest window (bench/scenes.py). Here the head learns from **train-split** scenes
built by bench/scenes.py itself (never val or test), so labels and scenes are the bench's. The
separator is frozen, so what the head reads (its features and log energy shares,
``ContextHead.inputs``) is computed once per scene and cached; the head then trains on random
crops of the cache at the cost of the head alone.

    python scripts/scene_head.py cache --model models/default.pt --scenes 1500 -o runs/sh/cache
    python scripts/scene_head.py train --model models/default.pt --cache runs/sh/cache \\
        --arch-arg 'activity_dilations=[1, 2, 4, 8, 16, 32, 64]' --cpu-minutes 20 -o runs/sh/head.pt

The written model is the input model with the new head (its event settings dropped: tune them
again with scripts/tune_events.py; the mask temperature stays).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import scenes as scenes_bench  # noqa: E402  (bench/scenes.py)

from cocktail_cli.checkpoint import checkpoint_dict, load_checkpoint, save_raw  # noqa: E402
from cocktail_cli.classes import CLASSES, TARGET_CLASSES  # noqa: E402
from cocktail_cli.nets import build  # noqa: E402
from cocktail_cli.nets.heads import ContextHead  # noqa: E402
from cocktail_cli.precision import PRECISIONS, autocast, resolve  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402

SHARD = 100  # scenes per cache file


def frame_labels(events, frames: int, hop: int, sr: int) -> np.ndarray:
    """``(C, frames)`` 0/1: frame ``j`` (centred on sample ``j * hop``) inside a reference event.
    ``other`` is on throughout: every bench scene runs a background."""
    t = np.arange(frames) * hop / sr
    out = np.zeros((len(CLASSES), frames), np.uint8)
    out[CLASSES.index("other")] = 1
    for cls, onset, offset in events:
        out[CLASSES.index(cls), (t >= onset) & (t < offset)] = 1
    return out


def cache(args) -> None:
    torch.set_num_threads(1)
    sep = Separator.from_checkpoint(args.model, precision="auto")
    net = sep.model
    grabbed = {}
    net.activity_head.register_forward_pre_hook(lambda mod, inp: grabbed.__setitem__("z", ContextHead.inputs(*inp)))
    sr, hop = sep.sample_rate, sep.stft.hop
    pools = scenes_bench.corpus_clips("train", [Path(c) for c in args.corpus])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # a cache belongs to one separator and one draw of scenes: resume only the same
    settings = {"model_sha256": hashlib.sha256(Path(args.model).read_bytes()).hexdigest(), "seed": args.seed,
                "scenes": args.scenes, "corpus": [os.fspath(c) for c in args.corpus], "sample_rate": sr}
    recorded = out / "settings.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != settings:
        print(f"{out}: made with other settings (model, seed, scenes or corpus): starting again", file=sys.stderr)
        for stale in out.glob("shard_*.pt"):
            stale.unlink()
    recorded.write_text(json.dumps(settings, indent=1) + "\n")
    start = time.time()
    shard_z, shard_y = [], []
    done = len(list(out.glob("shard_*.pt"))) * SHARD  # resume: whole shards are kept
    for i, scene in enumerate(scenes_bench.iter_scenes(pools, args.scenes, args.seed, sr, scenes_bench.SECONDS)):
        if i < done:
            continue
        with torch.inference_mode():
            sep.frame_activity(torch.from_numpy(scene.mixture)[None])
        z = grabbed.pop("z")[0].to(torch.bfloat16)
        shard_z.append(z)
        shard_y.append(torch.from_numpy(frame_labels(scene.events, z.shape[-1], hop, sr)))
        if len(shard_z) == SHARD or i == args.scenes - 1:
            k = i // SHARD
            tmp = out / f".shard_{k:03d}.pt"
            torch.save({"z": torch.stack(shard_z), "y": torch.stack(shard_y)}, tmp)
            os.replace(tmp, out / f"shard_{k:03d}.pt")
            shard_z, shard_y = [], []
            print(json.dumps({"scenes": i + 1, "seconds": round(time.time() - start, 1)}), flush=True)


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # memory-mapped and never concatenated: crops are read from the mapped shards, so two trainings
    # on one cache share its pages (read whole, 8,000 scenes peaked at twice their 8 GB and a
    # second training beside it was killed)
    shards = [torch.load(p, mmap=True) for folder in args.cache for p in sorted(Path(folder).glob("shard_*.pt"))]
    if not shards:
        raise SystemExit(f"no shard_*.pt in {', '.join(args.cache)}")
    where = [(k, j) for k, s in enumerate(shards) for j in range(s["z"].shape[0])]  # scene -> (shard, row)
    n, t = len(where), shards[0]["z"].shape[2]
    loaded = load_checkpoint(args.model)
    config = {**loaded.model.config, "activity": True, "activity_hidden": args.hidden}
    for item in args.arch_arg:
        key, value = item.split("=", 1)
        config[key] = json.loads(value)
    model = build(loaded.arch, **config)
    head = model.activity_head
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-2)
    crop = int(args.crop_seconds * loaded.stft.sample_rate / loaded.stft.hop)
    rng = np.random.default_rng(args.seed)
    weights = torch.ones(len(CLASSES), 1)
    weights[CLASSES.index("other")] = args.other_weight
    # bf16 where the CPU multiplies it in hardware; emulated (an AVX2-only CPU) a 128-channel step
    # took 10.5 s with two trainings beside it, against 0.6 s in float32 alone
    precision = resolve(args.precision)
    print(json.dumps({"event": "start", "scenes": n, "precision": precision}), flush=True)
    cpu0, step, log_every = time.process_time(), 0, 200
    budget = args.cpu_minutes * 60
    running = []
    while True:
        used = time.process_time() - cpu0
        frac = max(used / budget, step / args.steps if args.steps else 0.0)
        if frac >= 1.0:
            break
        # cosine over the CPU budget (or the steps), after a short warm-up
        lr = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, n, args.batch_size)
        starts = rng.integers(0, t - crop + 1, args.batch_size)
        zb = torch.stack([shards[where[i][0]]["z"][where[i][1], :, s:s + crop] for i, s in zip(idx, starts)])
        yb = torch.stack([shards[where[i][0]]["y"][where[i][1], :, s:s + crop] for i, s in zip(idx, starts)]).float()
        with autocast(precision):
            logits = head.from_inputs(zb if precision == "bf16" else zb.float())
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), yb, reduction="none") * weights).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item())
        step += 1
        if step % log_every == 0:
            print(json.dumps({"step": step, "cpu_minutes": round(used / 60, 2), "lr": lr, "loss": round(float(np.mean(running)), 4)}), flush=True)
            running = []
    # the input model's separator (every weight but the head's), the new head, one checkpoint format
    model.load_state_dict({k: v for k, v in loaded.model.state_dict().items() if not k.startswith("activity_head.")}, strict=False)
    training = {**loaded.training, "scene_head": {
        "cache": [os.fspath(c) for c in args.cache], "scenes": n, "steps": step, "cpu_minutes": args.cpu_minutes, "lr": args.lr,
        "batch_size": args.batch_size, "crop_seconds": args.crop_seconds, "seed": args.seed,
        "precision": precision}}
    ckpt = checkpoint_dict(model, loaded.arch, loaded.stft, training)
    # the mask temperature stays; event settings belong to the old head
    inference = {k: v for k, v in loaded.inference.items() if k not in ("events", "watch_events")}
    if inference:
        ckpt["inference"] = inference
    save_raw(args.out, ckpt)
    load_checkpoint(args.out)  # it rebuilds
    print(json.dumps({"event": "done", "output": args.out, "steps": step}), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--model", default=str(ROOT / "models" / "default.pt"))
    c.add_argument("--scenes", type=int, default=1500)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--corpus", action="append", default=None)
    c.add_argument("-o", "--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", default=str(ROOT / "models" / "default.pt"))
    t.add_argument("--cache", action="append", required=True, help="a folder `cache` wrote (repeatable)")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--arch-arg", action="append", default=[])
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--crop-seconds", type=float, default=10.0)
    t.add_argument("--other-weight", type=float, default=0.1)
    t.add_argument("--cpu-minutes", type=float, default=20.0)
    t.add_argument("--steps", type=int, default=0, help="stop here if the CPU budget lasts longer (0: no limit)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto: bf16 where the CPU has it in hardware")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "cache":
        args.corpus = args.corpus or [str(p) for p in scenes_bench.CORPORA]
        cache(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
