"""Reproduce the shipped model from a clean checkout with one command, resuming wherever it stopped.

    python scripts/recipe.py [recipes/default.json] [--install] [--only STAGE ...] [--dry-run]
    python scripts/recipe.py recipes/paper.json      # the paper's network, for the card's comparison

Every setting lives in the recipe file (``recipes/default.json``: source folders, evaluation
sets, the training run, calibration, evaluation). The stages, each skipped when its output is
already there and newer than its input:

1. ``synth``: the fixed evaluation sets (``cocktail synth``; resumes a set half made), and a
   training set when the run trains on a store;
2. ``prep``: only for a run that trains on a store (``train.store``, the paper's way: fixed
   mixtures): ``cocktail prep`` of that synth set (resumes);
3. ``train``: ``cocktail train --sources ... --resume`` (or ``train STORE``; continues the
   checkpoint if there is one, or the recipe's ``handover`` checkpoint, committed when a run spans
   sessions; with a larger ``cpu_minutes`` in the recipe it trains further). ``train`` is one run
   or a list of them: a model trained in phases, each run named, trained on a store or on the
   sources, and started from an earlier run's weights (``init_from``); entries sharing a name are
   successive calls on one checkpoint, and the last entry (no name) is the recipe's model. A run
   is skipped once a later run has started (it holds its weights) or its checkpoint is past the
   entry's ``steps``, so a handed-over final checkpoint skips the whole chain. A run may also be
   an ``average`` of earlier runs' weights (``{"average": {"phase9": 0.4, "phase10": 0.6}}``,
   ``scripts/average_checkpoints.py``; with ``arch_args``, constructor arguments set on the result
   that keep its weights, as the shipped model's windowed norms), made again when one of them is newer (the average, like a
   started run, holds its parts: to train a part further, delete the average);
4. ``calibrate``: the mask temperature on the val set, and the export without optimizer state
   (a recipe without ``calibrate`` evaluates the trained checkpoint as it is);
   ``events``: with ``scene_head``, the activity head trained again on cached train-split scenes
   (``scripts/scene_head.py``: a cache per seed, then the head, in the export); the event
   settings (``scripts/tune_events.py`` on val-split scenes) written into
   the export (for files and for live streams), when the recipe has an ``events`` entry (made
   again when the export lacks either or
   ``events.md``, the tuning's report, is missing);
5. ``evaluate``: ``cocktail eval`` on every test set, the rate table and the clean-clip shares;
6. ``report``: ``card.md``, the model card's results (``scripts/card_report.py``: per-class tables
   with the floor, the recipe's ``report.compare`` systems and the oracle; the validation curve;
   rates; clean clips; the goals);
7. ``--install``: copy the exported model to ``models/default.pt``.

Outputs go to the recipe's ``work`` folder: ``model.pt`` (the run, resumable; earlier runs of a
chain as ``<name>.pt``), ``train.jsonl`` (one line per validation; ``<name>-train.jsonl``), ``default.pt`` (the export), ``calibration.md``,
``events.md``, ``eval-<set>.jsonl``, ``rates.md``, ``clean-<folder>.md``, ``card.md``. Source folders that are
missing are left out, with a warning (corpus-extra must be built first: see
../shared/corpus-extra/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cocktail_cli.atomic import atomic_open

ROOT = Path(__file__).resolve().parent.parent
#: what :meth:`Recipe._step_of` says of a checkpoint without resume state (an exported model)
FINISHED = "finished"
STAGES = ("synth", "prep", "train", "calibrate", "events", "evaluate", "report")


def _expand(value: str, recipe: dict) -> str:
    for name, default in recipe.get("defaults", {}).items():
        value = value.replace(f"${name}", os.environ.get(name, default))
    return value


def _present(folders: list[str], recipe: dict) -> list[str]:
    out = []
    for folder in folders:
        path = _expand(folder, recipe)
        if (Path(path) / "manifest.csv").exists():
            out.append(path)
        else:
            print(f"recipe: warning: {path} has no manifest.csv; left out", file=sys.stderr)
    return out


def _newer(output: Path, *inputs: Path) -> bool:
    """``output`` exists and is at least as new as every input that exists."""
    if not output.exists():
        return False
    return all(output.stat().st_mtime >= i.stat().st_mtime for i in inputs if i.exists())


class Recipe:
    def __init__(self, path: Path, dry_run: bool):
        self.recipe = json.loads(path.read_text())
        self.work = ROOT / self.recipe["work"]
        self.dry_run = dry_run
        self.cocktail = [sys.executable, "-m", "cocktail_cli"]
        self._steps: dict[tuple[Path, int], int | None] = {}
        if self.runs[-1].get("name", "model") != "model":
            raise SystemExit(f"recipe: {path}: the last training run is the recipe's model (model.pt); give it no name")

    def run(self, cmd: list[str], stdout: Path | None = None, append: bool = False) -> None:
        shown = " ".join(str(c) for c in cmd) + (f" {'>>' if append else '>'} {stdout}" if stdout else "")
        print(f"$ {shown}", flush=True)
        if self.dry_run:
            return
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # spinning OpenMP threads cost 3x CPU here
        if stdout is None:
            subprocess.run(cmd, check=True, cwd=ROOT, env=env)
            return
        # a killed stage leaves no half-written result that looks done (train's log only grows)
        with open(stdout, "a") if append else atomic_open(stdout, "w") as out:
            subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=out)

    def folder(self, name: str) -> Path:
        """Where synth set ``name`` is written: its ``out`` folder (sets sharing one become the
        splits of one synth root, which prep turns into one store), or its own name."""
        s = self.recipe["synth"]["sets"][name]
        return self.work / s.get("out", name)

    @property
    def runs(self) -> list[dict]:
        """The training runs, in order: ``train`` is one run or a list of them (a model trained in
        phases, each a fine-tune of an earlier one's weights)."""
        t = self.recipe["train"]
        return t if isinstance(t, list) else [t]

    def checkpoint(self, run: dict) -> Path:
        """A run's checkpoint: ``<name>.pt``; the last run (the recipe's model) is ``model.pt``.
        Entries with the same name are successive calls on one checkpoint (``--resume``)."""
        return self.work / f"{run.get('name', 'model')}.pt"

    def log(self, run: dict) -> Path:
        name = self.checkpoint(run).stem
        return self.work / ("train.jsonl" if name == "model" else f"{name}-train.jsonl")

    def store_of(self, run: dict) -> Path | None:
        """The store a run trains on (its synth set's root, prepped: ``synth`` -> ``store``,
        ``synth-sirens`` -> ``store-sirens``), or None for mixtures drawn on the fly."""
        store = run.get("store")
        if not store:
            return None
        root = self.folder(store["set"]).name
        return self.work / (root.replace("synth", "store", 1) if "synth" in root else f"{root}-store")

    @property
    def final_model(self) -> Path:
        """What evaluate scores and --install copies: the calibrated export, or the run itself."""
        return self.work / "default.pt" if "calibrate" in self.recipe else self.checkpoint(self.runs[-1])

    def _passed(self, i: int) -> str | None:
        """Why run ``i`` needs no call, or None: a later run (another checkpoint) has started, and
        it holds this one's weights; or its checkpoint is past the steps this call trains to."""
        run, ckpt = self.runs[i], self.checkpoint(self.runs[i])
        for later in self.runs[i + 1 :]:
            if self.checkpoint(later) != ckpt and self._exists(self.checkpoint(later)):
                return f"{self.checkpoint(later).name} has {'been made' if 'average' in later else 'started'} from it"
        if "average" in run and self._exists(ckpt) and (not ckpt.exists() or _newer(ckpt, *self._averaged(run))):
            return "made from the current runs"  # (or, in a dry run, handed over)
        # what the checkpoint holds (in a dry run, which copies nothing, the handover it would be)
        final = self.dry_run and ckpt == self.checkpoint(self.runs[-1])
        held = ckpt if ckpt.exists() else (self._handover if final else None)
        if held is not None and "steps" in run:
            step = self._step_of(held)
            if step == FINISHED:
                return "a finished model (no resume state), as handed over"
            if step is not None and step >= run["steps"] and not self.dry_run:
                return f"at step {step}, past this call's {run['steps']}"
        return None

    def _step_of(self, ckpt: Path) -> int | str | None:
        """The step a checkpoint has reached, :data:`FINISHED` for an export (no resume state: the
        handed-over model of a recipe whose last run trains), or None when it is damaged (train
        says so, in one line). Read once per version of the file: synth, prep and train all ask."""
        key = (ckpt, ckpt.stat().st_mtime_ns)
        if key not in self._steps:
            from cocktail_cli.checkpoint import read_raw
            from cocktail_cli.errors import CocktailError

            try:
                raw = read_raw(ckpt)
                self._steps[key] = raw["resume"].get("step", 0) if isinstance(raw.get("resume"), dict) else FINISHED
            except CocktailError:
                self._steps[key] = None
        return self._steps[key]

    def _averaged(self, run: dict) -> list[Path]:
        """The checkpoints an ``average`` run is made of."""
        return [self.checkpoint({"name": name}) for name in run.get("average", {})]

    @property
    def _handover(self) -> Path | None:
        """The committed handover checkpoint, when the recipe names one and it is in the tree."""
        handover = self.recipe.get("handover")
        return ROOT / handover if handover and (ROOT / handover).exists() else None

    def _exists(self, checkpoint: Path) -> bool:
        """The checkpoint is there, or (in a dry run, which copies nothing) the handover would put it there."""
        if checkpoint.exists():
            return True
        return self.dry_run and checkpoint == self.checkpoint(self.runs[-1]) and self._handover is not None

    def _take_handover(self) -> None:
        """A run handed over from another machine or session becomes the last run's checkpoint
        (then it is continued rather than started over, and the runs before it are skipped)."""
        final = self.checkpoint(self.runs[-1])
        if self._handover is not None and not final.exists():
            what = "using the model" if "average" in self.runs[-1] else "continuing the run"
            print(f"recipe: {what} handed over in {self.recipe['handover']}", flush=True)
            if not self.dry_run:
                shutil.copyfile(self._handover, final)

    def _pending_runs(self) -> list[int]:
        return [i for i in range(len(self.runs)) if not self._passed(i)]

    def _training_roots(self) -> set[Path]:
        """Synth roots whose stores the runs still to train read (a finished chain needs none of
        its 20,000-mixture training sets)."""
        return {self.folder(self.runs[i]["store"]["set"]) for i in self._pending_runs() if self.runs[i].get("store")}

    def _feeds_a_store(self, name: str) -> bool:
        """Set ``name`` exists only to be prepped into a store: a run's store set, or another set
        in that set's root that neither calibration nor evaluation reads (the store's val copy)."""
        read = {self.recipe.get("calibrate", {}).get("set")} | set(self.recipe.get("evaluate", {}).get("sets", {}))
        read.add(self.recipe.get("evaluate", {}).get("rate_table", {}).get("set"))
        store_roots = {self.folder(r["store"]["set"]) for r in self.runs if r.get("store")}
        return name not in read and self.folder(name) in store_roots

    # -- the stages ------------------------------------------------------------------------------
    def synth(self) -> None:
        self._take_handover()
        spec = self.recipe["synth"]
        training = self._training_roots()
        for name, s in spec["sets"].items():
            if self._feeds_a_store(name) and self.folder(name) not in training:
                print(f"recipe: synth set {name} not needed (the runs it trains are done)", flush=True)
                continue
            sources = _present(s["sources"], self.recipe)
            if len(sources) < len(s["sources"]):
                print(f"recipe: warning: evaluation set {name} skipped (a source folder is missing)", file=sys.stderr)
                continue
            self.run([*self.cocktail, "synth", *sources, "-o", self.folder(name), "--split", s["split"],
                      "--count", str(s["count"]), *spec["args"], *s.get("args", [])])

    def prep(self) -> None:
        self._take_handover()
        done: set[Path] = set()
        for i in self._pending_runs():
            run = self.runs[i]
            store = self.store_of(run)
            if store is None or store in done:
                continue
            done.add(store)
            self.run([*self.cocktail, "prep", self.folder(run["store"]["set"]), "-o", store, *run["store"].get("args", [])])

    def train(self) -> None:
        self._take_handover()
        for i, run in enumerate(self.runs):
            why = self._passed(i)
            if why:
                print(f"recipe: {self.checkpoint(run).name} skipped: {why}", flush=True)
                continue
            if "average" in run:  # no training: the weighted mean of earlier runs' weights
                self.run([sys.executable, ROOT / "scripts" / "average_checkpoints.py", "-o", self.checkpoint(run),
                          *(f"{path}={weight}" for path, weight in zip(self._averaged(run), run["average"].values())),
                          *(a for key, value in run.get("arch_args", {}).items() for a in ("--arch-arg", f"{key}={json.dumps(value)}"))])
                continue
            self.run(self._train_command(run), stdout=self.log(run), append=True)

    def _train_command(self, run: dict) -> list:
        store = self.store_of(run)
        if store is not None:
            data = [store]
        else:
            sources = _present(self.recipe["sources"], self.recipe)
            if not sources:
                raise SystemExit("recipe: no source folder found; set CORPUS (and EXTRA) to the corpus folders")
            data = [arg for source in sources for arg in ("--sources", source)]
        cmd = [*self.cocktail, "train", *data, "-o", self.checkpoint(run), "--resume", "--json"]
        if "init_from" in run:  # a fine-tune of an earlier run (used only when this one has no checkpoint yet)
            cmd += ["--init-from", self.work / f"{run['init_from']}.pt"]
        for key, value in run.get("arch_args", {}).items():
            cmd += ["--arch-arg", f"{key}={json.dumps(value)}"]
        for key, value in run.get("mix", {}).items():  # MixConfig settings, e.g. {"vocoder_prob": 0.5}
            cmd += ["--mix-arg", f"{key}={json.dumps(value)}"]
        for key, value in run.items():
            if key in ("why", "name", "init_from", "arch_args", "mix", "store"):
                continue
            if value is True:  # a flag, e.g. "remix": true
                cmd.append(f"--{key.replace('_', '-')}")
            elif value is not False:
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        return cmd

    def calibrate(self) -> None:
        if "calibrate" not in self.recipe:
            return
        c = self.recipe["calibrate"]
        model, out = self.checkpoint(self.runs[-1]), self.work / "default.pt"
        if _newer(out, model):
            print(f"recipe: {out} is up to date")
            return
        self.run([sys.executable, ROOT / "scripts" / "calibrate_temperature.py", model, self.folder(c["set"]),
                  "--split", self.recipe["synth"]["sets"][c["set"]]["split"], "-o", out, *c.get("args", [])],
                 stdout=self.work / "calibration.md")

    def events(self) -> None:
        e = self.recipe.get("events")
        if e is None:
            return
        model, report = self.final_model, self.work / "events.md"
        corpora = [a for folder in _present(self.recipe["sources"], self.recipe) for a in ("--corpus", folder)]
        if "scene_head" in e and not (model.exists() and self._has_scene_head(model)):
            self.scene_head(model, e["scene_head"], corpora)
        if report.exists() and model.exists() and self._has_events(model):
            print(f"recipe: the event settings of {model} are up to date ({report})")
            return
        self.run([sys.executable, ROOT / "scripts" / "tune_events.py", "--model", model, *corpora, "--export", model,
                  *e.get("args", [])], stdout=report)

    def scene_head(self, model: Path, spec: dict, corpora: list[str]) -> None:
        """The activity head trained again on cached train-split scenes (scripts/scene_head.py):
        each cache (resumable, one per seed) from the export's separator, then the head in place."""
        script = ROOT / "scripts" / "scene_head.py"
        caches = []
        for draw in spec["caches"]:
            folder = self.work / f"scene-cache-{draw['seed']}"
            self.run([sys.executable, script, "cache", "--model", model, "--scenes", str(draw["scenes"]),
                      "--seed", str(draw["seed"]), *corpora, "-o", folder])
            caches += ["--cache", folder]
        self.run([sys.executable, script, "train", "--model", model, *caches, *spec.get("args", []), "-o", model],
                 stdout=self.work / "scene-head.jsonl")

    @staticmethod
    def _has_scene_head(model: Path) -> bool:
        from cocktail_cli.checkpoint import read_raw

        return "scene_head" in (read_raw(model).get("training") or {})

    @staticmethod
    def _has_events(model: Path) -> bool:
        from cocktail_cli.checkpoint import read_raw

        inference = read_raw(model).get("inference") or {}
        return "events" in inference and "watch_events" in inference  # files' and live streams' settings

    def evaluate(self) -> None:
        e, sets = self.recipe["evaluate"], self.recipe["synth"]["sets"]
        model = self.final_model
        for name, args in e["sets"].items():
            out = self.work / f"eval-{name}.jsonl"
            if not self.folder(name).exists() and not self.dry_run:
                continue  # its sources were missing
            if not _newer(out, model):
                self.run([*self.cocktail, "eval", self.folder(name), "--split", sets[name]["split"], "--model", model,
                          "--json", *e.get("args", []), *args], stdout=out)
        r = e.get("rate_table")
        if r and not _newer(self.work / "rates.md", model):
            self.run([sys.executable, ROOT / "scripts" / "rate_table.py", self.folder(r["set"]) / sets[r["set"]]["split"],
                      "--model", model, "--count", str(r["count"])], stdout=self.work / "rates.md")
        for folder in _present(e.get("clean_clips", []), self.recipe):
            out = self.work / f"clean-{Path(folder).name}.md"
            if not _newer(out, model):
                self.run([sys.executable, ROOT / "scripts" / "clean_clips.py", "--model", model, "--corpus", folder],
                         stdout=out)

    def report(self) -> None:
        r = self.recipe.get("report")
        if r is None:
            return
        cmd = [sys.executable, ROOT / "scripts" / "card_report.py", self.work, "--label", r.get("label", "default model")]
        # the separation's curve: the last run that trains it (a head-only run leaves it as it was)
        last = next((r for r in reversed(self.runs) if not r.get("head_only")), self.runs[-1])
        for name in last.get("average", {}):  # an averaged model has no curve of its own: its parts'
            log = self.log({"name": name})
            kept = ROOT / "models" / "checkpoints" / log.name  # on a clean checkout, the committed copy
            cmd += ["--curve", f"{name}={log if log.exists() or not kept.exists() else kept}"]
        for label, folder in r.get("compare", {}).items():
            cmd += ["--compare", f"{label}={ROOT / folder}"]
        self.run(cmd, stdout=self.work / "card.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", nargs="?", default=str(ROOT / "recipes" / "default.json"))
    ap.add_argument("--only", nargs="+", choices=STAGES, help="run these stages only")
    ap.add_argument("--install", action="store_true", help="copy the exported model to models/default.pt")
    ap.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = ap.parse_args()
    recipe = Recipe(Path(args.recipe), args.dry_run)
    recipe.work.mkdir(parents=True, exist_ok=True)
    try:
        for stage in args.only or STAGES:
            getattr(recipe, stage)()
    except subprocess.CalledProcessError as err:
        if err.returncode in (130, 143):  # the stage was interrupted (Ctrl-C, TERM) and saved its state
            print("recipe: interrupted; run the same command to continue", file=sys.stderr)
            return err.returncode
        print(f"recipe: {' '.join(map(str, err.cmd[:4]))} ... failed with exit status {err.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recipe: interrupted; run the same command to continue", file=sys.stderr)
        return 130
    if args.install and not args.dry_run:
        shutil.copyfile(recipe.final_model, ROOT / "models" / "default.pt")
        print(f"recipe: installed {recipe.final_model} as models/default.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
