"""Architecture bake-offs at equal compute: which network should the default model be?

Every candidate of a round trains from scratch on the same data (mixtures drawn afresh at every
step from the train clips of the corpus and corpus-extra, with the robustness augmentations of
:mod:`cocktail_cli.mixing`), with the same recipe, the same CPU budget (``--cpu-minutes``,
validation included) and one torch thread each, and is validated on the same mixtures drawn once
from the val clips. The table gives each candidate's validation SI-SDRi against CPU-minutes, per
class, with parameters, the share of a training step spent in matrix products (dense 1x1 and
k-tap convolutions, linear layers; torch.profiler) and the network's inference real-time factor on
2 threads in float32 and bf16.

Rounds (``--round``):

- ``scenes`` (issue 27, the default): no statistic over the chunk (per-frame norms, or the tcn's
  2 s window weighted by level), an activity head on every candidate, scene-style examples of 6 s
  (``scene_prob`` 0.6) with synthetic cries and decoys, 90 CPU-minutes; the shipped network (tcn)
  as the control, a unet, and a 10 M-weight strided tcn (stcn);
- ``crops`` (issue 14): the first round, filled 4 s crops, 60 CPU-minutes (bench/bakeoff.md keeps
  its table).

    python bench/bakeoff.py run                 # train every candidate (resumes)
    python bench/bakeoff.py table -o bench/bakeoff-scenes.md

``run`` starts the candidates side by side (``--parallel``, default 2, one per core). Rerunning the
same command after an interruption continues every run where its last checkpoint left it.
``CORPUS``/``EXTRA`` (or ``--sources``) say where the source folders are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: round -> name -> (arch, constructor arguments, evaluate every N steps). Evaluation points are
#: spread so that each candidate is validated about every 10 CPU-minutes.
ROUNDS = {
    "crops": {
        "tcn": ("tcn", {}, 400),
        "bandsplit": ("bandsplit", {"dim": 48, "hidden": 96, "blocks": 4}, 200),
        "unet": ("unet", {}, 150),
    },
    "scenes": {
        # the control: the shipped network with the statistics that keep it context-invariant
        # without training (a 2 s window, frames weighted by level; DEVELOPERS.md, issue 27)
        "tcn": ("tcn", {"block_norm": "window", "norm_window": 173, "norm_weighting": "amplitude",
                        "floor_frames": 125, "activity": True}, 250),
        "unet": ("unet", {"block_norm": "frame", "floor_frames": 47, "activity": True}, 200),
        "stcn": ("stcn", {"depth": 4, "floor_frames": 249, "activity": True}, 250),
    },
}
#: The recipe every candidate of a round shares (``cocktail train`` options), and its budget.
COMMON = [
    "--batch-size", "8", "--steps", "20000", "--warmup", "1000", "--threads", "1",
    "--val-examples", "200", "--checkpoint-minutes", "5", "--seed", "0", "--resume", "--json",
]
ROUND_ARGS = {
    "crops": [],
    "scenes": [
        "--segment", "6", "--mix-arg", "scene_prob=0.6", "--mix-arg", "synthetic_cry_prob=0.3",
        "--mix-arg", "decoy_prob=0.25", "--mix-arg", "vocoder_prob=0.5", "--mix-arg", "others=0,2",
        "--mix-arg", "synthetic_siren_prob=0.5",
    ],
}
BUDGET = {"crops": 60.0, "scenes": 90.0}


def _sources(args) -> list[str]:
    if args.sources:
        return args.sources
    corpus = os.environ.get("CORPUS", str(ROOT.parent / "shared" / "corpus"))
    extra = os.environ.get("EXTRA", str(ROOT / "data" / "corpus-extra"))
    return [corpus] + ([extra] if (Path(extra) / "manifest.csv").exists() else [])


def command(rnd: str, name: str, work: Path, sources: list[str], cpu_minutes: float) -> list[str]:
    arch, arch_args, eval_every = ROUNDS[rnd][name]
    cmd = [sys.executable, "-m", "cocktail_cli", "train", "-o", str(work / f"{name}.pt"), "--arch", arch]
    for s in sources:
        cmd += ["--sources", s]
    for key, value in arch_args.items():
        cmd += ["--arch-arg", f"{key}={json.dumps(value)}"]
    return cmd + COMMON + ROUND_ARGS[rnd] + ["--eval-every", str(eval_every), "--cpu-minutes", str(cpu_minutes)]


def run(args) -> int:
    work = _work(args)
    work.mkdir(parents=True, exist_ok=True)
    names = args.only or list(ROUNDS[args.round])
    sources = _sources(args)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    pending, running, failed = list(names), {}, []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            cmd = command(args.round, name, work, sources, args.cpu_minutes or BUDGET[args.round])
            print("$", " ".join(cmd), flush=True)
            with open(work / f"{name}.jsonl", "a") as out, open(work / f"{name}.err", "a") as err:
                running[name] = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        time.sleep(5)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                print(f"{name}: exit {proc.returncode}", flush=True)
                if proc.returncode:
                    failed.append(name)
    return 1 if failed else 0


def _work(args) -> Path:
    return Path(args.work or ROOT / "runs" / ("bakeoff" if args.round == "crops" else f"bakeoff-{args.round}"))


def _network_rtf(model, seconds: float = 20.0, repeats: int = 5, precision: str = "fp32") -> float:
    """Wall seconds of the network alone (features -> masks) per second of audio, 2 threads, on
    one 20 s chunk: what ``Separator`` feeds it (longer inputs run chunk by chunk)."""
    import torch

    from cocktail_cli.precision import autocast

    torch.set_num_threads(2)
    frames = int(seconds * 22050 / 256) + 1
    mag = torch.rand(1, model.n_bins, frames)
    best = float("inf")
    with torch.no_grad(), autocast(precision):
        model(mag)  # warm-up
        for _ in range(repeats):
            t = time.perf_counter()
            model(mag)
            best = min(best, time.perf_counter() - t)
    return best / seconds


def matmul_share(model, stft, seconds: float = 6.0, batch: int = 8, precision: str = "fp32") -> float:
    """The share of one training step's CPU time (forward, backward, optimizer; 1 thread) spent in
    matrix products: linear layers and dense convolutions, not depthwise ones (which the CPU's
    matrix units do not run), norms, activations, STFTs or element-wise work."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from cocktail_cli.train import TrainConfig, compute_loss

    torch.set_num_threads(1)
    model = model.train()
    cfg = TrainConfig(store=None, output="-", arch="tcn").resolved()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    stems = torch.randn(batch, 5, int(seconds * stft.sample_rate)) * 0.05

    def step():
        loss = compute_loss(cfg, model, stft, stems, precision).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    dense = total = 0.0
    for e in prof.key_averages(group_by_input_shape=True):
        total += e.self_cpu_time_total
        name = e.key
        if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_mkldnn_matmul"):
            dense += e.self_cpu_time_total
        elif "conv" in name and "backward_data" not in name:
            shapes = [s for s in (e.input_shapes or []) if isinstance(s, list) and len(s) in (3, 4)]
            weight = shapes[1] if len(shapes) > 1 else None
            if weight is not None and weight[1] > 1:  # in-channels per group > 1: not depthwise
                dense += e.self_cpu_time_total
    model.eval()
    return dense / total if total else 0.0


def _separate_rtf_of(tmp: str):
    """``model path -> RTF`` of ``cocktail separate`` end to end (read, separate, write five
    stems) on 60 s of mono 44.1 kHz, 2 threads: the input and the measurement of
    ``bench/separate.py``; the input is written once for every candidate."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_separate", ROOT / "bench" / "separate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    wav = bench.write_kinds(tmp, 60.0)["mono 44.1k"]
    return lambda model_path: bench.cocktail_rtf(str(model_path), wav, os.path.join(tmp, "out"))[0]


def table(args) -> int:
    import tempfile

    from cocktail_cli.checkpoint import load_checkpoint, read_raw
    from cocktail_cli.classes import CLASSES
    from cocktail_cli.nets import n_parameters

    work = _work(args)
    rows, curves = [], []
    tmp = tempfile.mkdtemp()
    separate_rtf = _separate_rtf_of(tmp)
    for name in args.only or list(ROUNDS[args.round]):
        path = work / f"{name}.pt"
        if not path.exists():
            print(f"{name}: no checkpoint at {path}", file=sys.stderr)
            continue
        raw = read_raw(str(path))
        history = raw["training"]["history"]
        evals = [h for h in history if h.get("val")]
        last = evals[-1]["val"]
        loaded = load_checkpoint(str(path))
        model = loaded.model.eval()
        rtf = _network_rtf(model)
        rtf_bf16 = _network_rtf(model, repeats=1, precision="bf16")
        share = matmul_share(model, loaded.stft)
        e2e = separate_rtf(path)
        cls = last["classes"]
        leak = sorted(v["leakage_db"] for v in cls.values() if v["leakage_db"] is not None)
        f1 = [cls[c].get("frame_f1") for c in CLASSES[:4]]
        f1_text = f"{sum(f1) / 4:.2f}" if all(v is not None for v in f1) else "-"
        rows.append(
            f"| {name} | {n_parameters(model) / 1e6:.2f} M | {raw['training']['cpu_seconds'] / 60:.1f} | {raw['training']['steps']:,} | "
            f"**{last['si_sdri']:.2f}** | " + " | ".join(f"{cls[c]['si_sdri']:.2f}" for c in CLASSES)
            + f" | {leak[len(leak) // 2]:.1f} | {f1_text} | {share:.0%} | {rtf:.4f} | {rtf_bf16:.4f} | {e2e:.4f} |"
        )
        curves.append(f"| {name} | " + ", ".join(f"{h['cpu_seconds'] / 60:.0f}: {h['val']['si_sdri']:.2f}" for h in evals) + " |")
    out = [
        f"# Architecture bake-off at equal compute: round '{args.round}'",
        "",
        f"Written by `python bench/bakeoff.py table --round {args.round} -o ...` after `python bench/bakeoff.py run --round {args.round}`",
        f"({os.cpu_count()} CPU cores here). Every candidate trained from scratch on mixtures drawn afresh at every",
        "step from the train clips of the corpus and corpus-extra (cocktail_cli/mixing.py), with the same",
        "recipe and CPU budget (see the script's docstring), one torch thread each, and was validated on the",
        "same 200 mixtures drawn from the val clips: mean SI-SDRi over present stems, per class, the",
        "median leakage of absent stems and the activity head's frame F1 (mean of the four target classes).",
        "Matmul share: of one training step's CPU time (torch.profiler, 1 thread, float32). RTFs on 2",
        "threads: the network alone on a 20 s chunk in float32 and in bf16, and `cocktail separate` end to",
        "end on 60 s of mono 44.1 kHz (these vary by about 20% from run to run here).",
        "",
        "| candidate | parameters | CPU-min | steps | val SI-SDRi (dB) | " + " | ".join(CLASSES)
        + " | median leakage (dB) | frame F1 | matmul share | network RTF | network RTF bf16 | separate RTF |",
        "| --- " * (11 + len(CLASSES)) + "|",
        *rows,
        "",
        "Validation SI-SDRi (dB) against CPU-minutes spent (CPU-min: dB):",
        "",
        "| candidate | curve |",
        "| --- | --- |",
        *curves,
    ]
    shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(out) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    print(text, end="")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("run", "table"):
        p = sub.add_parser(name)
        p.add_argument("--round", choices=list(ROUNDS), default="scenes", help="which bake-off (default: scenes)")
        p.add_argument("--work", help="folder of the runs (default: runs/bakeoff-ROUND; runs/bakeoff for crops)")
        p.add_argument("--only", nargs="+", choices=sorted({n for r in ROUNDS.values() for n in r}), help="these candidates only")
    r = sub.choices["run"]
    r.add_argument("--cpu-minutes", type=float, help="CPU budget of every candidate (default: the round's)")
    r.add_argument("--parallel", type=int, default=2, help="runs at once")
    r.add_argument("--sources", nargs="+", help="source folders (default: $CORPUS and $EXTRA)")
    sub.choices["table"].add_argument("-o", "--output", help="also write the table here (markdown)")
    args = parser.parse_args()
    return run(args) if args.what == "run" else table(args)


if __name__ == "__main__":
    sys.exit(main())
