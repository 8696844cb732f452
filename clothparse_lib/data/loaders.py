"""fastai DataLoaders fed from the training-resolution cache, with the paper's augmentation.

Items are read from the cache's memmaps (no image decoding during training). Augmentation runs
as fastai batch transforms on the batch's device (the GPU when there is one), identically on image
and mask: horizontal flip, mild lighting changes and rotation (paper, section 3.4). fastai
resamples ``TensorMask`` with nearest-neighbour interpolation, so masks stay class indices; the
area rotated in from outside the image is black and background. Presence and box targets are
derived from the augmented masks inside the loss, so they always match what the model sees.
"""
from __future__ import annotations

import numpy as np
import torch
from fastai.data.core import DataLoaders, TfmdDL
from fastai.data.transforms import IntToFloatTensor, Normalize
from fastai.torch_core import TensorImage, TensorMask, default_device
from fastai.vision.augment import aug_transforms

from . import Cache

# Mild augmentation, as in the paper: flip, lighting +-10 %, rotation up to 10 degrees; no zoom, no warp.
AUGMENTATION = dict(do_flip=True, flip_vert=False, max_rotate=10.0, max_lighting=0.1, max_zoom=1.0,
                    max_warp=0.0, p_affine=0.75, p_lighting=0.75, pad_mode="zeros")


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


def split_rows(cache: Cache, split, name: str) -> np.ndarray:
    """Row numbers of the cache's images in split ``name`` (``split``: image_id, split)."""
    ids = set(split.loc[split["split"] == name, "image_id"])
    rows = np.flatnonzero(cache.index["image_id"].isin(ids).to_numpy())
    if not len(rows):
        raise ValueError(f"the split has no '{name}' images in this cache")
    return rows


def batch_transforms(stats: tuple, augment: bool) -> list:
    tfms = [IntToFloatTensor()]
    if augment:
        tfms += aug_transforms(**AUGMENTATION)
    return tfms + [Normalize.from_stats(*stats)]


def make_dataloaders(cache: Cache, split, stats: tuple, batch_size: int = 16, device=None, seed: int = 0,
                     num_workers: int = 0, augment: bool = True) -> DataLoaders:
    """Train (shuffled, augmented) and valid DataLoaders; ``stats`` = the encoder's (mean, std)."""
    device = device or default_device()
    common = dict(bs=batch_size, device=device, num_workers=num_workers)
    train = TfmdDL(CacheDataset(cache, split_rows(cache, split, "train")), shuffle=True, drop_last=True,
                   after_batch=batch_transforms(stats, augment), **common)
    valid = TfmdDL(CacheDataset(cache, split_rows(cache, split, "valid")), shuffle=False,
                   after_batch=batch_transforms(stats, False), **common)
    train.rng.seed(seed)
    return DataLoaders(train, valid, device=device)


def test_loader(cache: Cache, split, stats: tuple, batch_size: int = 16, device=None, name: str = "test") -> TfmdDL:
    """Un-augmented loader of a split, in cache order (for evaluation)."""
    return TfmdDL(CacheDataset(cache, split_rows(cache, split, name)), bs=batch_size, shuffle=False, num_workers=0,
                  after_batch=batch_transforms(stats, False), device=device or default_device())
