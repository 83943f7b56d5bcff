"""Rebuild the example recording shipped with the package (``cocktail separate --example``).

    python scripts/make_example.py                       # apt-get download the package, build
    python scripts/make_example.py --deb PATH.deb        # or use a .deb already downloaded
    python scripts/make_example.py --check               # exit 1 if examples/example.* differ

The example is a 20-second busy scene mixed from sound effects and spoken stamp descriptions of
the Debian package ``tuxpaint-stamps-default`` (GPL-2, Bill Kendrick and contributors): a fire
truck's siren, a barking dog, a voice naming animals, birdsong, a hammer and an air horn. It holds no baby
cry (no freely licensed one was at hand), which shows what an absent stem looks like. Nothing
comes from ../shared/corpus.

Writes ``examples/example.ogg`` (mono, 44.1 kHz, Ogg Vorbis), ``examples/example.md`` (every
source file, its licence and where it sits in the scene) and ``examples/example.ogg.license``
(copyright and SPDX licence identifier beside the audio). The mix is fixed by the table below;
``--check`` compares the attribution text and the decoded audio (same length, and within the
lossy encoder's error: at least 18 dB SNR, so another libvorbis version still passes).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tuxpaint-stamps-default"
VERSION = "2022.06.04-1"
LICENSE = "GPL-2"
STAMPS = "usr/share/tuxpaint/stamps"
SR = 44100
SECONDS = 20.0
#: Peak level of the finished mix (dBFS).
PEAK_DB = -1.0

#: The fire truck stamp is three sounds in a row: an engine (0-1.4 s), a siren's wail (1.4-5.2 s,
#: about 20 dB quieter than the rest) and an air horn (5.2-10.3 s). Mixed whole as "siren", as in
#: the first example, the example's siren was mostly a horn, which the corpus files
#: under "other" (car_horn), and the quiet wail was buried: no model could put much of it in the
#: siren stem. So the wail is the siren (twice, as a passing truck's siren comes and goes) and
#: the horn is an "other".
WAIL, HORN = (1.4, 5.2), (5.2, 10.3)

#: (class, file below STAMPS, start in seconds, level in dBFS RMS of the clip's active part,
#:  the part of the file used, (from, to) in seconds, or None for all of it)
SCENE: list[tuple[str, str, float, float, tuple[float, float] | None]] = [
    ("other", "animals/birds/blackbird.ogg", 0.0, -34.0, None),
    ("other", "animals/birds/blackbird.ogg", 7.9, -36.0, None),
    ("other", "household/tools/hammer.ogg", 16.2, -32.0, None),
    ("speech", "animals/mammals/dogs/dog_desc.ogg", 0.6, -24.0, None),
    ("speech", "vehicles/emergency/firetruck_desc_fr.ogg", 1.6, -24.0, None),
    ("speech", "animals/birds/blackbird_desc.ogg", 3.3, -24.0, None),
    ("speech", "vehicles/emergency/firetruck_desc_es.ogg", 5.0, -24.0, None),
    ("speech", "animals/mammals/hippopotamus_desc.ogg", 7.0, -24.0, None),
    ("speech", "vehicles/emergency/firetruck_desc_ro.ogg", 9.0, -24.0, None),
    ("speech", "animals/birds/seagull_desc.ogg", 11.6, -24.0, None),
    ("speech", "vehicles/emergency/firetruck_desc_ru.ogg", 13.2, -24.0, None),
    ("speech", "animals/mammals/elephant_desc.ogg", 15.0, -24.0, None),
    ("speech", "animals/birds/nandou_desc.ogg", 16.6, -24.0, None),
    ("speech", "vehicles/emergency/firetruck_desc_be.ogg", 18.4, -24.0, None),
    ("dog", "animals/mammals/dogs/dog.ogg", 2.2, -22.0, None),
    ("dog", "animals/mammals/dogs/dog.ogg", 4.1, -22.0, None),
    ("dog", "animals/mammals/dogs/dog.ogg", 10.3, -22.0, None),
    ("dog", "animals/mammals/dogs/dog.ogg", 14.2, -22.0, None),
    ("dog", "animals/mammals/dogs/dog.ogg", 17.6, -22.0, None),
    ("siren", "vehicles/emergency/firetruck.ogg", 6.0, -26.0, WAIL),
    ("siren", "vehicles/emergency/firetruck.ogg", 9.6, -26.0, WAIL),
    ("other", "vehicles/emergency/firetruck.ogg", 14.0, -30.0, HORN),
]


def download(folder: Path) -> Path:
    """``apt-get download`` the package into ``folder`` (needs a Debian/Ubuntu apt source)."""
    subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=folder, check=True)
    debs = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        sys.exit(f"apt-get download {PACKAGE} wrote no .deb into {folder}")
    return debs[0]


def load(path: Path) -> np.ndarray:
    """Mono float64 at ``SR``."""
    data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    x = data.mean(axis=1)
    if sr != SR:
        x = soxr.resample(x, sr, SR, quality="VHQ")
    return x


def active_rms(x: np.ndarray) -> float:
    """RMS over the 50 ms frames within 30 dB of the loudest (the clip's audible part)."""
    n = int(0.05 * SR)
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x[None]
    rms = np.sqrt((frames**2).mean(axis=1))
    return float(np.sqrt((rms[rms >= rms.max() * 10 ** (-30 / 20)] ** 2).mean()))


def build(root: Path) -> tuple[np.ndarray, list[dict], dict[str, np.ndarray]]:
    """The mix (float32, peak PEAK_DB), its attribution rows, and each class's sum at the mix's scale."""
    total = int(SECONDS * SR)
    mix = np.zeros(total)
    stems: dict[str, np.ndarray] = {}
    rows = []
    for cls, rel, start, level_db, part in SCENE:
        path = root / STAMPS / rel
        x = load(path)
        if part is not None:
            x = x[int(part[0] * SR) : int(part[1] * SR)]
        x *= 10 ** (level_db / 20) / max(active_rms(x), 1e-9)
        begin = int(round(start * SR))
        x = x[: total - begin]
        fade = min(len(x), int(0.01 * SR))  # 10 ms ramps: no clicks at either end
        x[:fade] *= np.linspace(0, 1, fade)
        x[len(x) - fade :] *= np.linspace(1, 0, fade)
        mix[begin : begin + len(x)] += x
        stems.setdefault(cls, np.zeros(total))[begin : begin + len(x)] += x
        rows.append(
            {"class": cls, "file": f"/{STAMPS}/{rel}", "part": part, "start": start, "seconds": len(x) / SR, "level": level_db,
             "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
        )
    scale = 10 ** (PEAK_DB / 20) / np.abs(mix).max()
    return (mix * scale).astype(np.float32), rows, {c: (x * scale).astype(np.float32) for c, x in stems.items()}


def attribution(rows: list[dict]) -> str:
    lines = [
        "# The example recording (`example.ogg`)",
        "",
        "`cocktail separate --example` separates this file. It is a 20-second scene mixed by",
        "`scripts/make_example.py` from recordings of the Debian package",
        f"`{PACKAGE}` version `{VERSION}` (Tux Paint stamps, copyright 2002-2022 Bill Kendrick",
        f"and contributors), licensed **{LICENSE}** (GNU General Public License version 2 or later;",
        "full text in `COPYING.example`). The example is a work derived from them and is therefore",
        "itself distributed under GPL-2 or later; its source is that package and the script, which",
        "rebuilds it (`python scripts/make_example.py`). The rest of cocktail is MIT-licensed.",
        "",
        "It holds a siren, a dog, speech and other sounds (birdsong, a hammer, a truck's air horn),",
        "overlapping; no baby cry, so `baby_cry` should come out nearly silent. Mono, 44.1 kHz, Ogg",
        "Vorbis, peak -1 dBFS. The fire truck stamp is an engine, a siren's wail and an air horn in a",
        "row: the wail is used as the siren and the horn as an \"other\" sound (\"part\" below).",
        "",
        "| class | source package | file | part (s) | license | starts at (s) | length (s) | level (dBFS RMS) | sha256 (first 16) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['class']} | {PACKAGE} {VERSION} | `{r['file']}` | "
            f"{'all' if r['part'] is None else '%.1f-%.1f' % r['part']} | {LICENSE} | {r['start']:.1f} | "
            f"{r['seconds']:.2f} | {r['level']:.0f} | `{r['sha256']}` |"
        )
    return "\n".join(lines) + "\n"


def license_file() -> str:
    """``example.ogg.license``: the licence and copyright beside the audio, in the REUSE/SPDX form
    that licence scanners read (an Ogg file cannot carry a header comment of its own)."""
    return "\n".join([
        "SPDX-FileCopyrightText: 2002-2022 Bill Kendrick and the Tux Paint contributors",
        "SPDX-License-Identifier: GPL-2.0-or-later",
        "",
        f"example.ogg is mixed by scripts/make_example.py from recordings of the Debian package {PACKAGE}",
        f"{VERSION} ({LICENSE}, GNU General Public License version 2 or later), and is distributed under the",
        "same licence. example.md lists every source file and where it sits in the scene; COPYING.example",
        "is the licence text.",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE} .deb (default: apt-get download it)")
    parser.add_argument("--out", type=Path, default=ROOT / "examples", help="folder for example.ogg, example.md and example.ogg.license")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    parser.add_argument("--stems", type=Path, help="also write each class's part of the mix as DIR/<class>.wav "
                        "(float, 44.1 kHz): references to score a separation of the example")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cocktail-example-") as tmp:
        tmp = Path(tmp)
        deb = args.deb or download(tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
        mix, rows, stems = build(tmp / "root")
    if args.stems:
        args.stems.mkdir(parents=True, exist_ok=True)
        for cls, x in stems.items():
            sf.write(str(args.stems / f"{cls}.wav"), x, SR, subtype="FLOAT")
    text = attribution(rows)
    ogg, md, lic = args.out / "example.ogg", args.out / "example.md", args.out / "example.ogg.license"
    if args.check:
        old, sr = sf.read(str(ogg), dtype="float32")
        same = sr == SR and len(old) == len(mix)
        if same:
            snr = 10 * np.log10(np.sum(mix.astype(np.float64) ** 2) / max(np.sum((old - mix) ** 2, dtype=np.float64), 1e-20))
            same = snr >= 18.0
        same = same and md.read_text(encoding="utf-8") == text and lic.read_text(encoding="utf-8") == license_file()
        print("example is current" if same else "example differs from what the script builds", file=sys.stderr)
        return 0 if same else 1
    args.out.mkdir(parents=True, exist_ok=True)
    sf.write(str(ogg), mix, SR, format="OGG", subtype="VORBIS")
    md.write_text(text, encoding="utf-8")
    lic.write_text(license_file(), encoding="utf-8")
    print(f"wrote {ogg} ({ogg.stat().st_size} bytes), {md} and {lic}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
