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
   sessions; with a larger ``cpu_minutes`` in the recipe it trains further);
4. ``calibrate``: the mask temperature on the val set, and the export without optimizer state
   (a recipe without ``calibrate`` evaluates the trained checkpoint as it is);
5. ``evaluate``: ``cocktail eval`` on every test set, the rate table and the clean-clip shares;
6. ``report``: ``card.md``, the model card's results (``scripts/card_report.py``: per-class tables
   with the floor, the recipe's ``report.compare`` systems and the oracle; the validation curve;
   rates; clean clips; the goals);
7. ``--install``: copy the exported model to ``models/default.pt``.

Outputs go to the recipe's ``work`` folder (``runs/recipe``): ``model.pt`` (the run, resumable),
``train.jsonl`` (one line per validation), ``default.pt`` (the export), ``calibration.md``,
``eval-<set>.jsonl``, ``rates.md``, ``clean-<folder>.md``, ``card.md``. Source folders that are
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
STAGES = ("synth", "prep", "train", "calibrate", "evaluate", "report")


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
    def store(self) -> Path | None:
        """The store the run trains on, or None for mixtures drawn on the fly from the sources."""
        store = self.recipe["train"].get("store")
        return self.work / "store" if store else None

    @property
    def final_model(self) -> Path:
        """What evaluate scores and --install copies: the calibrated export, or the run itself."""
        return self.work / ("default.pt" if "calibrate" in self.recipe else "model.pt")

    # -- the stages ------------------------------------------------------------------------------
    def synth(self) -> None:
        spec = self.recipe["synth"]
        for name, s in spec["sets"].items():
            sources = _present(s["sources"], self.recipe)
            if len(sources) < len(s["sources"]):
                print(f"recipe: warning: evaluation set {name} skipped (a source folder is missing)", file=sys.stderr)
                continue
            self.run([*self.cocktail, "synth", *sources, "-o", self.folder(name), "--split", s["split"],
                      "--count", str(s["count"]), *spec["args"], *s.get("args", [])])

    def prep(self) -> None:
        if self.store is None:
            return
        spec = self.recipe["train"]["store"]
        self.run([*self.cocktail, "prep", self.folder(spec["set"]), "-o", self.store, *spec.get("args", [])])

    def train(self) -> None:
        t = self.recipe["train"]
        handover = self.recipe.get("handover")
        if handover and not (self.work / "model.pt").exists() and (ROOT / handover).exists():
            # A run handed over from another machine or session: continue it rather than start over.
            print(f"recipe: continuing the run handed over in {handover}", flush=True)
            if not self.dry_run:
                shutil.copyfile(ROOT / handover, self.work / "model.pt")
        if self.store is not None:
            data = [self.store]
        else:
            sources = _present(self.recipe["sources"], self.recipe)
            if not sources:
                raise SystemExit("recipe: no source folder found; set CORPUS (and EXTRA) to the corpus folders")
            data = [arg for source in sources for arg in ("--sources", source)]
        cmd = [*self.cocktail, "train", *data, "-o", self.work / "model.pt", "--resume", "--json", "--arch", t["arch"]]
        for key, value in t.get("arch_args", {}).items():
            cmd += ["--arch-arg", f"{key}={json.dumps(value)}"]
        for key, value in t.get("mix", {}).items():  # MixConfig settings, e.g. {"vocoder_prob": 0.5}
            cmd += ["--mix-arg", f"{key}={json.dumps(value)}"]
        for key, value in t.items():
            if key not in ("why", "arch", "arch_args", "mix", "store"):
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        self.run(cmd, stdout=self.work / "train.jsonl", append=True)

    def calibrate(self) -> None:
        if "calibrate" not in self.recipe:
            return
        c = self.recipe["calibrate"]
        model, out = self.work / "model.pt", self.work / "default.pt"
        if _newer(out, model):
            print(f"recipe: {out} is up to date")
            return
        self.run([sys.executable, ROOT / "scripts" / "calibrate_temperature.py", model, self.folder(c["set"]),
                  "--split", self.recipe["synth"]["sets"][c["set"]]["split"], "-o", out, *c.get("args", [])],
                 stdout=self.work / "calibration.md")

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
