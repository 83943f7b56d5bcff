"""Mask networks. Every architecture maps a mixture magnitude ``(batch, bins, frames)`` to masks
``(batch, classes, bins, frames)`` that sum to one over the classes, and records its constructor
arguments in ``self.config`` so a checkpoint rebuilds it with nothing else.
"""

from __future__ import annotations

import torch.nn as nn

from .bandsplit import BandSplitNet
from .blstm import BLSTMMaskNet
from .paper import PaperNet
from .tcn import StridedTCNMaskNet, TCNMaskNet
from .unet import UNetMaskNet

ARCHS: dict[str, type[nn.Module]] = {
    "tcn": TCNMaskNet,
    "paper": PaperNet,
    "blstm": BLSTMMaskNet,
    "bandsplit": BandSplitNet,
    "unet": UNetMaskNet,
    "stcn": StridedTCNMaskNet,
}
DEFAULT_ARCH = "tcn"


def build(arch: str, **kwargs) -> nn.Module:
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture '{arch}' (choose {', '.join(ARCHS)})") from None
    return cls(**kwargs)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
