"""Person detectors: every backend answers ``detect(image) -> Detections`` and ``count(image) -> int``.

``Detections`` holds boxes (x0, y0, x1, y1 in the image's pixels, x1/y1 exclusive) and scores, after the
backend's thresholds and duplicate suppression. Backends (``make_detector(name, **settings)``):

* ``maskrcnn`` - the paper's choice: torchvision's Mask R-CNN (ResNet-50 FPN, COCO), class 1
  (person) with score >= ``score_threshold`` (0.5). Weights: ``weights="default"`` lets
  torchvision download them (needs the internet), a path reads a local state dict, ``None``
  leaves the model randomly initialised (tests only).
* ``hog`` - OpenCV 4.x's HOG + linear-SVM people detector (Dalal & Triggs, shipped in the
  wheel), run on the image resized to ``work_height`` pixels; detections with an SVM score below
  ``score_threshold`` or shorter than ``min_height`` of the image height are dropped.
* ``haar`` - an OpenCV Haar cascade shipped in the wheel (``fullbody``, ``upperbody``,
  ``frontalface_default``...), an alternative (its throughput: ``benchmarks/bench_persons.py``).
* ``skin`` - skin-coloured heads on necks, made for the synthetic paper-doll images of the smoke
  profile (useless on photos).

Duplicate suppression (the "tie" rule): of two boxes whose intersection covers more than
``overlap`` of the smaller one, only the higher-scoring box is kept, so a detector firing on a
person's legs or torso inside the whole-body box counts one person, not two.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["DETECTOR_VERSION", "Detections", "suppress", "PersonDetector", "HOGDetector", "HAAR_CASCADES",
           "HaarDetector", "SkinBlobDetector", "COCO_PERSON", "MaskRCNNDetector", "BACKENDS", "DEFAULT_BACKEND",
           "make_detector"]


DETECTOR_VERSION = 1


@dataclass
class Detections:
    """Persons found in one image: boxes (N x 4, x0 y0 x1 y1, pixels) and scores (N)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.scores)

    def shifted(self, dx: float) -> "Detections":
        """The same boxes moved right by ``dx`` pixels (crop coordinates -> image coordinates)."""
        return Detections(self.boxes + np.float32([dx, 0, dx, 0]), self.scores)

    def to_json(self) -> dict:
        return {"boxes": np.round(self.boxes, 1).tolist(), "scores": np.round(self.scores, 4).tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "Detections":
        return cls(d["boxes"], d["scores"])


def suppress(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> np.ndarray:
    """Indices kept by greedy suppression on intersection over the smaller box's area (best score first)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.asarray(keep)
            iw = np.clip(np.minimum(boxes[k, 2], boxes[i, 2]) - np.maximum(boxes[k, 0], boxes[i, 0]), 0, None)
            ih = np.clip(np.minimum(boxes[k, 3], boxes[i, 3]) - np.maximum(boxes[k, 1], boxes[i, 1]), 0, None)
            smaller = np.maximum(np.minimum(area[k], area[i]), 1e-9)
            if ((iw * ih) / smaller > overlap).any():
                continue
        keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


class PersonDetector(Protocol):
    """What the refinement needs from a detector."""

    name: str

    def detect(self, image: np.ndarray) -> Detections: ...

    def count(self, image: np.ndarray) -> int: ...

    def signature(self) -> str:
        """Changes whenever the detector's answers may change (backend, settings, weights, version)."""
        ...


@dataclass
class _Detector(ABC):
    """Shared plumbing: settings as dataclass fields, resizing, filtering, suppression, signature. A backend
    supplies :meth:`_raw`."""

    score_threshold: float = 0.0
    min_height: float = 0.0  # drop boxes shorter than this share of the image height
    overlap: float = 0.65  # suppression: intersection over the smaller box's area
    name: str = field(default="", init=False)

    @abstractmethod
    def _raw(self, image: np.ndarray) -> Detections:
        """The backend's own detections on ``image``, before the thresholds and the suppression of :meth:`detect`."""

    def detect(self, image: np.ndarray) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
        raw = self._raw(image)
        heights = raw.boxes[:, 3] - raw.boxes[:, 1]
        ok = (raw.scores >= self.score_threshold) & (heights >= self.min_height * image.shape[0])
        raw = Detections(raw.boxes[ok], raw.scores[ok])
        keep = suppress(raw.boxes, raw.scores, self.overlap)
        return Detections(raw.boxes[keep], raw.scores[keep])

    def count(self, image: np.ndarray) -> int:
        return len(self.detect(image))

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "name"}

    def signature(self) -> str:
        payload = json.dumps({"name": self.name, "settings": self.settings(), "version": DETECTOR_VERSION},
                             sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _resize(image: np.ndarray, height: int | None) -> tuple[np.ndarray, float]:
    """The image scaled to ``height`` rows (unchanged when None) and the scale factor applied."""
    import cv2

    if not height or image.shape[0] == height:
        return image, 1.0
    s = height / image.shape[0]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (max(1, round(image.shape[1] * s)), height), interpolation=interp), s


@dataclass
class HOGDetector(_Detector):
    """OpenCV's HOG people detector (64x128 window) with its default linear SVM.

    ``work_height``: the image is resized to this height first (persons shorter than about
    100 / work_height of the image are not seen); ``score_threshold``: minimum SVM score;
    ``scale``: pyramid step; ``win_stride``: window step in pixels; ``pad``: border added on every
    side (edge-replicated, as a share of the height) so that persons cut by the frame can be found.
    """

    score_threshold: float = 0.5
    min_height: float = 0.1
    overlap: float = 0.8
    work_height: int = 480
    scale: float = 1.05
    win_stride: int = 8
    pad: float = 0.1

    def __post_init__(self):
        import cv2

        self.name = "hog"
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def _raw(self, image: np.ndarray) -> Detections:
        import cv2

        small, s = _resize(image, self.work_height)
        p = int(round(self.pad * small.shape[0]))
        if p:
            small = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_REPLICATE)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(gray, hitThreshold=min(self.score_threshold, 0.0),
                                                    winStride=(self.win_stride, self.win_stride),
                                                    padding=(8, 8), scale=self.scale, groupThreshold=0)
        if not len(rects):
            return Detections(np.zeros((0, 4)), np.zeros(0))
        rects = np.asarray(rects, np.float32)
        boxes = np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]] - p
        boxes = np.clip(boxes / s, 0, [image.shape[1], image.shape[0]] * 2)
        return Detections(boxes, np.asarray(weights).reshape(-1))


HAAR_CASCADES = ("fullbody", "upperbody", "lowerbody", "frontalface_default", "frontalface_alt2", "profileface")


@dataclass
class HaarDetector(_Detector):
    """An OpenCV Haar cascade from ``cv2.data.haarcascades``; the score is the number of raw hits grouped."""

    cascade: str = "fullbody"
    score_threshold: float = 3
    min_height: float = 0.0
    work_height: int = 640
    scale: float = 1.1

    def __post_init__(self):
        import cv2

        if self.cascade not in HAAR_CASCADES:
            raise ValueError(f"unknown cascade {self.cascade!r}; known: {', '.join(HAAR_CASCADES)}")
        self.name = "haar"
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + f"haarcascade_{self.cascade}.xml")
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV could not load the {self.cascade} cascade (OpenCV 5.x ships none; use 4.x)")

    def _raw(self, image: np.ndarray) -> Detections:
        import cv2

        small, s = _resize(image, self.work_height)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        raw = self._cascade.detectMultiScale(gray, scaleFactor=self.scale, minNeighbors=0)
        if not len(raw):
            return Detections(np.zeros((0, 4)), np.zeros(0))
        rects, neighbours = cv2.groupRectangles(np.asarray(raw).tolist(), 1, 0.2)
        if not len(rects):
            return Detections(np.zeros((0, 4)), np.zeros(0))
        rects = np.asarray(rects, np.float32)
        return Detections(np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]] / s, np.asarray(neighbours).reshape(-1))


@dataclass
class SkinBlobDetector(_Detector):
    """One person per head, for the synthetic paper-doll images (useless on photos).

    A head is a uniform skin-coloured region shaped like a head on a neck: pixels in the classic
    YCrCb skin box (Cr in ``cr``, Cb in ``cb``; Chai & Ngan 1999) of the median-filtered image,
    cut along colour edges (morphological gradient >= ``edge``, so a head on a skin-coloured
    background or garment stays separate), connected; kept when its area is within ``area`` (shares
    of the image), its height/width ratio within ``aspect``, it fills ``fill`` of its box, and its
    bottom rows (the neck) are narrower than ``neck`` times its widest row, which lies in its upper
    three quarters. Arms, legs, shoes, bags and clutter fail one of these tests (``tests/test_refinement_persons.py``
    checks it on synthetic images: every two-person image gives 2+ heads, most one-person images one).
    """

    cr: tuple[int, int] = (133, 173)
    cb: tuple[int, int] = (77, 127)
    edge: int = 12
    area: tuple[float, float] = (0.0033, 0.02)
    aspect: tuple[float, float] = (1.1, 2.1)
    fill: tuple[float, float] = (0.55, 0.9)
    neck: float = 0.6
    overlap: float = 0.95

    def __post_init__(self):
        self.name = "skin"

    def _raw(self, image: np.ndarray) -> Detections:
        import cv2

        blur = cv2.medianBlur(image, 5)
        ycc = cv2.cvtColor(blur, cv2.COLOR_RGB2YCrCb)
        skin = ((ycc[..., 1] >= self.cr[0]) & (ycc[..., 1] <= self.cr[1]) &
                (ycc[..., 2] >= self.cb[0]) & (ycc[..., 2] <= self.cb[1]))
        grad = cv2.morphologyEx(blur, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).max(2)
        _, labels, stats, _ = cv2.connectedComponentsWithStats((skin & (grad < self.edge)).astype(np.uint8), connectivity=4)
        total = image.shape[0] * image.shape[1]
        boxes, scores = [], []
        for k, (x, y, w, h, a) in enumerate(stats[1:], start=1):
            w2, h2, a2 = w + 2, h + 2, a + 2 * (w + h)  # give back the 1-px rim eaten by the edge test
            if not (self.area[0] * total <= a2 <= self.area[1] * total and self.aspect[0] <= h2 / w2 <= self.aspect[1]
                    and self.fill[0] <= a2 / (w2 * h2) <= self.fill[1]):
                continue
            rows = (labels[y:y + h, x:x + w] == k).sum(1)
            bottom = max(1, round(0.15 * h))
            if rows[-bottom:].mean() > self.neck * rows.max() or rows.argmax() > 0.75 * h:
                continue
            boxes.append((x, y, x + w, y + h))
            scores.append(a2 / (w2 * h2))
        return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


COCO_PERSON = 1


@dataclass
class MaskRCNNDetector(_Detector):
    """torchvision's Mask R-CNN ResNet-50 FPN (COCO); persons are class 1.

    ``weights``: ``"default"`` (torchvision downloads COCO weights to its cache, needs the
    internet once), a path to a local state dict (``torch.save(model.state_dict())`` of the same
    architecture), or ``None`` (random initialisation, for tests). ``min_size``: the shorter image
    side torchvision resizes to (800 in the paper's model zoo).
    """

    score_threshold: float = 0.5
    min_height: float = 0.0
    overlap: float = 0.9
    weights: str | None = "default"
    min_size: int = 800
    device: str = "cpu"

    def __post_init__(self):
        import torch
        from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights, maskrcnn_resnet50_fpn

        self.name = "maskrcnn"
        w = str(self.weights) if self.weights is not None else None
        if w == "default":
            model = maskrcnn_resnet50_fpn(weights=MaskRCNN_ResNet50_FPN_Weights.COCO_V1, min_size=self.min_size)
        else:
            model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, min_size=self.min_size)
            if w is not None:
                if not Path(w).is_file():
                    raise FileNotFoundError(f"Mask R-CNN weights file not found: {w}")
                state = torch.load(w, map_location="cpu", weights_only=True)
                model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        self.model = model.eval().to(self.device)

    def settings(self) -> dict:
        out = super().settings()
        w = out["weights"]
        if w not in (None, "default"):  # a local file: its content matters, not only its name
            st = Path(w).stat()
            out["weights"] = f"{Path(w).name}:{st.st_size}:{st.st_mtime_ns}"
        out.pop("device")
        return out

    def _raw(self, image: np.ndarray) -> Detections:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255).to(self.device)
        with torch.inference_mode():
            out = self.model([x])[0]
        person = out["labels"] == COCO_PERSON
        return Detections(out["boxes"][person].cpu().numpy(), out["scores"][person].cpu().numpy())


BACKENDS = {"hog": HOGDetector, "haar": HaarDetector, "skin": SkinBlobDetector, "maskrcnn": MaskRCNNDetector}
DEFAULT_BACKEND = "hog"


def make_detector(name: str = DEFAULT_BACKEND, **settings) -> PersonDetector:
    """A detector by backend name with its settings (keyword arguments of the backend's class)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown person detector {name!r}; known: {', '.join(BACKENDS)}")
    return BACKENDS[name](**settings)
