"""A data set at the training resolution, decoded once: uint8 memmaps of images and masks + index.

Layout of a cache folder ``<cache_dir>/<source>-<H>x<W>-<key>/``: ``images.npy`` (N,H,W,3),
``masks.npy`` (N,H,W), ``index.csv`` (one row per image, computed at full resolution) and
``manifest.json`` (written last). The key hashes the source's fingerprint, the size and the cache
format, so a cache is reused while they are unchanged and rebuilt when any changes. A build is
written to a temporary folder renamed into place at the end: a killed build never leaves a
folder that looks complete; nor does a full disk, which stops the build with one line (:class:`storage.DiskFull`,
the space it needs; the arrays are allocated on the disk before they are written). Images are resized (squashed,
as the paper resizes every image to 288x192) with antialiased bilinear filtering, masks with nearest neighbour so
they stay class indices.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .. import settings
from ..storage import disk_full, reserve, staged_folder
from ..taxonomy import CLASSES, N_CLASSES
from ..workers import die_with_parent
from .base import DataError, SkipReport, Source, index_row

__all__ = ["CACHE_FORMAT", "parse_size", "Cache", "cache_key", "open_cache", "build_cache", "class_stats"]


CACHE_FORMAT = 1


def parse_size(size: str | tuple[int, int]) -> tuple[int, int]:
    """(height, width) as ints from ``"288x192"`` or a pair; both must be positive multiples of 32 (the cache's and
    every model's input size)."""
    if isinstance(size, str):
        try:
            h, w = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise ValueError(f"size must look like HEIGHTxWIDTH (e.g. 288x192), got {size!r}") from None
    else:
        h, w = (int(v) for v in size)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ValueError(f"height and width must be positive multiples of 32 (the encoder downsamples by 32), got {h}x{w}")
    return h, w


@dataclass
class Cache:
    path: Path
    images: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
    masks: np.ndarray  # (N, H, W) uint8, memory-mapped
    index: pd.DataFrame
    manifest: dict

    def __len__(self) -> int:
        return len(self.index)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:3])

    def batch(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Images and masks of the given row numbers (copied out of the memmaps)."""
        rows = np.asarray(rows)
        return self.images[rows], self.masks[rows]


def cache_key(source: Source, size: tuple[int, int]) -> str:
    payload = json.dumps({"source": source.name, "fingerprint": source.fingerprint(), "size": size, "format": CACHE_FORMAT})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def open_cache(path: Path) -> Cache:
    path = Path(path)
    manifest = json.loads((path / "manifest.json").read_text())
    index = pd.read_csv(path / "index.csv", dtype={"image_id": str})
    return Cache(path, np.load(path / "images.npy", mmap_mode="r"), np.load(path / "masks.npy", mmap_mode="r"), index, manifest)


_worker_source: Source | None = None


def _init_worker(source: Source) -> None:
    global _worker_source
    _worker_source = source


def _init_pool_worker(source: Source) -> None:
    """A reader process that Linux ends when the process that started it dies: a killed build leaves no workers."""
    die_with_parent(signal.SIGKILL)
    _init_worker(source)


def _load(args) -> tuple[str, object]:
    """Read and resize one image in a worker: ("ok", (image, mask, row)) or ("error", reason)."""
    image_id, (h, w) = args
    try:
        sample = _worker_source.read(image_id)
    except DataError as e:
        return "error", e.reason
    row = index_row(sample, _worker_source.name)
    image = np.asarray(Image.fromarray(sample.image).resize((w, h), Image.BILINEAR, reducing_gap=3.0))
    mask = np.asarray(Image.fromarray(sample.mask).resize((w, h), Image.NEAREST))
    return "ok", (image, mask, row)


def build_cache(source: Source, size=(288, 192), root: Path | None = None, workers: int | None = None,
                on_error: str = "skip", progress: bool = True, force: bool = False) -> Cache:
    """The source's cache at ``size`` (built unless an up-to-date one exists, or ``force``).

    Images that fail to read are skipped and counted in the manifest (``on_error="skip"``) or
    stop the build with the :class:`DataError` (``"raise"``). ``workers`` processes read in
    parallel (default: the available cores).
    """
    h, w = parse_size(size)
    root = settings.cache_dir(root)
    prefix = f"{source.name}-{h}x{w}-"
    path = root / (prefix + cache_key(source, (h, w)))
    if (path / "manifest.json").exists() and not force:
        return open_cache(path)

    ids = source.ids()
    if not ids:
        raise DataError(source.name, "the data set is empty")
    root.mkdir(parents=True, exist_ok=True)
    try:
        with staged_folder(path) as tmp:
            _fill(tmp, path.name, source, ids, (h, w), workers, progress, on_error)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise disk_full(path, len(ids) * h * w * 4, f"the cache {path.name}") from None
        raise
    for stale in root.glob(prefix + "*"):  # earlier caches of this source and size
        if stale != path:
            shutil.rmtree(stale, ignore_errors=True)
    for partial in root.glob(f".{prefix}*.tmp-*"):  # left by killed builds
        if not _alive(int(partial.name.rsplit("-", 1)[1])):
            shutil.rmtree(partial, ignore_errors=True)
    return open_cache(path)


def _fill(tmp: Path, key: str, source: Source, ids: list, size: tuple[int, int], workers, progress: bool,
          on_error: str) -> None:
    """Read every image of ``ids`` at ``size`` into the folder ``tmp`` of the cache ``key``: arrays, index, manifest."""
    (h, w), start = size, time.perf_counter()
    skipped, rows = SkipReport(), []
    images = _allocated(tmp / "images.npy", (len(ids), h, w, 3))
    masks = _allocated(tmp / "masks.npy", (len(ids), h, w))
    workers = workers or len(os.sched_getaffinity(0))
    jobs = [(i, (h, w)) for i in ids]
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init_pool_worker, initargs=(source,))
        results = pool.map(_load, jobs, chunksize=4)
    else:
        pool = None
        _init_worker(source)
        results = map(_load, jobs)
    try:
        for image_id, (status, payload) in tqdm(zip(ids, results), total=len(ids), disable=not progress,
                                                desc=f"caching {source.name} at {h}x{w}"):
            if status == "error":
                if on_error == "raise":
                    raise DataError(image_id, payload)
                skipped.add(image_id, payload)
                continue
            images[len(rows)], masks[len(rows)], row = payload
            rows.append(row)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if len(rows) + skipped.total != len(ids):  # e.g. a StopIteration escaping a reader ends the loop silently
        raise RuntimeError(f"caching {source.name} stopped early at image {ids[len(rows) + skipped.total]}: "
                           f"{len(rows)} cached and {skipped.total} skipped of {len(ids)}")
    if not rows:
        raise DataError(source.name, f"no image could be read ({skipped})")
    images.flush()
    masks.flush()
    del images, masks
    if len(rows) < len(ids):  # drop the slots of skipped images
        _truncate(tmp / "images.npy", len(rows))
        _truncate(tmp / "masks.npy", len(rows))
    pd.DataFrame(rows).to_csv(tmp / "index.csv", index=False)
    skips = getattr(source, "skipped", None)
    manifest = {
        "format": CACHE_FORMAT, "key": key, "source": source.name, "fingerprint": source.fingerprint(),
        "size": [h, w], "n_images": len(rows), "skipped_while_caching": skipped.to_dict(),
        "skipped_by_reader": skips.to_dict() if skips is not None else None,
        "build_seconds": round(time.perf_counter() - start, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _allocated(npy: Path, shape: tuple) -> np.memmap:
    """A new uint8 .npy file of ``shape``, memory-mapped, its bytes allocated on the disk (:func:`storage.reserve`)."""
    array = np.lib.format.open_memmap(npy, "w+", np.uint8, shape)
    reserve(npy, npy.stat().st_size)
    return array


def _truncate(npy: Path, n: int) -> None:
    """Rewrite a .npy file keeping its first ``n`` rows."""
    full = np.load(npy, mmap_mode="r")
    kept = _allocated(npy.with_suffix(".part.npy"), (n, *full.shape[1:]))
    kept[:] = full[:n]
    kept.flush()
    del kept, full
    os.replace(npy.with_suffix(".part.npy"), npy)


def class_stats(cache: Cache, chunk: int = 256) -> pd.DataFrame:
    """Per class: number and share of images containing it, and its share of all pixels (at cache size)."""
    n = len(cache)
    present = np.zeros((n, N_CLASSES), bool)
    pixels = np.zeros(N_CLASSES, np.int64)
    for s in range(0, n, chunk):
        m = np.asarray(cache.masks[s:s + chunk]).reshape(-1, cache.masks[0].size).astype(np.int64)
        offsets = np.arange(len(m))[:, None] * N_CLASSES
        counts = np.bincount((m + offsets).ravel(), minlength=len(m) * N_CLASSES).reshape(len(m), N_CLASSES)
        present[s:s + len(m)] = counts > 0
        pixels += counts.sum(0)
    return pd.DataFrame({
        "class": CLASSES,
        "images": present.sum(0),
        "image_share_%": 100 * present.mean(0),
        "pixel_share_%": 100 * pixels / pixels.sum(),
    }).set_index("class")
