"""Architecture bake-off at equal compute (issue 14): which network should the default model be?

Every candidate trains from scratch on the same data (mixtures drawn afresh at every step from
the train clips of the corpus and corpus-extra, with the robustness augmentations of
:mod:`cocktail_cli.mixing`), with the same recipe (AdamW 2e-3, warmup, cosine over the budget,
batch 8, 4 s, waveform loss), the same CPU budget (``--cpu-minutes``, validation included) and
one torch thread each, and is validated on the same 200 mixtures drawn from the val clips. The
table gives each candidate's validation SI-SDRi against CPU-minutes, per class, with parameters
and the network's inference real-time factor on 2 threads.

    python bench/bakeoff.py run                 # train every candidate (resumes; ~60 CPU-min each)
    python bench/bakeoff.py table -o bench/bakeoff.md

``run`` starts the candidates side by side (``--parallel``, default all of them): on 2 cores,
three 60-CPU-minute runs take about 95 minutes of wall time. Rerunning the same command after an
interruption continues every run where its last checkpoint left it. ``CORPUS``/``EXTRA`` (or
``--sources``) say where the source folders are.
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

#: name -> (arch, constructor arguments, evaluate every N steps). Evaluation points are spread so
#: that each candidate is validated about every 10 CPU-minutes (their steps cost 1.3-4 CPU-s).
CANDIDATES = {
    "tcn": ("tcn", {}, 400),
    "bandsplit": ("bandsplit", {"dim": 48, "hidden": 96, "blocks": 4}, 200),
    "unet": ("unet", {}, 150),
}
#: The recipe every candidate shares (``cocktail train`` options).
COMMON = [
    "--batch-size", "8", "--steps", "20000", "--warmup", "1000", "--threads", "1",
    "--val-examples", "200", "--checkpoint-minutes", "5", "--seed", "0", "--resume", "--json",
]


def _sources(args) -> list[str]:
    if args.sources:
        return args.sources
    corpus = os.environ.get("CORPUS", str(ROOT.parent / "shared" / "corpus"))
    extra = os.environ.get("EXTRA", str(ROOT / "data" / "corpus-extra"))
    return [corpus] + ([extra] if (Path(extra) / "manifest.csv").exists() else [])


def command(name: str, work: Path, sources: list[str], cpu_minutes: float) -> list[str]:
    arch, arch_args, eval_every = CANDIDATES[name]
    cmd = [sys.executable, "-m", "cocktail_cli", "train", "-o", str(work / f"{name}.pt"), "--arch", arch]
    for s in sources:
        cmd += ["--sources", s]
    for key, value in arch_args.items():
        cmd += ["--arch-arg", f"{key}={json.dumps(value)}"]
    return cmd + COMMON + ["--eval-every", str(eval_every), "--cpu-minutes", str(cpu_minutes)]


def run(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    names = args.only or list(CANDIDATES)
    sources = _sources(args)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    pending, running, failed = list(names), {}, []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            cmd = command(name, work, sources, args.cpu_minutes)
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


def _network_rtf(model, seconds: float = 20.0, repeats: int = 5) -> float:
    """Wall seconds of the network alone (features -> masks) per second of audio, 2 threads, on
    one 20 s chunk: what ``Separator`` feeds it (longer inputs run chunk by chunk)."""
    import torch

    torch.set_num_threads(2)
    frames = int(seconds * 22050 / 256) + 1
    mag = torch.rand(1, model.n_bins, frames)
    best = float("inf")
    with torch.no_grad():
        model(mag)  # warm-up
        for _ in range(repeats):
            t = time.perf_counter()
            model(mag)
            best = min(best, time.perf_counter() - t)
    return best / seconds


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

    work = Path(args.work)
    rows, curves = [], []
    tmp = tempfile.mkdtemp()
    separate_rtf = _separate_rtf_of(tmp)
    for name in args.only or list(CANDIDATES):
        path = work / f"{name}.pt"
        if not path.exists():
            print(f"{name}: no checkpoint at {path}", file=sys.stderr)
            continue
        raw = read_raw(str(path))
        history = raw["training"]["history"]
        evals = [h for h in history if h.get("val")]
        last = evals[-1]["val"]
        model = load_checkpoint(str(path)).model.eval()
        rtf = _network_rtf(model)
        e2e = separate_rtf(path)
        cls = last["classes"]
        leak = sorted(v["leakage_db"] for v in cls.values() if v["leakage_db"] is not None)
        rows.append(
            f"| {name} | {n_parameters(model) / 1e6:.2f} M | {raw['training']['cpu_seconds'] / 60:.1f} | {raw['training']['steps']:,} | "
            f"**{last['si_sdri']:.2f}** | " + " | ".join(f"{cls[c]['si_sdri']:.2f}" for c in CLASSES)
            + f" | {leak[len(leak) // 2]:.1f} | {rtf:.4f} | {e2e:.4f} |"
        )
        curves.append(f"| {name} | " + ", ".join(f"{h['cpu_seconds'] / 60:.0f}: {h['val']['si_sdri']:.2f}" for h in evals) + " |")
    out = [
        "# Architecture bake-off at equal compute",
        "",
        "Written by `python bench/bakeoff.py table -o bench/bakeoff.md` after `python bench/bakeoff.py run`",
        f"({os.cpu_count()} CPU cores here). Every candidate trained from scratch on mixtures drawn afresh at every",
        "step from the train clips of the corpus and corpus-extra (cocktail_cli/mixing.py), with the same",
        "recipe and CPU budget (see the script's docstring), one torch thread each, and was validated on the",
        "same 200 mixtures drawn from the val clips: mean SI-SDRi over present stems, per class, and the",
        "median leakage of absent stems. RTFs on 2 threads: the network alone on a 20 s chunk, and `cocktail",
        "separate` end to end on 60 s of mono 44.1 kHz (both vary by about 20% from run to run here).",
        "",
        "| candidate | parameters | CPU-min | steps | val SI-SDRi (dB) | " + " | ".join(CLASSES) + " | median leakage (dB) | network RTF | separate RTF |",
        "| --- " * (8 + len(CLASSES)) + "|",
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
        p.add_argument("--work", default=str(ROOT / "runs" / "bakeoff"), help="folder of the runs (checkpoints, logs)")
        p.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="these candidates only")
    r = sub.choices["run"]
    r.add_argument("--cpu-minutes", type=float, default=60.0, help="CPU budget of every candidate")
    r.add_argument("--parallel", type=int, default=len(CANDIDATES), help="runs at once")
    r.add_argument("--sources", nargs="+", help="source folders (default: $CORPUS and $EXTRA)")
    sub.choices["table"].add_argument("-o", "--output", help="also write the table here (markdown)")
    args = parser.parse_args()
    return run(args) if args.what == "run" else table(args)


if __name__ == "__main__":
    sys.exit(main())
