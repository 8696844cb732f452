"""Train / valid / test split stratified on garment presence (multi-label), seeded and saved to disk.

Iterative stratification (Sechidis, Tsoumakas and Vlahavas, ECML-PKDD 2011): labels are taken
rarest first and each image carrying the current label goes to the split that still wants most of
that label (ties: the split that wants most images overall, then the seeded generator). Images are
ordered by id before anything random happens, and numpy's PCG64 generator is the same on every
platform, so a seed gives the same split on every machine.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..storage import write_atomic
from ..taxonomy import GARMENTS

__all__ = ["PAPER_SPLIT_SIZES", "split_rows", "PAPER_FRACTIONS", "iterative_stratification", "make_split", "save_split", "load_split",
           "split_summary"]


# The paper's split of the refined iMaterialist set (section 4.1): 30429 / 3913 / 9128 images.
PAPER_SPLIT_SIZES = {"train": 30429, "valid": 3913, "test": 9128}
PAPER_FRACTIONS = {k: v / sum(PAPER_SPLIT_SIZES.values()) for k, v in PAPER_SPLIT_SIZES.items()}


def iterative_stratification(labels: np.ndarray, fractions: list[float], rng: np.random.Generator) -> np.ndarray:
    """Subset number of each row of a boolean (N, L) label matrix."""
    n, n_labels = labels.shape
    fractions = np.asarray(fractions, float)
    want_total = fractions * n
    want = fractions[:, None] * labels.sum(0)[None, :]  # (subsets, labels)
    subset = np.full(n, -1)
    order = rng.permutation(n)
    labels, unassigned = labels[order], np.ones(n, bool)
    remaining = labels.sum(0).astype(float)
    while unassigned.any() and (remaining > 0).any():
        candidates = np.flatnonzero(remaining > 0)
        label = candidates[np.argmin(remaining[candidates] + rng.random(len(candidates)) * 0.5)]
        for row in np.flatnonzero(unassigned & labels[:, label]):
            score = np.lexsort((rng.random(len(fractions)), want_total, want[:, label]))
            j = score[-1]
            subset[order[row]] = j
            unassigned[row] = False
            want[j] -= labels[row]
            want_total[j] -= 1
            remaining -= labels[row]
    for row in np.flatnonzero(unassigned):  # images with no label
        j = np.lexsort((rng.random(len(fractions)), want_total))[-1]
        subset[order[row]] = j
        want_total[j] -= 1
    return subset


def make_split(index: pd.DataFrame, fractions: dict[str, float] | None = None, seed: int = 0) -> pd.DataFrame:
    """``image_id`` -> ``split`` for an index with one boolean column per garment."""
    fractions = fractions or PAPER_FRACTIONS
    if not np.isclose(sum(fractions.values()), 1.0) or min(fractions.values()) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    if index.empty:
        raise ValueError("cannot split an empty data set")
    index = index.sort_values("image_id").reset_index(drop=True)
    labels = index[list(GARMENTS)].to_numpy(bool)
    subset = iterative_stratification(labels, list(fractions.values()), np.random.default_rng(seed))
    names = np.array(list(fractions))
    return pd.DataFrame({"image_id": index["image_id"], "split": names[subset]})


def save_split(split: pd.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, split.to_csv(index=False))  # concurrent trainings write it too: each its own temporary file
    return path


def load_split(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str, "split": str})


def split_summary(index: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Images per split and the share of each split's images holding each garment (in %)."""
    merged = index.merge(split, on="image_id")
    table = merged.groupby("split")[list(GARMENTS)].mean().mul(100).round(1)
    table.insert(0, "images", merged.groupby("split").size())
    return table


def split_rows(cache, split, name: str) -> np.ndarray:
    """Row numbers of the cache's images in split ``name`` (``split``: image_id, split; ``cache``: a :class:`data.Cache`)."""
    ids = set(split.loc[split["split"] == name, "image_id"])
    rows = np.flatnonzero(cache.index["image_id"].isin(ids).to_numpy())
    if not len(rows):
        raise ValueError(f"the split has no '{name}' images in this cache")
    return rows
