"""Clothing Co-Parsing (CCP; Yang et al., CVPR 2014) in its original layout.

``photos/NNNN.jpg``, ``annotations/pixel-level/NNNN.mat`` (``groundtruth``: HxW uint8 map of the
59 labels of ``label_list.mat``, 0 = null). Only photos with a pixel-level annotation are read.
Labels are merged to the paper's 9 classes by ``taxonomy.CCP_MAP``; images are excluded by
``taxonomy.ccp_exclusion_reason`` (romper = jumpsuit, suit covering the trousers). A photo is read in the
orientation of its annotation (:func:`base.read_rgb`; CCP's photos carry no EXIF orientation tag).
"""
from __future__ import annotations

import hashlib
import http.client
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from .. import settings
from ..taxonomy import CCP_LABELS, CCP_LUT, ccp_exclusion_reason
from .base import DataError, FileSource, Sample, files_fingerprint, read_rgb

__all__ = ["REPOSITORY_ZIP", "REPOSITORY_SHA256", "KEPT", "DownloadFailed", "is_complete", "read_label_names",
           "read_groundtruth", "CCPSource", "locate", "download"]


REPOSITORY_ZIP = "https://github.com/bearpaw/clothing-co-parsing/archive/refs/heads/master.zip"
# SHA-256 of REPOSITORY_ZIP; not pinned yet (no machine that built this had internet access): until it is, a
# download is checked by its announced size, the zip's CRCs and its layout, and its digest is printed.
REPOSITORY_SHA256: str | None = None
KEPT = ("photos", "annotations", "label_list.mat", "LICENSE", "README.md")  # what download() keeps of the repository


class DownloadFailed(RuntimeError):
    """A download that failed or did not verify; nothing of it was kept."""


def is_complete(root: Path) -> bool:
    """``root`` holds CCP's layout (what :class:`CCPSource` reads)."""
    return all(p.exists() for p in (root / "annotations" / "pixel-level", root / "photos", root / "label_list.mat"))


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
    except (OSError, ValueError, KeyError, TypeError, scipy.io.matlab.MatReadError) as e:
        raise DataError(image_id, f"annotation unreadable ({type(e).__name__}: {e}): {path}") from None
    if gt.ndim != 2:
        raise DataError(image_id, f"groundtruth must be 2-D, got shape {gt.shape}")
    if gt.size and (gt.min() < 0 or gt.max() >= len(CCP_LABELS)):
        raise DataError(image_id, f"label_out_of_range: label map values {int(gt.min())}..{int(gt.max())}, known 0..{len(CCP_LABELS) - 1}")
    return gt.astype(np.uint8)


@dataclass
class CCPSource(FileSource):
    """Reader of CCP under ``root`` (:class:`FileSource`)."""

    name: str = "ccp"

    def __post_init__(self):
        super().__post_init__()
        self.annotations = self.root / "annotations" / "pixel-level"
        if not self.annotations.is_dir() or not (self.root / "photos").is_dir():
            raise FileNotFoundError(f"CCP: {self.root} has no photos/ and annotations/pixel-level/ (fetch it there with "
                                    f"`clothparse download ccp --data-dir {self.root.parent}`, or set "
                                    f"{settings.DATA_DIR_VAR} to the folder holding ccp/; unset, CCP is fetched into "
                                    f"{settings.DEFAULT_DATA_DIR})")
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
        image = read_rgb(self.root / "photos" / f"{image_id}.jpg", image_id, size=gt.shape)  # as annotated
        return Sample(image_id, image, CCP_LUT[gt])

    def fingerprint(self) -> str:
        photos = (self.root / "photos" / f"{i}.jpg" for i in self._ids)
        return files_fingerprint([*self._files, *(p for p in photos if p.is_file())],
                                 {"ids": len(self._ids), "limit": self.limit, "version": 1})


def locate(data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """``ccp/`` of the data folder (:func:`settings.data_dir`), downloaded first when it is missing from the default
    home; never into a folder chosen by ``data_dir`` or $CLOTHPARSE_DATA_DIR (:class:`CCPSource` then says why)."""
    root = settings.data_dir(data_dir)
    if is_complete(root / "ccp") or not settings.data_dir_is_default(data_dir):
        return root / "ccp"
    try:
        return download(root, progress=progress)
    except DownloadFailed as e:
        raise FileNotFoundError(f"{e}; put CCP (photos/, annotations/pixel-level/, label_list.mat) in {root / 'ccp'} "
                                f"or set {settings.DATA_DIR_VAR} to the folder holding ccp/") from None


def download(dest: Path, url: str | None = None, sha256: str | None = None, progress: bool = True) -> Path:
    """Download CCP into ``dest/ccp`` from ``url`` (default: its GitHub repository's ``REPOSITORY_ZIP``, whose
    ``REPOSITORY_SHA256`` then applies as ``sha256``).

    Atomic: the archive is streamed into a temporary folder in ``dest`` (progress bar), checked (announced size,
    ``sha256`` when there is one, the zip's CRCs, the layout) and unpacked there; only ``KEPT`` is then renamed
    into ``dest/ccp``, so a failed or interrupted download leaves no ``ccp/``. Tests serve archives from 127.0.0.1.
    """
    if url is None:
        url, sha256 = REPOSITORY_ZIP, REPOSITORY_SHA256
    target = Path(dest).expanduser() / "ccp"
    if is_complete(target):
        return target
    if target.exists():
        raise DownloadFailed(f"{target} exists but holds no complete CCP (photos/, annotations/pixel-level/, "
                             "label_list.mat): remove it to download CCP again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".ccp-download-") as tmp:
        archive = Path(tmp) / "ccp.zip"
        print(f"downloading CCP from {url} into {target} ...")
        digest = _fetch(url, archive, progress)
        if sha256 and digest != sha256:
            raise DownloadFailed(f"CCP from {url}: SHA-256 {digest} differs from the expected {sha256}")
        if not sha256:
            print(f"CCP archive SHA-256 (no pinned checksum to compare with): {digest}")
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(Path(tmp) / "unpacked")  # checks every member's CRC
        except (zipfile.BadZipFile, OSError) as e:
            raise DownloadFailed(f"CCP from {url}: unreadable archive ({e})") from None
        tops = list((Path(tmp) / "unpacked").iterdir())
        top = tops[0] if len(tops) == 1 else Path(tmp) / "unpacked"
        staging = Path(tmp) / "ccp"
        staging.mkdir()
        for name in KEPT:
            if (top / name).exists():
                shutil.move(str(top / name), staging / name)
        if not is_complete(staging):
            raise DownloadFailed(f"CCP from {url}: the archive lacks photos/, annotations/pixel-level/ or label_list.mat")
        try:
            staging.rename(target)
        except OSError:
            if not is_complete(target):  # else another process has just put CCP there
                raise
    return target


def _fetch(url: str, path: Path, progress: bool) -> str:
    """Stream ``url`` into ``path`` with a progress bar; the SHA-256 of what came."""
    from tqdm.auto import tqdm

    digest, received = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc="CCP", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as e:  # offline, refused, HTTP error, timeout, cut chunked stream
        raise DownloadFailed(f"cannot download CCP from {url} ({e})") from None
    if size and received != size:
        raise DownloadFailed(f"download of CCP from {url} interrupted after {received} of {size} bytes")
    return digest.hexdigest()
