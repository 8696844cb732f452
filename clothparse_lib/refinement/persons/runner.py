"""The resumable runner: a detector over a data source or image files, cached per image.

``detect_many`` shows a progress bar and appends each result to a JSON-lines cache flushed per image, so a
killed run continues where it stopped; it reports images/s and projects the time for a larger set (by default
the paper's iMaterialist images). ``cached_detect`` is the per-image step, shared with the refinement's crops.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ... import paper
from ...data.base import DataError, SkipReport, Source, read_rgb
from .detectors import Detections, PersonDetector

__all__ = ["IMATERIALIST_IMAGES", "DetectionCache", "cached_detect", "DetectionRun", "detect_many"]


IMATERIALIST_IMAGES = paper.numbers()["dataset"]["images_total_original"]  # the paper's data set, section 4.1


class DetectionCache:
    """Append-only JSON-lines file of per-image results, one line flushed per image.

    Lines of other detectors (other signatures) are kept and ignored; a line cut by a kill is
    dropped on opening, so the file stays valid and a resumed run recomputes only that image.
    """

    def __init__(self, path: str | Path | None, signature: str):
        self.path = Path(path) if path else None
        self.signature = signature
        self._done: dict[str, dict] = {}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # killed mid-write: drop the partial line
                data = data[: data.rfind(b"\n") + 1]
                self.path.write_bytes(data)
            for line in data.decode().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("detector") == signature:
                    self._done[rec["key"]] = rec

    def __contains__(self, key: str) -> bool:
        return key in self._done

    def __len__(self) -> int:
        return len(self._done)

    def get(self, key: str) -> dict | None:
        return self._done.get(key)

    def put(self, key: str, record: dict) -> dict:
        record = {"key": key, "detector": self.signature, **record}
        self._done[key] = record
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
        return record


def cached_detect(detector: PersonDetector, cache: DetectionCache, key: str, image_fn,
                  stamp: str | None = None) -> tuple[Detections, bool]:
    """The detections for ``key`` from the cache, else ``detector.detect(image_fn())`` stored there.

    Returns (detections, computed). A cached result whose ``stamp`` (e.g. file size and time)
    differs is recomputed. A :class:`DataError` raised by ``image_fn`` propagates and nothing is
    cached, so an unreadable image is retried on the next run.
    """
    rec = cache.get(key)
    if rec is not None and rec.get("stamp") == stamp:
        return Detections.from_json(rec), False
    start = time.perf_counter()
    det = detector.detect(image_fn())
    cache.put(key, {"persons": len(det), **det.to_json(), "stamp": stamp,
                    "seconds": round(time.perf_counter() - start, 4)})
    return det, True


@dataclass
class DetectionRun:
    """Results of :func:`detect_many`: one row per image (``key``, ``persons``, ``boxes``, ``scores``, ``error``)."""

    table: pd.DataFrame
    computed: int
    reused: int
    seconds: float
    skipped: SkipReport

    @property
    def images_per_second(self) -> float:
        return self.computed / self.seconds if self.computed and self.seconds > 0 else float("nan")

    def projection(self, n: int = IMATERIALIST_IMAGES) -> float:
        """Hours to process ``n`` images at this run's rate."""
        return n / self.images_per_second / 3600

    def report(self, n: int = IMATERIALIST_IMAGES) -> str:
        rate = self.images_per_second
        head = f"{len(self.table)} images: {self.computed} detected, {self.reused} from the cache, {self.skipped.total} unreadable"
        if self.computed:
            head += f"; {rate:.2f} images/s ({self.seconds:.1f} s) -> {n} images in {self.projection(n):.1f} h"
        return head


def _stamp(path: Path) -> str | None:
    """Size and modification time of a file (None when missing): a changed file is detected again."""
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def _items(items: Source | Iterable[str | Path]):
    """(key, image loader, stamp) of a Source (key = image id) or of image files (key = path)."""
    if hasattr(items, "ids") and hasattr(items, "read"):
        return [(i, (lambda i=i: items.read(i).image), None) for i in items.ids()]
    return [(str(p), (lambda p=p: read_rgb(Path(p), str(p))), _stamp(Path(p))) for p in items]


def detect_many(detector: PersonDetector, items: Source | Iterable[str | Path], cache_file: str | Path | None = None,
                progress: bool | None = True, desc: str | None = None) -> DetectionRun:
    """Count persons in every image of a source (or list of files), resumably.

    Results are appended to ``cache_file`` (JSON lines, flushed per image): rerunning after a
    kill reuses every finished image. For a source, the cache key is the image id and the
    source's fingerprint is part of the detector signature, so a changed data set is redone.
    Unreadable images are counted in ``skipped`` and get ``persons`` = NaN and their ``error``.
    """
    signature = detector.signature()
    if hasattr(items, "fingerprint"):
        signature += f"@{items.name}-{items.fingerprint()}"
    cache = DetectionCache(cache_file, signature)
    jobs = _items(items)
    rows, skipped, computed, busy = [], SkipReport(), 0, 0.0
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress  # None: a bar only on a terminal
    for key, load, stamp in tqdm(jobs, desc=desc or f"persons ({detector.name})", disable=disable, unit="img"):
        start = time.perf_counter()
        try:
            det, fresh = cached_detect(detector, cache, key, load, stamp)
        except DataError as e:
            skipped.add(key, e.reason)
            rows.append({"key": key, "persons": np.nan, "boxes": [], "scores": [], "error": e.reason})
            continue
        if fresh:
            computed += 1
            busy += time.perf_counter() - start
        rows.append({"key": key, "persons": len(det), **det.to_json(), "error": None})
    return DetectionRun(pd.DataFrame(rows, columns=["key", "persons", "boxes", "scores", "error"]),
                        computed, len(jobs) - computed - skipped.total, busy, skipped)
