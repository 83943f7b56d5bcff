"""When each sound happens: event detection on scenes with known events (issue 25).

    python bench/events.py --split test --count 40 [--scenes DIR] [--model PATH]
                           [--system-json FILE | --no-system] [--json results.json]

1. Scenes: 30 s, 44.1 kHz 16-bit, built by ``bench/scenes.py`` from one split of the corpus and
   corpus-extra (a background that runs on, 0-3 events of each of baby_cry, siren, dog and speech
   at random onsets), into ``--scenes`` (default ``bench-scenes/<split>``; reused when built with
   the same settings). ``--split val`` for tuning, ``test`` for reporting.
2. Baselines (the plain threshold of the issue): each scene separated by the model
   (:class:`~cocktail_cli.separator.Separator`, in process); a stem is active in a 50 ms window
   where its energy is within 6 dB of the mixture's; runs of active windows are the events
   (``baseline``), or the same runs with the ground truth's own rule applied (gaps under 0.5 s
   merged, pieces under 0.1 s dropped: ``baseline_merged``).
3. System: ``python -m cocktail_cli events <scenes> --json`` (one JSON object per file and line,
   ``{"file": ..., "events": [{"class", "start", "end", ...}]}``), or the same lines from
   ``--system-json FILE``; skipped with a message where neither exists (``--no-system``: always).
4. Scores with sed_eval, per class and class-averaged over the four target classes:
   event-based F1 (onset collar 200 ms, offset collar max(200 ms, 20% of the event)) and
   segment-based F1 (1 s segments over the whole 30 s of each scene).

Prints a table; ``--json FILE`` writes every number (and the settings) as JSON. sed_eval is a
test dependency (``pip install -e .[test]``), not a runtime one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import scenes as scene_lib  # noqa: E402
from cocktail_cli.classes import CLASSES, TARGET_CLASSES  # noqa: E402

T_COLLAR = 0.2
OFFSET_SHARE = 0.2
SEGMENT_S = 1.0
BASELINE_WINDOW_S = 0.05
BASELINE_MARGIN_DB = 6.0

Events = list[tuple[str, float, float]]  # (class, onset, offset)


# -- the baseline --------------------------------------------------------------------------------------
def threshold_events(stems: np.ndarray, mixture: np.ndarray, sr: int, margin_db: float = BASELINE_MARGIN_DB,
                     window_s: float = BASELINE_WINDOW_S, classes=TARGET_CLASSES, gap_s: float = 0.0,
                     min_s: float = 0.0) -> Events:
    """The plain threshold: stem ``c`` (``stems``: ``(C, [channels,] samples)`` in class order) is
    active in a ``window_s`` window where its energy is within ``margin_db`` of the mixture's;
    each run of active windows is one event (by default no merging, no shortest event; ``gap_s``
    and ``min_s`` merge gaps and drop pieces shorter than that, as the ground truth does)."""
    stems = np.asarray(stems, np.float64)
    if stems.ndim == 3:
        stems = stems.mean(1)
    mixture = np.asarray(mixture, np.float64)
    if mixture.ndim == 2:
        mixture = mixture.mean(0)
    hop = int(round(window_s * sr))
    n = mixture.shape[-1] // hop

    def energy(x):
        return (x[..., : n * hop].reshape(*x.shape[:-1], n, hop) ** 2).mean(-1)

    mix_e = energy(mixture)
    out: Events = []
    for cls in classes:
        on = energy(stems[CLASSES.index(cls)]) >= mix_e * 10 ** (-margin_db / 10)
        out += [(cls, s, e) for s, e in scene_lib.runs_to_events(on, window_s, gap_s=gap_s, min_s=min_s)]
    return sorted(out, key=lambda e: (e[1], e[0]))


#: The baselines scored: the plain threshold of the issue, and the same with the ground truth's
#: own post-processing (gaps under 0.5 s merged, pieces under 0.1 s dropped), which says how much
#: of the plain one's event-F1 deficit is fragmentation alone.
BASELINES = {
    "baseline": {},
    "baseline_merged": {"gap_s": scene_lib.MERGE_GAP_S, "min_s": scene_lib.MIN_EVENT_S},
}


def run_baseline(folder: Path, names: list[str], model: str | None, log=print) -> tuple[dict[str, dict[str, Events]], dict]:
    """Separate every scene once; ``{baseline name: {file: events}}`` and timings."""
    import soundfile as sf

    from cocktail_cli.separator import Separator

    sep = Separator.from_checkpoint(model)
    out: dict[str, dict[str, Events]] = {b: {} for b in BASELINES}
    seconds, audio_s = 0.0, 0.0
    for k, name in enumerate(names):
        audio, sr = sf.read(folder / name, dtype="float32", always_2d=True)
        start = time.perf_counter()
        stems = sep.separate(audio.T, sr, name=name)
        seconds += time.perf_counter() - start
        audio_s += audio.shape[0] / sr
        for baseline, post in BASELINES.items():
            out[baseline][name] = threshold_events(stems, audio.T, sr, **post)
        if (k + 1) % 10 == 0:
            log(f"  baseline: {k + 1}/{len(names)} scenes separated")
    return out, {"separation_seconds": round(seconds, 2), "audio_seconds": round(audio_s, 2)}


# -- the system ------------------------------------------------------------------------------------------
def parse_system_lines(lines, names: list[str]) -> dict[str, Events]:
    """``{"file": ..., "events": [{"class", "start", "end", ...}]}`` lines, matched to the scenes
    by file name (other lines, e.g. error objects, are left out)."""
    out: dict[str, Events] = {name: [] for name in names}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        obj = json.loads(line)
        if "file" not in obj or "events" not in obj:
            continue
        name = os.path.basename(obj["file"])
        if name in out:
            out[name] = [(e["class"], float(e["start"]), float(e["end"])) for e in obj["events"]]
    return out


def events_command_available() -> bool:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    probe = subprocess.run([sys.executable, "-m", "cocktail_cli", "events", "--help"], capture_output=True, env=env)
    return probe.returncode == 0


def run_system(folder: Path, names: list[str], model: str | None) -> tuple[dict[str, Events], dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "cocktail_cli", "events", str(folder), "--json"] + (["--model", model] if model else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return parse_system_lines(done.stdout.splitlines(), names), {"command": " ".join(cmd), "seconds": round(time.perf_counter() - start, 2)}


# -- scores ------------------------------------------------------------------------------------------------
def _container(name: str, events: Events):
    import dcase_util

    return dcase_util.containers.MetaDataContainer(
        [{"filename": name, "event_label": c, "onset": float(s), "offset": float(e)} for c, s, e in events]
    )


def score(reference: dict[str, Events], estimate: dict[str, Events], seconds: float = scene_lib.SECONDS,
          classes=TARGET_CLASSES) -> dict:
    """sed_eval's event-based and segment-based F1 (and precision, recall), per class and
    class-averaged, over every file of ``reference``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcase_util's pkg_resources deprecation
        import sed_eval

    labels = list(classes)
    event_metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=labels, t_collar=T_COLLAR, percentage_of_length=OFFSET_SHARE,
        evaluate_onset=True, evaluate_offset=True,
    )
    segment_metrics = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=labels, time_resolution=SEGMENT_S)
    for name, ref in reference.items():
        est = [e for e in estimate.get(name, []) if e[0] in labels]
        ref = [e for e in ref if e[0] in labels]
        event_metrics.evaluate(reference_event_list=_container(name, ref), estimated_event_list=_container(name, est))
        segment_metrics.evaluate(reference_event_list=_container(name, ref), estimated_event_list=_container(name, est),
                                 evaluated_length_seconds=seconds)

    def block(metrics) -> dict:
        per_class = metrics.results_class_wise_metrics()
        average = metrics.results_class_wise_average_metrics()["f_measure"]
        return {
            "classes": {c: {k: _num(per_class[c]["f_measure"][k]) for k in ("f_measure", "precision", "recall")} for c in labels},
            "class_average": {k: _num(average[k]) for k in ("f_measure", "precision", "recall")},
        }

    return {"event": block(event_metrics), "segment": block(segment_metrics)}


def _num(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def table(results: dict[str, dict]) -> str:
    """Rows: classes and their average; columns: event F1, then segment F1, of each system."""
    systems = list(results)
    width = max(12, *(len(s) + 2 for s in systems))
    head = f"{'':<14}" + f"{'event F1':^{width * len(systems)}}" + f"{'segment F1':^{width * len(systems)}}"
    names = f"{'class':<14}" + "".join(f"{s:>{width}}" for s in systems) * 2
    lines = [head, names, "-" * len(names)]

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    for cls in [*TARGET_CLASSES, "average"]:
        def pick(s, kind):
            block = results[s][kind]
            return block["class_average"]["f_measure"] if cls == "average" else block["classes"][cls]["f_measure"]

        lines.append(f"{cls:<14}" + "".join(f"{fmt(pick(s, 'event')):>{width}}" for s in systems)
                     + "".join(f"{fmt(pick(s, 'segment')):>{width}}" for s in systems))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", help="folder for the scenes (default bench-scenes/<split>)")
    ap.add_argument("--corpus", action="append", help="corpus folder(s) with manifest.csv (default: the corpus and corpus-extra)")
    ap.add_argument("--model", help="checkpoint (default: the shipped model)")
    ap.add_argument("--system-json", help="the system's events as JSON lines (what `cocktail events --json` prints)")
    ap.add_argument("--no-system", action="store_true", help="score the baseline only")
    ap.add_argument("--no-baseline", action="store_true", help="score the system only")
    ap.add_argument("--json", dest="json_out", help="write the results here as JSON")
    args = ap.parse_args(argv)

    folder = Path(args.scenes or ROOT / "bench-scenes" / args.split)
    corpora = tuple(args.corpus) if args.corpus else scene_lib.CORPORA
    scene_lib.build_scenes(folder, args.split, args.count, args.seed, corpora)
    reference = scene_lib.read_reference(folder / scene_lib.REFERENCE)
    names = [scene_lib.scene_name(i) for i in range(args.count)]
    reference = {name: reference.get(name, []) for name in names}
    settings = json.loads((folder / scene_lib.RECIPE).read_text())["settings"]
    results: dict[str, dict] = {}
    info: dict[str, dict] = {}
    if not args.no_baseline:
        print(f"baseline: separating {len(names)} scenes, then a {BASELINE_MARGIN_DB:g} dB threshold on {BASELINE_WINDOW_S * 1000:g} ms windows", file=sys.stderr)
        estimates, info["baseline"] = run_baseline(folder, names, args.model, log=lambda m: print(m, file=sys.stderr))
        for baseline, estimate in estimates.items():
            results[baseline] = score(reference, estimate)
    if not args.no_system:
        if args.system_json:
            with open(args.system_json) as fh:
                estimate = parse_system_lines(fh, names)
            info["system"] = {"from": args.system_json}
            results["system"] = score(reference, estimate)
        elif events_command_available():
            print("system: python -m cocktail_cli events --json", file=sys.stderr)
            estimate, info["system"] = run_system(folder, names, args.model)
            results["system"] = score(reference, estimate)
        else:
            print("system: skipped (no `cocktail events` command on this branch; give --system-json FILE)", file=sys.stderr)
    if not results:
        raise SystemExit("nothing scored (--no-baseline and no system)")
    n_ref = sum(len(v) for v in reference.values())
    print(f"\n{len(names)} {args.split} scenes of {settings['seconds']:g} s, {n_ref} reference events; sed_eval: event-based "
          f"(onset collar {T_COLLAR * 1000:g} ms, offset collar max({T_COLLAR * 1000:g} ms, {OFFSET_SHARE:.0%})), "
          f"segment-based ({SEGMENT_S:g} s)\n")
    print(table(results))
    if args.json_out:
        from cocktail_cli.atomic import atomic_write_text

        payload = {"settings": {**settings, "scenes_folder": str(folder), "model": args.model or "default",
                                "t_collar": T_COLLAR, "percentage_of_length": OFFSET_SHARE, "segment_s": SEGMENT_S,
                                "baseline": {"window_s": BASELINE_WINDOW_S, "margin_db": BASELINE_MARGIN_DB,
                                             "variants": BASELINES}},
                   "reference_events": n_ref, "results": results, "runs": info}
        atomic_write_text(args.json_out, json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
