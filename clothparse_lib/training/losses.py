"""The compound loss of section 3.3, its per-term logging and the calibration of its weights.

loss = WCE(seg; background 1, garments 2) + w_bce * BCE(class logits, presence)
       + w_box * smoothL1(sigmoid(box logits), boxes from the mask), box term over present garments only.

Targets come from the (augmented) masks on their own device (:mod:`data.targets`). Every term is computed in
fp32 with autocast disabled, whatever precision the model ran in. Smooth L1 uses beta = 1 (Girshick's, and
PyTorch's default); boxes live in [0, 1], so it is 0.5 * d**2 throughout.

The BCE weight is lost in the paper's text ("each loss term would contribute approximately evenly"):
:func:`calibrate_loss_weights` measures the unweighted terms and returns the weights that make each
weighted term equal to the cross-entropy. :data:`profiles.W_BCE` is 1 (the two terms weighted alike); the
calibration behind it is the book's chapter Training, which measures the weight the rule gives on each run's
trained Extended U-Net (:func:`clothparse_lib.results.training.loss_calibration`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from fastai.learner import Metric
from fastai.torch_core import find_bs

from ..data.targets import presence_and_boxes
from ..models.outputs import ModelOutput
from ..profiles import W_BCE, W_BOX

__all__ = ["BACKGROUND_WEIGHT", "GARMENT_WEIGHT", "weighted_cross_entropy", "loss_terms", "ClothParsingLoss", "LossTerm",
           "loss_term_metrics", "calibrate_loss_weights"]


BACKGROUND_WEIGHT, GARMENT_WEIGHT = 1.0, 2.0


def _fp32(t: torch.Tensor | None) -> torch.Tensor | None:
    """A plain fp32 tensor (fastai's TensorBase subclass dropped), still in the autograd graph."""
    return None if t is None else t.as_subclass(torch.Tensor).float()


def weighted_cross_entropy(seg: torch.Tensor, masks: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Pixel cross-entropy with class weights background 1, garments 2, in fp32.

    Normalised by the summed weights of the pixels (PyTorch's weighted mean): per batch for
    ``reduction="mean"``, per image for ``"none"`` (shape (B,)).
    """
    seg = _fp32(seg)
    weight = torch.full((seg.shape[1],), GARMENT_WEIGHT, device=seg.device)
    weight[0] = BACKGROUND_WEIGHT
    masks = masks.long()
    with torch.autocast(seg.device.type, enabled=False):
        per_pixel = F.cross_entropy(seg, masks, weight=weight, reduction="none")  # weight[y] * nll
        w = weight[masks]
        if reduction == "mean":
            return per_pixel.sum() / w.sum()
        return per_pixel.flatten(1).sum(1) / w.flatten(1).sum(1)


def loss_terms(preds: ModelOutput, masks: torch.Tensor, reduction: str = "mean") -> dict[str, torch.Tensor]:
    """Unweighted fp32 terms of a model's output: ``ce``, plus ``bce`` and ``box`` where it has those heads.

    ``reduction="none"`` gives per-image values (B,) (e.g. to rank images by loss, as in Figure 6).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    seg, cls, box = (_fp32(t) for t in preds.heads())
    terms = {"ce": weighted_cross_entropy(seg, masks, reduction)}
    if cls is None and box is None:
        return terms
    present, boxes = presence_and_boxes(masks, seg.shape[1])
    with torch.autocast(seg.device.type, enabled=False):
        if cls is not None:
            bce = F.binary_cross_entropy_with_logits(cls, present, reduction="none")
            terms["bce"] = bce.mean() if reduction == "mean" else bce.mean(1)
        if box is not None:
            err = F.smooth_l1_loss(torch.sigmoid(box), boxes, reduction="none", beta=1.0)
            keep = present[..., None].expand_as(err)  # only garments present in the image count
            dims = None if reduction == "mean" else (1, 2)
            num = (err * keep).sum() if dims is None else (err * keep).sum(dims)
            den = keep.sum() if dims is None else keep.sum(dims)
            terms["box"] = num / den.clamp_min(1)
    return terms


class ClothParsingLoss:
    """``loss(preds, masks)`` for fastai's ``Learner(loss_func=...)`` and plain loops.

    CE + ``w_bce`` * BCE + ``w_box`` * box term (plain models: the CE alone). ``last_terms`` holds the last
    call's unweighted terms and ``total`` (detached fp32) for logging, see :func:`loss_term_metrics`.
    ``reduction`` ("mean" or "none", per image) is an attribute, as fastai's ``get_preds(with_loss=True)``
    expects. ``activation``/``decodes`` give fastai's predictions: softmax over classes / argmax mask.
    """

    def __init__(self, w_bce: float = W_BCE, w_box: float = W_BOX, reduction: str = "mean"):
        self.weights = {"ce": 1.0, "bce": float(w_bce), "box": float(w_box)}
        self.reduction = reduction
        self.last_terms: dict[str, torch.Tensor] = {}

    def __call__(self, preds: ModelOutput, masks: torch.Tensor) -> torch.Tensor:
        terms = loss_terms(preds, masks, self.reduction)
        total = sum(self.weights[k] * v for k, v in terms.items())
        self.last_terms = {**{k: v.detach() for k, v in terms.items()}, "total": total.detach()}
        return total

    def activation(self, preds: ModelOutput) -> torch.Tensor:
        return F.softmax(_fp32(preds.seg), dim=1)

    def decodes(self, probs: torch.Tensor) -> torch.Tensor:
        return probs.argmax(dim=1)

    def __repr__(self) -> str:
        return f"ClothParsingLoss(w_bce={self.weights['bce']:g}, w_box={self.weights['box']:g})"


class LossTerm(Metric):
    """fastai metric: the batch-size-weighted mean of one unweighted loss term (``ce``, ``bce``, ``box``)."""

    def __init__(self, loss: ClothParsingLoss, key: str):
        self.loss, self.key = loss, key
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0

    def accumulate(self, learn):
        value = self.loss.last_terms.get(self.key)
        if value is not None:
            bs = find_bs(learn.yb)
            self.total = self.total + value.detach().float().mean() * bs  # on the device: no sync per batch
            self.count += bs

    @property
    def value(self):
        return float(self.total) / self.count if self.count else None

    @property
    def name(self):
        return f"loss_{self.key}"


def loss_term_metrics(loss: ClothParsingLoss, keys=("ce", "bce", "box")) -> list[LossTerm]:
    """One fastai metric per loss term, so the Recorder logs each term separately (validation; for the
    training set too with ``Recorder(train_metrics=True)``). Terms a model lacks stay empty (None)."""
    return [LossTerm(loss, k) for k in keys]


@torch.no_grad()
def calibrate_loss_weights(model: torch.nn.Module, batches, max_batches: int | None = None) -> dict[str, float]:
    """Paper's rule for the loss weights: measure each unweighted term, weight it to match the CE.

    ``batches``: iterable of (images, masks). The model runs in eval mode (restored afterwards). Returns the
    mean unweighted terms (``ce``, ``bce``, ``box``), ``w_bce = ce / bce``, ``w_box = ce / box`` (for the heads
    the model has) and ``n_batches``.
    """
    sums: dict[str, float] = {}
    n = 0
    was_training = model.training
    model.eval()
    try:
        for images, masks in batches:
            for k, v in loss_terms(model(images), masks).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
            if max_batches is not None and n >= max_batches:
                break
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("calibrate_loss_weights needs at least one batch")
    means = {k: v / n for k, v in sums.items()}
    weights = {f"w_{k}": means["ce"] / means[k] for k in means if k != "ce" and means[k] > 0}
    return {**means, **weights, "n_batches": n}

