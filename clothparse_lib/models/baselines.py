"""The segmentation-models-pytorch (smp) baselines, on the same encoder and weights as the U-Nets.

smp's Unet is a lighter decoder than fastai's: an extra row, not the paper's plain U-Net.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from . import encoders as E
from .outputs import ModelOutput

__all__ = ["build_baseline", "baseline_class", "Baseline", "BASELINES"]

BASELINES = {"fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus", "smp_unet": "Unet"}


class Baseline:
    """Mixed into an smp model: its forward returns a :class:`outputs.ModelOutput` (segmentation only)."""

    supports_prior = False

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(super().forward(x))


@functools.cache
def baseline_class(arch: str) -> type:
    """smp's model class ``arch`` (e.g. ``"FPN"``) with :class:`Baseline`'s forward (smp is imported here: slow)."""
    import segmentation_models_pytorch as smp
    return type(arch, (Baseline, getattr(smp, arch)), {"__module__": __name__, "__doc__": Baseline.__doc__})


def __getattr__(name: str) -> type:  # the classes as attributes of this module (pickle finds them there)
    if name in BASELINES.values():
        return baseline_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_baseline(name: str, encoder: str, n_classes: int, state_dict: dict | None) -> nn.Module:
    """Baseline ``name`` of :data:`BASELINES` on ``encoder``, with the encoder weights ``state_dict`` (None: random)."""
    model = baseline_class(BASELINES[name])(encoder_name=E.smp_encoder_name(encoder), encoder_weights=None,
                                            in_channels=3, classes=n_classes)
    if state_dict is not None:
        E.load_smp_encoder(model, encoder, state_dict)
    return model
