"""What every reader yields: an RGB image, a uint8 class mask (0..8) and an index row."""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..taxonomy import GARMENTS, N_CLASSES

__all__ = ["DataError", "Sample", "Source", "SkipReport", "FileSource", "index_row", "read_rgb", "to_rgb", "fit_images",
           "region_box", "safe_child", "files_fingerprint"]


class DataError(ValueError):
    """Bad input data; the message names the image and the reason."""

    def __init__(self, image_id: str, reason: str):
        super().__init__(f"{image_id}: {reason}")
        self.image_id = image_id
        self.reason = reason


@dataclass
class Sample:
    image_id: str
    image: np.ndarray  # H x W x 3 uint8 RGB
    mask: np.ndarray  # H x W uint8 class indices 0..8
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise DataError(self.image_id, f"image must be HxWx3 uint8, got {self.image.shape} {self.image.dtype}")
        if self.mask.shape != self.image.shape[:2]:
            raise DataError(self.image_id, f"mask {self.mask.shape} does not match image {self.image.shape[:2]}")
        if self.mask.dtype != np.uint8 or (self.mask.size and self.mask.max() >= N_CLASSES):
            raise DataError(self.image_id, f"mask values must be uint8 in 0..{N_CLASSES - 1}")


class Source(Protocol):
    """A data set: a list of image ids and a way to read each one."""

    name: str

    def ids(self) -> list[str]: ...

    def read(self, image_id: str) -> Sample: ...

    def fingerprint(self) -> str:
        """Changes whenever what `read` would return may change (files, parameters, code version)."""
        ...


@dataclass
class SkipReport:
    """Counts of rows/images a reader skipped, by reason (its words before any detail: ``:`` or `` (``), with a few
    example ids each and the first one's whole reason."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)  # reason -> "image_id: the whole reason"

    def add(self, image_id: str, reason: str) -> None:
        key = re.split(r":| \(", reason, maxsplit=1)[0]
        self.counts[key] += 1
        self.first.setdefault(key, f"{image_id}: {reason}")
        self.examples.setdefault(key, [])
        if len(self.examples[key]) < 5:
            self.examples[key].append(image_id)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {"total": self.total, "counts": dict(self.counts), "examples": self.examples, "first": self.first}

    def __str__(self) -> str:
        if not self.total:
            return "nothing skipped"
        parts = [f"{n} {reason} (e.g. {', '.join(self.examples[reason][:3])}" +
                 (f"; the first: {self.first[reason]})" if reason in self.first else ")")
                 for reason, n in self.counts.most_common()]
        return f"skipped {self.total}: " + "; ".join(parts)


@dataclass
class FileSource:
    """What the readers of files on disk share: the data set's folder, what to do with a bad image (``"skip"``
    counts it in ``skipped``, ``"raise"`` raises a :class:`DataError` naming the image and the reason), and an
    optional limit on the number of images."""

    root: Path
    on_error: str = "skip"
    limit: int | None = None
    skipped: SkipReport = field(default_factory=SkipReport, init=False)

    def __post_init__(self):
        self.root = Path(self.root)
        if self.on_error not in ("skip", "raise"):
            raise ValueError("on_error must be 'skip' or 'raise'")


def index_row(sample: Sample, source: str) -> dict:
    """One row of a data set's index table: id, source, size, garments present and their pixel shares."""
    counts = np.bincount(sample.mask.ravel(), minlength=N_CLASSES)
    total = max(int(counts.sum()), 1)
    row = {"image_id": sample.image_id, "source": source, "height": sample.mask.shape[0], "width": sample.mask.shape[1]}
    for i, name in enumerate(GARMENTS, start=1):
        row[name] = bool(counts[i] > 0)
    row["garment_share"] = float(counts[1:].sum() / total)
    for key in ("persons", "annotated_persons"):
        if key in sample.info:
            row[key] = sample.info[key]
    return row


def read_rgb(path: Path, image_id: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (16-bit images scaled to 8 bits); a missing or corrupt file is a
    DataError. Without ``size``: as a viewer displays it (EXIF orientation applied, as phones expect). With
    ``size``, the (height, width) its annotation was made at: as stored when that is the stored size (also when
    both orientations have it), else as displayed; a size matching neither is a DataError (``size_mismatch``). The
    error names the path unless ``image_id`` is the path already."""
    where = "" if str(image_id) == str(path) else f": {path}"
    try:
        with Image.open(path) as im:
            stored = (im.height, im.width)
            if size is None or stored != tuple(size):
                im = ImageOps.exif_transpose(im)
                if size is not None and (im.height, im.width) != tuple(size):
                    raise DataError(image_id, f"size_mismatch: the annotation is {size[0]}x{size[1]}, the image "
                                    f"{stored[0]}x{stored[1]} (displayed {im.height}x{im.width})")
            return to_rgb(im)
    except FileNotFoundError:
        raise DataError(image_id, f"image file missing{where}") from None
    except Image.DecompressionBombError as e:  # a header claiming a huge size: refused before decoding
        raise DataError(image_id, f"image file too large ({e}){where}") from None
    except UnidentifiedImageError:  # (its message repeats the path)
        raise DataError(image_id, f"image file unreadable (not an image Pillow can decode){where}") from None
    except (OSError, SyntaxError) as e:
        raise DataError(image_id, f"image file unreadable ({type(e).__name__}: {e}){where}") from None


def to_rgb(im: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB of a decoded image; 16-bit (and 32-bit integer) grayscale scaled from 0..65535, which PIL's
    ``convert("RGB")`` would clip at 255 (PIL reads 16-bit RGB as 8-bit RGB already)."""
    if im.mode.startswith("I"):
        gray = (np.asarray(im, np.float32) / 257).round().clip(0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def fit_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB images (N, H, W, 3) squashed to ``size`` (h, w) with bilinear filtering, as a model takes them
    (``evaluation.predictor.Predictor``, the ONNX runtime); unchanged when they have that size."""
    if images.shape[1:3] == tuple(size):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize(tuple(size)[::-1], Image.BILINEAR)) for im in images])


def region_box(region: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) in pixels, x1/y1 exclusive, of the True pixels of an HxW boolean array; None if none."""
    ys, xs = np.nonzero(region)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def safe_child(folder: Path, name: str, image_id: str) -> Path:
    """folder/name, refusing names that would leave the folder (``../``, absolute paths, separators)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise DataError(image_id, f"path_escape: file name {name!r} would escape {folder}")
    return folder / name


def files_fingerprint(paths: Iterator[Path] | list[Path], extra: dict | None = None) -> str:
    """Cheap fingerprint of a set of files: names and sizes (+ parameters). Not their modification times: a data
    folder provisioned anew (a read-only copy, a fresh download, ``cp`` without ``-p``) has the same files with new
    times, and its caches and half-done trainings must stay valid (a file edited to the very same size is not seen)."""
    h = hashlib.sha256(json.dumps(extra or {}, sort_keys=True).encode())
    for p in sorted(paths):
        h.update(f"{p.name}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]
