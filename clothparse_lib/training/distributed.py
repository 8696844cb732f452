"""Data-parallel training with plain ``torch.distributed``: NCCL on GPUs, gloo on CPUs.

fastai's ``distrib_ctx`` needs the ``accelerate`` package (not in the pins) and assumes CUDA in places, so the
training loop does it itself, under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``):

* every rank builds the same model from the same seed, then reseeds its own generators (dropout, fastai's
  augmentation) with the seed and its rank; rank 0 keeps the single-process seed;
* each phase wraps the (frozen or unfrozen) model in ``DistributedDataParallel`` anew: DDP registers the
  parameters that require gradients when it is built;
* each rank trains on its share of every global batch of ``batch_size * world`` images (the data loaders'
  ``rank``/``world``); gradients are averaged by DDP;
* before validation, rank 0's BatchNorm statistics are broadcast, so every rank validates (on the whole
  validation split) and ends the epoch with identical weights; the train metrics and the smoothed train loss
  of the history are averaged over the ranks (:class:`DistributedSync`);
* rank 0 alone writes history, checkpoints and manifest; ``last.pt`` holds every rank's random generators
  (``rng_ranks``), so a killed data-parallel run resumes as it would have gone on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from fastai.callback.core import Callback

__all__ = ["Distributed", "start", "DistributedSync"]


@dataclass
class Distributed:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # started the process group (and so ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics) on every rank."""
        for b in model.buffers():
            dist.broadcast(b.data, 0)

    def average_(self, t: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(t)
        return t.div_(self.world)

    def sum_(self, value):
        """The sum over ranks of a tensor (in place) or of a number (returned as the same type)."""
        if torch.is_tensor(value):
            dist.all_reduce(value)
            return value
        t = torch.tensor(value, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return type(value)(t.item())

    def gather(self, obj) -> list:
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def start(device=None) -> Distributed:
    """Join (or start, from ``torchrun``'s environment) the process group; ``device``: None or "cuda" (this
    rank's GPU, ``cuda:LOCAL_RANK``), "cpu", or an explicit device."""
    if not dist.is_available():
        raise RuntimeError("this torch has no torch.distributed")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", local if device.index is None else device.index)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ:
            raise ValueError("--distributed trains data-parallel under torchrun (WORLD_SIZE is not set): "
                             "torchrun --nproc-per-node N -m clothparse_lib.cli train --distributed ...")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Distributed(dist.get_rank(), dist.get_world_size(), local, device, owns)


class DistributedSync(Callback):
    """What keeps data-parallel ranks in step inside an epoch (module docstring): after training, the train
    metrics (our on-device accumulators) and the smoothed loss averaged over the ranks; before validation,
    rank 0's buffers everywhere."""

    order = 45  # before the Recorder (50) logs the train metrics

    def __init__(self, ctx: Distributed, model: torch.nn.Module):
        self.ctx, self.bare = ctx, model

    def after_train(self):
        for met in self.learn.metrics:
            for name in ("total", "count", "conf"):
                if hasattr(met, name):
                    setattr(met, name, self.ctx.sum_(getattr(met, name)))
        smooth = self.learn.recorder.smooth_loss
        smooth.val = self.ctx.average_(smooth.val.to(self.ctx.device))

    def before_validate(self):
        self.ctx.broadcast_buffers(self.bare)
