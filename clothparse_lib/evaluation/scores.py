"""Evaluation of a trained model in one pass over a split: everything the book's tables and figures need.

For each image of the split the pass records the pixel confusion counts, the ClassBranch's presence
probabilities (models that have one), and the per-image loss terms (for the loss-sorted galleries of
Figure 6). Models whose ClassBranch feeds the segmentation are also run with the ground-truth
presence injected (Table 5, "with GT") and with a partial prior (Figure 5: by default the truth
about ``dress`` and ``skirt`` only, the pair the paper shows most confused). Results go to
``<model folder>/evaluation[-<name>].json`` and the confusion counts to ``confusion[-<name>].npz``
(no suffix for the test split).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data import Cache
from ..data.split import split_rows
from ..data.targets import presence_targets
from ..metrics import classification_scores, confusion_matrix, segmentation_scores
from ..models import make_class_prior
from ..models.checkpoints import load_model, write_json
from ..taxonomy import GARMENTS, N_CLASSES
from ..training.losses import loss_terms
from .predictor import Predictor

__all__ = ["PARTIAL_PRIOR", "Evaluation", "load_checked", "evaluate", "RESULT_FILES", "result_file", "save_evaluation",
           "load_scores", "checkpoint_scores"]


PARTIAL_PRIOR = ("dress", "skirt")


@dataclass
class Evaluation:
    """Accumulated results of one model on one split, per prior mode (``none``, ``gt``, ``partial``)."""

    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    presence_prob: np.ndarray | None = None  # (images, 8) ClassBranch probabilities (no prior)
    presence_true: np.ndarray | None = None
    per_image: pd.DataFrame | None = None  # image_id, loss terms, garments present

    def scores(self) -> dict:
        out = {mode: segmentation_scores(conf) for mode, conf in self.confusion.items()}
        if self.presence_prob is not None:
            out["classbranch"] = classification_scores(self.presence_prob > 0.5, self.presence_true)
        return out


def load_checked(path: Path, device=None, **expected) -> torch.nn.Module:
    """:func:`models.checkpoints.load_model`, refusing a checkpoint whose manifest differs from ``expected``
    (e.g. ``model="plain_unet"`` when the folder holds the extended model)."""
    model = load_model(path, device)
    differ = [f"{k} {model.manifest.get(k)!r} (asked: {v!r})" for k, v in expected.items() if model.manifest.get(k) != v]
    if differ:
        raise ValueError(f"{path} is not the model asked for: its manifest says {', '.join(differ)}")
    return model


@torch.no_grad()
def evaluate(model: torch.nn.Module, cache: Cache, split, split_name: str = "test", batch_size: int = 16,
             device=None, partial: tuple[str, ...] = PARTIAL_PRIOR, progress: bool = True) -> Evaluation:
    """One pass of :class:`predictor.Predictor` over split ``split_name`` of ``cache``, in cache order."""
    predictor = Predictor(model, device, batch_size)
    rows = split_rows(cache, split, split_name)
    ids = cache.index["image_id"].to_numpy()[rows]
    modes = ["none"] + (["gt", "partial"] if model.supports_prior else [])
    conf = {m: torch.zeros(N_CLASSES, N_CLASSES, dtype=torch.long, device=predictor.device) for m in modes}
    probs, truth, terms_per_batch = [], [], []
    partial_idx = [GARMENTS.index(g) for g in partial]
    for start in tqdm(range(0, len(rows), batch_size), disable=not progress,
                      desc=f"evaluating {getattr(model, 'model_name', '')}"):
        images, masks = cache.batch(rows[start:start + batch_size])
        x, masks = predictor.inputs(images), torch.from_numpy(masks).to(predictor.device).long()
        out = predictor.run(x)
        conf["none"] += confusion_matrix(out.seg.argmax(1), masks)
        present = presence_targets(masks)
        terms = loss_terms(out, masks, reduction="none")
        terms_per_batch.append(pd.DataFrame({k: v.float().cpu().numpy() for k, v in terms.items()}))
        truth.append(present.bool().cpu().numpy())
        if out.cls is not None:
            probs.append(torch.sigmoid(out.cls.float()).cpu().numpy())
        if "gt" in modes:
            conf["gt"] += confusion_matrix(predictor.run(x, class_prior=present).seg.argmax(1), masks)
            prior = make_class_prior(batch_size=len(x), device=x.device)
            prior[:, partial_idx] = present[:, partial_idx]
            conf["partial"] += confusion_matrix(predictor.run(x, class_prior=prior).seg.argmax(1), masks)
    per_image = pd.concat(terms_per_batch, ignore_index=True)
    per_image.insert(0, "image_id", ids)
    truth = np.concatenate(truth)
    for i, g in enumerate(GARMENTS):
        per_image[g] = truth[:, i]
    return Evaluation({m: c.cpu().numpy() for m, c in conf.items()},
                      np.concatenate(probs) if probs else None, truth, per_image)


RESULT_FILES = {"evaluation": "json", "confusion": "npz", "per_image": "csv", "presence_prob": "npy"}


def result_file(folder: Path, kind: str, name: str = "test") -> Path:
    """An evaluation's file in a model folder: ``<kind>.<ext>`` for the test split (``name`` "test"), else
    ``<kind>-<name>.<ext>``; ``kind`` in :data:`RESULT_FILES`."""
    return Path(folder) / f"{kind}{'' if name == 'test' else '-' + name}.{RESULT_FILES[kind]}"


def save_evaluation(result: Evaluation, folder: Path, name: str = "test", extra: dict | None = None) -> Path:
    """The scores (``evaluation``), confusion counts, per-image table and presence probabilities of ``result``
    (:func:`result_file`)."""
    np.savez(result_file(folder, "confusion", name), **result.confusion)
    result.per_image.to_csv(result_file(folder, "per_image", name), index=False)
    if result.presence_prob is not None:
        np.save(result_file(folder, "presence_prob", name), result.presence_prob)
    path = result_file(folder, "evaluation", name)
    write_json({"name": name, "n_images": len(result.per_image), **(extra or {}), "scores": result.scores()}, path)
    return path


def load_scores(folder: Path, name: str = "test") -> dict:
    return json.loads(result_file(folder, "evaluation", name).read_text())


def checkpoint_scores(checkpoint: Path) -> dict | None:
    """The test scores the run folder states for ``checkpoint`` (an exported model's card carries them): its model
    folder's ``evaluation.json`` when that is newer than the checkpoint and evaluated it (the book's evaluations read
    ``best.pt``; ``clothparse evaluate`` says which); None otherwise."""
    checkpoint = Path(checkpoint)
    path = result_file(checkpoint.parent, "evaluation")
    if not path.is_file() or path.stat().st_mtime < checkpoint.stat().st_mtime:
        return None
    evaluation = load_scores(checkpoint.parent)
    if evaluation.get("checkpoint", "best") != checkpoint.stem:
        return None
    scores = evaluation.get("scores", {})
    if "none" not in scores:
        return None
    out = {"split": evaluation.get("split", evaluation.get("name")), "data": evaluation.get("data"),
           "images": evaluation.get("n_images"),
           **{k: scores["none"][k] for k in ("iou_excl_bg", "iou_overall", "iou_mask") if k in scores["none"]}}
    if "gt" in scores:
        out["iou_excl_bg_with_true_prior"] = scores["gt"]["iou_excl_bg"]
    return out
