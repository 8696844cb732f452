"""The paper's two-phase schedule on fastai (section 3.4), with checkpoints that survive a killed run.

Phase 1: encoder frozen (fastai's ``freeze``: BatchNorm layers keep training, ``train_bn=True``),
one-cycle, AdamW (fastai's Adam with decoupled weight decay). Phase 2: everything unfrozen, one-cycle
with a lower maximum learning rate. The loss is computed in fp32 whatever the model runs in. Each model
trains in ``<run>/models/<model>/``:

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

Speed (``TrainSettings``; the defaults keep a CPU training bitwise as it was and choose the fast path on CUDA):

* ``data_on_device``: batches gathered and augmented on the GPU from the cache held there as uint8, or read
  from the host by a prefetching thread into pinned memory (:mod:`data.device`); on a CPU fastai's DataLoader;
* ``precision``: fp16 mixed precision (CUDA default; PyTorch's loss scaler reads one flag per step), bf16 (no
  scaler) or fp32 (CPU default); channels-last on CUDA; cudnn autotuning on CUDA (``cudnn_benchmark``);
* ``compile``: ``torch.compile`` of the model, anew for each phase (freezing changes which weights train);
* no host synchronisation per batch: the Recorder's losses and our metrics accumulate on the device and are
  read once per epoch (:class:`DeviceAvgLoss`, :class:`DeviceSmoothLoss`);
* checkpoints off the critical path: at the end of an epoch the history row is written and the weights,
  optimizer and generators are copied to host memory; a background thread serialises, hashes and writes
  them (atomically, in order; the next epoch's checkpoint waits for the previous one, and a failed write
  is raised there or at the end of the phase). A run killed before the write completes resumes from the
  previous ``last.pt``, as from any kill between a history row and its checkpoint.

Data-parallel training: ``torchrun --nproc-per-node N -m clothparse_lib.cli train --distributed ...`` (plain
``torch.distributed``, NCCL on GPUs and gloo on CPUs, see :mod:`.distributed`).
"""
from __future__ import annotations

import csv
import random
import threading
import time
from dataclasses import asdict
from pathlib import Path

import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle and lr_find
import numpy as np
import torch
from fastai.callback.core import Callback, CancelStepException
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.progress import ProgressCallback
from fastai.learner import AvgLoss, AvgSmoothLoss, Learner, Metric
from fastai.optimizer import Adam
from fastai.torch_core import find_bs, set_seed

from ..data.loaders import training_dataloaders
from ..data.prepared import PreparedData
from ..metrics import confusion_matrix, segmentation_scores
from ..models import build_model, model_splitter
from ..models.checkpoints import StaleCheckpoint, atomic_save, make_checkpoint, read_checkpoint, write_json
from ..profiles import TrainSettings
from ..provenance import environment, git_commit
from . import distributed as D
from .losses import ClothParsingLoss, loss_term_metrics

__all__ = ["COMPILE_BACKEND", "ValidIoU", "DeviceAvgLoss", "DeviceSmoothLoss", "Autocast", "ProgressEvery", "snapshot",
           "to_device", "CheckpointWriter", "Checkpointer", "fit_state", "set_fit_state", "rng_state", "set_rng_state",
           "plain", "append_history", "trim_history", "resolve_precision", "make_learner", "phase_model", "RESUME_KEYS",
           "resume_key", "train_model", "lr_find"]


COMPILE_BACKEND = "inductor"  # torch.compile's backend for ``TrainSettings.compile`` (tests use "aot_eager")


class ValidIoU(Metric):
    """IoU excl. bg accumulated over the whole validation set (see :mod:`clothparse_lib.metrics`)."""

    def reset(self):
        self.conf = 0

    def accumulate(self, learn):  # on the device: no sync per batch
        self.conf = self.conf + confusion_matrix(learn.pred.seg.argmax(1), learn.yb[0])

    @property
    def value(self):
        return segmentation_scores(self.conf.cpu().numpy())["iou_excl_bg"] if torch.is_tensor(self.conf) else None

    @property
    def name(self):
        return "iou_excl_bg"


class DeviceAvgLoss(AvgLoss):
    """fastai's validation loss, accumulated on the device (fastai's moves every batch's loss to the CPU: a
    host synchronisation per batch on a GPU). The same arithmetic: on a CPU the same numbers."""

    def accumulate(self, learn):
        bs = find_bs(learn.yb)
        self.total += learn.loss.mean().detach() * bs
        self.count += bs


class DeviceSmoothLoss(AvgSmoothLoss):
    """fastai's smoothed training loss (history's ``train_loss``), kept on the device."""

    def accumulate(self, learn):
        self.count += 1
        loss = learn.loss.mean().detach()
        self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)


class Autocast(MixedPrecision):
    """fastai's mixed precision on the learner's device type (fastai's autocasts on CUDA only), fp16 (with the
    loss scaler) or bf16 (without); without fastai's per-step read of the loss scale."""

    def __init__(self, precision: str, device_type: str):
        super().__init__(amp_mode=precision)
        self.device_type = device_type

    def before_fit(self):
        bf16 = self.amp_mode.value == "bf16"
        if bf16 and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU does not support bfloat16: use precision fp16")
        dtype = torch.bfloat16 if bf16 else torch.float16
        self.kwargs["enabled"] = not bf16
        self.autocast = torch.autocast(self.device_type, dtype=dtype)
        self.learn.scaler, self.scales = torch.amp.GradScaler(self.device_type, **self.kwargs), []

    def before_step(self):
        self.skipped = True
        self.scaler.step(self)  # calls self.step unless the gradients overflowed
        if self.skipped:
            raise CancelStepException()


class ProgressEvery(ProgressCallback):
    """fastai's progress bar, showing the smoothed loss every 25 batches rather than every batch (reading it
    waits for the GPU)."""

    def after_batch(self):
        self.pbar.update(self.iter + 1)
        if hasattr(self, "smooth_loss") and (self.iter + 1) % 25 == 0:
            self.pbar.comment = f"{self.smooth_loss.item():.4f}"


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
    """Writes ``last.pt`` (+ ``best.pt``) and the manifest of one model in a background thread, one epoch at a
    time and in order; owns the manifest while training runs. :meth:`wait` joins the pending write and raises
    its error, if any."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder, self.manifest = folder, manifest
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
            checkpoint = make_checkpoint(self.manifest, state, weights, **extra)
            hashes = {"last.pt": atomic_save(checkpoint, self.folder / "last.pt")}
            if best:
                hashes["best.pt"] = atomic_save(make_checkpoint(self.manifest, state, weights), self.folder / "best.pt")
            self.manifest.setdefault("checkpoints", {}).update(hashes)
            self.manifest["state"] = dict(state)
            write_json(self.manifest, self.folder / "manifest.json")
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
                 ctx: D.Distributed | None = None, timings: list | None = None):
        self.folder, self.manifest, self.phase, self.start_epoch, self.state = folder, manifest, phase, start_epoch, state
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


def resolve_precision(precision: str, device) -> str:
    """``TrainSettings.precision`` on ``device``: "auto" is fp16 on CUDA, fp32 elsewhere."""
    if precision != "auto":
        return precision
    return "fp16" if device is not None and torch.device(device).type == "cuda" else "fp32"


def make_learner(model, dls, settings: TrainSettings) -> Learner:
    loss = ClothParsingLoss(w_bce=settings.w_bce, w_box=settings.w_box)
    learn = Learner(dls, model, loss_func=loss, opt_func=Adam, wd=settings.wd, splitter=model_splitter,
                    metrics=[*loss_term_metrics(loss), ValidIoU()])
    learn.recorder.train_metrics = True
    object.__setattr__(learn.recorder, "loss", DeviceAvgLoss())  # (fastai warns on a name the learner has too)
    learn.recorder.smooth_loss = DeviceSmoothLoss(beta=learn.recorder.smooth_loss.beta)
    device = torch.device(dls.device) if dls.device is not None else torch.device("cpu")
    precision = resolve_precision(settings.precision, device)
    if precision != "fp32":
        learn.add_cb(Autocast(precision, device.type))
    if device.type == "cuda":
        learn.model.to(memory_format=torch.channels_last)
    return learn


def phase_model(model: torch.nn.Module, settings: TrainSettings, ctx: D.Distributed | None = None,
                backend: str | None = None) -> torch.nn.Module:
    """What one phase trains: ``model`` (frozen or unfrozen already) wrapped for data-parallel training and
    compiled, as asked. Built anew per phase: DDP registers, and a compiled graph was traced with, the
    weights that required gradients at the time."""
    m = model
    if ctx is not None and ctx.world > 1:
        m = ctx.wrap(m)
    if settings.compile:
        torch._dynamo.reset()  # nothing traced in the previous phase is reused
        m = torch.compile(m, backend=backend or COMPILE_BACKEND)
    return m


RESUME_KEYS = ("model", "seed", "settings", "size", "data")


def resume_key(manifest: dict) -> dict:
    """What must match for ``last.pt`` to be resumed: model, seed, settings (fields added since the checkpoint
    was written count at their defaults), size, data, whether batches came from fastai's DataLoader (its
    generator state differs from :class:`data.device.TensorBatches`'), and the number of data-parallel ranks."""
    key = {k: manifest.get(k) for k in RESUME_KEYS}
    if isinstance(key["settings"], dict):
        key["settings"] = {**asdict(TrainSettings()), **key["settings"]}
    run = manifest.get("execution", {})
    key["fastai_batches"] = run.get("batches", "fastai") == "fastai"
    key["world_size"] = run.get("world_size", 1)
    return key


def _reseed_rank(seed: int, rank: int) -> None:
    """A data-parallel rank's own dropout and augmentation draws (rank 0 keeps the single-process seed)."""
    s = seed + 1_000_003 * rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def train_model(prepared: PreparedData, model_name: str, settings: TrainSettings, run_dir: Path, seed: int = 0,
                device=None, resume: bool = True, progress: bool = True, distributed: bool = False,
                tag: str | None = None, timings: list | None = None) -> Path:
    """Train ``model_name`` with the two-phase schedule; returns the model's folder (checkpoints, history),
    ``<run>/models/<tag or model_name>``.

    ``distributed``: data-parallel, this process one rank of a ``torchrun`` group (:mod:`.distributed`).
    ``timings``: a list that receives one dict per epoch trained (see :class:`Checkpointer`)."""
    ctx = D.start(device) if distributed else None
    if ctx is not None:
        device = ctx.device
    rank, world = (ctx.rank, ctx.world) if ctx is not None else (0, 1)
    main = rank == 0
    try:
        return _train(prepared, model_name, settings, Path(run_dir), seed, device, resume, progress, tag, timings,
                      ctx, rank, world, main)
    finally:
        if ctx is not None:
            ctx.close()


def _train(prepared, model_name, settings, run_dir, seed, device, resume, progress, tag, timings, ctx, rank, world,
           main) -> Path:
    folder = run_dir / "models" / (tag or model_name)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"profile": prepared.profile.name, "model": model_name, "seed": seed, "settings": asdict(settings),
                "size": list(prepared.cache.size), "data": {"cache": prepared.cache.path.name,
                "fingerprint": prepared.cache.manifest["fingerprint"], "split": str(prepared.split_path)},
                "git_commit": git_commit(), "environment": environment()}
    state = {"phase": 1, "epochs_done": 0, "best_iou": -1.0}
    set_seed(seed, reproducible=True)
    model = build_model(model_name, encoder=settings.encoder, weights=settings.weights, img_size=prepared.cache.size)
    dls = training_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device, seed,
                               settings.data_on_device, rank, world)
    dev = torch.device(dls.device)
    if dev.type == "cuda":  # set_seed(reproducible=True) turned autotuning off
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
        torch.backends.cudnn.deterministic = not settings.cudnn_benchmark
    manifest["execution"] = {"device": str(dev), "batches": dls.train.placement,
                             "precision": resolve_precision(settings.precision, dev), "compile": settings.compile,
                             "world_size": world}
    learn = make_learner(model, dls, settings)
    if not progress or not main:
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.logger = lambda *_: None
    elif dev.type == "cuda":
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.add_cb(ProgressEvery())
    if rank:
        _reseed_rank(seed, rank)
    opt_state = fit = rng = None
    if resume and (folder / "last.pt").exists():
        try:
            ckpt = read_checkpoint(folder / "last.pt")
        except StaleCheckpoint:  # an older clothparse's: start afresh, as after a change of settings
            ckpt = {"manifest": {}}
        if resume_key(ckpt["manifest"]) == resume_key(manifest):
            learn.model.load_state_dict(ckpt["model"])
            state, opt_state, fit = ckpt["state"], ckpt.get("opt"), ckpt.get("fit")
            rng = ckpt["rng_ranks"][rank] if "rng_ranks" in ckpt else ckpt.get("rng")
            manifest["checkpoints"] = ckpt["manifest"].get("checkpoints", {})
            if main:
                trim_history(folder / "history.csv", state)
                print(f"resuming {model_name} from phase {state['phase']}, epoch {state['epochs_done']}")
    if ctx is not None:
        ctx.barrier()  # every rank has read last.pt before rank 0 may remove it
    if main:
        if not opt_state:  # a fresh start: forget any earlier history of this model
            for f in ("history.csv", "last.pt", "best.pt"):
                (folder / f).unlink(missing_ok=True)
        write_json(manifest, folder / "manifest.json")
    writer = CheckpointWriter(folder, manifest) if main else None

    phases = [(1, settings.epochs_frozen, settings.lr_frozen), (2, settings.epochs_unfrozen, settings.lr_unfrozen)]
    try:
        for phase, epochs, lr in phases:
            if epochs == 0 or phase < state["phase"] or (phase == state["phase"] and state["epochs_done"] >= epochs):
                continue
            start = state["epochs_done"] if phase == state["phase"] else 0
            learn.freeze() if phase == 1 else learn.unfreeze()
            if opt_state is not None:  # resuming: optimizer and random generators as they were
                learn.opt.load_state_dict(to_device(opt_state, dev))  # (checkpoints load on the CPU)
                set_rng_state(learn, rng)
            opt_state = None
            state.update(phase=phase, epochs_done=start)
            cbs = [Checkpointer(folder, manifest, phase, start, state, fit if start else None, model=model,
                                writer=writer, ctx=ctx, timings=timings)]
            if world > 1:
                cbs.append(D.DistributedSync(ctx, model))
            learn.model = phase_model(model, settings, ctx)
            try:
                learn.fit_one_cycle(epochs, lr, wd=settings.wd, start_epoch=start, cbs=cbs)
            finally:
                learn.model = model
            state.update(phase=phase + 1, epochs_done=0)
    except BaseException:
        if writer is not None:
            writer.wait(raise_error=False)  # what was submitted reaches the disk; the training's error is raised
        raise
    if writer is not None:
        writer.wait()
    if ctx is not None:
        ctx.barrier()  # rank 0's files are complete when any rank returns
    return folder


def lr_find(prepared: PreparedData, model_name: str, settings: TrainSettings, device=None, seed: int = 0,
            num_it: int = 60) -> dict:
    """fastai's learning-rate finder on the frozen model (phase 1): the curve and its suggestions."""
    set_seed(seed, reproducible=True)
    model = build_model(model_name, encoder=settings.encoder, weights=settings.weights, img_size=prepared.cache.size)
    dls = training_dataloaders(prepared.cache, prepared.split, model.normalization, settings.batch_size, device, seed,
                               settings.data_on_device)
    learn = make_learner(model, dls, settings)
    learn.freeze()
    from fastai.callback.schedule import minimum, steep, valley
    suggestions = learn.lr_find(num_it=num_it, suggest_funcs=(valley, steep, minimum), show_plot=False)
    rec = learn.recorder
    return {"lrs": [float(v) for v in rec.lrs], "losses": [float(v) for v in rec.losses],
            "suggestions": {k: float(v) for k, v in suggestions._asdict().items()}}
