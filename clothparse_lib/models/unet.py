"""The Extended U-Net of the paper, its ablations and the baselines, behind one factory.

``build_model(name, encoder, weights, n_classes, img_size)`` with ``name`` in :data:`MODEL_NAMES`:

* ``plain_unet`` -- the paper's plain U-Net: fastai's ``DynamicUnet`` on the encoder with every
  ``PixelShuffle_ICNR`` replaced by nearest-neighbour upsampling after a 1x1 conv + ReLU. On ResNet34 at
  288x192 the decoder has Figure 1's channels: 512 (middle), 512, 384, 256, 96, then input concatenated
  (99), fastai's final ResBlock (no BatchNorm) and a 1x1 conv to 9 classes.
* ``extended`` ("Our model") -- plus ClassBranch and BBbranch on the encoder's last feature map. Their
  logits (8 class + 32 box), each cloned over HxW, are concatenated to the 99 channels before the final
  residual block (no BatchNorm, as Figure 1 says; its residual branch reads the 139 channels, its identity
  shortcut carries the 99), then the 1x1 conv to 9 classes. See :class:`BranchInjection`.
* ``class_branch_only`` -- only ClassBranch, multiplied into the segmentation at its output: the garment
  channels' softmax numerators are multiplied by sigmoid(class logit), i.e.
  ``seg[:, 1:] += logsigmoid(class_logits)`` per image (background untouched). A class the branch rules out
  is suppressed in every pixel; a known-absent prior removes it exactly.
* ``branches`` -- both branches trained on the encoder, nothing injected: the trunk is exactly
  ``plain_unet`` (same module names: its state dict loads into ``plain_unet`` with ``strict=False``);
  :func:`detach_branches` makes inference cost exactly what the plain U-Net costs.
* ``fpn``, ``deeplabv3``, ``deeplabv3plus``, ``smp_unet`` -- segmentation-models-pytorch baselines on the
  same encoder and weights (smp's Unet is a lighter decoder than fastai's: an extra row, not the paper's).

Outputs: plain models return segmentation logits ``(B, C, H, W)``; ``extended`` and ``branches`` return
``(seg, class_logits (B, 8), box_logits (B, 8, 4))``; ``class_branch_only`` returns ``(seg, class_logits)``.
:func:`split_outputs` turns any of them into ``(seg, cls_or_None, box_or_None)``.

Prior injection (Table 5, Figure 5): ``model(x, class_prior=p)`` or :func:`predict_with_prior`, where ``p`` is
``(B, 8)`` (or ``(8,)``) with NaN = unknown and 0/1 = known absent/present (values in between are taken as
probabilities). Known entries replace the ClassBranch logits before they enter the segmentation; the class
logits returned are the ones actually used.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from fastai.callback.hook import dummy_eval
from fastai.layers import ConvLayer, MergeLayer, PixelShuffle_ICNR, ResBlock
from fastai.torch_core import apply_init
from fastai.vision.learner import create_head
from fastai.vision.models.unet import DynamicUnet
from torch import nn

from ..taxonomy import CLASS_INDEX, GARMENTS, N_CLASSES, parse_classes
from . import encoders as E

MODEL_NAMES: tuple[str, ...] = ("plain_unet", "extended", "class_branch_only", "branches",
                                "fpn", "deeplabv3", "deeplabv3plus", "smp_unet")
_UNET_VARIANTS = ("plain_unet", "extended", "class_branch_only", "branches")
_SMP_ARCHS = {"fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus", "smp_unet": "Unet"}
PRIOR_MODELS: tuple[str, ...] = ("extended", "class_branch_only")

BRANCH_HIDDEN = 512  # ClassBranch: "dimensions 512 and number of categories"; BBbranch: same width
BRANCH_DROPOUT = 0.25
# Logit that replaces a known fact in `extended` (+ present, - absent). Probability 0/1 is logit -/+inf,
# which the convolution after the injection cannot take; +-8 is probability 0.9997 / 0.0003, about as sure
# as a BCE-trained branch gets on clear images, so the final block sees values from the range it was trained
# on. `class_branch_only` gates with log-probabilities and needs no such compromise (prior_logit = inf).
PRIOR_LOGIT = 8.0


def check_img_size(img_size) -> tuple[int, int]:
    """(H, W) as ints, each a positive multiple of 32 (the encoders downsample by 32)."""
    h, w = (int(v) for v in img_size)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ValueError(f"image size {h}x{w}: height and width must be positive multiples of 32")
    return h, w


class NearestUpsample(nn.Sequential):
    """The paper's upsampling: 1x1 conv + ReLU and nearest-neighbour x2, in place of ``PixelShuffle_ICNR``.

    The 1x1 conv and ReLU act per pixel, so they commute with nearest-neighbour copying: running them
    before the upsampling is the same function at a quarter of the cost.
    """

    def __init__(self, ni: int, nf: int, scale: int = 2):
        super().__init__(ConvLayer(ni, nf, ks=1, norm_type=None), nn.Upsample(scale_factor=scale, mode="nearest"))


def _use_nearest_upsampling(module: nn.Module) -> None:
    """Replace every (blur-free) ``PixelShuffle_ICNR`` under ``module`` by a :class:`NearestUpsample`."""
    for name, child in module.named_children():
        if isinstance(child, PixelShuffle_ICNR):
            conv, shuffle = child[0][0], child[1]
            scale = shuffle.upscale_factor
            setattr(module, name, NearestUpsample(conv.in_channels, conv.out_channels // scale**2, scale))
        else:
            _use_nearest_upsampling(child)


def class_branch(n_features: int, n_garments: int) -> nn.Sequential:
    """ClassBranch: concat pool (max+avg) -> BN -> Dropout -> Linear 512 -> ReLU -> BN -> Dropout -> Linear."""
    return create_head(n_features, n_garments, lin_ftrs=[BRANCH_HIDDEN], ps=[BRANCH_DROPOUT] * 2)


def box_branch(n_inputs: int, n_garments: int) -> nn.Sequential:
    """BBbranch: Flatten (no pooling) -> ReLU -> Dropout -> Linear 512 -> ReLU -> BN -> Dropout -> Linear 4*G."""
    head = create_head(n_inputs, 4 * n_garments, lin_ftrs=[BRANCH_HIDDEN], ps=[BRANCH_DROPOUT] * 2,
                       pool=False, first_bn=False)
    return nn.Sequential(nn.Flatten(), nn.ReLU(), *head)


def expand_maps(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, K) -> (B, K, H, W): each value cloned over ``like``'s spatial size (the paper's "expansion")."""
    return v[:, :, None, None].expand(-1, -1, *like.shape[-2:])


class _AddBorderedMap(torch.autograd.Function):
    """``h + small`` expanded to HxW: ``small`` (B, C, 3, 3) holds the values of the first row, the middle
    rows and the last row (by first column, middle columns, last column). One pass over ``h`` forward, one
    reduction backward; nothing of size HxW is materialised besides the output."""

    @staticmethod
    def forward(ctx, h, small):
        if min(h.shape[-2:]) < 2:
            raise ValueError("the injected maps need at least 2x2 pixels")
        out = h + small[:, :, 1:2, 1:2]
        d = small - small[:, :, 1:2, 1:2]
        cols = torch.ones(h.shape[-1], dtype=torch.long, device=h.device)
        cols[0], cols[-1] = 0, 2
        out[:, :, 0, :] += d[:, :, 0].index_select(2, cols)
        out[:, :, -1, :] += d[:, :, 2].index_select(2, cols)
        out[:, :, 1:-1, 0] += d[:, :, 1, 0:1]
        out[:, :, 1:-1, -1] += d[:, :, 1, 2:3]
        return out

    @staticmethod
    def backward(ctx, g):
        def regions(rows):  # sums over first / middle / last column of the given rows
            return torch.stack([rows[..., 0], rows[..., 1:-1].sum(-1), rows[..., -1]], -1)
        middle = g[:, :, 1:-1]
        g_small = torch.stack([regions(g[:, :, 0]),
                               torch.stack([middle[..., 0].sum(-1), middle[..., 1:-1].sum((-2, -1)),
                                            middle[..., -1].sum(-1)], -1),
                               regions(g[:, :, -1])], -2)
        return g, g_small


class TrunkShortcut(nn.Module):
    """Identity shortcut on the first ``ni`` channels (the trunk's) of a concatenation."""

    def __init__(self, ni: int):
        super().__init__()
        self.ni = ni

    def forward(self, x):
        return x[:, :self.ni]


class BranchInjection(nn.Module):
    """The Extended U-Net's final residual block on ``cat([x, expand_maps(v)])`` (x: the trunk's 99 channels).

    fastai's ``ResBlock(1, ni + nv, ni)`` without BatchNorm (Figure 1): the residual branch (3x3 conv + ReLU,
    3x3 conv) reads the concatenation, the identity shortcut carries the ``ni`` trunk channels (fastai would
    project with a 1x1 conv + BatchNorm), so the block returns the plain U-Net's width for the same final
    1x1 conv. :meth:`dense` runs it on the materialised concatenation, as the paper describes it;
    :meth:`forward` computes the same function without materialising the ``nv`` constant maps: a zero-padded
    3x3 conv of maps constant over HxW takes only 9 values (corners, edges, interior), computed on a 3x3 map
    and added with :class:`_AddBorderedMap`. The injection then costs about nothing over the plain U-Net
    (a 139 -> 139 block, fastai's own shape after a concatenation, would add about 30 % to a train step: the
    two full-resolution 3x3 convs of this block are about half of the plain U-Net's compute).
    """

    def __init__(self, ni: int, nv: int):
        super().__init__()
        self.ni, self.nv = ni, nv
        self.block = ResBlock(1, ni + nv, ni, norm_type=None)
        self.block.idpath = TrunkShortcut(ni)
        apply_init(self.block, nn.init.kaiming_normal_)  # as DynamicUnet initialises its final ResBlock
        conv = self.block.convpath[0][0]
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
        assert conv.dilation == (1, 1) and conv.padding_mode == "zeros" and conv.groups == 1

    def dense(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([x, expand_maps(v, x)], 1))

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        conv1, act1 = self.block.convpath[0]
        w = conv1.weight
        h = F.conv2d(x, w[:, :self.ni].contiguous(), conv1.bias, padding=1)
        small = F.conv2d(v[:, :, None, None].expand(-1, -1, 3, 3), w[:, self.ni:], padding=1)  # (B, ni, 3, 3)
        h = self.block.convpath[1](act1(_AddBorderedMap.apply(h, small)))
        return self.block.act(h + x)


def apply_class_prior(logits: torch.Tensor, prior, limit: float) -> torch.Tensor:
    """ClassBranch logits with the known entries of ``prior`` (NaN = unknown) replaced by logit(prior).

    Known probabilities p map to ``logit(p)`` clipped to +-``limit`` (0 -> -limit, 1 -> +limit).
    """
    if prior is None:
        return logits
    prior = torch.as_tensor(prior, dtype=logits.dtype, device=logits.device)
    if prior.shape[-1] != logits.shape[-1]:
        raise ValueError(f"class prior has {prior.shape[-1]} entries per image, the ClassBranch {logits.shape[-1]}")
    prior = prior.expand_as(logits)
    if ((prior < 0) | (prior > 1)).any():
        raise ValueError("class prior values must be probabilities in [0, 1] (NaN = unknown)")
    return torch.where(torch.isnan(prior), logits, torch.logit(prior).clamp(-limit, limit))


class ClothUnet(DynamicUnet):
    """fastai's ``DynamicUnet`` with nearest-neighbour upsampling, optionally with the paper's branches.

    ``variant``: one of ``plain_unet``, ``extended``, ``class_branch_only``, ``branches`` (module docstring).
    The BBbranch flattens the encoder's last map, so models with it only take ``img_size`` inputs.
    """

    def __init__(self, body: nn.Sequential, n_classes: int = N_CLASSES, img_size=(288, 192), variant: str = "plain_unet"):
        if variant not in _UNET_VARIANTS:
            raise ValueError(f"unknown U-Net variant {variant!r}; valid: {', '.join(_UNET_VARIANTS)}")
        img_size = check_img_size(img_size)
        super().__init__(body, n_classes, img_size)
        _use_nearest_upsampling(self)
        self.variant, self.img_size, self.n_garments = variant, img_size, n_classes - 1
        self.branches_enabled = variant != "plain_unet"
        self.prior_logit = math.inf if variant == "class_branch_only" else PRIOR_LOGIT
        self.class_branch = self.box_branch = None
        if variant != "plain_unet":
            feats = dummy_eval(self.encoder, img_size)  # (1, C, H/32, W/32)
            self.class_branch = class_branch(feats.shape[1], self.n_garments)
            if variant != "class_branch_only":
                self.box_branch = box_branch(feats[0].numel(), self.n_garments)
        if variant == "extended":
            i = next(i for i, layer in enumerate(self.layers) if isinstance(layer, MergeLayer)) + 1
            self.layers[i] = BranchInjection(self.layers[i].convpath[0][0].in_channels, 5 * self.n_garments)

    @property
    def encoder(self) -> nn.Module:
        return self.layers[0]

    @property
    def supports_prior(self) -> bool:
        return self.variant in PRIOR_MODELS

    def forward(self, x: torch.Tensor, class_prior=None):
        if class_prior is not None and not self.supports_prior:
            raise ValueError(_no_prior_message(self.variant))
        if not self.branches_enabled:
            return super().forward(x)
        if self.box_branch is not None and tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"{self.variant} was built for {self.img_size[0]}x{self.img_size[1]} inputs (its "
                             f"BBbranch flattens the encoder's map), got {x.shape[-2]}x{x.shape[-1]}")
        res, cls, box = x, None, None
        for i, layer in enumerate(self.layers):  # SequentialEx.forward, plus the branches
            res.orig = x
            out = layer(res, torch.cat([cls, box.flatten(1)], 1)) if isinstance(layer, BranchInjection) else layer(res)
            res.orig, out.orig = None, None
            res = out
            if i == 0:  # encoder output
                cls = apply_class_prior(self.class_branch(res), class_prior, self.prior_logit)
                if self.box_branch is not None:
                    box = self.box_branch(res).view(-1, self.n_garments, 4)
        if self.variant == "class_branch_only":
            return res + F.pad(F.logsigmoid(cls), (1, 0))[:, :, None, None], cls
        return res, cls, box


def _no_prior_message(name: str) -> str:
    return (f"model {name!r} cannot take a class prior: only {' and '.join(PRIOR_MODELS)} feed the ClassBranch "
            "into the segmentation; for any other model a prior would silently change nothing")


def build_model(name: str, encoder: str = "resnet34", weights=None, n_classes: int = N_CLASSES,
                img_size=(288, 192)) -> nn.Module:
    """Build one of :data:`MODEL_NAMES` on ``encoder`` (:data:`encoders.ENCODERS`).

    ``weights``: None (random encoder, with a loud :class:`encoders.RandomInitWarning`), ``"imagenet"``
    (resnet34: torchvision download; efficientnet-lite0: the registry package's file, offline) or a path to a
    local state dict. ``img_size`` = (H, W), multiples of 32. The model comes back in train mode with
    ``model_name``, ``encoder_name``, ``img_size`` and ``normalization`` ((mean, std) for [0, 1] RGB) set.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    E.check_encoder(encoder)
    img_size = check_img_size(img_size)
    if n_classes < 2:
        raise ValueError("n_classes counts the background: at least 2")
    state_dict = E.pretrained_state_dict(encoder, weights)
    if name in _SMP_ARCHS:
        import segmentation_models_pytorch as smp
        model = getattr(smp, _SMP_ARCHS[name])(encoder_name=E.smp_encoder_name(encoder), encoder_weights=None,
                                               in_channels=3, classes=n_classes)
        if state_dict is not None:
            E.load_smp_encoder(model, encoder, state_dict)
    else:
        body = E.fastai_body(E.classifier_network(encoder, state_dict), encoder)
        model = ClothUnet(body, n_classes, img_size, variant=name)
    model.model_name, model.encoder_name, model.img_size = name, encoder, img_size
    model.normalization = E.encoder_stats(encoder)
    return model.train()


def split_outputs(out):
    """Any model's output as ``(seg_logits, class_logits or None, box_logits or None)``."""
    if isinstance(out, (tuple, list)):
        seg, cls, box = (*out, None, None)[:3]
        return seg, cls, box
    return out, None, None


def model_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai ``splitter``: [encoder parameters, all others], for every model of :func:`build_model`.

    ``learn.freeze()`` then freezes the encoder, and fastai's ``train_bn=True`` keeps its BatchNorms trainable.
    """
    enc = list(model.encoder.parameters())
    ids = {id(p) for p in enc}
    return [enc, [p for p in model.parameters() if id(p) not in ids]]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def detach_branches(model: nn.Module) -> nn.Module:
    """Switch a ``branches`` model to segmentation only (returns the logits tensor, like ``plain_unet``).

    Its branches feed nothing into the segmentation, so this changes no segmentation output and leaves
    exactly the plain U-Net's computation. Undo with ``model.branches_enabled = True``.
    """
    if getattr(model, "variant", None) != "branches":
        raise ValueError(f"only 'branches' can detach its branches without changing the segmentation; "
                         f"got {getattr(model, 'model_name', type(model).__name__)!r}")
    model.branches_enabled = False
    return model


def make_class_prior(present=(), absent=(), batch_size: int = 1, base=None, device=None) -> torch.Tensor:
    """A (B, 8) class prior: NaN everywhere (unknown) except ``present`` garments (1) and ``absent`` ones (0).

    ``present``/``absent``: garment names (list or comma-separated string). ``base``: a prior to start from
    ((8,) or (B, 8), e.g. ``targets.presence_targets(masks)`` for full ground-truth injection).
    """
    present, absent = parse_classes(present), parse_classes(absent)
    both = set(present) & set(absent)
    if both:
        raise ValueError(f"garment(s) both present and absent: {', '.join(sorted(both))}")
    if base is None:
        prior = torch.full((batch_size, len(GARMENTS)), float("nan"), device=device)
    else:
        prior = torch.as_tensor(base, dtype=torch.float32, device=device).expand(batch_size, len(GARMENTS)).clone()
    for names, value in ((present, 1.0), (absent, 0.0)):
        for g in names:
            prior[:, CLASS_INDEX[g] - 1] = value
    return prior


@torch.no_grad()
def predict_with_prior(model: nn.Module, images: torch.Tensor, present=(), absent=(), class_prior=None):
    """Inference with known facts about the garments: ``model(images, class_prior=...)`` in eval mode.

    ``present``/``absent``: garment names; ``class_prior``: (8,) or (B, 8) base prior (NaN = unknown), e.g.
    the ground-truth presence for Table 5's "with GT". Returns the model's output (the class logits in it are
    the injected ones). Models whose ClassBranch does not reach the segmentation raise ``ValueError``.
    """
    if not getattr(model, "supports_prior", False):
        raise ValueError(_no_prior_message(getattr(model, "model_name", type(model).__name__)))
    prior = make_class_prior(present, absent, len(images), base=class_prior, device=images.device)
    was_training = model.training
    model.eval()
    try:
        return model(images, class_prior=prior)
    finally:
        model.train(was_training)
