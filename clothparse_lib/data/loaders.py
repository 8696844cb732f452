"""fastai DataLoaders fed from the training-resolution cache, with the paper's augmentation.

Items are read from the cache's memmaps (no image decoding during training). Augmentation runs
as fastai batch transforms on the batch's device (the GPU when there is one), identically on image
and mask: horizontal flip, mild lighting changes and rotation (paper, section 3.4). fastai
resamples ``TensorMask`` with nearest-neighbour interpolation, so masks stay class indices; the
area rotated in from outside the image is black and background. Presence and box targets are
derived from the augmented masks inside the loss, so they always match what the model sees.

:func:`training_dataloaders` picks, per ``TrainSettings.data_on_device``, between these DataLoaders (the
default on a CPU) and :class:`device.TensorBatches` (batches gathered and augmented on the GPU); for
data-parallel training each rank gets its share of every shuffled global batch (:class:`ShardedTfmdDL`).
"""
from __future__ import annotations

import numpy as np
import torch
from fastai.data.core import DataLoaders, TfmdDL
from fastai.data.transforms import IntToFloatTensor, Normalize
from fastai.torch_core import TensorImage, TensorMask, default_device
from fastai.vision.augment import aug_transforms

from . import Cache
from .augmentation import AUGMENTATION
from .device import TensorBatches, resolve_placement
from .split import split_rows

__all__ = ["CacheDataset", "batch_transforms", "ShardedTfmdDL", "make_dataloaders",
           "training_dataloaders", "test_loader"]


class CacheDataset(torch.utils.data.Dataset):
    """(TensorImage uint8 3xHxW, TensorMask int64 HxW) for the given rows of a cache."""

    def __init__(self, cache: Cache, rows):
        self.cache, self.rows = cache, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        r = self.rows[i]
        image = torch.from_numpy(np.array(self.cache.images[r])).permute(2, 0, 1)
        mask = torch.from_numpy(self.cache.masks[r].astype(np.int64))
        return TensorImage(image), TensorMask(mask)


def batch_transforms(stats: tuple, augment: bool) -> list:
    tfms = [IntToFloatTensor()]
    if augment:
        tfms += aug_transforms(**AUGMENTATION)
    return tfms + [Normalize.from_stats(*stats)]


class ShardedTfmdDL(TfmdDL):
    """A shuffled training DataLoader of which rank ``rank`` of ``world`` yields its ``bs`` samples of every
    global batch of ``bs * world`` (every rank shuffles alike: the same seed); whole global batches only."""

    rank, world = 0, 1

    def __len__(self) -> int:
        return self.n // (self.bs * self.world)

    def get_idxs(self):
        idxs, step = super().get_idxs(), self.bs * self.world
        start = self.rank * self.bs
        return [i for b in range(len(self)) for i in idxs[b * step + start: b * step + start + self.bs]]


def make_dataloaders(cache: Cache, split, stats: tuple, batch_size: int = 16, device=None, seed: int = 0,
                     num_workers: int = 0, augment: bool = True, rank: int = 0, world: int = 1) -> DataLoaders:
    """Train (shuffled, augmented) and valid DataLoaders; ``stats`` = the encoder's (mean, std).
    ``rank``/``world``: this process's share of the training batches in data-parallel training."""
    device = device or default_device()
    common = dict(bs=batch_size, device=device, num_workers=num_workers)
    train_cls = ShardedTfmdDL if world > 1 else TfmdDL
    train = train_cls(CacheDataset(cache, split_rows(cache, split, "train")), shuffle=True, drop_last=True,
                      after_batch=batch_transforms(stats, augment), **common)
    if world > 1:
        train.rank, train.world = rank, world
    valid = TfmdDL(CacheDataset(cache, split_rows(cache, split, "valid")), shuffle=False,
                   after_batch=batch_transforms(stats, False), **common)
    train.rng.seed(seed)
    return DataLoaders(train, valid, device=device)


def training_dataloaders(cache: Cache, split, stats: tuple, batch_size: int, device=None, seed: int = 0,
                         data_on_device: str = "auto", rank: int = 0, world: int = 1) -> DataLoaders:
    """The training loop's train and valid batches: fastai's DataLoaders (:func:`make_dataloaders`) or, on the
    device, :class:`device.TensorBatches` (``data_on_device``: see :func:`device.resolve_placement`).
    ``dls.train.placement`` says which ("fastai", "device" or "host")."""
    device = device or default_device()
    train_rows, valid_rows = split_rows(cache, split, "train"), split_rows(cache, split, "valid")
    h, w = cache.size
    placement = resolve_placement(data_on_device, device, (len(train_rows) + len(valid_rows)) * h * w * 4)
    if placement == "fastai":
        dls = make_dataloaders(cache, split, stats, batch_size, device, seed, rank=rank, world=world)
        dls.train.placement = dls.valid.placement = "fastai"
        return dls
    common = dict(stats=stats, batch_size=batch_size, device=device, placement=placement, seed=seed)
    train = TensorBatches(cache, train_rows, shuffle=True, augment=True, drop_last=True, rank=rank, world=world,
                          **common)
    valid = TensorBatches(cache, valid_rows, **common)
    return DataLoaders(train, valid, device=device)


def test_loader(cache: Cache, split, stats: tuple, batch_size: int = 16, device=None, name: str = "test") -> TfmdDL:
    """Un-augmented loader of a split, in cache order (for evaluation)."""
    return TfmdDL(CacheDataset(cache, split_rows(cache, split, name)), bs=batch_size, shuffle=False, num_workers=0,
                  after_batch=batch_transforms(stats, False), device=device or default_device())
