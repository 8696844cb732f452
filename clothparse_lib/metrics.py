"""The paper's metrics (section 4.2), with their exact definitions.

Segmentation metrics are **accumulated over the whole evaluated set**: one confusion matrix of pixel
counts is summed over all images, and each class's IoU is TP / (TP + FP + FN) of those sums (not a
mean of per-image IoUs). From it:

* ``iou_excl_bg`` — mean IoU of the 8 garments ("IoU excl. bg");
* ``iou_overall`` — mean IoU of all 9 classes ("IoU overall");
* ``iou_mask`` — IoU of the foreground (any garment) against the background ("IoU Mask");
* Table 3's two forms: rows normalised (share of each ground-truth class predicted as each class)
  and columns normalised (share of each predicted class that is each ground-truth class).

A class absent from both prediction and ground truth has no IoU (NaN) and is left out of the means.

The paper's aggregates are not the means of its own per-class numbers (Table 1, refined: the 8
garments average 65.3 %, it prints 72.10 % "excl. bg"; the 9 classes average 68.8 %, it prints
90.23 % "overall"). Two other common definitions are reported beside the means, so the book can show
which one the paper's numbers fit: ``*_micro`` (the classes' TP over their unions, pooled) and
``*_freq_weighted`` (class IoUs weighted by the classes' ground-truth pixels).

ClassBranch metrics (Table 4) threshold sigmoid(logit) at 0.5 and compare with the garments present
in the ground-truth mask: F1 and F2 are **macro** averages over the 8 garments (fastai's
``F1ScoreMulti`` / ``FBetaMulti`` default), per-class accuracy is (TP + TN) / images, and
``exact_match`` is the share of images whose 8 labels are all right.
"""
from __future__ import annotations

import numpy as np
import torch

from .taxonomy import CLASSES, GARMENTS, N_CLASSES

__all__ = ["confusion_matrix", "iou_per_class", "segmentation_scores", "normalize_confusion", "classification_scores"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """(n, n) int64 pixel counts, rows = ground truth, columns = prediction, on the inputs' device."""
    idx = target.reshape(-1).long() * n_classes + pred.reshape(-1).long()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def segmentation_scores(conf: np.ndarray) -> dict:
    """IoU excl. bg, overall, mask and per class (fractions in [0, 1]) of an accumulated confusion matrix."""
    conf = np.asarray(conf, dtype=np.float64)
    iou = iou_per_class(conf)
    binary = np.array([[conf[0, 0], conf[0, 1:].sum()], [conf[1:, 0].sum(), conf[1:, 1:].sum()]])
    tp, union, pixels = np.diag(conf), conf.sum(0) + conf.sum(1) - np.diag(conf), conf.sum(1)
    return {
        "iou_excl_bg": float(np.nanmean(iou[1:])),
        "iou_micro": float(tp.sum() / union.sum()),
        "iou_excl_bg_micro": float(tp[1:].sum() / union[1:].sum()),
        "iou_freq_weighted": float(np.nansum(pixels * iou) / pixels.sum()),
        "iou_excl_bg_freq_weighted": float(np.nansum(pixels[1:] * iou[1:]) / pixels[1:].sum()),
        "iou_overall": float(np.nanmean(iou)),
        "iou_mask": float(iou_per_class(binary)[1]),
        "per_class": dict(zip(CLASSES, map(float, iou))),
        "pixel_accuracy": float(np.trace(conf) / conf.sum()),
    }


def normalize_confusion(conf: np.ndarray, by: str) -> np.ndarray:
    """Table 3: ``by="rows"`` (each ground-truth row sums to 1) or ``by="columns"`` (each prediction column)."""
    conf = np.asarray(conf, dtype=np.float64)
    axis = {"rows": 1, "columns": 0}[by]
    totals = conf.sum(axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, conf / totals, np.nan)


def classification_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Table 4 from boolean (images, 8) predicted and true garment presence."""
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp, fp, fn = (p & t).sum(0), (p & ~t).sum(0), (~p & t).sum(0)

    def fbeta(beta):
        b2 = beta * beta
        denom = (1 + b2) * tp + b2 * fn + fp
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(denom > 0, (1 + b2) * tp / denom, np.nan)
        return float(np.nanmean(per_class)) if not np.isnan(per_class).all() else float("nan")

    return {
        "f1": fbeta(1.0),
        "f2": fbeta(2.0),
        "per_class_accuracy": dict(zip(GARMENTS, map(float, (p == t).mean(0)))),
        "exact_match": float((p == t).all(1).mean()),
        "n_images": int(len(p)),
    }
