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
  fingerprint, and the SHA-256 of each checkpoint (a modified file is refused on loading): a readable copy
  written after the checkpoints, each of which carries its own manifest and a digest of it, its state and
  weights (:mod:`models.checkpoints`), so that a run killed at any instant resumes.

A run that is killed resumes from ``last.pt`` (same phase, next epoch, same schedule position); history
rows past ``last.pt`` (an epoch killed after its row was written) are dropped on resuming. Whether a
model finished its schedule is read from ``last.pt``'s state (:func:`is_finished`). ``last.pt`` holds
the weights, the optimizer, every random generator and fastai's per-fit state (smoothed train loss,
mixed precision's loss scale): on a CPU a resumed run repeats the uninterrupted one exactly (tested; on
a GPU as far as its kernels are deterministic, untested).

Speed (``TrainSettings``; the defaults choose the fast path on CUDA and on a CPU with native bfloat16):

* ``data_on_device``: batches gathered and augmented on the GPU from the cache held there as uint8, or read
  from the host by a prefetching thread into pinned memory (:mod:`data.device`); on a CPU fastai's DataLoader;
* ``precision``: fp16 mixed precision (CUDA default; PyTorch's loss scaler reads one flag per step), bf16 (no
  scaler; the default on a CPU with native bfloat16, with channels-last: the fast CPU path, :mod:`.precision`) or
  fp32 (other CPUs); channels-last on CUDA; cudnn autotuning on CUDA (``cudnn_benchmark``);
* ``compile``: ``torch.compile`` of the model, anew for each phase (freezing changes which weights train);
* no host synchronisation per batch: the Recorder's losses and our metrics accumulate on the device and are
  read once per epoch (:class:`DeviceAvgLoss`, :class:`DeviceSmoothLoss`);
* checkpoints off the critical path: at the end of an epoch the history row is written and the weights,
  optimizer and generators are copied to host memory; a background thread serialises, hashes and writes
  them (atomically, in order; the next epoch's checkpoint waits for the previous one, and a failed write
  is raised there or at the end of the phase). A run killed before the write completes resumes from the
  previous ``last.pt``, as from any kill between a history row and its checkpoint.

The pieces: :mod:`.callbacks` (what runs each batch, on the device), :mod:`.resume` (the checkpoints and the
state that make a killed run resumable), :mod:`.distributed` (data-parallel ranks), :mod:`.losses`.

Data-parallel training: ``torchrun --nproc-per-node N -m clothparse_lib.cli train --distributed ...`` (plain
``torch.distributed``, NCCL on GPUs and gloo on CPUs, see :mod:`.distributed`).
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import asdict
from pathlib import Path

import fastai.callback.schedule  # noqa: F401 - adds Learner.fit_one_cycle and lr_find
import numpy as np
import torch
from fastai.learner import Learner
from fastai.optimizer import Adam
from fastai.torch_core import set_seed

from .. import runfolder
from ..data.loaders import training_dataloaders
from ..data.prepared import PreparedData
from ..locks import folder_lock
from ..models import build_model, model_splitter
from ..models.checkpoints import StaleCheckpoint, is_finished, read_checkpoint
from ..profiles import TrainSettings
from ..provenance import environment, git_commit
from ..storage import file_sha256
from . import distributed as D
from .callbacks import (
    DeviceAvgLoss,
    DeviceMixedPrecision,
    DeviceSmoothLoss,
    ProgressEvery,
    StopOnNonFiniteLoss,
    ValidIoU,
)
from .losses import ClothParsingLoss, loss_term_metrics
from .precision import resolve_precision, uses_channels_last
from .resume import Checkpointer, CheckpointWriter, resume_key, set_rng_state, to_device, trim_history

__all__ = ["COMPILE_BACKEND", "make_learner", "phase_model", "train_model", "lr_find"]


COMPILE_BACKEND = "inductor"  # torch.compile's backend for ``TrainSettings.compile`` (tests use "aot_eager")


def make_learner(model, dls, settings: TrainSettings, model_name: str | None = None) -> Learner:
    """fastai's Learner for ``model`` with the loss, metrics and device callbacks of the loop, in the precision and
    memory format that :mod:`.precision` chooses for ``model_name`` on the batches' device."""
    loss = ClothParsingLoss(w_bce=settings.w_bce, w_box=settings.w_box)
    learn = Learner(dls, model, loss_func=loss, opt_func=Adam, wd=settings.wd, splitter=model_splitter,
                    metrics=[*loss_term_metrics(loss), ValidIoU()])
    learn.recorder.train_metrics = True
    object.__setattr__(learn.recorder, "loss", DeviceAvgLoss())  # (fastai warns on a name the learner has too)
    learn.recorder.smooth_loss = DeviceSmoothLoss(beta=learn.recorder.smooth_loss.beta)
    device = torch.device(dls.device) if dls.device is not None else torch.device("cpu")
    precision = resolve_precision(settings.precision, device, model_name)
    if precision != "fp32":
        learn.add_cb(DeviceMixedPrecision(precision, device.type))
    if uses_channels_last(precision, device):
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


def _reseed_rank(seed: int, rank: int) -> None:
    """A data-parallel rank's own dropout and augmentation draws (rank 0 keeps the single-process seed)."""
    s = seed + 1_000_003 * rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def train_model(prepared: PreparedData, model_name: str, settings: TrainSettings, run_dir: Path, seed: int = 0,
                device=None, resume: bool = True, progress: bool = True, distributed: bool = False,
                tag: str | None = None, timings: list | None = None, wait: bool = False) -> Path:
    """Train ``model_name`` with the two-phase schedule (three with progressive resizing, each phase at its size:
    :meth:`TrainSettings.phases`); returns the model's folder (checkpoints, history),
    ``<run>/models/<tag or model_name>``, whose lock it holds (:func:`locks.folder_lock`: another process
    training there makes it stop with :class:`locks.FolderLocked`, or with ``wait`` wait for it).

    ``distributed``: data-parallel, this process one rank of a ``torchrun`` group (:mod:`.distributed`).
    ``timings``: a list that receives one dict per epoch trained (see :class:`Checkpointer`)."""
    ctx = D.start(device) if distributed else None
    if ctx is not None:
        device = ctx.device
    rank, world = (ctx.rank, ctx.world) if ctx is not None else (0, 1)
    main = rank == 0
    folder = runfolder.model_dir(run_dir, tag or model_name)
    try:
        with folder_lock(folder, wait) if main else contextlib.nullcontext():
            return _train(prepared, model_name, settings, folder, seed, device, resume, progress, timings, ctx, rank,
                          world, main)
    finally:
        if ctx is not None:
            ctx.close()


def _train(prepared, model_name, settings, folder, seed, device, resume, progress, timings, ctx, rank, world,
           main) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    phases = settings.phases(prepared.cache.size)
    data = {phase.size: prepared.at(phase.size, progress and main) for phase in phases if phase.epochs}
    manifest = {"profile": prepared.profile.name, "model": model_name, "seed": seed, "settings": asdict(settings),
                "size": list(prepared.cache.size), "data": {"cache": prepared.cache.path.name,
                "fingerprint": prepared.cache.manifest["fingerprint"], "split": str(prepared.split_path)},
                "git_commit": git_commit(), "environment": environment()}
    if set(data) - {prepared.cache.size}:  # progressive resizing: the phases' sizes and caches too
        manifest["phases"] = [{"phase": p.number, "epochs": p.epochs, "size": list(p.size),
                               "cache": data[p.size].cache.path.name} for p in phases if p.epochs]
    state = {"phase": 1, "epochs_done": 0, "best_iou": -1.0}
    set_seed(seed, reproducible=True)
    model = build_model(model_name, encoder=settings.encoder, weights=settings.weights, img_size=prepared.cache.size)
    loaders = {}

    def dataloaders(size):
        """The phase's batches, one set per size (built once, in the order the phases need them)."""
        if size not in loaders:
            loaders[size] = training_dataloaders(data[size].cache, prepared.split, model.normalization,
                                                 settings.batch_size, device, seed, settings.data_on_device, rank, world)
        return loaders[size]

    dls = dataloaders(next(p.size for p in phases if p.epochs))
    dev = torch.device(dls.device)
    if dev.type == "cuda":  # set_seed(reproducible=True) turned autotuning off
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
        torch.backends.cudnn.deterministic = not settings.cudnn_benchmark
    manifest["execution"] = {"device": str(dev), "batches": dls.train.placement,
                             "precision": resolve_precision(settings.precision, dev, model_name), "compile": settings.compile,
                             "world_size": world}
    learn = make_learner(model, dls, settings, model_name)
    if not progress or not main:
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.logger = lambda *_: None
    elif dev.type == "cuda":
        learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
        learn.add_cb(ProgressEvery())
    if rank:
        _reseed_rank(seed, rank)
    opt_state = fit = rng = None
    if resume and runfolder.last_checkpoint(folder).exists():
        try:
            ckpt = read_checkpoint(runfolder.last_checkpoint(folder))
        except StaleCheckpoint:  # an older clothparse's: start afresh, as after a change of settings
            ckpt = {"manifest": {}}
        before, now = resume_key(ckpt["manifest"]), resume_key(manifest)
        if before != now and main:  # (flushed: a training worker's output goes to a file, block-buffered)
            changed = ", ".join(k for k in now if before.get(k) != now[k]) if ckpt["manifest"] else "format"
            print(f"{model_name}: not resuming {runfolder.last_checkpoint(folder)}, written with another {changed}: "
                  "training it afresh", flush=True)
        if before == now:
            learn.model.load_state_dict(ckpt["model"])
            state, opt_state, fit = ckpt["state"], ckpt.get("opt"), ckpt.get("fit")
            rng = ckpt["rng_ranks"][rank] if "rng_ranks" in ckpt else ckpt.get("rng")
            if main:
                trim_history(runfolder.history_file(folder), state)
                print(f"{model_name}: already trained in {folder} (--no-resume trains it again)" if is_finished(folder)
                      else f"resuming {model_name} from phase {state['phase']}, epoch {state['epochs_done']}", flush=True)
    if ctx is not None:
        ctx.barrier()  # every rank has read last.pt before rank 0 may remove it
    if main and not opt_state:  # a fresh start: forget any earlier history of this model
        for f in (runfolder.history_file, runfolder.last_checkpoint, runfolder.best_checkpoint, runfolder.manifest_file):
            f(folder).unlink(missing_ok=True)
    writer = None  # writes manifest.json after each checkpoint, listing those already there when resuming
    if main:
        checkpoints = (runfolder.last_checkpoint(folder), runfolder.best_checkpoint(folder))
        writer = CheckpointWriter(folder, manifest, {f.name: file_sha256(f) for f in checkpoints if f.exists()})

    size = next(p.size for p in phases if p.epochs)  # the size of learn.dls
    try:
        for p in phases:
            phase, epochs, lr = p.number, p.epochs, p.lr
            if epochs == 0 or phase < state["phase"] or (phase == state["phase"] and state["epochs_done"] >= epochs):
                continue
            start = state["epochs_done"] if phase == state["phase"] else 0
            if p.size != size:  # progressive resizing: the next size's batches, the same random draws going on
                resized = dataloaders(p.size)
                resized.train.rng.setstate(learn.dls.train.rng.getstate())
                learn.dls, size = resized, p.size
                if start == 0:  # best.pt: the best epoch at the final size (validation IoUs of two sizes differ)
                    state["best_iou"] = -1.0
            learn.freeze() if p.frozen else learn.unfreeze()
            if opt_state is not None:  # resuming: optimizer and random generators as they were
                learn.opt.load_state_dict(to_device(opt_state, dev))  # (checkpoints load on the CPU)
                set_rng_state(learn, rng)
            opt_state = None
            state.update(phase=phase, epochs_done=start)
            cbs = [Checkpointer(folder, manifest, phase, start, state, fit if start else None, model=model,
                                writer=writer, ctx=ctx, timings=timings, size=p.size), StopOnNonFiniteLoss()]
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
    learn = make_learner(model, dls, settings, model_name)
    learn.freeze()
    from fastai.callback.schedule import minimum, steep, valley
    suggestions = learn.lr_find(num_it=num_it, suggest_funcs=(valley, steep, minimum), show_plot=False)
    rec = learn.recorder
    return {"lrs": [float(v) for v in rec.lrs], "losses": [float(v) for v in rec.losses],
            "suggestions": {k: float(v) for k, v in suggestions._asdict().items()}}
