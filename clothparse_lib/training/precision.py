"""The numeric precision and memory format of a training on its device (``TrainSettings.precision="auto"``).

* CUDA: fp16 mixed precision (with PyTorch's loss scaler) and channels-last.
* A CPU with native bfloat16 (AVX512-BF16 or AMX): bf16 autocast and channels-last, the *fast CPU path*. Measured on
  2 cores (AMD EPYC with avx512_bf16, torch 2.14.1, 128x96, batch 8, images/s of the bare train step, fp32 -> fast
  path): extended U-Net 14.6 -> 23.5, plain U-Net 15.3 -> 26.6, ClassBranch only 13.2 -> 21.8, Branches 13.9 ->
  22.8, DeepLabV3 9.7 -> 14.1, smp Unet 23.2 -> 27.0, FPN 27.3 -> 29.1, but DeepLabV3+ 33.2 -> 31.3: the models in
  :data:`CPU_FP32_MODELS` stay in fp32. ``benchmarks/train_check.py --compare-precision`` measures it again.
* Any other CPU: fp32 (bf16 without hardware support is emulated, usually slower than fp32).
"""
from __future__ import annotations

import functools

import torch

from ..profiles import check_precision

__all__ = ["CPU_FP32_MODELS", "cpu_has_native_bf16", "resolve_precision", "uses_channels_last"]


CPU_FP32_MODELS = frozenset({"deeplabv3plus"})  # slower with the fast CPU path (measured, see above)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles), as torch's oneDNN kernels see it."""
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_precision(precision: str, device, model: str | None = None) -> str:
    """``TrainSettings.precision`` for ``model`` on ``device`` (None: the CPU): "auto" is fp16 on CUDA, bf16 on a
    CPU with native bfloat16 (except :data:`CPU_FP32_MODELS`), fp32 elsewhere; fp16 on a CPU is refused
    (:func:`profiles.check_precision`)."""
    kind = torch.device(device).type if device is not None else "cpu"
    if precision != "auto":
        check_precision(precision, kind)
        return precision
    if kind == "cuda":
        return "fp16"
    if kind == "cpu" and model not in CPU_FP32_MODELS and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def uses_channels_last(precision: str, device) -> bool:
    """Channels-last weights and activations: on CUDA, and with bf16 on a CPU (oneDNN's fast layout; measured
    above: most of the fast path's gain over bf16 alone is there for the U-Nets)."""
    kind = torch.device(device).type if device is not None else "cpu"
    return kind == "cuda" or (kind == "cpu" and precision == "bf16")
