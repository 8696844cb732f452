"""Person detection for the dataset refinement (paper, section 4.1): the detectors (:mod:`.detectors`), the
resumable runner over a data set or image files (:mod:`.runner`) and the quality of the multi-person flag against
photos labelled by eye (:mod:`.quality`). The command line is ``clothparse persons`` (:mod:`clothparse_lib.cli`)."""
from __future__ import annotations

from .detectors import (
    BACKENDS,
    DEFAULT_BACKEND,
    DETECTOR_VERSION,
    HAAR_CASCADES,
    Detections,
    HaarDetector,
    HOGDetector,
    MaskRCNNDetector,
    PersonDetector,
    SkinBlobDetector,
    make_detector,
    suppress,
)
from .quality import LABELLED_SOURCE, PERSON_LABELS, flag_metrics, flag_quality, jeffreys_interval, read_person_labels
from .runner import IMATERIALIST_IMAGES, DetectionCache, DetectionRun, cached_detect, detect_many

__all__ = [
    "BACKENDS", "DEFAULT_BACKEND", "DETECTOR_VERSION", "HAAR_CASCADES", "Detections", "HaarDetector", "HOGDetector",
    "MaskRCNNDetector", "PersonDetector", "SkinBlobDetector", "make_detector", "suppress",
    "LABELLED_SOURCE", "PERSON_LABELS", "flag_metrics", "flag_quality", "jeffreys_interval", "read_person_labels",
    "IMATERIALIST_IMAGES", "DetectionCache", "DetectionRun", "cached_detect", "detect_many",
]
