"""The one-command recipe (scripts/recipe.py + recipes/default.json) and the bake-off script build
`cocktail` commands that the CLI accepts, with the settings their files give."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _cocktail_args(cmd: list) -> list[str]:
    i = [str(c) for c in cmd].index("cocktail_cli")
    return [str(c) for c in cmd[i + 1 :]]


@pytest.fixture()
def corpus_dirs(tmp_path, monkeypatch):
    for name in ("corpus", "extra"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.csv").write_text("path,class,split\n")
    monkeypatch.setenv("CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("EXTRA", str(tmp_path / "extra"))
    return tmp_path


@pytest.mark.parametrize("name", ["default", "unet", "paper"])
def test_recipe_commands_are_valid_and_carry_the_recipe(corpus_dirs, monkeypatch, parse_cli, name, tmp_path):
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / f"{name}.json", dry_run=True)
    recipe.work = tmp_path / "work"  # not the developer's runs/ folder
    recipe.recipe.pop("handover", None)  # from scratch: every run (a handover skips all but the last)
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    for stage in recipe_mod.STAGES:
        getattr(recipe, stage)()
    settings = json.loads((ROOT / "recipes" / f"{name}.json").read_text())
    cocktail = [_cocktail_args(c) for c in seen if "cocktail_cli" in map(str, c)]
    assert [c[0] for c in cocktail].count("synth") == len(settings["synth"]["sets"])
    trains = [c for c in cocktail if c[0] == "train"]
    runs = settings["train"] if isinstance(settings["train"], list) else [settings["train"]]
    averages = [r for r in runs if "average" in r]  # no training: the mean of earlier runs' weights
    runs = [r for r in runs if "average" not in r]
    assert len(trains) == len(runs)
    made = [c for c in seen if "average_checkpoints.py" in map(lambda a: Path(str(a)).name, c)]
    assert len(made) == len(averages)
    outputs = {Path(parse_cli(t[0], t[1:])["output"]) for t in trains}
    for cmd, run in zip(made, averages):
        args = [str(a) for a in cmd[cmd.index(next(a for a in cmd if str(a).endswith("average_checkpoints.py"))) + 1 :]]
        assert Path(args[args.index("-o") + 1]).name == f"{run.get('name', 'model')}.pt"
        set_args = [args[i + 1] for i, a in enumerate(args) if a == "--arch-arg"]
        parts = [a.rsplit("=", 1) for a in args if "=" in a and a not in set_args]
        assert [(Path(p).stem, float(w)) for p, w in parts] == list(run["average"].items())
        assert {k: json.loads(v) for k, v in (a.split("=", 1) for a in set_args)} == run.get("arch_args", {})
        assert all(Path(p) in outputs for p, _ in parts)  # each part is a run the recipe trains
    preps = [c for c in cocktail if c[0] == "prep"]
    arch = None
    for train, run in zip(trains, runs):
        params = parse_cli(train[0], train[1:])
        arch = run.get("arch", arch)  # a fine-tune keeps its parent's architecture
        assert params["resume"] and params["batch_size"] == run["batch_size"] and params["seed"] == run["seed"]
        assert params["cpu_minutes"] == run.get("cpu_minutes") and params["lr"] == run.get("lr") and params["steps"] == run["steps"]
        assert params["arch"] == run.get("arch", "tcn") and bool(params["remix"]) == run.get("remix", False)
        assert bool(params["head_only"]) == run.get("head_only", False) and params["segment"] == run.get("segment")
        assert {a.split("=")[0] for a in params["arch_arg"] or []} == set(run.get("arch_args", {}))
        assert {a.split("=")[0] for a in params["mix_arg"] or []} == set(run.get("mix", {}))
        out = Path(params["output"])
        assert out.name == (f"{run['name']}.pt" if "name" in run else "model.pt")
        if "init_from" in run:  # a fine-tune starts from its parent run's checkpoint
            assert Path(params["init_from"]).name == f"{run['init_from']}.pt"
            averaged = {Path(str(c[[str(a) for a in c].index("-o") + 1])) for c in made}
            assert Path(params["init_from"]) in {Path(parse_cli(t[0], t[1:])["output"]) for t in trains} | averaged
        if "store" in run:  # the paper's way: fixed mixtures, prepped into a store with train and val
            set_root = {c[c.index("-o") + 1] for c in cocktail
                        if c[0] == "synth" and c[c.index("-o") + 1].endswith(settings["synth"]["sets"][run["store"]["set"]].get("out", ""))}
            (prep,) = [p for p in preps if str(params["store"]) == p[p.index("-o") + 1]]
            assert prep[1] in set_root and not params["sources"]
        else:
            assert [str(s) for s in params["sources"]] == [str(corpus_dirs / "corpus"), str(corpus_dirs / "extra")]
    assert len(preps) == len({p[1] for p in preps})  # each store prepped once
    for c in cocktail:  # every synth, prep and eval command parses too
        parse_cli(c[0], c[1:])
    evals = [c for c in cocktail if c[0] == "eval"]
    assert evals
    final = "default.pt" if "calibrate" in settings else "model.pt"
    assert all(e[e.index("--model") + 1].endswith(final) for e in evals)


def test_a_synth_set_with_its_own_seed_gets_it(corpus_dirs, monkeypatch, parse_cli, tmp_path):
    """recipes/default.json's second training set repeats --seed after the shared one: the last wins."""
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    recipe.work = tmp_path / "work"
    seen: list[list] = []
    recipe.recipe.pop("handover", None)
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.synth()
    synths = [_cocktail_args(c) for c in seen]
    seeds = {c[c.index("-o") + 1].split("/")[-1] + ":" + c[c.index("--split") + 1]: parse_cli(c[0], c[1:])["seed"] for c in synths}
    assert seeds["synth-sirens:train"] == 8 and seeds["synth:train"] == 7 and seeds["synth-sirens:val"] == 7
    assert parse_cli(synths[-1][0], synths[-1][1:])["synthetic_sirens"] == 0.4


def test_a_chain_skips_the_runs_a_later_checkpoint_already_holds(corpus_dirs, monkeypatch, tmp_path):
    """A handed-over final checkpoint skips every earlier phase; otherwise a phase whose checkpoint
    is past its steps is skipped and the rest run, in order; the average is made again only when
    a run it averages is newer than it."""
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=False)
    recipe.work = tmp_path / "work"
    recipe.work.mkdir()
    recipe.recipe["handover"] = str(tmp_path / "absent.pt")
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append((cmd, stdout)))
    output = lambda cmd: Path(str(cmd[[str(a) for a in cmd].index("-o") + 1])).name  # noqa: E731
    recipe.train()
    assert len(seen) == len(recipe.runs)  # nothing there: every call runs
    assert [output(c) for c, _ in seen][:4] == ["tcn.pt"] * 3 + ["tcn-sirens.pt"]
    assert [output(c) for c, _ in seen][-4:] == ["phase9.pt", "phase10.pt", "average.pt", "model.pt"]
    assert seen[0][1].name == "tcn-train.jsonl" and seen[-3][1].name == "phase10-train.jsonl"
    assert seen[-2][1] is None and Path(seen[-2][0][1]).name == "average_checkpoints.py"
    assert seen[-1][1].name == "train.jsonl" and "--head-only" in _cocktail_args(seen[-1][0])  # the head, last
    # phase 2 reached (a real checkpoint at step 7,500): phases 1 and 2 are skipped
    import cocktail_cli.checkpoint as ck

    steps = {"tcn.pt": 7500, "tcn-remix.pt": 10, "phase10.pt": 100, "model.pt": 3000}
    monkeypatch.setattr(ck, "read_raw", lambda path: {"resume": {"step": steps[Path(path).name]}})
    (recipe.work / "tcn.pt").write_bytes(b"x")
    seen.clear()
    recipe.train()
    assert len(seen) == len(recipe.runs) - 2
    # a later phase has started: every run before it is skipped
    (recipe.work / "tcn-remix.pt").write_bytes(b"x")
    seen.clear()
    recipe.train()
    assert len(seen) == len(recipe.runs) - 4
    (recipe.work / "phase10.pt").write_bytes(b"x")  # phase 10 under way: it continues, then the average, the head
    seen.clear()
    recipe.train()
    assert [output(c) for c, _ in seen] == ["phase10.pt", "average.pt", "model.pt"]
    (recipe.work / "average.pt").write_bytes(b"x")  # the average made: the head trains
    seen.clear()
    recipe.train()
    assert [output(c) for c, _ in seen] == ["model.pt"]
    (recipe.work / "model.pt").write_bytes(b"x")  # the head trained to its steps: nothing to do
    seen.clear()
    recipe.train()
    assert seen == []
    import os

    (recipe.work / "model.pt").unlink()
    later = (recipe.work / "average.pt").stat().st_mtime + 10  # phase 10 trained further by hand: average again
    os.utime(recipe.work / "phase10.pt", (later, later))
    recipe.train()
    assert [output(c) for c, _ in seen] == ["average.pt", "model.pt"]
    # the last run is on the sources: the 20,000-mixture training sets and their stores are not made
    seen.clear()
    recipe.synth()
    recipe.prep()
    made = [Path(_cocktail_args(c)[_cocktail_args(c).index("-o") + 1]).name + ":" + _cocktail_args(c)[_cocktail_args(c).index("--split") + 1]
            for c, _ in seen if _cocktail_args(c)[0] == "synth"]
    assert sorted(made) == ["synth:val", "test-extra:test", "test-natural:test", "test:test"]
    assert not [c for c, _ in seen if _cocktail_args(c)[0] == "prep"]


def test_a_dry_run_with_the_handover_shows_what_a_clean_checkout_runs(corpus_dirs, monkeypatch, tmp_path, parse_cli):
    """The shipped recipe's handover (its model: the activity head trained on the frozen average of
    phases 9 and 10, an export) is in the tree: a clean checkout trains nothing and synthesises only
    the evaluation sets."""
    from cocktail_cli.checkpoint import read_raw

    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    assert (ROOT / recipe.recipe["handover"]).is_file()
    handed = read_raw(ROOT / recipe.recipe["handover"])
    average, head = recipe.runs[-2], recipe.runs[-1]
    expected = {**average["arch_args"], **head["arch_args"]}
    # the events stage's scene_head trains the head again with its own head arguments
    scene_args = recipe.recipe["events"]["scene_head"]["args"]
    for flag, value in zip(scene_args[::2], scene_args[1::2]):
        if flag == "--hidden":
            expected["activity_hidden"] = int(value)
        elif flag == "--arch-arg":
            key, raw = value.split("=", 1)
            expected[key] = json.loads(raw)
    assert {k: handed["arch_args"].get(k) for k in expected} == expected
    assert handed["training"]["config"]["head_only"] and "resume" not in handed
    recipe.work = tmp_path / "work"
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(_cocktail_args(cmd)))
    recipe.synth()
    recipe.prep()
    recipe.train()
    assert [c[0] for c in seen] == ["synth"] * 4


def test_recipe_leaves_out_a_missing_source_folder(corpus_dirs, monkeypatch, capsys, parse_cli):
    (corpus_dirs / "extra" / "manifest.csv").unlink()
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    recipe.recipe.pop("handover")  # from scratch: the runs on the sources train
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.work = corpus_dirs / "work"
    recipe.train()
    train = _cocktail_args(seen[-1])  # the head (the entry before it averages)
    params = parse_cli(train[0], train[1:])
    assert [str(s) for s in params["sources"]] == [str(corpus_dirs / "corpus")]
    assert "has no manifest.csv" in capsys.readouterr().err


@pytest.mark.parametrize("rnd, archs", [("crops", {"tcn", "bandsplit", "unet"}), ("scenes", {"tcn", "unet", "stcn"})])
def test_bakeoff_gives_every_candidate_the_same_recipe_and_budget(tmp_path, parse_cli, rnd, archs):
    bakeoff = _load(ROOT / "bench" / "bakeoff.py")
    argv = {name: _cocktail_args(bakeoff.command(rnd, name, tmp_path, ["a", "b"], 60.0)) for name in bakeoff.ROUNDS[rnd]}
    parsed = {name: parse_cli(a[0], a[1:]) for name, a in argv.items()}
    assert {p["arch"] for p in parsed.values()} >= archs
    shared = ("batch_size", "steps", "warmup", "threads", "val_examples", "seed", "cpu_minutes", "lr", "sources", "mix_arg", "segment")
    first = next(iter(parsed.values()))
    for p in parsed.values():
        assert all(p[k] == first[k] for k in shared) and p["cpu_minutes"] == 60.0 and p["resume"]
    if rnd == "scenes":  # every candidate hears scenes and carries an activity head
        assert "scene_prob=0.6" in first["mix_arg"]
        for p in parsed.values():
            assert "activity=true" in p["arch_arg"]
            # no statistic over the chunk: stcn has per-frame norms only; the others per frame, or
            # over a window weighted by level (silence around a sound stays out of its statistics)
            assert p["arch"] == "stcn" or 'block_norm="frame"' in p["arch_arg"] or (
                'block_norm="window"' in p["arch_arg"] and 'norm_weighting="amplitude"' in p["arch_arg"]
            )


@pytest.mark.parametrize("name", ["unet", "default"])
def test_recipe_continues_a_handed_over_run_and_never_overwrites_its_own(corpus_dirs, monkeypatch, tmp_path, name):
    """unet's last run trains (the handover is continued); default's handover is the finished model
    (an export: nothing to train)."""
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / f"{name}.json", dry_run=False)
    recipe.work = tmp_path / "work"
    recipe.work.mkdir()
    handover = tmp_path / "handed-over.pt"
    handed = b"checkpoint of session 1" if name == "unet" else (ROOT / "models" / "default.pt").read_bytes()
    handover.write_bytes(handed)
    recipe.recipe["handover"] = str(handover)  # absolute: ROOT / it is itself
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.train()
    assert (recipe.work / "model.pt").read_bytes() == handed
    if name == "unet":
        assert len(seen) == 1 and "--resume" in _cocktail_args(seen[0])
    else:
        assert seen == []
    (recipe.work / "model.pt").write_bytes(b"trained further here")
    recipe.train()  # the run in the work folder wins over the handover
    assert (recipe.work / "model.pt").read_bytes() == b"trained further here"


def test_recipe_without_any_source_folder_stops_with_one_line(corpus_dirs, monkeypatch):
    for name in ("corpus", "extra"):
        (corpus_dirs / name / "manifest.csv").unlink()
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    recipe.recipe.pop("handover")  # from scratch (the handover needs no training, so no sources)
    recipe.work = corpus_dirs / "work"  # not the developer's runs/ folder
    with pytest.raises(SystemExit, match="no source folder found"):
        recipe.train()


def test_the_report_of_an_averaged_model_shows_its_parts_curves(corpus_dirs, monkeypatch, tmp_path):
    """The shipped model is an average: the card shows each part's validation curve, from the work
    folder, or on a clean checkout from the logs committed in models/checkpoints/."""
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    recipe.work = tmp_path / "work"
    recipe.work.mkdir()
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append([str(c) for c in cmd]))
    recipe.report()
    curves = dict(seen[0][i + 1].split("=", 1) for i, a in enumerate(seen[0]) if a == "--curve")
    assert list(curves) == list(recipe.runs[-2]["average"])  # the average's parts (the head does not separate)
    assert all(Path(log).parent == ROOT / "models" / "checkpoints" and Path(log).is_file() for log in curves.values())
    (recipe.work / "phase9-train.jsonl").write_text("")
    seen.clear()
    recipe.report()
    assert f"phase9={recipe.work / 'phase9-train.jsonl'}" in seen[0]
