"""The parts the paper adds to fastai's U-Net, each a module a model has or not.

* :class:`NearestUpsample` -- the paper's upsampling, in place of fastai's ``PixelShuffle_ICNR``;
* :class:`ClassBranch` and :class:`BoxBranch` -- the ClassBranch (8 logits) and the BBbranch (8 x 4 logits) on the
  encoder's last feature map;
* :class:`BranchInjection` -- the Extended U-Net's final residual block, fed the branch logits cloned over HxW;
* :class:`ClassGate` -- "ClassBranch only": the class probabilities multiplied into the segmentation;
* :class:`ResizeToOrig` and :class:`MergeLayer` -- fastai's layers of those names with the input passed as an
  argument (fastai's read ``x.orig``, an attribute its ``SequentialEx`` sets on the tensors).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from fastai.layers import ConvLayer, PixelShuffle_ICNR, ResBlock
from fastai.torch_core import apply_init
from fastai.vision.learner import create_head
from torch import nn

__all__ = ["NearestUpsample", "use_nearest_upsampling", "ResizeToOrig", "MergeLayer", "ClassBranch", "BoxBranch",
           "expand_maps", "TrunkShortcut", "BranchInjection", "ClassGate", "BRANCH_HIDDEN", "BRANCH_DROPOUT",
           "PRIOR_LOGIT"]

BRANCH_HIDDEN = 512  # ClassBranch: "dimensions 512 and number of categories"; BBbranch: same width
BRANCH_DROPOUT = 0.25
# Logit that replaces a known fact in `extended` (+ present, - absent). Probability 0/1 is logit -/+inf,
# which the convolution after the injection cannot take; +-8 is probability 0.9997 / 0.0003, about as sure
# as a BCE-trained branch gets on clear images, so the final block sees values from the range it was trained
# on. `class_branch_only` gates with log-probabilities and needs no such compromise (its prior_logit is inf).
PRIOR_LOGIT = 8.0


class NearestUpsample(nn.Sequential):
    """The paper's upsampling: 1x1 conv + ReLU and nearest-neighbour x2, in place of ``PixelShuffle_ICNR``.

    The 1x1 conv and ReLU act per pixel, so they commute with nearest-neighbour copying: running them
    before the upsampling is the same function at a quarter of the cost.
    """

    def __init__(self, ni: int, nf: int, scale: int = 2):
        super().__init__(ConvLayer(ni, nf, ks=1, norm_type=None), nn.Upsample(scale_factor=scale, mode="nearest"))


def use_nearest_upsampling(module: nn.Module) -> None:
    """Replace every (blur-free) ``PixelShuffle_ICNR`` under ``module`` by a :class:`NearestUpsample`."""
    for name, child in module.named_children():
        if isinstance(child, PixelShuffle_ICNR):
            conv, shuffle = child[0][0], child[1]
            scale = shuffle.upscale_factor
            setattr(module, name, NearestUpsample(conv.in_channels, conv.out_channels // scale**2, scale))
        else:
            use_nearest_upsampling(child)


class ResizeToOrig(nn.Module):
    """fastai's ``ResizeToOrig`` with the input passed: ``h`` resized (nearest) to ``like``'s HxW if it differs."""

    def forward(self, h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return h if h.shape[-2:] == like.shape[-2:] else F.interpolate(h, like.shape[-2:], mode="nearest")


class MergeLayer(nn.Module):
    """fastai's ``MergeLayer(dense=True)`` with the shortcut passed: ``cat([h, shortcut])`` on the channels."""

    def forward(self, h: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, shortcut], dim=1)


class ClassBranch(nn.Sequential):
    """ClassBranch: concat pool (max+avg) -> BN -> Dropout -> Linear 512 -> ReLU -> BN -> Dropout -> Linear (B, G)."""

    def __init__(self, n_features: int, n_garments: int):
        super().__init__(*create_head(n_features, n_garments, lin_ftrs=[BRANCH_HIDDEN], ps=[BRANCH_DROPOUT] * 2))


class BoxBranch(nn.Sequential):
    """BBbranch: Flatten (no pooling) -> ReLU -> Dropout -> Linear 512 -> ReLU -> BN -> Dropout -> Linear, as
    (B, G, 4). It flattens the encoder's map ``feature_shape`` (C, h, w) of the size the model is built for
    (``img_size``); the map of another input size (the early phases of progressive resizing) is first pooled to that
    grid (adaptive average pooling: from a smaller map each cell of the grid averages the one or two cells it
    overlaps), where the paper has one size only."""

    def __init__(self, feature_shape, n_garments: int, img_size: tuple[int, int]):
        head = create_head(math.prod(feature_shape), 4 * n_garments, lin_ftrs=[BRANCH_HIDDEN],
                           ps=[BRANCH_DROPOUT] * 2, pool=False, first_bn=False)
        super().__init__(nn.Flatten(), nn.ReLU(), *head)
        self.feature_shape, self.n_garments, self.img_size = tuple(feature_shape), n_garments, tuple(img_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[1] != self.feature_shape[0]:
            raise ValueError(f"the BBbranch takes the encoder's {self.feature_shape[0]}-channel map, got "
                             f"{features.shape[1]} channels")
        if tuple(features.shape[2:]) != self.feature_shape[1:]:
            features = F.adaptive_avg_pool2d(features, self.feature_shape[1:])
        return super().forward(features).view(-1, self.n_garments, 4)


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

    prior_logit = PRIOR_LOGIT  # a known fact enters as +-8 (see PRIOR_LOGIT)

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


class ClassGate(nn.Module):
    """The "ClassBranch only" ablation: each garment's softmax numerator multiplied by sigmoid(class logit), i.e.
    ``seg[:, 1:] += logsigmoid(class_logits)`` per image (background untouched). A class the branch rules out is
    suppressed in every pixel; a known-absent prior (logit -inf) removes it exactly."""

    prior_logit = math.inf

    def forward(self, seg: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
        return seg + F.pad(F.logsigmoid(class_logits), (1, 0))[:, :, None, None]
