"""The paper's two-phase schedule on fastai (section 3.4), with checkpoints that survive a killed run.

Phase 1: encoder frozen (fastai's ``freeze``: BatchNorm layers keep training, ``train_bn=True``),
one-cycle, AdamW (fastai's Adam with decoupled weight decay). Phase 2: everything unfrozen, one-cycle
with a lower maximum learning rate. Mixed precision (fp16) on CUDA only; the loss is computed in
fp32 either way. Each model trains in ``<run>/models/<model>/``:

* ``history.csv`` — one row per epoch and phase: losses (total and every term, train and valid),
  IoU excl. bg on the validation split, seconds;
* ``last.pt`` (every epoch, with the optimizer state) and ``best.pt`` (best validation IoU excl. bg),
  written atomically, loaded with ``torch.load(weights_only=True)``;
* ``manifest.json`` — profile, model, encoder, seed, settings, git commit, package versions, data
  fingerprint, and the SHA-256 of each checkpoint (a modified file is refused on loading); each
  checkpoint also carries a digest of its own manifest, state and weights.

A run that is killed resumes from ``last.pt`` (same phase, next epoch, same schedule position); history
rows past ``last.pt`` (an epoch killed after its row was written) are dropped on resuming. Whether a
model finished its schedule is read from ``last.pt``'s state (:func:`is_finished`). ``last.pt`` holds
the weights, the optimizer, every random generator and fastai's per-fit state (smoothed train loss,
mixed precision's loss scale): on a CPU a resumed run repeats the uninterrupted one exactly (tested; on
a GPU as far as its kernels are deterministic, untested).
Data-parallel training: ``accelerate launch -m clothparse_lib.cli train --distributed ...`` (or
``torchrun``); fastai's ``distrib_ctx`` wraps the same code.
"""
from __future__ import annotations

import contextlib
import csv
import random
import time
from dataclasses import asdict
from pathlib import Path

import fastai.callback.fp16  # noqa: F401 - adds Learner.to_fp16
import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle and lr_find
import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Learner, Metric
from fastai.optimizer import Adam
from fastai.torch_core import set_seed

from ..data.loaders import make_dataloaders
from ..data.prepared import PreparedData
from ..evaluation.metrics import confusion_matrix, segmentation_scores
from ..models.checkpoints import (
    StaleCheckpoint,
    atomic_save,
    make_checkpoint,
    read_checkpoint,
    write_json,
)
from ..models.unet import build_model, model_splitter, split_outputs
from ..profiles import TrainSettings
from ..provenance import environment, git_commit
from .losses import ClothParsingLoss, loss_term_metrics


class ValidIoU(Metric):
    """IoU excl. bg accumulated over the whole validation set (see :mod:`metrics`)."""

    def reset(self):
        self.conf = 0

    def accumulate(self, learn):  # on the device: no sync per batch
        seg = split_outputs(learn.pred)[0]
        self.conf = self.conf + confusion_matrix(seg.argmax(1), learn.yb[0])

    @property
    def value(self):
        return segmentation_scores(self.conf.cpu().numpy())["iou_excl_bg"] if torch.is_tensor(self.conf) else None

    @property
    def name(self):
        return "iou_excl_bg"


class Checkpointer(Callback):
    """After every epoch: a history row, then ``last.pt`` (+ optimizer) and, on a better validation IoU, ``best.pt``.

    The row comes first so that a kill never loses one; a row written after the last checkpoint is dropped
    when the run resumes (:func:`trim_history`)."""

    order = 90  # after the Recorder has the epoch's values

    def __init__(self, folder: Path, manifest: dict, phase: int, start_epoch: int, state: dict, resumed_fit=None):
        self.folder, self.manifest, self.phase, self.start_epoch, self.state = folder, manifest, phase, start_epoch, state
        self.resumed_fit = resumed_fit  # resuming mid-phase: the saved :func:`fit_state`

    def before_fit(self):  # after the Recorder and MixedPrecision set theirs up
        if self.resumed_fit is not None:
            set_fit_state(self.learn, self.resumed_fit)

    def before_epoch(self):
        self.t0 = time.perf_counter()

    def after_epoch(self):
        if self.epoch < self.start_epoch:  # skipped while resuming
            return
        values = dict(zip(self.recorder.metric_names[1:-1], self.recorder.log[1:-1]))
        row = {"phase": self.phase, "epoch": self.epoch + 1, **values, "seconds": round(time.perf_counter() - self.t0, 2)}
        append_history(self.folder / "history.csv", row)
        iou = values.get("valid_iou_excl_bg")
        self.state.update(phase=self.phase, epochs_done=self.epoch + 1)
        best = iou is not None and iou > self.state.get("best_iou", -1.0)
        if best:  # before last.pt, so that a resumed run compares with this epoch
            self.state["best_iou"] = float(iou)
        weights = self.learn.model.state_dict()
        checkpoint = make_checkpoint(self.manifest, self.state, weights, opt=plain(self.learn.opt.state_dict()),
                                     rng=rng_state(self.learn), fit=fit_state(self.learn))
        hashes = {"last.pt": atomic_save(checkpoint, self.folder / "last.pt")}
        if best:
            hashes["best.pt"] = atomic_save(make_checkpoint(self.manifest, self.state, weights), self.folder / "best.pt")
        self.manifest.setdefault("checkpoints", {}).update(hashes)
        self.manifest["state"] = dict(self.state)
        write_json(self.manifest, self.folder / "manifest.json")


def fit_state(learn) -> dict:
    """What fastai carries from epoch to epoch of one fit: the smoothed train loss (history's ``train_loss``)
    and, in mixed precision, the loss scale."""
    scaler = getattr(learn, "scaler", None)
    return {"smooth_loss": [learn.recorder.smooth_loss.val, learn.recorder.smooth_loss.count],
            "scaler": scaler.state_dict() if scaler is not None else None}


def set_fit_state(learn, state: dict) -> None:
    learn.recorder.smooth_loss.val, learn.recorder.smooth_loss.count = state["smooth_loss"]
    if state["scaler"] and getattr(learn, "scaler", None) is not None:
        learn.scaler.load_state_dict(state["scaler"])


def rng_state(learn) -> dict:
    """Every random generator training draws from (shuffling, augmentation, dropout), as tensors and lists."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": plain(random.getstate()), "dl": plain(learn.dls.train.rng.getstate()),
            "numpy": plain([np_state[0], np_state[1].astype(np.int64), *np_state[2:]]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(learn, state: dict) -> None:
    as_tuple = lambda v: tuple(as_tuple(x) for x in v) if isinstance(v, list) else v  # noqa: E731
    learn.dls.n_inp  # fastai works it out once with an augmented batch (random draws), as the saved run already did
    torch.set_rng_state(state["torch"])
    random.setstate(as_tuple(state["python"]))
    learn.dls.train.rng.setstate(as_tuple(state["dl"]))
    np.random.set_state((state["numpy"][0], state["numpy"][1].numpy().astype(np.uint32), *state["numpy"][2:]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plain(obj):
    """fastai's containers (``L``) as lists and numpy values as Python / torch ones, recursively, so that
    ``weights_only`` loading accepts them."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or type(obj).__name__ == "L":
        return [plain(v) for v in obj]
    return obj


def append_history(path: Path, row: dict) -> None:
    exists = path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if not exists:
            writer.writeheader()
        writer.writerow(row)


def trim_history(path: Path, state: dict) -> None:
    """Drop the history rows past a checkpoint's ``state`` (epochs whose checkpoint a kill prevented)."""
    if path.exists():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if (int(r["phase"]), int(r["epoch"])) <= (state["phase"], state["epochs_done"])]
        if len(kept) < len(rows):
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(kept)


def make_learner(model, dls, settings: TrainSettings) -> Learner:
    loss = ClothParsingLoss(w_bce=settings.w_bce, w_box=settings.w_box)
    learn = Learner(dls, model, loss_func=loss, opt_func=Adam, wd=settings.wd, splitter=model_splitter,
                    metrics=[*loss_term_metrics(loss), ValidIoU()])
    learn.recorder.train_metrics = True
    if dls.device is not None and torch.device(dls.device).type == "cuda":
        learn.to_fp16()
        learn.model.to(memory_format=torch.channels_last)
    return learn


def train_model(prepared: PreparedData, model_name: str, settings: TrainSettings, run_dir: Path, seed: int = 0,
                device=None, resume: bool = True, progress: bool = True, distributed: bool = False,
                tag: str | None = None) -> Path:
    """Train ``model_name`` with the two-phase schedule; returns the model's folder (checkpoints, history),
    ``<run>/models/<tag or model_name>``."""
    folder = Path(run_dir) / "models" / (tag or model_name)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"profile": prepared.profile.name, "model": model_name, "seed": seed, "settings": asdict(settings),
                "size": list(prepared.cache.size), "data": {"cache": prepared.cache.path.name,
                "fingerprint": prepared.cache.manifest["fingerprint"], "split": str(prepared.split_path)},
                "git_commit": git_commit(), "environment": environment()}
    state = {"phase": 1, "epochs_done": 0, "best_iou": -1.0}
    set_seed(seed, reproducible=True)
    model = build_model(model_name, encoder=settings.encoder, weights=settings.weights, img_size=prepared.cache.size)
    dls = make_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device, seed)
    learn = make_learner(model, dls, settings)
    if not progress:
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.logger = lambda *_: None
    opt_state = fit = None
    if resume and (folder / "last.pt").exists():
        try:
            ckpt = read_checkpoint(folder / "last.pt")
        except StaleCheckpoint:  # an older clothparse's: start afresh, as after a change of settings
            ckpt = {"manifest": {}}
        same = {k: ckpt["manifest"].get(k) for k in ("model", "seed", "settings", "size", "data")} == \
               {k: manifest[k] for k in ("model", "seed", "settings", "size", "data")}
        if same:
            learn.model.load_state_dict(ckpt["model"])
            state, opt_state, rng, fit = ckpt["state"], ckpt.get("opt"), ckpt.get("rng"), ckpt.get("fit")
            manifest["checkpoints"] = ckpt["manifest"].get("checkpoints", {})
            trim_history(folder / "history.csv", state)
            print(f"resuming {model_name} from phase {state['phase']}, epoch {state['epochs_done']}")
    if not opt_state:  # a fresh start: forget any earlier history of this model
        for f in ("history.csv", "last.pt", "best.pt"):
            (folder / f).unlink(missing_ok=True)
    write_json(manifest, folder / "manifest.json")

    phases = [(1, settings.epochs_frozen, settings.lr_frozen), (2, settings.epochs_unfrozen, settings.lr_unfrozen)]
    if distributed:
        import fastai.distributed  # noqa: F401 - adds Learner.distrib_ctx (needs the accelerate package)
    ctx = learn.distrib_ctx() if distributed else contextlib.nullcontext()
    with ctx:
        for phase, epochs, lr in phases:
            if epochs == 0 or phase < state["phase"] or (phase == state["phase"] and state["epochs_done"] >= epochs):
                continue
            start = state["epochs_done"] if phase == state["phase"] else 0
            learn.freeze() if phase == 1 else learn.unfreeze()
            if opt_state is not None:  # resuming: optimizer and random generators as they were
                learn.opt.load_state_dict(opt_state)
                set_rng_state(learn, rng)
            opt_state = None
            state.update(phase=phase, epochs_done=start)
            cb = Checkpointer(folder, manifest, phase, start, state, fit if start else None)
            learn.fit_one_cycle(epochs, lr, wd=settings.wd, start_epoch=start, cbs=[cb])
            state.update(phase=phase + 1, epochs_done=0)
    return folder


def lr_find(prepared: PreparedData, model_name: str, settings: TrainSettings, device=None, seed: int = 0,
            num_it: int = 60) -> dict:
    """fastai's learning-rate finder on the frozen model (phase 1): the curve and its suggestions."""
    set_seed(seed, reproducible=True)
    model = build_model(model_name, encoder=settings.encoder, weights=settings.weights, img_size=prepared.cache.size)
    dls = make_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device, seed)
    learn = make_learner(model, dls, settings)
    learn.freeze()
    from fastai.callback.schedule import minimum, steep, valley
    suggestions = learn.lr_find(num_it=num_it, suggest_funcs=(valley, steep, minimum), show_plot=False)
    rec = learn.recorder
    return {"lrs": [float(v) for v in rec.lrs], "losses": [float(v) for v in rec.losses],
            "suggestions": {k: float(v) for k, v in suggestions._asdict().items()}}
