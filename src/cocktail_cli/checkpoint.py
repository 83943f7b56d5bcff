"""The one checkpoint format, written by ``train`` and read by ``separate``, ``eval`` and ``train --resume``.

A checkpoint is a ``torch.save`` dict that describes itself:

- ``format`` / ``format_version``: ``"cocktail-checkpoint"`` / 1;
- ``arch`` and ``arch_args``: the architecture name and its constructor arguments;
- ``state_dict``: weights and buffers (input-normalisation statistics included);
- ``stft``: the STFT settings (sample rate included), ``classes``: the stem order;
- ``training``: a summary (steps, examples, CPU time, validation scores, data used);
- ``package_version``: the cocktail version that wrote it;
- ``resume`` (optional): optimizer, scheduler, step, RNG and data-order state for ``--resume``;
  stripped from shipped models by :func:`export`.

Loading uses ``weights_only=True``: a checkpoint cannot run code when opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from . import __version__
from .atomic import atomic_open
from .classes import CLASSES
from .errors import CheckpointError
from .nets import ARCHS, build
from .stft import STFTConfig

FORMAT = "cocktail-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "arch", "arch_args", "state_dict", "stft", "classes")
#: the key in ``resume`` that marks a handover packed by ``scripts/compact_resume.py --pack``
#: (train refuses to resume one until it is unpacked)
PACKED_RESUME = "packed"


@dataclass
class LoadedModel:
    model: nn.Module
    stft: STFTConfig
    arch: str
    path: str
    training: dict = field(default_factory=dict)
    package_version: str = ""
    resume: dict | None = None
    #: Inference settings calibrated after training (``mask_temperature``, ``events``); see :func:`export`.
    inference: dict = field(default_factory=dict)


def checkpoint_dict(model: nn.Module, arch: str, stft: STFTConfig, training: dict | None = None, resume: dict | None = None) -> dict:
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "arch_args": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "stft": stft.to_dict(),
        "classes": list(CLASSES),
        "training": dict(training or {}),
        "package_version": __version__,
    }
    if resume is not None:
        ckpt["resume"] = resume
    return ckpt


def save_checkpoint(path: str | os.PathLike, model: nn.Module, arch: str, stft: STFTConfig, training: dict | None = None, resume: dict | None = None) -> str:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    return save_raw(path, checkpoint_dict(model, arch, stft, training, resume))


def save_raw(path: str | os.PathLike, ckpt: dict) -> str:
    with atomic_open(path, fsync=True) as fh:
        torch.save(ckpt, fh)
    return os.fspath(path)


def read_raw(path: str | os.PathLike) -> dict:
    """Load and validate the dict, without building the model."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise CheckpointError("checkpoint not found", name)
    if os.path.isdir(name):
        raise CheckpointError("is a folder, not a checkpoint (give the .pt file that cocktail train wrote)", name)
    if os.path.getsize(name) == 0:
        raise CheckpointError("checkpoint is empty (0 bytes)", name)
    try:
        ckpt = torch.load(name, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types, with long texts of its own, for cut or garbled files
        raise CheckpointError("not a cocktail checkpoint (damaged or not a torch file)", name) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("not a cocktail checkpoint", name)
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"damaged checkpoint (missing {', '.join(missing)})", name)
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format {ckpt['format_version']} is newer than this cocktail understands ({FORMAT_VERSION}); upgrade cocktail",
            name,
        )
    if list(ckpt["classes"]) != list(CLASSES):
        raise CheckpointError(f"incompatible checkpoint: classes {ckpt['classes']} != {list(CLASSES)}", name)
    if ckpt["arch"] not in ARCHS:
        raise CheckpointError(f"incompatible checkpoint: unknown architecture '{ckpt['arch']}'", name)
    return ckpt


def _checked_inference(inference, name: str) -> dict:
    """The inference settings, or :class:`CheckpointError` when the separator could not use them."""
    temperature = inference.get("mask_temperature", 1.0) if isinstance(inference, dict) else None
    if not isinstance(temperature, (int, float)) or not 0.1 <= temperature <= 10:
        raise CheckpointError(f"damaged checkpoint (inference settings {inference!r})", name)
    for key in ("events", "watch_events"):  # post-processing tuned for files and for live streams (events.py)
        if inference.get(key) is None:
            continue
        from .events import EventSettings

        try:
            EventSettings.from_dict(inference[key])
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"damaged checkpoint (inference settings: {key}: {err})", name) from None
    return dict(inference)


def model_from_dict(ckpt: dict, name: str = "") -> LoadedModel:
    try:
        stft = STFTConfig.from_dict(ckpt["stft"])
        model = build(ckpt["arch"], **ckpt["arch_args"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"incompatible checkpoint ({err})", name) from None
    n_bins = getattr(model, "config", {}).get("n_bins")
    if n_bins is not None and n_bins != stft.n_bins:
        raise CheckpointError(
            f"incompatible checkpoint: the net expects {n_bins} frequency bins, its STFT gives {stft.n_bins}", name
        )
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"damaged or incompatible weights ({first[:160]})", name) from None
    for t in model.state_dict().values():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError("damaged checkpoint (weights contain NaN or inf)", name)
    inference = _checked_inference(ckpt.get("inference") or {}, name)
    model.eval()
    return LoadedModel(
        model=model, stft=stft, arch=ckpt["arch"], path=name, training=ckpt.get("training", {}),
        package_version=ckpt.get("package_version", ""), resume=ckpt.get("resume"), inference=inference,
    )


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Rebuild a model from a checkpoint file alone; :class:`CheckpointError` when it cannot."""
    name = os.fspath(path)
    return model_from_dict(read_raw(name), name)


def export(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False, inference: dict | None = None) -> str:
    """Copy a checkpoint without its resume state (and optionally weights in float16) for shipping.

    ``inference``: settings calibrated on validation data after training, stored with the weights
    and applied by :class:`~cocktail_cli.separator.Separator` (``mask_temperature``) and by
    ``events`` and ``watch`` (``events``, and ``watch_events`` for live streams: each an
    :class:`~cocktail_cli.events.EventSettings` dict, ``scripts/tune_events.py``).
    """
    ckpt = read_raw(src)
    ckpt.pop("resume", None)
    if inference:
        # refuse to write settings the loader would refuse
        ckpt["inference"] = _checked_inference({**(ckpt.get("inference") or {}), **inference}, os.fspath(src))
    if half:
        ckpt["state_dict"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    return save_raw(dst, ckpt)


def average(sources: dict[str | os.PathLike, float], dst: str | os.PathLike, arch_args: dict | None = None) -> str:
    """Write the weighted mean of checkpoints of one network (same arch, arguments, STFT) to ``dst``.

    For fine-tunes of one starting point, the mean of their weights trades their strengths off
    without training (the shipped model is phase 9 and phase 10 averaged: phase 10 puts more of a
    lone siren in its stem, phase 9 separates mixtures better; models/README.md). Weights are
    normalised to sum to 1. The result has no resume state and no inference settings (calibrate
    it again); its ``training`` summary is the last source's, with ``averaged_from`` listing the
    sources, their weights and steps.

    ``arch_args``: constructor arguments set on the result, for changes that keep every weight's
    name and shape (the shipped model is the same average with ``block_norm=window``: windowed,
    level-weighted statistics in place of GroupNorm's over the chunk, with GroupNorm's
    parameters). The loader refuses what does not fit, before anything is written.
    """
    if not sources:
        raise ValueError("average needs at least one checkpoint")
    total = sum(sources.values())
    if any(w < 0 for w in sources.values()) or total <= 0:
        raise ValueError(f"average weights must be >= 0 with a positive sum, got {list(sources.values())}")
    parts = [(os.fspath(path), read_raw(path), weight / total) for path, weight in sources.items()]
    first_name, first, _ = parts[0]
    for name, ckpt, _ in parts:
        for key in ("arch", "arch_args", "stft"):
            if ckpt[key] != first[key]:
                raise CheckpointError(f"cannot average with {first_name}: its {key} differs", name)
        if ckpt["state_dict"].keys() != first["state_dict"].keys():
            raise CheckpointError(f"cannot average with {first_name}: its weights differ in names", name)
    mean = {}
    for key, value in first["state_dict"].items():
        if not value.is_floating_point():  # counters and the like: the first source's
            mean[key] = value
            continue
        mean[key] = sum(ckpt["state_dict"][key].double() * w for _, ckpt, w in parts).to(value.dtype)
    out = {k: v for k, v in parts[-1][1].items() if k not in ("resume", "inference", "state_dict")}
    out["state_dict"] = mean
    if arch_args:
        out["arch_args"] = {**out["arch_args"], **arch_args}
    out["training"] = {
        **out.get("training", {}),
        "averaged_from": [
            {"checkpoint": Path(name).name, "weight": w, "steps": ckpt.get("training", {}).get("steps")}
            for name, ckpt, w in parts
        ],
        **({"arch_args_set": dict(arch_args)} if arch_args else {}),
    }
    model_from_dict(out, os.fspath(dst))  # refuse to write what the loader would refuse
    return save_raw(dst, out)


#: Environment variable naming a checkpoint to use instead of the shipped model.
MODEL_ENV = "COCKTAIL_MODEL"


def default_model_path() -> Path:
    """The default model: ``$COCKTAIL_MODEL`` when set, else the model shipped with the package
    (``models/default.pt`` in the repository, installed as ``cocktail_cli.shipped``)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    from importlib import resources

    return Path(str(resources.files("cocktail_cli.shipped") / "default.pt"))
