"""Kaggle iMaterialist (Fashion) 2019 at FGVC6: ``train.csv`` + ``label_descriptions.json`` + ``train/``.

``train.csv`` has one row per garment instance: ImageId, EncodedPixels, Height, Width, ClassId,
where ClassId is ``"<category>"`` or ``"<category>_<attribute>_<attribute>..."``. EncodedPixels is
Kaggle's run-length encoding: space-separated 1-indexed (start, length) pairs over the image
flattened column-major (top to bottom, then left to right).

Mask construction: categories are mapped to the 8 garments (``taxonomy.IMATERIALIST_MAP``);
unmapped categories are never painted (they are background where no garment lies, and cannot erase
one); garment parts (ids 27..45) are therefore never painted either; images with a jumpsuit are
excluded. Overlapping garments are painted in ``taxonomy.PAINT_ORDER`` (later on top). ``Height``/``Width``
say which orientation of a photo carrying an EXIF orientation tag the masks were drawn on: as stored, or as
displayed (:func:`base.read_rgb`); a size matching neither is a bad row (``size_mismatch``).

The data set is on Kaggle (competition ``imaterialist-fashion-2019-FGVC6``); downloading needs a
Kaggle account and accepting the competition's rules, so this reader expects the unpacked files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..taxonomy import CLASS_INDEX, IMATERIALIST_CATEGORIES, IMATERIALIST_EXCLUDE, IMATERIALIST_MAP, PAINT_ORDER
from .base import DataError, FileSource, Sample, files_fingerprint, read_rgb, safe_child

__all__ = ["rle_decode", "rle_encode", "read_categories", "IMaterialistSource"]


_PAINT_RANK = {name: rank for rank, name in enumerate(PAINT_ORDER)}


def _parse_runs(rle: str, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated 0-indexed run starts and (exclusive) ends; ValueError says what is wrong."""
    if not isinstance(rle, str):
        raise ValueError(f"RLE must be a string, got {type(rle).__name__}")
    tokens = rle.split()
    bad = next((t for t in tokens if not t.lstrip("+-").isdigit()), None)
    if bad is not None:
        raise ValueError(f"RLE has a non-numeric token {bad!r}")
    try:
        nums = np.array(tokens, dtype=np.int64)
    except OverflowError:
        raise ValueError(f"RLE value too large: {max(tokens, key=len)}") from None
    if nums.size % 2:
        raise ValueError(f"RLE has an odd number of values ({nums.size})")
    starts, lengths = nums[0::2] - 1, nums[1::2]
    if (starts < 0).any():
        raise ValueError("RLE start below 1")
    if (lengths <= 0).any():
        raise ValueError("RLE run length must be positive")
    ends = starts + lengths
    if ends.size and ends.max() > n_pixels:
        raise ValueError(f"RLE run ends at pixel {int(ends.max())}, beyond the image's {n_pixels} pixels")
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("RLE runs overlap or are not in increasing order")
    return starts, ends


def rle_decode(rle: str, height: int, width: int) -> np.ndarray:
    """Boolean HxW mask of a Kaggle RLE string (1-indexed start/length pairs, column-major)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    n = height * width
    starts, ends = _parse_runs(rle, n)
    # The flat mask is alternately False and True: a gap before each run, the run, and the tail.
    counts = np.empty(2 * starts.size + 1, np.int64)
    counts[0:-1:2] = starts - np.concatenate(([0], ends[:-1]))
    counts[1::2] = ends - starts
    counts[-1] = n - (ends[-1] if ends.size else 0)
    flat = np.repeat(np.arange(counts.size) % 2 == 1, counts)
    return flat.reshape(width, height).T


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle RLE string of a boolean HxW mask (inverse of :func:`rle_decode`)."""
    flat = np.asarray(mask, dtype=bool).T.ravel()
    padded = np.concatenate([[False], flat, [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = changes[0::2], changes[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends))


def read_categories(path: Path) -> list[str]:
    """Category names by id from ``label_descriptions.json``."""
    try:
        cats = json.loads(Path(path).read_text())["categories"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(str(path), f"cannot read categories ({e})") from None
    names = [""] * (max(c["id"] for c in cats) + 1)
    for c in cats:
        names[c["id"]] = c["name"]
    return names


@dataclass
class IMaterialistSource(FileSource):
    """Reader of the Kaggle layout under ``root`` (:class:`FileSource`)."""

    name: str = "imaterialist"

    def __post_init__(self):
        super().__post_init__()
        csv, labels = self.root / "train.csv", self.root / "label_descriptions.json"
        for p in (csv, labels, self.root / "train"):
            if not p.exists():
                raise FileNotFoundError(f"iMaterialist: {p} not found (expected Kaggle's train.csv, "
                                        "label_descriptions.json and train/ there; CLOTHPARSE_DATA_DIR: the folder "
                                        "holding imaterialist/)")
        self.categories = read_categories(labels)
        if self.categories[: len(IMATERIALIST_CATEGORIES)] != list(IMATERIALIST_CATEGORIES):
            raise DataError(str(labels), "categories differ from iMaterialist 2019's 46 categories")
        table = pd.read_csv(csv, dtype={"ImageId": str, "EncodedPixels": str, "ClassId": str})
        missing = {"ImageId", "EncodedPixels", "Height", "Width", "ClassId"} - set(table.columns)
        if missing:
            raise DataError(str(csv), f"missing columns {sorted(missing)}")
        self._rows = {image_id: rows for image_id, rows in table.groupby("ImageId", sort=True)}
        self._ids = self._select_ids()

    def _select_ids(self) -> list[str]:
        ids = []
        for image_id, rows in self._rows.items():
            try:
                cats = {self._category(image_id, c) for c in rows["ClassId"]}
            except DataError as e:
                self._fail(e)
                continue
            excluded = cats & IMATERIALIST_EXCLUDE
            if excluded:
                self.skipped.add(image_id, f"excluded_category:{sorted(excluded)[0]}")
                continue
            ids.append(image_id)
        if not ids:
            raise DataError(str(self.root), f"no images left after filtering ({self.skipped})")
        return ids[: self.limit] if self.limit else ids

    def _fail(self, error: DataError) -> None:
        if self.on_error == "raise":
            raise error
        self.skipped.add(error.image_id, error.reason)

    def _category(self, image_id: str, class_id) -> str:
        head = str(class_id).split("_")[0]
        if not head.isdigit() or int(head) >= len(self.categories) or not self.categories[int(head)]:
            raise DataError(image_id, f"unknown_class_id: {class_id!r}")
        return self.categories[int(head)]

    def ids(self) -> list[str]:
        return list(self._ids)

    def read(self, image_id: str) -> Sample:
        rows = self._rows[image_id]
        height, width = (pd.to_numeric(rows[col], errors="coerce") for col in ("Height", "Width"))
        for col, values in (("Height", height), ("Width", width)):
            if values.isna().any() or (values % 1 != 0).any():
                raise DataError(image_id, f"bad_size: {col} missing or not a whole number ({rows[col].tolist()})")
        sizes = set(zip(height.astype(int), width.astype(int)))
        if len(sizes) != 1:
            raise DataError(image_id, f"size_mismatch: rows disagree on the image size {sorted(sizes)}")
        h, w = sizes.pop()  # the masks' size: the image as stored, or as displayed (EXIF orientation)
        image = read_rgb(safe_child(self.root / "train", image_id, image_id), image_id, size=(h, w))
        mask = np.zeros((h, w), np.uint8)
        garments = []
        for rle, class_id in zip(rows["EncodedPixels"], rows["ClassId"]):
            cls = IMATERIALIST_MAP.get(self._category(image_id, class_id))
            if cls is not None:
                garments.append((cls, rle))
        for cls, rle in sorted(garments, key=lambda g: _PAINT_RANK[g[0]]):
            try:
                mask[rle_decode(rle, h, w)] = CLASS_INDEX[cls]
            except ValueError as e:
                raise DataError(image_id, f"bad_rle: {e}") from None
        return Sample(image_id, image, mask)

    def fingerprint(self) -> str:
        files = [self.root / "train.csv", self.root / "label_descriptions.json"]
        return files_fingerprint(files, {"n_images": len(self._ids), "limit": self.limit, "version": 2})
