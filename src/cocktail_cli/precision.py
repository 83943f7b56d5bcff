"""Which arithmetic the networks run in: ``--precision auto|bf16|fp32``.

Why bf16: on a CPU with AMX-BF16 one core multiplies bfloat16 matrices at about 1.2 TFLOP/s
against 0.15 in float32 (a 2760 x 1024 x 1024 product: 4.8-5.3 ms against 38-40 ms, measured on
the project's machine), and oneDNN runs 1x1 convolutions and linear layers on it under
``torch.autocast("cpu", dtype=torch.bfloat16)``. Only the network runs in bf16: the STFT, the
features and input normalisation, the masks and the loss stay float32, and the weights are float32
masters (autocast casts a copy per call).

``auto`` takes bf16 where it is fast: CUDA, or a CPU that reports AMX-BF16 or AVX512-BF16;
float32 elsewhere (emulated bf16 on an older CPU is slower than float32).
"""

from __future__ import annotations

import contextlib
import functools

PRECISIONS = ("auto", "bf16", "fp32")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX-BF16 or AVX512-BF16)."""
    flags = _cpu_flags()
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve(precision: str | None, device: str = "cpu") -> str:
    """``"bf16"`` or ``"fp32"`` for ``precision`` (``auto``/None: what this device does fast)."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if str(device).startswith("cuda"):
        return "bf16"
    if str(device) == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: str = "cpu"):
    """A context that runs the network in ``precision`` (already resolved) on ``device``."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=str(device).split(":")[0], dtype=torch.bfloat16)
