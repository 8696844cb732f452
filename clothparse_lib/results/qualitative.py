"""Which test images the book shows, and the model's masks for them (Figure 6 and Figure 5 of the paper).

* :func:`loss_sorted` — Figure 6: test images ranked by their segmentation loss (the weighted CE
  recorded per image by :func:`evaluation.scores.evaluate`): the highest, the middle and the lowest, plus
  failure cases: images where a garment of the ground truth gets no pixel at all, or a garment is
  painted that is not there (most such garments first, then highest loss).
* :func:`partial_injection` — Figure 5: images without a dress that the model paints a dress on,
  predicted again with "no dress" injected through the ClassBranch input (the model alone: the
  argmax is not masked, unlike :class:`evaluation.parsing.Parser`), and the dress pixels over the whole
  test part with and without that prior.

Masks come from :class:`evaluation.predictor.Predictor`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.split import split_rows
from ..evaluation.predictor import Predictor
from ..models.checkpoints import load_model
from ..runfolder import best_checkpoint, result_file
from ..taxonomy import CLASS_INDEX, GARMENTS, presence
from .run import Run

__all__ = ["test_part", "loss_sorted", "partial_injection"]


def test_part(run: Run, model: str = "extended"):
    """(model, images, ground truths, per-image table) of the test part the model was scored on."""
    run.ensure(model)
    data = run.data("refined")
    rows = split_rows(data.cache, data.split, "test")
    images, masks = data.cache.batch(rows)
    per_image = pd.read_csv(result_file(run.model_dir(model), "per_image"), dtype={"image_id": str})
    ids = data.cache.index["image_id"].to_numpy()[rows]
    if list(per_image["image_id"]) != list(map(str, ids)):
        raise RuntimeError(f"{run.model_dir(model)}/per_image.csv does not match the test part of the data; "
                           "delete the model's evaluation files to re-evaluate")
    return load_model(best_checkpoint(run.model_dir(model)), run.device), images, masks, per_image


def _garment_errors(truth: np.ndarray, pred: np.ndarray) -> tuple[list[str], list[str]]:
    t, p = presence(truth), presence(pred)
    return [g for g, a, b in zip(GARMENTS, t, p) if a and not b], [g for g, a, b in zip(GARMENTS, t, p) if b and not a]


def loss_sorted(run: Run, model: str = "extended", n: int = 3) -> dict[str, list[tuple]]:
    """Figure 6's groups: ``{"highest loss": rows, "middle": ..., "lowest loss": ..., "failures": ...}``,
    each row ``(label, image, ground truth, prediction)`` for :func:`viz.gallery`."""
    net, images, masks, per_image = test_part(run, model)
    preds = Predictor(net).masks(images)
    order = per_image["ce"].to_numpy().argsort()[::-1]  # highest loss first
    mid = len(order) // 2 - n // 2
    groups = {"highest loss": order[:n], "middle": order[max(mid, 0): max(mid, 0) + n], "lowest loss": order[-n:][::-1]}
    errors = [_garment_errors(masks[i], preds[i]) for i in range(len(images))]
    shown = set(np.concatenate(list(groups.values())).tolist())
    candidates = [i for i in order if i not in shown and (errors[i][0] or errors[i][1])]
    groups["failures"] = np.array(sorted(candidates, key=lambda i: -(len(errors[i][0]) + len(errors[i][1])))[:n], int)

    def label(i):
        missed, extra = errors[i]
        text = f"{per_image['image_id'][i]}\nloss {per_image['ce'][i]:.2f}"
        text += f"\nmissed: {', '.join(missed)}" if missed else ""
        return text + (f"\nnot there: {', '.join(extra)}" if extra else "")

    return {name: [(label(i), images[i], masks[i], preds[i]) for i in idx] for name, idx in groups.items()}


def partial_injection(run: Run, model: str = "extended", absent: str = "dress", n: int = 4) -> tuple[list[tuple], dict]:
    """Figure 5: rows ``(label, image, ground truth, prediction, prediction with "no <absent>")`` and the
    test part's pixel counts of ``absent`` on images without it, with and without the prior."""
    net, images, masks, per_image = test_part(run, model)
    predictor = Predictor(net)
    told = predictor.masks(images, absent=[absent])  # first: refused for a model without a prior input
    plain = predictor.masks(images)
    k = CLASS_INDEX[absent]
    without = ~(masks == k).any((1, 2))
    wrong = ((plain == k) & without[:, None, None]).sum((1, 2))
    picked = [i for i in wrong.argsort()[::-1][:n] if wrong[i] > 0]
    rows = [(f"{per_image['image_id'][i]}\n{absent}: {wrong[i]} px -> {(told[i] == k).sum()} px",
             images[i], masks[i], plain[i], told[i]) for i in picked]
    counts = {"images_without": int(without.sum()), "images_painted": int((wrong > 0).sum()),
              "pixels_before": int(wrong.sum()), "pixels_after": int(((told == k) & without[:, None, None]).sum()),
              "images_painted_after": int(((told == k) & without[:, None, None]).any((1, 2)).sum())}
    return rows, counts
