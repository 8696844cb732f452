"""The paper's U-Nets: fastai's ``DynamicUnet`` with nearest-neighbour upsampling, and the parts each variant adds.

* ``plain_unet`` -- the paper's plain U-Net: fastai's ``DynamicUnet`` on the encoder with every
  ``PixelShuffle_ICNR`` replaced by nearest-neighbour upsampling after a 1x1 conv + ReLU. On ResNet34 at
  288x192 the decoder has Figure 1's channels: 512 (middle), 512, 384, 256, 96, then input concatenated
  (99), fastai's final ResBlock (no BatchNorm) and a 1x1 conv to 9 classes.
* ``extended`` ("Our model") -- plus ClassBranch and BBbranch on the encoder's last feature map. Their
  logits (8 class + 32 box), each cloned over HxW, are concatenated to the 99 channels before the final
  residual block (no BatchNorm, as Figure 1 says; its residual branch reads the 139 channels, its identity
  shortcut carries the 99), then the 1x1 conv to 9 classes. See :class:`parts.BranchInjection`.
* ``class_branch_only`` -- only ClassBranch, multiplied into the segmentation at its output
  (:class:`parts.ClassGate`). A class the branch rules out is suppressed in every pixel; a known-absent prior
  removes it exactly.
* ``branches`` -- both branches trained on the encoder, nothing injected: the trunk is exactly
  ``plain_unet`` (same module names: its state dict loads into ``plain_unet`` with ``strict=False``);
  :func:`detach_branches` makes inference cost exactly what the plain U-Net costs.

Prior injection (Table 5, Figure 5): ``model(x, class_prior=p)`` (:mod:`prior`) for the models whose ClassBranch
feeds the segmentation (:data:`PRIOR_MODELS`); inference goes through ``evaluation.predictor.Predictor``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from fastai.callback.hook import dummy_eval
from fastai.layers import ResBlock, ToTensorBase
from fastai.vision.models.unet import DynamicUnet
from fastai.vision.models.unet import ResizeToOrig as _FastaiResizeToOrig
from torch import nn

from ..inference.prior import refuse_prior
from .outputs import ModelOutput
from .parts import BoxBranch, BranchInjection, ClassBranch, ClassGate, MergeLayer, ResizeToOrig, use_nearest_upsampling
from .prior import apply_class_prior

__all__ = ["build_unet", "ClothUnet", "UnetParts", "UNET_VARIANTS", "PRIOR_MODELS", "require_prior_input",
           "detach_branches"]


@dataclass(frozen=True)
class UnetParts:
    """The parts a U-Net variant adds to the plain U-Net."""

    class_branch: bool = False
    box_branch: bool = False
    injection: bool = False  # both branches' logits into the final block (needs both branches)
    gate: bool = False  # the ClassBranch's probabilities multiplied into the segmentation (needs the ClassBranch)


UNET_VARIANTS: dict[str, UnetParts] = {
    "plain_unet": UnetParts(),
    "extended": UnetParts(class_branch=True, box_branch=True, injection=True),
    "class_branch_only": UnetParts(class_branch=True, gate=True),
    "branches": UnetParts(class_branch=True, box_branch=True),
}
PRIOR_MODELS: tuple[str, ...] = tuple(name for name, p in UNET_VARIANTS.items() if p.injection or p.gate)


def require_prior_input(model: nn.Module) -> None:
    """Refuse a class prior for a model whose ClassBranch does not feed the segmentation."""
    if not getattr(model, "supports_prior", False):
        raise refuse_prior(getattr(model, "model_name", type(model).__name__))


class ClothUnet(nn.Module):
    """encoder -> decoder -> head, with the ClassBranch, the BBbranch, the injection and the class gate present or not.

    ``layers`` holds fastai's ``DynamicUnet`` modules under their names there (so checkpoints load): the
    ``encoder``; the ``decoder`` (BatchNorm, ReLU, middle conv, U-Net blocks, upsampling), whose blocks read the
    encoder's skip features from forward hooks on it (fastai's design); the ``head`` (resize to the input,
    concatenation of the input, final residual block or :class:`parts.BranchInjection`, 1x1 conv to the classes;
    fastai's final cast to its ``TensorBase`` is left out). The branches read the encoder's last map. Every call
    returns a :class:`outputs.ModelOutput` of plain tensors.
    """

    def __init__(self, unet: DynamicUnet, class_branch: ClassBranch | None = None, box_branch: BoxBranch | None = None,
                 injection: BranchInjection | None = None, gate: ClassGate | None = None):
        super().__init__()
        i = next(i for i, layer in enumerate(unet.layers) if isinstance(layer, _FastaiResizeToOrig))
        unet.layers[i], unet.layers[i + 1] = ResizeToOrig(), MergeLayer()  # the input passed, not read from x.orig
        if injection is not None:
            unet.layers[i + 2] = injection  # in place of the final ResBlock, under its name
        if isinstance(unet.layers[-1], ToTensorBase):  # fastai's cast: outputs stay plain tensors, as smp's
            del unet.layers[-1]  # (and torch.compile traces them; no weights, so no checkpoint key changes)
        self.layers, self.n_decoder = unet.layers, i
        del unet.sfs  # else DynamicUnet.__del__ removes the hooks the U-Net blocks read their skip features from
        self.class_branch, self.box_branch, self.gate = class_branch, box_branch, gate
        self.branches_enabled = True

    @property
    def encoder(self) -> nn.Module:
        return self.layers[0]

    @property
    def decoder(self) -> nn.ModuleList:
        return self.layers[1:self.n_decoder]

    @property
    def head(self) -> nn.ModuleList:
        return self.layers[self.n_decoder:]

    @property
    def injection(self) -> BranchInjection | None:
        final = self.layers[self.n_decoder + 2]
        return final if isinstance(final, BranchInjection) else None

    @property
    def supports_prior(self) -> bool:
        """Whether the ClassBranch feeds the segmentation, so that a class prior changes it."""
        return self.injection is not None or self.gate is not None

    @property
    def prior_logit(self) -> float | None:
        """The logit a known fact enters as (+ present, - absent): what the part fed by the ClassBranch takes."""
        consumer = self.injection if self.injection is not None else self.gate
        return None if consumer is None else consumer.prior_logit

    def forward(self, x: torch.Tensor, class_prior=None) -> ModelOutput:
        if class_prior is not None:
            require_prior_input(self)
        features = self.encoder(x)
        cls = box = None
        if self.branches_enabled and self.class_branch is not None:
            cls = apply_class_prior(self.class_branch(features), class_prior, self.prior_logit)
        if self.branches_enabled and self.box_branch is not None:
            box = self.box_branch(features)
        h = features
        for layer in self.decoder:
            h = layer(h)
        resize, merge, final, classifier = self.head
        h = merge(resize(h, x), x)
        h = final(h) if self.injection is None else final(h, torch.cat([cls, box.flatten(1)], 1))
        seg = classifier(h)
        return ModelOutput(seg if self.gate is None else self.gate(seg, cls), cls, box)


def build_unet(body: nn.Sequential, n_classes: int, img_size: tuple[int, int], parts: UnetParts) -> ClothUnet:
    """fastai's ``DynamicUnet`` on ``body`` at ``img_size`` with nearest-neighbour upsampling, plus ``parts``."""
    if (parts.injection and not parts.box_branch) or ((parts.injection or parts.gate) and not parts.class_branch):
        raise ValueError(f"{parts}: the injection needs both branches, the gate the ClassBranch")
    unet = DynamicUnet(body, n_classes, img_size)
    use_nearest_upsampling(unet)
    n_garments, class_branch, box_branch = n_classes - 1, None, None
    if parts.class_branch or parts.box_branch:
        feats = dummy_eval(unet.layers[0], img_size)  # (1, C, H/32, W/32), from a random input (a draw, as ever)
        if parts.class_branch:
            class_branch = ClassBranch(feats.shape[1], n_garments)
        if parts.box_branch:
            box_branch = BoxBranch(feats.shape[1:], n_garments, img_size)
    injection = None
    if parts.injection:  # built last: the same random draws as ever, so the same weights for a seed
        final = next(layer for layer in unet.layers if isinstance(layer, ResBlock))  # the final residual block
        injection = BranchInjection(final.convpath[0][0].in_channels, 5 * n_garments)
    return ClothUnet(unet, class_branch, box_branch, injection, ClassGate() if parts.gate else None)


def detach_branches(model: ClothUnet) -> ClothUnet:
    """Switch a ``branches`` model to segmentation only (``cls`` and ``box`` None, like ``plain_unet``).

    Its branches feed nothing into the segmentation, so this changes no segmentation output and leaves
    exactly the plain U-Net's computation. Undo with ``model.branches_enabled = True``.
    """
    if not isinstance(model, ClothUnet) or model.class_branch is None or model.supports_prior:
        raise ValueError(f"only 'branches' can detach its branches without changing the segmentation; "
                         f"got {getattr(model, 'model_name', type(model).__name__)!r}")
    model.branches_enabled = False
    return model
