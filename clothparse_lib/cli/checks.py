"""What a command can refuse before it imports the training stack (fastai, smp: seconds to tens of seconds), let
alone prepares data or takes a lock: its settings in range, a device, weights, an output folder, a busy model
folder. Each refusal is a one-line ``ValueError`` (a folder in use: ``locks.FolderLocked``)."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .. import settings
from ..locks import check_free
from ..profiles import TrainSettings, check_precision, get_profile
from ..storage import check_writable

__all__ = ["DEVICE_PATTERN", "run_dir", "train_settings", "check_count", "check_device", "check_train"]

DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps|xpu(:\d+)?")  # what torch.device takes, as a command gives it


def run_dir(args) -> Path:
    return settings.run_dir(args.profile, args.run_dir, args.runs_dir)


def train_settings(args) -> TrainSettings:
    """The profile's training settings with the command line's overrides, checked (``TrainSettings``' ranges,
    a weights file that exists)."""
    overrides = {k: v for k, v in {"encoder": args.encoder, "epochs_frozen": args.epochs_frozen,
                                   "epochs_unfrozen": args.epochs_unfrozen, "batch_size": args.batch_size,
                                   "lr_frozen": args.lr_frozen, "lr_unfrozen": args.lr_unfrozen}.items() if v is not None}
    if args.weights is not None:
        overrides["weights"] = None if args.weights == "none" else args.weights
    for key in ("precision", "data_on_device"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "compile", False):
        overrides["compile"] = True
    if getattr(args, "no_cudnn_benchmark", False):
        overrides["cudnn_benchmark"] = False
    train = replace(get_profile(args.profile).train, **overrides)
    if train.weights not in (None, "imagenet") and not Path(train.weights).is_file():
        raise ValueError(f"--weights {train.weights}: no such file (imagenet, none, or a local state-dict file)")
    return train


def check_count(value: int | None, flag: str) -> None:
    """Refuse a count (processes, trainings at once) below 1; None is the default."""
    if value is not None and value < 1:
        raise ValueError(f"{flag} must be an integer >= 1, got {value}")


def check_device(device: str | None) -> str | None:
    """``device`` as torch would take it (``cpu``, ``cuda``, ``cuda:1``...), or None (the default)."""
    if device is not None and not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"--device {device!r} is not a device: cpu, cuda, cuda:1 ...")
    return device


def check_train(args) -> TrainSettings:
    """Everything ``train`` can check before its imports: the settings, the device and the precision it can run
    (the default device known once torch is imported), the run folder writable, each model's folder free."""
    train = train_settings(args)
    if get_profile(args.profile).source != "synthetic":
        settings.data_dir(args.data_dir)
    device = check_device(args.device)
    if device is not None:
        check_precision(train.precision, device.split(":")[0])
    folder = run_dir(args)
    check_writable(folder, "--run-dir", folder=True)
    if not args.wait and not args.distributed:
        for name in args.model:
            check_free(folder / "models" / name)
    return train
