"""Clothing Co-Parsing (CCP; Yang et al., CVPR 2014) in its original layout.

``photos/NNNN.jpg``, ``annotations/pixel-level/NNNN.mat`` (``groundtruth``: HxW uint8 map of the
59 labels of ``label_list.mat``, 0 = null). Only photos with a pixel-level annotation are read.
Labels are merged to the paper's 9 classes by ``taxonomy.CCP_MAP``; images are excluded by
``taxonomy.ccp_exclusion_reason`` (romper = jumpsuit, suit covering the trousers).
"""
from __future__ import annotations

import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from ..taxonomy import CCP_LABELS, CCP_LUT, ccp_exclusion_reason
from .base import DataError, Sample, SkipReport, files_fingerprint, read_rgb

REPOSITORY_ZIP = "https://github.com/bearpaw/clothing-co-parsing/archive/refs/heads/master.zip"


def read_label_names(path: Path) -> list[str]:
    """The label names of ``label_list.mat``."""
    try:
        cells = scipy.io.loadmat(path)["label_list"].ravel()
    except (OSError, ValueError, KeyError) as e:
        raise DataError(str(path), f"cannot read label_list ({e})") from None
    return [str(np.asarray(c).ravel()[0]) if np.asarray(c).size else "" for c in cells]


def read_groundtruth(path: Path, image_id: str) -> np.ndarray:
    """The raw CCP label map (values 0..58) of one annotation file."""
    try:
        gt = scipy.io.loadmat(path)["groundtruth"]
    except FileNotFoundError:
        raise DataError(image_id, f"annotation missing: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(image_id, f"annotation unreadable ({type(e).__name__}: {e}): {path}") from None
    if gt.ndim != 2:
        raise DataError(image_id, f"groundtruth must be 2-D, got shape {gt.shape}")
    if gt.size and (gt.min() < 0 or gt.max() >= len(CCP_LABELS)):
        raise DataError(image_id, f"label_out_of_range: label map values {int(gt.min())}..{int(gt.max())}, known 0..{len(CCP_LABELS) - 1}")
    return gt.astype(np.uint8)


@dataclass
class CCPSource:
    """Reader of CCP under ``root``; ``on_error="skip"`` counts bad images in ``self.skipped``."""

    root: Path
    on_error: str = "skip"
    limit: int | None = None
    name: str = "ccp"
    skipped: SkipReport = field(default_factory=SkipReport, init=False)

    def __post_init__(self):
        self.root = Path(self.root)
        if self.on_error not in ("skip", "raise"):
            raise ValueError("on_error must be 'skip' or 'raise'")
        self.annotations = self.root / "annotations" / "pixel-level"
        if not self.annotations.is_dir() or not (self.root / "photos").is_dir():
            raise FileNotFoundError(f"CCP: {self.root} has no photos/ and annotations/pixel-level/ "
                                    "(set CLOTHPARSE_DATA_DIR to the folder holding ccp/, or run `clothparse download ccp`)")
        names = read_label_names(self.root / "label_list.mat")
        if names != list(CCP_LABELS):
            raise DataError(str(self.root / "label_list.mat"), "label names differ from CCP's 59 labels")
        self._files = sorted(self.annotations.glob("*.mat"))
        self._ids = self._select_ids()

    def _select_ids(self) -> list[str]:
        ids = []
        for f in self._files:
            image_id = f.stem
            try:
                labels = {CCP_LABELS[v] for v in np.unique(read_groundtruth(f, image_id))}
            except DataError as e:
                if self.on_error == "raise":
                    raise
                self.skipped.add(image_id, e.reason)
                continue
            reason = ccp_exclusion_reason(labels)
            if reason:
                self.skipped.add(image_id, reason)
                continue
            ids.append(image_id)
            if self.limit and len(ids) >= self.limit:
                break
        if not ids:
            raise DataError(str(self.root), f"no images left after filtering ({self.skipped})")
        return ids

    def ids(self) -> list[str]:
        return list(self._ids)

    def read(self, image_id: str) -> Sample:
        gt = read_groundtruth(self.annotations / f"{image_id}.mat", image_id)
        image = read_rgb(self.root / "photos" / f"{image_id}.jpg", image_id)
        if image.shape[:2] != gt.shape:
            raise DataError(image_id, f"size_mismatch: photo {image.shape[:2]} vs annotation {gt.shape}")
        return Sample(image_id, image, CCP_LUT[gt])

    def fingerprint(self) -> str:
        return files_fingerprint(self._files, {"ids": len(self._ids), "limit": self.limit, "version": 1})


def download(dest: Path, url: str = REPOSITORY_ZIP) -> Path:
    """Download CCP from its public GitHub repository into ``dest/ccp`` (needs internet; never run by tests).

    Only ``photos/``, ``annotations/``, ``label_list.mat``, ``LICENSE`` and ``README.md`` are kept.
    """
    target = Path(dest) / "ccp"
    if (target / "annotations" / "pixel-level").is_dir():
        return target
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        archive = Path(tmp) / "ccp.zip"
        print(f"downloading {url} ...")
        urllib.request.urlretrieve(url, archive)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        staging = Path(tmp) / "ccp"
        staging.mkdir()
        for name in ("photos", "annotations", "label_list.mat", "LICENSE", "README.md"):
            if (top / name).exists():
                shutil.move(str(top / name), staging / name)
        staging.rename(target)
    return target
