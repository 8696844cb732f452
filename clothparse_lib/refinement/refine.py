"""The paper's dataset refinement (section 4.1): multi-person filtering and the iterative crop.

Algorithm (``refine``), for every image of a source, with a person detector:

1. Count persons on the full image. At most one: **kept** uncropped. Zero persons is kept too
   (rule: the annotation is the truth about the garments; a detector miss is no reason to drop).
2. Several: the crop is the full image height by the columns holding garment pixels (class > 0)
   widened by ``x`` % of that width on the left and on the right (clipped to the image), for x in
   ``margins`` (paper: 30 %, 10 %, 0 %). The crop is detected again; exactly one person:
   **cropped** with that margin (image and mask cropped identically), else the next margin.
3. Still several (or none, unless ``crop_accepts_zero``) after the last margin: **review** (the
   paper inspected these by hand). ``review_policy`` decides whether they are used until reviewed:
   ``"drop"`` (default) or ``"keep"`` (uncropped).

Bad input: an unreadable image is **dropped** (``unreadable``); an image with several persons but
no garment pixel is **dropped** (``no_garment_pixels``: the crop is undefined); a crop narrower than
``min_width`` x the image height is widened to that width around the garments' centre (clipped to
the image) and flagged ``widened``. Source images and masks are never modified: the result is an
index table, and :class:`RefinedSource` serves the cropped samples from it.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.base import DataError, Sample, SkipReport, Source
from ..storage import write_atomic, write_files
from .persons import DetectionCache, Detections, PersonDetector, cached_detect

__all__ = ["PAPER_MARGINS", "STATUSES", "REVIEW_POLICIES", "INDEX_VERSION", "margin_column", "garment_extent",
           "crop_box", "refine", "summary", "write_index", "read_index", "write_review_list", "apply_review",
           "crop_sample", "RefinedSource"]


PAPER_MARGINS = (0.30, 0.10, 0.0)
STATUSES = ("kept", "cropped", "review", "dropped")
REVIEW_POLICIES = ("drop", "keep")
INDEX_VERSION = 1


def margin_column(margin: float) -> str:
    """Name of the column holding the persons detected in the crop with this margin (0.3 -> persons_m30)."""
    return f"persons_m{round(margin * 100)}"


def garment_extent(mask: np.ndarray) -> tuple[int, int] | None:
    """First and one-past-last column holding a garment pixel (class > 0); None when there is none."""
    cols = np.flatnonzero((mask > 0).any(axis=0))
    return (int(cols[0]), int(cols[-1]) + 1) if len(cols) else None


def crop_box(extent: tuple[int, int], margin: float, width: int, min_width: int) -> tuple[int, int, bool]:
    """Columns (x0, x1) of the crop: the extent plus ``margin`` of its width on each side, clipped.

    A crop narrower than ``min_width`` pixels is widened to ``min(min_width, width)`` around the
    extent's centre, shifted to stay inside the image; the third value tells whether it was.
    """
    e0, e1 = extent
    pad = margin * (e1 - e0)
    x0, x1 = max(0, math.floor(e0 - pad)), min(width, math.ceil(e1 + pad))
    if x1 - x0 >= min_width:
        return x0, x1, False
    w = min(min_width, width)
    x0 = min(max(0, round((e0 + e1) / 2 - w / 2)), width - w)
    return x0, x0 + w, True


def _boxes_json(det: Detections | None) -> str:
    return json.dumps([] if det is None else np.round(det.boxes).astype(int).tolist())


def refine(source: Source, detector: PersonDetector, margins: tuple[float, ...] = PAPER_MARGINS,
           min_width: float = 0.2, review_policy: str = "drop", crop_accepts_zero: bool = False,
           cache_file: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """The refined index of ``source``: one row per image id (see the module's docstring for the rules).

    Columns: ``image_id``, ``status`` (kept / cropped / review / dropped), ``use`` (served by
    :class:`RefinedSource`), ``reason``, ``margin`` (of the accepted crop), ``x0``, ``x1`` (the
    columns served, full height), ``height``, ``width``, ``widened``, ``persons_full`` and one
    ``persons_mNN`` per margin (NaN where not run), ``last_x0``/``last_x1`` (last crop tried),
    ``boxes_full``/``boxes_last`` (JSON person boxes in image pixels).

    Settings: ``margins`` in order; ``min_width``: minimum crop width as a share of the image
    height (0.2 = 1:5; the training size 288x192 is 2:3); ``review_policy``; ``crop_accepts_zero``
    (accept a crop where the detector finds nobody; the paper asks for exactly one). Detections
    (full images and crops) are cached per image in ``cache_file`` (JSON lines), so a killed run
    resumes where it stopped and a rerun with other margins only detects the new crops.
    """
    if review_policy not in REVIEW_POLICIES:
        raise ValueError(f"review_policy must be one of {REVIEW_POLICIES}, got {review_policy!r}")
    if not margins or any(m < 0 for m in margins):
        raise ValueError(f"margins must be a non-empty sequence of shares >= 0, got {margins!r}")
    cache = DetectionCache(cache_file, f"{detector.signature()}@{source.name}-{source.fingerprint()}")
    from tqdm.auto import tqdm

    rows = []
    for image_id in tqdm(source.ids(), desc=f"refining {source.name}", disable=not progress, unit="img"):
        row = {"image_id": image_id, "margin": np.nan, "x0": np.nan, "x1": np.nan, "height": np.nan, "width": np.nan,
               "widened": False, "persons_full": np.nan, **{margin_column(m): np.nan for m in margins},
               "last_x0": np.nan, "last_x1": np.nan, "boxes_full": "[]", "boxes_last": "[]"}
        rows.append(row)
        try:
            sample = source.read(image_id)
        except DataError as e:
            row.update(status="dropped", reason=f"unreadable: {e.reason}")
            continue
        image, mask = sample.image, sample.mask
        h, w = mask.shape
        row.update(height=h, width=w, x0=0, x1=w)
        det, _ = cached_detect(detector, cache, image_id, lambda: image)
        row.update(persons_full=len(det), boxes_full=_boxes_json(det))
        if len(det) <= 1:
            row.update(status="kept", reason="one_person" if len(det) else "no_person_detected")
            continue
        extent = garment_extent(mask)
        if extent is None:
            row.update(status="dropped", reason="no_garment_pixels")
            continue
        for m in margins:
            x0, x1, widened = crop_box(extent, m, w, math.ceil(min_width * h))
            crop_det, _ = cached_detect(detector, cache, f"{image_id}[{x0}:{x1}]",
                                        lambda: np.ascontiguousarray(image[:, x0:x1]))
            n = len(crop_det)
            row.update({margin_column(m): n, "last_x0": x0, "last_x1": x1, "widened": widened,
                        "boxes_last": _boxes_json(crop_det.shifted(x0))})
            if n == 1 or (n == 0 and crop_accepts_zero):
                row.update(status="cropped", reason="one_person_in_crop" if n else "no_person_in_crop",
                           margin=m, x0=x0, x1=x1)
                break
        else:
            row.update(status="review", reason=f"{n}_persons_after_last_crop")
    index = pd.DataFrame(rows)
    index.insert(1, "status", index.pop("status"))
    index.insert(2, "use", index["status"].isin(["kept", "cropped"]) | ((index["status"] == "review") & (review_policy == "keep")))
    index.insert(3, "reason", index.pop("reason"))
    for col in ("x0", "x1", "height", "width", "last_x0", "last_x1", "persons_full", *map(margin_column, margins)):
        index[col] = index[col].astype("Int64")
    index.attrs = {"version": INDEX_VERSION, "source": source.name, "source_fingerprint": source.fingerprint(),
                   "detector": detector.signature(), "margins": list(margins), "min_width": min_width,
                   "review_policy": review_policy, "crop_accepts_zero": crop_accepts_zero}
    return index


def summary(index: pd.DataFrame) -> pd.DataFrame:
    """Images per status, reason and accepted margin, plus the widened crops: the chapter's table."""
    table = (index.assign(margin=index["margin"].map(lambda m: "" if pd.isna(m) else f"{100 * m:.0f} %"))
             .groupby(["status", "reason", "margin", "use"], sort=False).size().rename("images").reset_index())
    order = {s: i for i, s in enumerate(STATUSES)}
    table = table.sort_values("status", key=lambda c: c.map(order), kind="stable")
    widened = int(index["widened"].sum())
    extra = pd.DataFrame([{"status": "(any)", "reason": "crop_widened_to_min_width", "margin": "", "use": "",
                           "images": widened}]) if widened else None
    return pd.concat([table, extra], ignore_index=True) if extra is not None else table.reset_index(drop=True)


def write_index(index: pd.DataFrame, path: str | Path) -> Path:
    """Write the index as CSV and its settings (``index.attrs``) beside it as ``<name>.json``, both or neither."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_files({path: index.to_csv(index=False), path.with_suffix(".json"): json.dumps(index.attrs, indent=1)})
    return path


def read_index(path: str | Path) -> pd.DataFrame:
    """An index written by :func:`write_index` (settings restored into ``attrs`` when the JSON exists)."""
    path = Path(path)
    index = pd.read_csv(path, dtype={"image_id": str, "reason": str}, keep_default_na=False, na_values=[""])
    for col in index.columns:
        if col in ("x0", "x1", "height", "width", "last_x0", "last_x1") or col.startswith("persons_"):
            index[col] = index[col].astype("Int64")
    index["use"] = index["use"].astype(bool)
    index["widened"] = index["widened"].astype(bool)
    meta = path.with_suffix(".json")
    if meta.exists():
        index.attrs = json.loads(meta.read_text())
    return index


def write_review_list(index: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """CSV of the images left for review, with an empty ``decision`` column (keep / drop) to fill in."""
    cols = ["image_id", "persons_full", *[c for c in index.columns if c.startswith("persons_m")],
            "last_x0", "last_x1", "width", "height", "reason", "use"]
    review = index.loc[index["status"] == "review", cols].assign(decision="")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), review.to_csv(index=False))
    return review


def apply_review(index: pd.DataFrame, review: pd.DataFrame | str | Path) -> pd.DataFrame:
    """The index with the reviewer's decisions (``keep`` / ``drop`` per image id) applied to ``use``."""
    if not isinstance(review, pd.DataFrame):
        review = pd.read_csv(review, dtype={"image_id": str, "decision": str}, keep_default_na=False)
    decisions = review.set_index("image_id")["decision"].str.strip().str.lower()
    bad = sorted(set(decisions[~decisions.isin(["keep", "drop", ""])].index))
    if bad:
        raise ValueError(f"decision must be keep, drop or empty; see {', '.join(bad[:5])}")
    out = index.copy()
    decided = out["image_id"].map(decisions).fillna("")
    hit = (out["status"] == "review") & decided.isin(["keep", "drop"])
    out.loc[hit, "use"] = decided[hit] == "keep"
    out.loc[hit, "reason"] = "reviewed: " + decided[hit]
    return out


def _shift_box(box, x0: int, x1: int):
    """A box (x0, y0, x1, y1) in crop coordinates, clipped to the crop; None if nothing is left."""
    bx0, by0, bx1, by1 = box
    nx0, nx1 = max(bx0, x0) - x0, min(bx1, x1) - x0
    return (int(nx0), int(by0), int(nx1), int(by1)) if nx1 > nx0 else None


def crop_sample(sample: Sample, x0: int, x1: int) -> Sample:
    """The sample cut to columns x0..x1 (full height): image and mask identically, boxes in ``info`` moved."""
    info = dict(sample.info)
    if "boxes" in info:
        info["boxes"] = {g: b for g, b in ((g, _shift_box(b, x0, x1)) for g, b in info["boxes"].items()) if b}
    if "person_boxes" in info:
        info["person_boxes"] = [b for b in (_shift_box(b, x0, x1) for b in info["person_boxes"]) if b]
        info["persons"] = len(info["person_boxes"])
    info["crop"] = (x0, x1)
    return Sample(sample.image_id, np.ascontiguousarray(sample.image[:, x0:x1]),
                  np.ascontiguousarray(sample.mask[:, x0:x1]), info)


@dataclass
class RefinedSource:
    """A source serving the refined data set: the images with ``use`` in ``index``, cropped to x0..x1.

    ``build_cache(RefinedSource(base, index), size)`` caches the refined training set; the
    fingerprint combines the base's and the index's (ids used and their crops), so any change of
    either gives a new cache. Reading an image whose size differs from the index's is a
    :class:`DataError` (the index is stale).
    """

    base: Source
    index: pd.DataFrame | str | Path
    name: str = ""
    skipped: SkipReport = field(default_factory=SkipReport, init=False)

    def __post_init__(self):
        if not isinstance(self.index, pd.DataFrame):
            self.index = read_index(self.index)
        missing = {"image_id", "status", "use", "reason", "x0", "x1", "height", "width"} - set(self.index.columns)
        if missing:
            raise ValueError(f"not a refined index: missing columns {sorted(missing)}")
        self.name = self.name or f"{self.base.name}-refined"
        used = self.index[self.index["use"]]
        self._crops = {r.image_id: (int(r.x0), int(r.x1), int(r.height), int(r.width)) for r in used.itertuples()}
        for r in self.index[~self.index["use"]].itertuples():
            self.skipped.add(r.image_id, f"{r.status}_{r.reason}" if r.status == "review" else r.reason)
        base_skips = getattr(self.base, "skipped", None)
        if base_skips is not None:
            for reason, n in base_skips.counts.items():
                self.skipped.counts[reason] += n
                self.skipped.examples.setdefault(reason, list(base_skips.examples.get(reason, [])))

    def ids(self) -> list[str]:
        return [i for i in self.base.ids() if i in self._crops]

    def read(self, image_id: str) -> Sample:
        if image_id not in self._crops:
            raise DataError(image_id, "not in the refined data set")
        x0, x1, h, w = self._crops[image_id]
        sample = self.base.read(image_id)
        if sample.mask.shape != (h, w):
            raise DataError(image_id, f"stale refined index: image is {sample.mask.shape[0]}x{sample.mask.shape[1]}, "
                                      f"index says {h}x{w}")
        return crop_sample(sample, x0, x1) if (x0, x1) != (0, w) else sample

    def fingerprint(self) -> str:
        used = sorted((i, c[0], c[1]) for i, c in self._crops.items())
        payload = json.dumps({"base": self.base.fingerprint(), "used": used, "version": INDEX_VERSION})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
