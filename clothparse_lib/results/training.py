"""Chapter Training: the training summary and the check of the loss weights."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from ..data.loaders import test_loader
from ..models.checkpoints import load_model
from ..runfolder import best_checkpoint, history_file, manifest_file
from ..training.loop import lr_find
from ..training.losses import calibrate_loss_weights
from .run import Run

__all__ = ["loss_calibration", "training_summary", "lr_finder", "history"]


def loss_calibration(run: Run, model: str = "extended", batches: int = 4) -> pd.DataFrame:
    """The paper's rule for the loss weights (each term contributes about evenly) checked on ``model`` as trained
    in this run: :func:`losses.calibrate_loss_weights` on its first ``batches`` validation batches (eval mode).

    Per term (ce, bce, box; NaN where the model lacks the head): the unweighted mean, the weight that would make
    it equal to the CE, and the weight the run trains with. ``attrs["batches"]``: the batches measured.
    """
    data, settings = run.refined(), run.profile.train
    trained = load_model(best_checkpoint(run.model_dir(model)), run.device)
    valid = test_loader(data.cache, data.split, trained.normalization, settings.batch_size, run.device, "valid")
    plain = ((x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)) for x, y in valid)
    measured = calibrate_loss_weights(trained, plain, max_batches=batches)
    used = {"ce": 1.0, "bce": settings.w_bce, "box": settings.w_box}
    table = pd.DataFrame({"unweighted mean": [measured.get(k, np.nan) for k in used],
                          "weight for even terms": [1.0, measured.get("w_bce", np.nan), measured.get("w_box", np.nan)],
                          "weight used": list(used.values())}, index=pd.Index(list(used), name="term"))
    table["weighted (weight used)"] = table["unweighted mean"] * table["weight used"]
    table.attrs["batches"] = measured["n_batches"]
    return table


def training_summary(run: Run, models, variant: str = "refined") -> pd.DataFrame:
    """Per trained model: parameters, epochs, wall time and the best validation IoU excl. bg."""
    rows = []
    for name in models:
        folder = run.model_dir(name, variant)
        history = pd.read_csv(history_file(folder))
        manifest = json.loads(manifest_file(folder).read_text())
        rows.append({"model": name, "encoder": manifest["settings"]["encoder"], "epochs": len(history),
                     "seconds": history["seconds"].sum(), "seconds per epoch": history["seconds"].mean(),
                     "best valid IoU excl. bg (%)": 100 * history["valid_iou_excl_bg"].max()})
    return pd.DataFrame(rows).set_index("model")


def lr_finder(run: Run, model: str = "extended", iterations: int | None = None) -> dict:
    """fastai's learning-rate finder on ``model`` with the profile's settings and the refined data (phase 1:
    encoder frozen) for ``iterations`` mini-batches (None: the profile's), as :func:`training.loop.lr_find` returns it."""
    return lr_find(run.data("refined"), model, run.profile.train, device=run.device,
                   num_it=iterations or run.profile.lr_find_iterations)


def history(run: Run, model: str = "extended", variant: str = "refined") -> pd.DataFrame:
    """The model's ``history.csv``: one row per epoch and phase (losses, validation IoU excl. bg, seconds)."""
    run.ensure(model, variant)
    return pd.read_csv(history_file(run.model_dir(model, variant)))
