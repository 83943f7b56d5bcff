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


@pytest.mark.parametrize("name", ["default", "paper"])
def test_recipe_commands_are_valid_and_carry_the_recipe(corpus_dirs, monkeypatch, parse_cli, name):
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / f"{name}.json", dry_run=True)
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    for stage in recipe_mod.STAGES:
        getattr(recipe, stage)()
    settings = json.loads((ROOT / "recipes" / f"{name}.json").read_text())
    cocktail = [_cocktail_args(c) for c in seen if "cocktail_cli" in map(str, c)]
    assert [c[0] for c in cocktail].count("synth") == len(settings["synth"]["sets"])
    (train,) = [c for c in cocktail if c[0] == "train"]
    params = parse_cli(train[0], train[1:])
    t = settings["train"]
    assert params["arch"] == t["arch"] and params["batch_size"] == t["batch_size"] and params["resume"]
    assert params["cpu_minutes"] == t["cpu_minutes"] and params["lr"] == t.get("lr") and params["seed"] == t["seed"]
    assert {a.split("=")[0] for a in params["arch_arg"] or []} == set(t.get("arch_args", {}))
    for c in cocktail:  # every synth, prep and eval command parses too
        parse_cli(c[0], c[1:])
    evals = [c for c in cocktail if c[0] == "eval"]
    assert evals
    if "store" in t:  # the paper's way: fixed mixtures, prepped into one store with train and val
        (prep,) = [c for c in cocktail if c[0] == "prep"]
        synth_roots = {c[c.index("-o") + 1] for c in cocktail if c[0] == "synth" and c[c.index("--split") + 1] in ("train", "val")}
        assert synth_roots == {prep[1]} and str(params["store"]) == prep[prep.index("-o") + 1]
        assert not params["sources"]
        assert all(e[e.index("--model") + 1].endswith("model.pt") for e in evals)  # no calibration step
    else:
        assert [str(s) for s in params["sources"]] == [str(corpus_dirs / "corpus"), str(corpus_dirs / "extra")]
        assert not any(c[0] == "prep" for c in cocktail)
        assert all(e[e.index("--model") + 1].endswith("default.pt") for e in evals)


def test_recipe_mixing_settings_reach_train(corpus_dirs, monkeypatch, parse_cli, tmp_path):
    """A recipe's train.mix (MixConfig settings) becomes --mix-arg, and train parses them."""
    from cocktail_cli.mixing import MixConfig

    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    settings = json.loads((ROOT / "recipes" / "default.json").read_text())
    settings["train"]["mix"] = {"vocoder_prob": 0.5, "others": [0, 2]}
    settings["work"] = str(tmp_path / "work")
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(settings))
    recipe = recipe_mod.Recipe(path, dry_run=True)
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.train()
    (train,) = [_cocktail_args(c) for c in seen]
    params = parse_cli(train[0], train[1:])
    pairs = dict(a.split("=", 1) for a in params["mix_arg"])
    assert pairs == {"vocoder_prob": "0.5", "others": "[0, 2]"}
    assert "--mix" not in train
    from cocktail_cli.commands.train import _parse_key_values  # how train reads --arch-arg and --mix-arg

    assert MixConfig.from_dict(_parse_key_values(params["mix_arg"])) == MixConfig(vocoder_prob=0.5, others=(0, 2))


def test_recipe_leaves_out_a_missing_source_folder(corpus_dirs, monkeypatch, capsys, parse_cli):
    (corpus_dirs / "extra" / "manifest.csv").unlink()
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.train()
    train = _cocktail_args(seen[0])
    params = parse_cli(train[0], train[1:])
    assert [str(s) for s in params["sources"]] == [str(corpus_dirs / "corpus")]
    assert "has no manifest.csv" in capsys.readouterr().err


def test_bakeoff_gives_every_candidate_the_same_recipe_and_budget(tmp_path, parse_cli):
    bakeoff = _load(ROOT / "bench" / "bakeoff.py")
    argv = {name: _cocktail_args(bakeoff.command(name, tmp_path, ["a", "b"], 60.0)) for name in bakeoff.CANDIDATES}
    parsed = {name: parse_cli(a[0], a[1:]) for name, a in argv.items()}
    assert {p["arch"] for p in parsed.values()} >= {"tcn", "bandsplit", "unet"}
    shared = ("batch_size", "steps", "warmup", "threads", "val_examples", "seed", "cpu_minutes", "lr", "sources")
    first = next(iter(parsed.values()))
    for p in parsed.values():
        assert all(p[k] == first[k] for k in shared) and p["cpu_minutes"] == 60.0 and p["resume"]


def test_recipe_continues_a_handed_over_run_and_never_overwrites_its_own(corpus_dirs, monkeypatch, tmp_path):
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=False)
    recipe.work = tmp_path / "work"
    recipe.work.mkdir()
    handover = tmp_path / "handed-over.pt"
    handover.write_bytes(b"checkpoint of session 1")
    recipe.recipe["handover"] = str(handover)  # absolute: ROOT / it is itself
    seen: list[list] = []
    monkeypatch.setattr(recipe, "run", lambda cmd, stdout=None, append=False: seen.append(cmd))
    recipe.train()
    assert (recipe.work / "model.pt").read_bytes() == b"checkpoint of session 1"
    assert "--resume" in _cocktail_args(seen[0])
    (recipe.work / "model.pt").write_bytes(b"trained further here")
    recipe.train()  # the run in the work folder wins over the handover
    assert (recipe.work / "model.pt").read_bytes() == b"trained further here"


def test_recipe_without_any_source_folder_stops_with_one_line(corpus_dirs, monkeypatch):
    for name in ("corpus", "extra"):
        (corpus_dirs / name / "manifest.csv").unlink()
    recipe_mod = _load(ROOT / "scripts" / "recipe.py")
    recipe = recipe_mod.Recipe(ROOT / "recipes" / "default.json", dry_run=True)
    with pytest.raises(SystemExit, match="no source folder found"):
        recipe.train()
