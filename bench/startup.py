"""Start-up time of the ``cocktail`` command, against ``python -c pass`` in the same run.

    python bench/startup.py [--repeat 7]

``--version``, ``--help``, each subcommand's ``--help`` and a bash completion request must not
import torch, scipy or numpy (goal: each under 0.3 s wall-clock); Typer and Rich render the help
pages and answer the completion request. ``separate`` itself needs torch: its start-up
(separating a 1-second file with the shipped model) is compared with ``python -c "import torch"``,
the floor for anything that uses torch. Prints, for each, the median of ``--repeat`` runs of wall-clock and of CPU time (user + system, from the child's rusage:
less disturbed by other jobs on a busy machine than wall-clock) and the ratio to its baseline; the 0.3 s goal is checked on wall-clock when the machine is idle
and on CPU time otherwise (both are printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 0.3


def cocktail_cmd() -> list[str]:
    script = Path(sys.executable).with_name("cocktail")
    if script.exists():
        return [str(script)]
    found = shutil.which("cocktail")
    return [found] if found else [sys.executable, "-m", "cocktail_cli"]


def timed(cmd: list[str], env: dict | None = None, repeat: int = 7) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``cmd`` (output discarded; a failure stops the bench)."""
    walls, cpus = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.repeat
    cocktail = cocktail_cmd()
    env = {**os.environ, "COLUMNS": "100"}
    for name in ("COCKTAIL_MODEL", "TERMINAL_WIDTH", "NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    # A user's install has its bytecode compiled (pip writes .pyc files); a machine that sets
    # PYTHONDONTWRITEBYTECODE would time Python compiling cocktail's modules on every call instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([*cocktail, "--help"], env=env, stdout=subprocess.DEVNULL, check=True)  # writes .pyc
    completion_env = {**env, "_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail separate --fo", "COMP_CWORD": "2"}

    base = timed([sys.executable, "-c", "pass"], env, n)
    helps = [[], ["separate"], ["synth"], ["prep"], ["train"], ["eval"]]
    light = [("cocktail --version", timed([*cocktail, "--version"], env, n))]
    light += [(" ".join(["cocktail", *c, "--help"]), timed([*cocktail, *c, "--help"], env, n)) for c in helps]
    light.append(("completion (bash, Tab)", timed(cocktail, completion_env, n)))

    torch_base = timed([sys.executable, "-c", "import torch"], env, n)
    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np
        import soundfile as sf

        wav = os.path.join(tmp, "one_second.wav")
        sf.write(wav, 0.1 * np.random.default_rng(0).standard_normal(44100), 44100)
        sep = timed([*cocktail, "separate", wav, "-o", os.path.join(tmp, "out")], env, n)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    idle = load < 0.5
    print(f"median of {n} runs; load average {load:.2f} ({'idle' if idle else 'busy'}: the goal is checked on "
          f"{'wall-clock' if idle else 'CPU time'})")
    print(f"{'':32} {'wall ms':>8} {'x pass':>7} {'CPU ms':>8} {'x pass':>7}  goal < {GOAL_SECONDS * 1000:.0f} ms")
    print(f"{'python -c pass (baseline)':32} {base[0] * 1000:8.0f} {1:7.1f} {base[1] * 1000:8.0f} {1:7.1f}")
    ok = True
    for name, (wall, cpu) in light:
        good = (wall if idle else cpu) < GOAL_SECONDS
        ok &= good
        print(f"{name:32} {wall * 1000:8.0f} {wall / base[0]:7.1f} {cpu * 1000:8.0f} {cpu / base[1]:7.1f}  "
              f"{'ok' if good else 'SLOW'}")
    print(f"\n{'':32} {'wall ms':>8} {'x torch':>7} {'CPU ms':>8} {'x torch':>7}")
    print(f"{'python -c import torch (base)':32} {torch_base[0] * 1000:8.0f} {1:7.2f} {torch_base[1] * 1000:8.0f} {1:7.2f}")
    print(f"{'cocktail separate (1 s file)':32} {sep[0] * 1000:8.0f} {sep[0] / torch_base[0]:7.2f} "
          f"{sep[1] * 1000:8.0f} {sep[1] / torch_base[1]:7.2f}  (the rest: other imports, model, separation, writing)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
