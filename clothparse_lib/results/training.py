"""Chapter Training: the training summary and the check of the loss weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.loaders import test_loader
from ..models.checkpoints import load_model
from ..training.loop import lr_find
from ..training.losses import calibrate_loss_weights
from .. import paper
from ..profiles import DRY_RUN_SUFFIX, Profile
from .run import Run

PILOTS = Path(__file__).resolve().parents[1] / "pilots"  # the pilots' tables, shipped with the package

__all__ = ["PILOTS", "settings_table", "pilot_table", "loss_calibration", "training_summary", "lr_finder", "history"]


def settings_table(profile: Profile) -> pd.DataFrame:
    """The paper's training settings (section 3.4, as transcribed) beside this profile's, one row per setting."""
    ref, t = paper.numbers()["training"], profile.train
    p1, p2 = ref["phase1"], ref["phase2"]
    size = "x".join(map(str, profile.size))
    early = "x".join(map(str, t.early_size)) if t.early_size else size
    rows = [("data set", paper.numbers()["dataset"]["name"], profile.source),
            ("batch size", ref["batch_size"], t.batch_size),
            ("phase 1 (encoder frozen): epochs", p1["epochs"], f"{t.epochs_frozen} at {early}"),
            ("phase 2 (unfrozen): epochs", p2["epochs"], f"{t.epochs_unfrozen} at {early}"),
            ("phase 3 (unfrozen, final size): epochs", "none", f"{t.epochs_final} at {size}" if t.epochs_final else "none"),
            ("max learning rate per phase", f"{p1['lr_max']} / {p2['lr_max']}",
             " / ".join(f"{lr:g}" for lr in (t.lr_frozen, t.lr_unfrozen, t.lr_final)[:3 if t.epochs_final else 2])),
            ("schedule, optimizer", f"{p1['schedule']}, {p1['optimizer']}", "one-cycle per phase, fastai's Adam (decoupled wd)"),
            ("weight decay", ref["weight_decay"], f"{t.wd:g}"),
            ("precision", ref["precision"], f"{t.precision}: bf16 + channels-last on a CPU with native bfloat16, fp16 on CUDA"),
            ("loss weights: CE / BCE / box", f"{ref['loss_weights']['weighted_cross_entropy']} / lost / "
             f"{ref['loss_weights']['bbox_smooth_l1']}", f"1 / {t.w_bce:g} / {t.w_box:g}"),
            ("encoder", "ResNet34 (ImageNet)", f"{t.encoder} ({t.weights})")]
    return pd.DataFrame(rows, columns=["setting", "paper", f"this profile ({profile.name})"]).set_index("setting")


def pilot_table(profile: Profile) -> pd.DataFrame | None:
    """The pilot that chose ``profile``'s recipe (``benchmarks/pilot_recipes.py``; the CSV it wrote, shipped as
    ``clothparse_lib/pilots/<profile>.csv``), or None where the profile had none."""
    path = PILOTS / f"{profile.name.removesuffix(DRY_RUN_SUFFIX)}.csv"
    return pd.read_csv(path).set_index(["recipe", "model"]) if path.exists() else None


def loss_calibration(run: Run, model: str = "extended", batches: int = 4) -> pd.DataFrame:
    """The paper's rule for the loss weights (each term contributes about evenly) checked on ``model`` as trained
    in this run: :func:`losses.calibrate_loss_weights` on its first ``batches`` validation batches (eval mode).

    Per term (ce, bce, box; NaN where the model lacks the head): the unweighted mean, the weight that would make
    it equal to the CE, and the weight the run trains with. ``attrs["batches"]``: the batches measured.
    """
    data, settings = run.refined(), run.profile.train
    trained = load_model(run.model_dir(model) / "best.pt", run.device)
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
        history = pd.read_csv(folder / "history.csv")
        manifest = json.loads((folder / "manifest.json").read_text())
        rows.append({"model": name, "encoder": manifest["settings"]["encoder"], "epochs": len(history),
                     "seconds": history["seconds"].sum(), "seconds per epoch": history["seconds"].mean(),
                     "best valid IoU excl. bg (%)": 100 * history["valid_iou_excl_bg"].max()})
    return pd.DataFrame(rows).set_index("model")


def lr_finder(run: Run, model: str = "extended", iterations: int | None = None) -> dict:
    """fastai's learning-rate finder on ``model`` with the profile's settings and the refined data (phase 1:
    encoder frozen, at the size phase 1 trains at) for ``iterations`` mini-batches (None: the profile's), as
    :func:`training.loop.lr_find` returns it."""
    settings = run.profile.train
    data = run.data("refined")
    return lr_find(data.at(settings.phases(data.cache.size)[0].size), model, settings, device=run.device,
                   num_it=iterations or run.profile.lr_find_iterations)


def history(run: Run, model: str = "extended", variant: str = "refined") -> pd.DataFrame:
    """The model's ``history.csv``: one row per epoch and phase (losses, validation IoU excl. bg, seconds)."""
    run.ensure(model, variant)
    return pd.read_csv(run.model_dir(model, variant) / "history.csv")
