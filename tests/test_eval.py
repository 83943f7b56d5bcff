"""``cocktail eval``: file, model and oracle modes on tiny generated data; outputs; bad inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from cocktail_cli import nets
from cocktail_cli.checkpoint import save_checkpoint
from cocktail_cli.classes import CLASSES
from cocktail_cli.cli import app
from cocktail_cli.errors import CocktailError
from cocktail_cli.evaluate import EvalJob, aggregate, run
from cocktail_cli.metrics import bss_eval, si_sdr
from cocktail_cli.stft import STFTConfig

SR = 8000
N = SR  # one second


def stem_signals(rng: np.random.Generator, active: list[bool]) -> np.ndarray:
    """Five distinct band-shaped noises (zeros where inactive)."""
    t = np.arange(N) / SR
    stems = []
    for i, on in enumerate(active):
        if not on:
            stems.append(np.zeros(N))
            continue
        x = np.convolve(rng.standard_normal(N), np.hanning(3 + 4 * i), mode="same")
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t + i)
        stems.append(0.1 * x / np.std(x))
    return np.stack(stems)


def write_stems(folder: Path, stems: np.ndarray, sr: int = SR, mix: np.ndarray | None = None, with_mix: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for cls, x in zip(CLASSES, stems):
        sf.write(str(folder / f"{cls}.wav"), np.asarray(x).T, sr, subtype="FLOAT")
    if with_mix:
        sf.write(str(folder / "mix.wav"), np.asarray(stems.sum(0) if mix is None else mix).T, sr, subtype="FLOAT")
    return folder


def estimates_of(stems: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mix = stems.sum(0)
    return 0.8 * stems + 0.1 * mix + 0.005 * rng.standard_normal(stems.shape)


def invoke(*args: str):
    result = CliRunner().invoke(app, ["eval", *args])
    return result


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


@pytest.fixture
def pair(tmp_path):
    """One reference folder (dog absent) and one estimate folder."""
    rng = np.random.default_rng(0)
    refs = stem_signals(rng, [True, True, False, True, True])
    ests = estimates_of(refs, rng)
    write_stems(tmp_path / "ref" / "m1", refs)
    write_stems(tmp_path / "est" / "m1", ests, with_mix=False)
    return tmp_path, refs, ests


def test_file_mode_json_matches_the_metrics(pair):
    root, refs, ests = pair
    result = invoke("--reference", str(root / "ref" / "m1"), "--estimate", str(root / "est" / "m1"), "--json")
    assert result.exit_code == 0, result.output
    objs = json_lines(result.stdout)
    assert [o["type"] for o in objs] == ["mixture", "aggregate"]
    mixture, summary = objs
    assert mixture["id"] == "m1" and mixture["sample_rate"] == SR and mixture["samples"] == N
    assert set(mixture["systems"]) == {"mixture", "estimate"}
    est = mixture["systems"]["estimate"]
    assert est["dog"]["status"] == "absent" and est["dog"]["sdr"] is None
    refs32 = refs.astype(np.float32).astype(np.float64)
    ests32 = ests.astype(np.float32).astype(np.float64)
    mix = refs32.sum(0)
    # absent stem: leakage = estimate energy relative to the mixture
    expected_leak = 10 * np.log10(np.sum(ests32[2] ** 2) / np.sum(mix**2))
    assert est["dog"]["leakage_db"] == pytest.approx(expected_leak, abs=1e-3)
    active = np.array([True, True, False, True, True])
    sdr, sir, sar = bss_eval(refs32, ests32, active=active)
    for i, cls in enumerate(CLASSES):
        if active[i]:
            assert est[cls]["status"] == "active"
            assert est[cls]["sdr"] == pytest.approx(sdr[i], abs=1e-3)
            assert est[cls]["sir"] == pytest.approx(sir[i], abs=1e-3)
            assert est[cls]["sar"] == pytest.approx(sar[i], abs=1e-3)
            gain = si_sdr(ests32[i], refs32[i]) - si_sdr(mix, refs32[i])
            assert est[cls]["si_sdri"] == pytest.approx(gain, abs=1e-3)
    # the floor: SI-SDRi of the mixture is 0, leakage of the mixture is 0 dB
    assert mixture["systems"]["mixture"]["speech"]["si_sdri"] == pytest.approx(0.0, abs=1e-9)
    assert mixture["systems"]["mixture"]["dog"]["leakage_db"] == pytest.approx(0.0, abs=1e-6)
    # aggregate: stable keys, counts, the absent stem kept out of the means
    over = summary["systems"]["estimate"]["overall"]
    assert (over["active"], over["absent"], over["solo"]) == (4, 1, 0)
    assert over["sdr_mean"] == pytest.approx(np.mean(sdr[active]), abs=1e-3)
    assert over["leakage_db_median"] == pytest.approx(expected_leak, abs=1e-3)
    dog = summary["systems"]["estimate"]["classes"]["dog"]
    assert dog["sdr_mean"] is None and dog["absent"] == 1
    for key in ("sdr_mean", "sdr_median", "sir_mean", "sar_mean", "si_sdr_mean", "si_sdri_mean",
                "si_sdri_median", "solo_si_sdr_mean", "leakage_db_mean", "leakage_db_median"):
        assert key in over
    # the estimates are better than the floor
    assert over["si_sdri_mean"] > 1.0


def test_file_mode_loads_neither_torch_nor_scipy(pair):
    """Scoring files needs numpy and soundfile only: torch and scipy were most of its start-up."""
    root, refs, ests = pair
    probe = (
        "import sys\n"
        f"sys.argv = ['cocktail', 'eval', '--reference', {str(root / 'ref')!r}, '--estimate', {str(root / 'est')!r}, '--json']\n"
        "from cocktail_cli.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy', 'librosa', 'mir_eval'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    scored = json_lines(proc.stdout.split("LOADED")[0])
    assert scored[0]["systems"]["estimate"]["baby_cry"]["sdr"] is not None
    assert proc.stdout.rsplit("LOADED", 1)[1].strip() == "[]"


def test_estimates_in_webm_are_scored(tmp_path):
    """Estimates delivered compressed are read through PyAV (Opus in WebM, whose decoder removes
    the codec's delay; the AAC files PyAV writes do not record theirs, so M4A is tested elsewhere)."""
    from encode import encode

    sr = 48000
    t = np.arange(2 * sr) / sr
    refs = np.stack([0.1 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * (k + 1) * t)) for k, f in
                     enumerate((220, 330, 550, 770, 990))])
    write_stems(tmp_path / "ref" / "m1", refs, sr=sr)
    (tmp_path / "est" / "m1").mkdir(parents=True)
    for k, cls in enumerate(CLASSES):
        encode(tmp_path / "est" / "m1" / f"{cls}.webm", refs[k][None], sr)
    result = invoke("--reference", str(tmp_path / "ref" / "m1"), "--estimate", str(tmp_path / "est" / "m1"), "--json")
    assert result.exit_code == 0, result.output
    scored = json_lines(result.stdout)[0]["systems"]["estimate"]
    assert all(scored[c]["sdr"] > 10 for c in CLASSES), scored


def test_shards_together_score_every_mixture_once(tmp_path):
    rng = np.random.default_rng(5)
    for k in range(7):
        refs = stem_signals(rng, [True] * 5)
        write_stems(tmp_path / "ref" / f"m{k}", refs)
        write_stems(tmp_path / "est" / f"m{k}", estimates_of(refs, rng), with_mix=False)
    scored = []
    for k in (1, 2, 3):
        result = invoke("--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"), "--json",
                        "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        lines = json_lines(result.stdout)
        assert lines[-1]["type"] == "aggregate" and lines[-1]["mixtures"] == len(lines) - 1
        scored.append([line["id"] for line in lines[:-1]])
    assert sorted(i for shard in scored for i in shard) == [f"m{k}" for k in range(7)]
    assert [len(shard) for shard in scored] == [3, 2, 2]
    result = invoke("--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"), "--shard", "4/3")
    assert result.exit_code != 0 and "K counts from 1 to N" in str(result.exception)


def test_folders_of_folders_csv_and_table(pair, tmp_path):
    root, refs, ests = pair
    rng = np.random.default_rng(1)
    refs2 = stem_signals(rng, [True] * 5)
    write_stems(root / "ref" / "m2", refs2)
    write_stems(root / "est" / "m2", estimates_of(refs2, rng), with_mix=False)
    out = tmp_path / "scores.csv"
    result = invoke("--reference", str(root / "ref"), "--estimate", str(root / "est"), "--csv", str(out))
    assert result.exit_code == 0, result.output
    assert "SI-SDRi" in result.stderr and "estimate" in result.stderr  # the Rich table on stderr
    assert result.stdout == ""
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["mixture", "system", "stem", "status", "sdr", "sir", "sar", "si_sdr", "si_sdri", "leakage_db"]
    assert len(rows) == 2 * 2 * 5  # mixtures x systems x stems
    assert {r["mixture"] for r in rows} == {"m1", "m2"}
    dog = next(r for r in rows if r["mixture"] == "m1" and r["system"] == "estimate" and r["stem"] == "dog")
    assert dog["status"] == "absent" and dog["sdr"] == "" and float(dog["leakage_db"]) < 0


def test_solo_stem_is_reported_apart():
    rng = np.random.default_rng(2)
    refs = stem_signals(rng, [False, False, False, True, False])
    ests = refs * 0.9 + 0.01 * rng.standard_normal(refs.shape)
    from cocktail_cli.evaluate import MixtureData, score_mixture

    res = score_mixture(MixtureData("solo", SR, refs, refs.sum(0)), {"estimate": ests})
    speech = res["systems"]["estimate"]["speech"]
    assert speech["status"] == "solo" and speech["si_sdri"] is None and speech["si_sdr"] > 15
    summary = aggregate([res])["systems"]["estimate"]
    over = summary["overall"]
    assert (over["active"], over["absent"], over["solo"]) == (0, 4, 1)
    assert over["si_sdri_mean"] is None and over["solo_si_sdr_mean"] == pytest.approx(speech["si_sdr"])
    assert summary["classes"]["speech"]["solo"] == 1


def test_oracle_masks_beat_the_floor(pair):
    root, _, _ = pair
    result = invoke("--reference", str(root / "ref" / "m1"), "--oracle", "irm1", "--json")
    assert result.exit_code == 0, result.output
    summary = json_lines(result.stdout)[-1]
    assert list(summary["systems"]) == ["mixture", "oracle_irm1"]
    assert summary["systems"]["oracle_irm1"]["overall"]["sdr_mean"] > summary["systems"]["mixture"]["overall"]["sdr_mean"] + 3
    for kind in ("irm2", "ibm"):
        job = EvalJob(reference=root / "ref", oracle=kind)
        (outcome,) = list(run(job))
        over = aggregate([outcome.result])["systems"][f"oracle_{kind}"]["overall"]
        assert over["si_sdri_mean"] > 3


def make_synth_root(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for split, count in (("train", 1), ("test", 2)):
        for k in range(count):
            active = [bool(rng.random() < 0.7) for _ in range(4)] + [True]
            write_stems(root / split / f"{k:06d}", stem_signals(rng, active))
        (root / split / "metadata.jsonl").write_text("{}\n")
    return root


@pytest.fixture
def small_model(tmp_path):
    torch.manual_seed(0)
    net = nets.build("tcn", channels=16, hidden=32, depth=2, repeats=1)
    return save_checkpoint(tmp_path / "model.pt", net, "tcn", STFTConfig())


def test_model_mode_on_synth_root_split_and_folder(tmp_path, small_model):
    root = make_synth_root(tmp_path / "data")
    result = invoke(str(root), "--model", small_model, "--split", "test", "--oracle", "irm2", "--json")
    assert result.exit_code == 0, result.output
    objs = json_lines(result.stdout)
    assert [o["id"] for o in objs[:-1]] == ["test/000000", "test/000001"]
    assert set(objs[0]["systems"]) == {"mixture", "oracle_irm2", "model"}
    assert objs[-1]["mixtures"] == 2
    # a split folder, and the whole root
    result = invoke(str(root / "test"), "--model", small_model, "--json", "--limit", "1")
    assert [o.get("id") for o in json_lines(result.stdout)[:-1]] == ["000000"]
    result = invoke(str(root), "--model", small_model, "--json", "--no-model")
    ids = [o["id"] for o in json_lines(result.stdout)[:-1]]
    assert ids == ["test/000000", "test/000001", "train/000000"]


def test_model_mode_scores_the_separator_output(tmp_path, small_model):
    from cocktail_cli.separator import Separator

    root = make_synth_root(tmp_path / "data")
    (outcome,) = list(run(EvalJob(data_dir=root / "train", model=small_model, precision="fp32")))  # as Separator's default
    mix, sr = sf.read(str(root / "train" / "000000" / "mix.wav"), dtype="float32", always_2d=True)
    stems = Separator.from_checkpoint(small_model).separate(mix.T, sr)[:, 0].astype(np.float64)
    refs = np.stack([sf.read(str(root / "train" / "000000" / f"{c}.wav"))[0] for c in CLASSES])
    got = outcome.result["systems"]["model"]["other"]
    assert got["si_sdr"] == pytest.approx(float(si_sdr(stems[4], refs[4])), abs=1e-3)


def test_jobs_score_in_worker_processes_as_one_process_does(tmp_path, small_model):
    """--jobs 2: the same results in the same order; a bad mixture's error (naming its file) and
    another's warning come back from the workers."""
    root = make_synth_root(tmp_path / "data")
    bad = root / "test" / "000001" / "dog.wav"
    bad.write_bytes(b"not audio")
    short = root / "train" / "000000" / "mix.wav"
    mix, sr = sf.read(str(short))
    sf.write(str(short), mix[:-50], sr, subtype="FLOAT")

    def outcomes(jobs: int) -> list:
        warnings: list[str] = []
        job = EvalJob(data_dir=root, model=small_model, oracle="irm1")
        got = list(run(job, warn=warnings.append, jobs=jobs))
        return got, warnings

    one, one_warnings = outcomes(1)
    two, two_warnings = outcomes(2)
    assert [o.id for o in two] == [o.id for o in one] == ["test/000000", "test/000001", "train/000000"]
    assert two_warnings == one_warnings and "trimmed" in two_warnings[0]
    assert type(two[1].error) is type(one[1].error) and str(two[1].error) == str(one[1].error)
    assert str(bad) in str(two[1].error)
    for a, b in ((one[0], two[0]), (one[2], two[2])):
        for system, stems in a.result["systems"].items():
            for cls, row in stems.items():
                for key, value in row.items():
                    other = b.result["systems"][system][cls][key]
                    assert other == value if not isinstance(value, float) else other == pytest.approx(value, abs=1e-4)
    result = invoke(str(root / "test"), "--model", small_model, "--jobs", "2", "--json")
    assert result.exit_code == 1
    assert [o["type"] for o in json_lines(result.stdout)] == ["mixture", "error", "aggregate"]


def test_different_lengths_are_trimmed_with_a_warning(pair):
    root, refs, ests = pair
    sf.write(str(root / "est" / "m1" / "speech.wav"), ests[3][: N - 100], SR, subtype="FLOAT")
    result = invoke("--reference", str(root / "ref" / "m1"), "--estimate", str(root / "est" / "m1"), "--json")
    assert result.exit_code == 0, result.output
    assert "trimmed" in result.stderr
    assert json_lines(result.stdout)[0]["samples"] == N - 100


def test_stereo_is_mixed_down_and_channel_mismatch_is_an_error(tmp_path):
    rng = np.random.default_rng(4)
    refs = stem_signals(rng, [True] * 5)
    stereo = np.stack([refs, 0.5 * refs], axis=1)  # (C, 2, N)
    write_stems(tmp_path / "ref", stereo, mix=stereo.sum(0))
    write_stems(tmp_path / "est", stereo * 0.9, with_mix=False)
    result = invoke("--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"))
    assert result.exit_code == 0, result.output
    assert "mono" in result.stderr
    sf.write(str(tmp_path / "est" / "dog.wav"), refs[2], SR, subtype="FLOAT")
    result = invoke("--reference", str(tmp_path / "ref"), "--estimate", str(tmp_path / "est"))
    assert result.exit_code == 1
    assert "dog.wav" in result.stderr and "channel" in result.stderr


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d, x: sf.write(str(d / "siren.wav"), x, 16000, subtype="FLOAT"), ("siren.wav", "sample rate")),
        (lambda d, x: sf.write(str(d / "siren.wav"), np.where(np.arange(N) == 5, np.nan, x), SR, subtype="FLOAT"), ("siren.wav", "NaN")),
        (lambda d, x: (d / "siren.wav").unlink(), ("siren.wav", "missing")),
        (lambda d, x: (d / "siren.wav").write_bytes(b"not audio"), ("siren.wav", "decode")),
    ],
)
def test_bad_estimates_fail_naming_the_file(pair, damage, words):
    root, _, ests = pair
    damage(root / "est" / "m1", ests[1])
    result = invoke("--reference", str(root / "ref" / "m1"), "--estimate", str(root / "est" / "m1"))
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if "siren.wav" in line]
    for word in words:
        assert word in line


def test_batch_goes_on_after_a_bad_mixture_and_cli_prints_one_line(pair):
    root, refs, ests = pair
    write_stems(root / "ref" / "m0", refs)
    write_stems(root / "est" / "m0", ests, with_mix=False)
    (root / "est" / "m0" / "other.wav").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "cocktail_cli", "eval", "-r", str(root / "ref"), "-e", str(root / "est"), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    objs = json_lines(proc.stdout)
    assert [o["type"] for o in objs] == ["error", "mixture", "aggregate"]
    assert objs[-1]["failed"] == 1 and objs[-1]["mixtures"] == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert any("other.wav" in line and "empty" in line for line in errors)
    assert "Traceback" not in proc.stderr


def test_usage_errors(tmp_path, pair):
    root, _, _ = pair
    assert isinstance(invoke("--reference", str(root / "ref")).exception, CocktailError)  # no --estimate/--oracle
    assert isinstance(invoke("--reference", str(root / "ref"), "--oracle", "wiener").exception, CocktailError)
    assert isinstance(invoke(str(tmp_path / "nowhere")).exception, CocktailError)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no mixtures" in str(invoke(str(empty)).exception)


def test_help_shows_the_three_modes():
    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    for text in ("--reference", "--estimate", "--oracle", "--json", "--csv", "cocktail eval data/"):
        assert text in result.output


def test_card_report_gathers_a_recipes_results(tmp_path, small_model, capsys):
    """scripts/card_report.py: the floor, a compared system, the model and the oracle per class from
    real `eval --json` output, the validation curve, the recipe's other tables and the goals."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("card_report", Path(__file__).resolve().parents[1] / "scripts" / "card_report.py")
    card_report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(card_report)
    root = make_synth_root(tmp_path / "data")
    work, paper = tmp_path / "work", tmp_path / "paper"
    for folder, extra in ((work, ["--oracle", "irm1"]), (paper, [])):
        folder.mkdir()
        result = invoke(str(root), "--model", small_model, "--split", "test", "--json", *extra)
        assert result.exit_code == 0, result.output
        (folder / "eval-test.jsonl").write_text(result.stdout)
    (work / "train.jsonl").write_text(
        json.dumps({"event": "start"}) + "\n"
        + "".join(json.dumps({"event": "eval", "cpu_seconds": 60.0 * m, "val": {"si_sdri": v}}) + "\n" for m, v in ((30, 1.5), (60, 2.25)))
    )
    (work / "rates.md").write_text("| input | mean |\n| --- | --- |\n| 22.05 kHz 16-bit | 1.00 |\n")
    assert card_report.main([str(work), "--label", "unet", "--compare", f"paper network={paper}", "--goal-mean", "-100"]) == 0
    text = capsys.readouterr().out
    model = json_lines(result.stdout)[-1]["systems"]["model"]
    rows = [line for line in text.splitlines() if line.startswith("| speech |")]
    assert [r.split(" | ")[1] for r in rows] == ["mixture (floor)", "paper network", "unet", "oracle IRM (ceiling)"]
    mean = model["overall"]["si_sdri_mean"]
    assert "| overall | unet |" in text and f"mean SI-SDRi {mean:.2f} dB (goal >= -100.0): met" in text
    assert "30: 1.50, 60: 2.25" in text and "| 22.05 kHz 16-bit | 1.00 |" in text
    assert card_report.main([str(tmp_path / "nothing")]) == 1


def test_oracle_ceilings_script_ranks_the_masks(tmp_path, capsys):
    """scripts/oracle_ceilings.py: a bounded complex mask is above the phase-sensitive mask, which is
    above the ratio mask, on real mixtures of overlapping signals; and the table has every setting."""
    import importlib.util

    from fake_synth import make_synth

    root = make_synth(tmp_path / "data", {"test": 4}, seconds=1.0, sr=16000, seed=3, p_active=1.0)
    spec = importlib.util.spec_from_file_location("oracle_ceilings", Path(__file__).resolve().parent.parent / "scripts" / "oracle_ceilings.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    scores = script.ceilings(root / "test", [(256, 64), (512, 128)], count=4)
    assert set(scores) == {(n, h, k) for n, h in [(256, 64), (512, 128)] for k in script.KINDS}
    mean = {key: np.mean([v for per in values for v in per]) for key, values in scores.items()}
    for n, h in [(256, 64), (512, 128)]:
        assert mean[(n, h, "cmask")] > mean[(n, h, "psm")] > mean[(n, h, "irm1")] > 3.0
    # an unbounded complex mask gives back the references (up to the STFT round trip)
    assert script.main([str(root / "test"), "--count", "2", "--stft", "256/64", "--bound", "1e6"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| 256 / 64 | cmask")]
    assert len(rows) == 1 and float(rows[0].split(" | ")[2]) > 60


def test_the_summary_table_fits_80_columns_whole():
    """Ten columns of the widest values eval prints (a mixture's 150 dB SIR, -120 dB leakage,
    three-digit counts, an oracle beside the model) fit a terminal of 80 columns, nothing cut."""
    from rich.console import Console

    from cocktail_cli.commands.eval import summary_table

    worst = {"sdr_mean": -150.77, "sir_mean": 150.77, "sar_mean": -150.77, "si_sdr_mean": -10.55,
             "si_sdri_mean": 14.77, "leakage_db_median": -120.0, "solo_si_sdr_mean": -10.0,
             "active": 600, "absent": 600, "solo": 100}
    block = {"classes": {c: dict(worst) for c in CLASSES}, "overall": dict(worst)}
    summary = {"mixtures": 600, "systems": {"mixture": block, "oracle_irm1": block, "model": block}}
    console = Console(width=80, record=True)
    console.print(summary_table(summary))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert not any("…" in line for line in lines)
    assert any(line.startswith("baby_cry mixture -150.8 150.8") for line in lines)
