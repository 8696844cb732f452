"""Checkpoints that survive a killed run: the per-epoch history row, ``last.pt`` and ``best.pt`` written in the
background (atomically, in order), everything a resumed run needs to repeat the uninterrupted one (weights,
optimizer, random generators, fastai's per-fit state), and what must match for ``last.pt`` to be resumed."""
from __future__ import annotations

import csv
import io
import random
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from fastai.callback.core import Callback

from ..models.checkpoints import make_checkpoint, save_checkpoints, write_json
from ..profiles import TrainSettings
from ..storage import append_whole
from . import distributed as D

__all__ = ["snapshot", "to_device", "CheckpointWriter", "Checkpointer", "fit_state", "set_fit_state", "rng_state",
           "set_rng_state", "plain", "append_history", "trim_history", "RESUME_KEYS", "resume_key"]


def snapshot(obj):
    """``obj`` with every tensor copied to host memory (what a checkpoint written later must hold)."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


def to_device(obj, device):
    """``obj`` with every tensor on ``device`` (fastai's optimizer loads its state as it is given)."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class CheckpointWriter:
    """Writes ``last.pt`` (+ ``best.pt``, both or neither) and then ``manifest.json``, their readable copy (the
    manifest, the state and each checkpoint's SHA-256, ``hashes``: those of the checkpoints already there), of one
    model in a background thread, one epoch at a time and in order. :meth:`wait` joins the pending write and
    raises its error, if any (a full disk: :class:`storage.DiskFull`, the files as they were)."""

    def __init__(self, folder: Path, manifest: dict, hashes: dict | None = None):
        self.folder, self.manifest, self.hashes = folder, manifest, dict(hashes or {})
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, state: dict, weights: dict, extra: dict, best: bool, timing: dict | None = None) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(state, weights, extra, best, timing),
                                        name="clothparse-checkpoint")
        self._thread.start()

    def wait(self, raise_error: bool = True) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error

    def _write(self, state, weights, extra, best, timing):
        try:
            t = time.perf_counter()
            files = {self.folder / "last.pt": make_checkpoint(self.manifest, state, weights, **extra)}
            if best:
                files[self.folder / "best.pt"] = make_checkpoint(self.manifest, state, weights)
            self.hashes.update(save_checkpoints(files))
            write_json({**self.manifest, "state": dict(state), "checkpoints": self.hashes}, self.folder / "manifest.json")
            if timing is not None:
                timing["write_seconds"] = time.perf_counter() - t
        except BaseException as e:  # raised in the training's thread by wait()
            self._error = e


class Checkpointer(Callback):
    """After every epoch: a history row, then ``last.pt`` (+ optimizer) and, on a better validation IoU, ``best.pt``.

    The row comes first so that a kill never loses one; a row written after the last checkpoint is dropped
    when the run resumes (:func:`trim_history`). The checkpoint is copied to host memory here and written by
    a :class:`CheckpointWriter` in the background. In data-parallel training every rank takes part (the
    random generators of all ranks go into ``last.pt``) and rank 0 alone writes. ``timings``: a list that gets
    one dict per epoch (epoch seconds, seconds this callback held the loop, seconds of the background write)."""

    order = 90  # after the Recorder has the epoch's values

    def __init__(self, folder: Path, manifest: dict, phase: int, start_epoch: int, state: dict, resumed_fit=None,
                 model: torch.nn.Module | None = None, writer: CheckpointWriter | None = None,
                 ctx: D.Distributed | None = None, timings: list | None = None, size: tuple[int, int] | None = None):
        self.folder, self.manifest, self.phase, self.start_epoch, self.state = folder, manifest, phase, start_epoch, state
        self.size = size  # the phase's (height, width), in each history row
        self.resumed_fit = resumed_fit  # resuming mid-phase: the saved :func:`fit_state`
        self.bare, self.ctx, self.timings = model, ctx, timings
        self.main = ctx is None or ctx.main
        self.writer = writer if writer is not None or not self.main else CheckpointWriter(folder, manifest)

    def before_fit(self):  # after the Recorder and MixedPrecision set theirs up
        if self.resumed_fit is not None:
            set_fit_state(self.learn, self.resumed_fit)

    def before_epoch(self):
        self.t0 = time.perf_counter()

    def after_epoch(self):
        if self.epoch < self.start_epoch:  # skipped while resuming
            return
        t = time.perf_counter()
        values = dict(zip(self.recorder.metric_names[1:-1], self.recorder.log[1:-1]))
        row = {"phase": self.phase, "epoch": self.epoch + 1, **values, "seconds": round(t - self.t0, 2)}
        if self.size is not None:
            row["size"] = f"{self.size[0]}x{self.size[1]}"
        iou = values.get("valid_iou_excl_bg")
        self.state.update(phase=self.phase, epochs_done=self.epoch + 1)
        best = iou is not None and iou > self.state.get("best_iou", -1.0)
        if best:  # before last.pt, so that a resumed run compares with this epoch
            self.state["best_iou"] = float(iou)
        rng = rng_state(self.learn)
        ranks = self.ctx.gather(rng) if self.ctx is not None and self.ctx.world > 1 else None
        timing = {"phase": self.phase, "epoch": self.epoch + 1, "epoch_seconds": t - self.t0}
        if self.main:
            self.writer.wait()  # the previous epoch's checkpoint is on disk (its error, if any, raised here)
            append_history(self.folder / "history.csv", row)
            model = self.bare if self.bare is not None else self.learn.model
            extra = {"opt": plain(self.learn.opt.state_dict()), "rng": rng, "fit": fit_state(self.learn)}
            if ranks is not None:
                extra["rng_ranks"] = ranks
            self.writer.submit(dict(self.state), snapshot(model.state_dict()), snapshot(extra), best, timing)
        timing["checkpoint_seconds"] = time.perf_counter() - t
        if self.timings is not None:
            self.timings.append(timing)

    def after_fit(self):
        if self.writer is not None:
            self.writer.wait()


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
    """Append ``row`` (and the header to a new file) whole, or nothing (:func:`storage.append_whole`)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(row))
    if not path.exists():
        writer.writeheader()
    writer.writerow(row)
    append_whole(path, text.getvalue())


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


RESUME_KEYS = ("model", "seed", "settings", "size", "data")


def resume_key(manifest: dict) -> dict:
    """What must match for ``last.pt`` to be resumed: model, seed, settings (fields added since the checkpoint
    was written count at their defaults), size, data, whether batches came from fastai's DataLoader (its
    generator state differs from :class:`data.device.TensorBatches`'), the precision it ran in (``auto`` resolves
    per machine) and the number of data-parallel ranks."""
    key = {k: manifest.get(k) for k in RESUME_KEYS}
    if isinstance(key["settings"], dict):
        key["settings"] = {**asdict(TrainSettings()), **key["settings"]}
    run = manifest.get("execution", {})
    key["fastai_batches"] = run.get("batches", "fastai") == "fastai"
    key["world_size"] = run.get("world_size", 1)
    key["precision"] = run.get("precision")
    return key
