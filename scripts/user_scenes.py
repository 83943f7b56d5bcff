"""Separate whole scenes as a user would, and say by numbers where each sound went.

    python scripts/user_scenes.py [--model PATH] [--decoys DIR] [--out DIR]

Three 30 s scenes are built from recordings no model trained on (the test splits of the corpus,
and look-alike sounds such as a phone ring, a bell or an alarm clock from ``--decoys``, e.g.
Debian's sound-theme-freedesktop: ``apt-get download sound-theme-freedesktop && dpkg -x *.deb x``
then ``--decoys x/usr/share/sounds/freedesktop/stereo``):

1. street: a background that runs on, a siren that passes and then a quiet street (4 s of it
   alone, then silence around it), a dog barking under someone talking;
2. home: a crying baby, a phone ringing, speech, a bell;
3. park: speech, a dog, birds, an alarm clock.

Each scene is written as a user's file would come (16 kHz mono 16-bit WAV, 44.1 kHz stereo MP3,
48 kHz float WAV) and separated with ``cocktail separate`` (the installed command, end to end);
for every placed sound the table gives the share of it in each stem, measured by projecting the
stems onto the sound (at the file's rate, over the sound's own extent).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from cocktail_cli.audio import resample  # noqa: E402
from cocktail_cli.classes import CLASSES  # noqa: E402

CORPUS = Path(os.environ.get("CORPUS", ROOT.parent / "shared" / "corpus"))
SR = 48000
SECONDS = 30.0
FORMATS = {  # name -> (rate, channels, soundfile format, subtype, extension)
    "16k mono wav": (16000, 1, "WAV", "PCM_16", "wav"),
    "44.1k stereo mp3": (44100, 2, "MP3", "MPEG_LAYER_III", "mp3"),
    "48k float wav": (48000, 1, "WAV", "FLOAT", "wav"),
}


def _clip(rows: list[dict], cls: str, k: int, seconds: float) -> np.ndarray:
    # the donateacry categories 'burping' and 'tired' are often no cry at all: take the hungry ones
    picked = sorted((r for r in rows if r["class"] == cls and (cls != "baby_cry" or "hungry" in r["category"])), key=lambda r: r["path"])
    r = picked[(k * 7) % len(picked)]
    x, sr = sf.read(CORPUS / r["path"], dtype="float32", always_2d=True)
    x = resample(x.mean(1), sr, SR)[: int(seconds * SR)]
    return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def _decoy(folder: Path | None, name: str, seconds: float) -> np.ndarray | None:
    if folder is None or not (folder / f"{name}.oga").exists():
        return None
    x, sr = sf.read(folder / f"{name}.oga", dtype="float32", always_2d=True)
    x = resample(x.mean(1), sr, SR)
    reps = int(np.ceil(seconds * SR / len(x)))
    x = np.tile(np.concatenate([x, np.zeros(int(0.4 * SR), np.float32)]), reps)[: int(seconds * SR)]
    return x / (np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2)) + 1e-9)


def scenes(decoys: Path | None) -> dict[str, list[tuple[str, str, float, np.ndarray, float]]]:
    """name -> placed sounds ``(label, class, onset s, signal at SR, level dB)``."""
    with open(CORPUS / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    out = {
        "street": [
            ("background", "other", 0.0, _clip(rows, "other", 0, SECONDS), -30),
            ("siren passing", "siren", 2.0, _clip(rows, "siren", 1, 4.0), -18),
            ("dog", "dog", 12.0, _clip(rows, "dog", 2, 4.0), -26),
            ("speech over the dog", "speech", 11.0, _clip(rows, "speech", 3, 6.0), -22),
            ("siren again, alone", "siren", 22.0, _clip(rows, "siren", 5, 4.0), -20),
        ],
        "home": [
            ("baby", "baby_cry", 1.0, _clip(rows, "baby_cry", 1, 6.0), -22),
            ("speech", "speech", 9.0, _clip(rows, "speech", 8, 6.0), -22),
            ("baby again", "baby_cry", 20.0, _clip(rows, "baby_cry", 4, 5.0), -24),
        ],
        "park": [
            ("background", "other", 0.0, _clip(rows, "other", 9, SECONDS), -32),
            ("speech", "speech", 3.0, _clip(rows, "speech", 12, 5.0), -22),
            ("dog", "dog", 10.0, _clip(rows, "dog", 7, 4.0), -22),
        ],
    }
    for scene, name, onset, level in (("home", "phone-incoming-call", 15.0, -22), ("home", "bell", 27.0, -24),
                                      ("park", "alarm-clock-elapsed", 18.0, -24)):
        x = _decoy(decoys, name, 4.0)
        if x is not None:
            out[scene].append((name, "other", onset, x, level))
    return out


def render(placed) -> tuple[np.ndarray, list[np.ndarray]]:
    n = int(SECONDS * SR)
    parts = []
    for _, _, onset, x, level in placed:
        p = np.zeros(n, np.float32)
        a = int(onset * SR)
        m = min(len(x), n - a)
        p[a : a + m] = x[:m] * 10 ** (level / 20)
        parts.append(p)
    return np.sum(parts, axis=0), parts


def shares(stems: dict[str, np.ndarray], part: np.ndarray) -> np.ndarray:
    """The share of ``part`` in each stem: the projection of the stem onto it, over its extent."""
    on = np.abs(part) > 0
    ref = part[on].astype(np.float64)
    return np.array([float(np.dot(stems[c][on], ref) / np.dot(ref, ref)) for c in CLASSES])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--decoys", type=Path)
    parser.add_argument("--out", type=Path, help="keep the scenes and stems here (default: a temporary folder)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    cocktail = shutil.which("cocktail") or str(Path(sys.executable).with_name("cocktail"))
    print(f"{'scene':7s} {'format':17s} {'sound':22s} " + " ".join(f"{c[:7]:>7s}" for c in CLASSES))
    for name, placed in scenes(args.decoys).items():
        mix, parts = render(placed)
        for fmt, (rate, ch, major, subtype, ext) in FORMATS.items():
            audio = resample(mix, SR, rate)
            audio = np.stack([audio, audio * 0.8], 1) if ch == 2 else audio
            path = work / f"{name}-{fmt.replace(' ', '-')}.{ext}"
            sf.write(path, audio, rate, format=major, subtype=subtype)
            cmd = [cocktail, "separate", str(path), "-o", str(work / "stems"), "--bits", "32"]
            if args.model:
                cmd += ["--model", args.model]
            subprocess.run(cmd, check=True)
            stems = {}
            for c in CLASSES:
                y, _ = sf.read(work / "stems" / path.stem / f"{c}.wav", dtype="float64", always_2d=True)
                stems[c] = resample(y.mean(1).astype(np.float32), rate, SR)[: len(mix)].astype(np.float64)
                stems[c] = np.pad(stems[c], (0, len(mix) - len(stems[c])))
            scale = (1.0 + 0.8) / 2 if ch == 2 else 1.0  # the stereo file's mean channel
            for (label, cls, *_), part in zip(placed, parts):
                s = shares(stems, part * scale)
                print(f"{name:7s} {fmt:17s} {label[:22]:22s} " + " ".join(f"{v:7.2f}" for v in s) + f"   ({cls})")
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
