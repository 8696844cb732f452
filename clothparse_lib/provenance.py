"""Where a result comes from: the code's git commit, the package versions and the machine, in one place."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import torch

__all__ = ["git_commit", "environment", "hardware"]


def git_commit() -> str | None:
    """The commit of the library's checkout (None outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Python, the versions of the packages that decide the numbers, and the machine (:func:`hardware`)."""
    pkgs = ("torch", "torchvision", "fastai", "segmentation-models-pytorch", "timm", "numpy")
    return {"python": platform.python_version(), "packages": {p: version(p) for p in pkgs}, "device": hardware()}


def hardware() -> str:
    """The machine this run used, in words (GPU name, or CPU model and core count)."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {len(os.sched_getaffinity(0))} cores"
