"""Names and defaults that the command-line options show, importable without numpy or torch.

``cocktail --help``, ``--version`` and every shell-completion Tab build the whole Typer app, so the
option definitions in ``commands/`` may use only light modules (this one, ``classes``, ``errors``);
the library modules, which pull in numpy, scipy and torch, are imported inside the commands.
Each value here mirrors the library's own (``tests/test_first_run.py`` checks they agree).
"""

from __future__ import annotations

#: ``sources.SPLITS``: the splits of a corpus and of a synth output.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: ``evaluate.ORACLES``: ideal masks ``cocktail eval --oracle`` can score.
ORACLES: tuple[str, ...] = ("irm1", "irm2", "ibm")
#: ``metrics.ABSENT_THRESHOLD_DB``: a reference this far below the mixture counts as absent.
ABSENT_THRESHOLD_DB = -60.0
#: ``nets.ARCHS`` (its keys) and ``nets.DEFAULT_ARCH``.
ARCH_NAMES: tuple[str, ...] = ("tcn", "paper", "blstm", "bandsplit", "unet", "stcn")
DEFAULT_ARCH = "tcn"
#: ``separate.DEFAULT_TEMPLATE``: where ``cocktail separate`` writes each stem below ``--out``.
DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
