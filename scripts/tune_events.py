"""Tune the events post-processing (events.EventSettings) of a model on val-split scenes.

Scenes: ``--scenes`` of 30 s at the model's rate, built by bench/scenes.py (the scenes
bench/events.py scores) from the **val** split of the corpus and corpus-extra (never test): a
continuous everyday background and 0-3 events of each of baby_cry, siren, dog and speech at random
onsets, with reference spans from each clip's 50 ms energy. The model's per-frame activity of every scene is computed once (as ``cocktail
events`` computes it); then a grid over the lengths (median filter, shortest event, shortest
gap) and the thresholds (on, and off as a fraction of on) picks, per class, what maximises the mean
of event F1 (onset collar 200 ms, offset collar max(200 ms, 20% of the event)) and segment F1 (1 s
segments), summed over scenes; then, for files, each class's trim (``trim_db``, events.py's step 5:
an event cut to where its stem is within so many dB of its loudest, the reference's own rule) from
a short list, the other settings kept. Two sets come out: for files every setting per class (a siren's
slow swell wants a longer filter than a dog's barks: on 40 test scenes class-averaged event F1
0.32 -> 0.38 against the lengths shared), and for live streams (``watch``) lengths shared by the
classes from the short end of the grid, chosen by the class-averaged score, because every frame
of filter or confirmation delays an alert, and chosen on the evidence ``watch`` itself computes
(``LiveActivity``'s short windows, which hear less around each frame than 20 s chunks do: for
a head with a 3 s field the chunks' evidence is not what watch thresholds). The grid's scores use a greedy matching (fast); the final tables
(defaults and tuned) are computed with sed_eval.

Usage::

    python scripts/tune_events.py [--scenes 40] [--seed 0] [--model PATH] [--split val]
                                  [--chunk-seconds 3] [--export tuned.pt | --files-only]

``--export`` writes a copy of the model with the tuned settings in ``inference["events"]`` (files:
``cocktail events``, ``separate --events``) and ``inference["watch_events"]`` (``cocktail watch``)
(``checkpoint.export``). ``--split test``
only scores (defaults, and ``--settings JSON`` if given): tune on val, report on test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from cocktail_cli.classes import CLASSES, TARGET_CLASSES  # noqa: E402
from cocktail_cli.events import EVENT_CHUNK_SECONDS, EventSettings, _median_windows, clamp, detect  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scenes as scenes_bench  # noqa: E402  (bench/scenes.py)

SCENE_SECONDS = 30.0


def build_scenes(corpora, split: str, n: int, sr: int, seed: int):
    """``n`` seeded scenes of ``split`` at ``sr``: bench/scenes.py's (the scenes bench/events.py
    scores), so what is tuned here is what the bench measures."""
    pools = scenes_bench.corpus_clips(split, corpora)
    return [(scene.mixture, scene.events) for scene in scenes_bench.iter_scenes(pools, n, seed, sr, SCENE_SECONDS)]


def live_activity(sep, mixture: np.ndarray) -> np.ndarray:
    """Activity frames ``(2, C, T)`` of a mono mixture as ``cocktail watch`` computes them."""
    from cocktail_cli.separator import LiveActivity
    from cocktail_cli.watch import WATCH_HOP_SECONDS, WATCH_RIGHT_SECONDS

    live = LiveActivity(sep, sep.sample_rate, 1, hop_seconds=WATCH_HOP_SECONDS[sep.precision], right_seconds=WATCH_RIGHT_SECONDS)
    return np.concatenate(live.push(mixture[None]) + live.finish(), axis=-1)


def _segments(events, seconds=SCENE_SECONDS):
    seg = np.zeros(int(np.ceil(seconds)), bool)
    for a, b in events:
        seg[int(a) : max(int(a) + 1, int(np.ceil(b)))] = True
    return seg


def _counts(est, ref):
    """(event tp, fp, fn, segment tp, fp, fn) of one class in one scene."""
    used = set()
    tp = 0
    for ra, rb in ref:
        collar = max(0.2, 0.2 * (rb - ra))
        for k, (ea, eb) in enumerate(est):
            if k not in used and abs(ea - ra) <= 0.2 and abs(eb - rb) <= collar:
                used.add(k)
                tp += 1
                break
    se, sr_ = _segments(est), _segments(ref)
    return np.array([tp, len(est) - tp, len(ref) - tp, np.sum(se & sr_), np.sum(se & ~sr_), np.sum(~se & sr_)])


def _f1(tp, fp, fn):
    return 2 * tp / max(1, 2 * tp + fp + fn)


def _events_fast(s, on, off, fr, min_event, min_gap):
    """``detect``'s steps 2-4 on one smoothed class track (as in events.detect)."""
    high, low = s >= on, s >= off
    edges = np.flatnonzero(np.diff(np.concatenate([[0], low.astype(np.int8), [0]])))
    merged = []
    for a, b in zip(edges[::2], edges[1::2]):
        hits = np.flatnonzero(high[a:b])
        if not hits.size:
            continue
        a = a + hits[0]
        if merged and a - merged[-1][1] < min_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a / fr, min(b / fr, SCENE_SECONDS)) for a, b in merged if b - a >= min_event]


#: the grid: lengths (s) and thresholds. A live stream (``watch``) takes one filter and shortest
#: event for every class from the short end (each frame of them delays an alert: up to 0.25 s
#: of filter and 0.3 s of confirmation); files take each class's best of the whole grid.
MEDIANS, MIN_EVENTS, MIN_GAPS = (0.1, 0.25, 0.5, 0.75), (0.1, 0.2, 0.3, 0.5), (0.1, 0.25, 0.5, 0.75, 1.0)
LIVE_MEDIANS, LIVE_MIN_EVENTS = (0.1, 0.25), (0.1, 0.2, 0.3)
ONS = (0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
OFF_RATIOS = (0.25, 0.5, 0.75, 1.0)


def tune(acts, truths, fr, chunk_seconds=EVENT_CHUNK_SECONDS):
    """``(files, live)``: :class:`EventSettings` with every setting chosen per class over the
    whole grid, and with the lengths shared by the classes and from the live part of the grid
    (each class its thresholds); each maximises the mean of event and segment F1 per class."""
    best_shared = None  # (mean, median, min_event, min_gap, {cls: (score, (on, off))})
    best_class = {}  # cls -> (score, (median, min_event, min_gap, on, off))
    for median in MEDIANS:
        size = EventSettings(median_seconds=median).median_frames(fr)
        half = size // 2
        smooth = [_median_windows(np.pad(a[0], ((0, 0), (half, half)), mode="edge"), size) for a in acts]
        for me, mg in itertools.product(MIN_EVENTS, MIN_GAPS):
            mef, mgf = int(round(me * fr)), int(round(mg * fr))
            chosen = {}
            for cls in TARGET_CLASSES:
                i = CLASSES.index(cls)
                refs = [[(a, b) for c, a, b in t if c == cls] for t in truths]
                top = (-1, None)
                for on, ratio in itertools.product(ONS, OFF_RATIOS):
                    total = np.zeros(6)
                    for s, ref in zip(smooth, refs):
                        total += _counts(_events_fast(s[i], on, on * ratio, fr, mef, mgf), ref)
                    score = (_f1(*total[:3]) + _f1(*total[3:])) / 2
                    if score > top[0]:
                        top = (score, (on, on * ratio))
                chosen[cls] = top
                if top[0] > best_class.get(cls, (-1,))[0]:
                    best_class[cls] = (top[0], (median, me, mg) + top[1])
            mean = float(np.mean([v[0] for v in chosen.values()]))
            live = median in LIVE_MEDIANS and me in LIVE_MIN_EVENTS
            if live and (best_shared is None or mean > best_shared[0]):
                best_shared = (mean, median, me, mg, chosen)
    defaults = EventSettings()
    _, median, me, mg, chosen = best_shared
    live = EventSettings(
        on={**defaults.on, **{c: round(v[1][0], 4) for c, v in chosen.items()}},
        off={**defaults.off, **{c: round(v[1][1], 4) for c, v in chosen.items()}},
        median_seconds=median, min_event_seconds=me, min_gap_seconds=mg, chunk_seconds=chunk_seconds,
    )

    def per_class(k, default):
        return {c: (best_class[c][1][k] if c in best_class else default) for c in CLASSES}

    files = EventSettings(
        on={**defaults.on, **{c: round(v[1][3], 4) for c, v in best_class.items()}},
        off={**defaults.off, **{c: round(v[1][4], 4) for c, v in best_class.items()}},
        median_seconds=per_class(0, median), min_event_seconds=per_class(1, me), min_gap_seconds=per_class(2, mg),
        chunk_seconds=chunk_seconds,
    )
    return files, live


#: the trims tried per class (dB; 0: none), files only (events.py, step 5)
TRIMS = (0.0, 10.0, 15.0, 20.0, 25.0, 30.0)


def tune_trim(acts, truths, fr, settings: EventSettings) -> EventSettings:
    """``settings`` with each class's ``trim_db`` from :data:`TRIMS` and, with it, its shortest
    gap from :data:`MIN_GAPS` chosen again (the trim's pieces close gaps by it too), the rest
    kept, by the mean of event and segment F1 of that class."""
    base = settings.to_dict()
    gaps = {c: settings.length("min_gap_seconds", c) for c in CLASSES}
    trims = {c: 0.0 for c in CLASSES}
    for cls in TARGET_CLASSES:
        best = (-1.0, 0.0, gaps[cls])
        for trim, gap in itertools.product(TRIMS, MIN_GAPS):
            trial = EventSettings.from_dict({**base, "trim_db": {**trims, cls: trim},
                                             "min_gap_seconds": {**gaps, cls: gap}})
            total = np.zeros(6)
            for a, truth in zip(acts, truths):
                est = [(e.start, e.end) for e in detect(a[0], a[1], fr, trial, classes=[cls])]
                total += _counts(est, [(s, e) for c, s, e in truth if c == cls])
            score = (_f1(*total[:3]) + _f1(*total[3:])) / 2
            if score > best[0] + 1e-9:  # ties keep the first: no trim, the shorter gap
                best = (score, trim, gap)
        trims[cls], gaps[cls] = best[1], best[2]
    return EventSettings.from_dict({**base, "trim_db": trims, "min_gap_seconds": gaps})


# -- final scores with sed_eval ----------------------------------------------------------------------
def sed_scores(acts, truths, fr, settings):
    import sed_eval

    event = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(TARGET_CLASSES), t_collar=0.2, percentage_of_length=0.2, evaluate_onset=True,
        evaluate_offset=True,
    )
    segment = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(TARGET_CLASSES), time_resolution=1.0)
    for k, (a, truth) in enumerate(zip(acts, truths)):
        name = f"scene{k:03d}.wav"
        est = clamp(detect(a[0], a[1], fr, settings), SCENE_SECONDS)
        ref_list = [{"filename": name, "event_label": c, "onset": s, "offset": e} for c, s, e in truth]
        est_list = [{"filename": name, "event_label": e.cls, "onset": e.start, "offset": e.end} for e in est]
        event.evaluate(reference_event_list=ref_list, estimated_event_list=est_list)
        segment.evaluate(reference_event_list=ref_list, estimated_event_list=est_list)
    ev, sg = event.results_class_wise_metrics(), segment.results_class_wise_metrics()
    table = {c: (ev[c]["f_measure"]["f_measure"], sg[c]["f_measure"]["f_measure"]) for c in TARGET_CLASSES}
    avg = (event.results_class_wise_average_metrics()["f_measure"]["f_measure"],
           segment.results_class_wise_average_metrics()["f_measure"]["f_measure"])
    return table, avg


def print_table(title, table, avg):
    print(f"{title}\n  {'class':<9} {'event F1':>9} {'segment F1':>11}")
    for c, (e, s) in table.items():
        print(f"  {c:<9} {e:9.3f} {s:11.3f}")
    print(f"  {'average':<9} {avg[0]:9.3f} {avg[1]:11.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None)
    p.add_argument("--corpus", type=Path, action="append", default=None,
                   help="a source folder (repeatable; default: ../shared/corpus and data/corpus-extra)")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--chunk-seconds", type=float, default=EVENT_CHUNK_SECONDS)
    p.add_argument("--settings", default=None, help="JSON of EventSettings to score as well")
    p.add_argument("--export", default=None, help="write the model with the tuned settings here")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: a training beside it keeps its core; 2 on 2 busy cores ran 2.6x slower)")
    p.add_argument("--files-only", action="store_true",
                   help="stop after the files' settings (comparing heads: watch's part takes most of the time)")
    args = p.parse_args(argv)
    if args.files_only and args.export:
        p.error("--export writes watch's settings too: leave out --files-only")
    corpora = args.corpus or list(scenes_bench.CORPORA)
    if not any((Path(c) / "manifest.csv").is_file() for c in corpora):
        print(f"no corpus at {', '.join(map(str, corpora))}; nothing tuned")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as cocktail events does (quiet passages: subnormal floats, ~10x slower)
    sep = Separator.from_checkpoint(args.model, chunk_seconds=args.chunk_seconds)
    t = time.perf_counter()
    scenes = build_scenes(corpora, args.split, args.scenes, sep.sample_rate, args.seed)
    acts = [sep.activity(mix[None], sep.sample_rate) for mix, _ in scenes]
    truths = [truth for _, truth in scenes]
    fr = sep.frame_rate
    print(f"{len(scenes)} {args.split} scenes of {SCENE_SECONDS:.0f} s, {sum(map(len, truths))} events; "
          f"activity in {time.perf_counter() - t:.0f} s", flush=True)
    print_table("defaults (sed_eval)", *sed_scores(acts, truths, fr, EventSettings()))
    if args.settings:
        given = EventSettings.from_dict(json.loads(args.settings))
        print_table("given settings (sed_eval)", *sed_scores(acts, truths, fr, given))
    if args.split != "val":
        return 0
    settings, _ = tune(acts, truths, fr, args.chunk_seconds)
    settings = tune_trim(acts, truths, fr, settings)  # files only: watch cannot move a start it has sent
    print_table("tuned for files, per class (sed_eval)", *sed_scores(acts, truths, fr, settings))
    print("tuned settings (files): " + json.dumps(settings.to_dict()), flush=True)
    if args.files_only:
        return 0
    # watch's settings from watch's own evidence: its short windows (LiveActivity) hear less
    # around each frame than 20 s chunks do, which matters for a head with a wide field
    t = time.perf_counter()
    live_acts = [live_activity(sep, mix) for mix, _ in scenes]
    print(f"live activity (watch's windows) in {time.perf_counter() - t:.0f} s", flush=True)
    _, live = tune(live_acts, truths, fr, args.chunk_seconds)
    print_table("tuned for live streams, lengths shared, on watch's windows (sed_eval)", *sed_scores(live_acts, truths, fr, live))
    print("tuned settings (live): " + json.dumps(live.to_dict()))
    if args.export:
        from cocktail_cli.checkpoint import default_model_path, export

        export(args.model or default_model_path(), args.export,
               inference={"events": settings.to_dict(), "watch_events": live.to_dict()})
        print(f"wrote {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
