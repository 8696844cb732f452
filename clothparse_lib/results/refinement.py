"""Chapter Refinement: the refinement's statuses and counts beside the paper's, the person detector's quality
against the photos labelled by eye, and the gallery of crops and photos left for review."""
from __future__ import annotations

import json
import math

import pandas as pd

from .. import paper
from ..data.base import DataError
from ..refinement import refine
from ..refinement.persons import flag_quality
from .run import Run

__all__ = ["NOT_MEASURED", "summary", "counts", "detector_quality", "in_words", "review_gallery"]


NOT_MEASURED = "not measured (the labelled photos are CCP's)"


def summary(run: Run) -> pd.DataFrame:
    """Images per status, reason and accepted margin (:func:`refinement.refine.summary` of the run's index)."""
    return refine.summary(run.refined_index())


def counts(run: Run) -> pd.DataFrame:
    """The refinement's counts beside the paper's (section 4.1), as images and as a share of the source."""
    index, ref = run.refined_index(), paper.numbers()["dataset"]
    ours = {"images in the source": len(index), "multi-person images detected": int((index["persons_full"] > 1).sum()),
            "left for manual review": int((index["status"] == "review").sum()),
            "images used after refinement (paper: after cleaning)": int(index["use"].sum())}
    theirs = {"images in the source": ref["images_total_original"], "multi-person images detected":
              ref["multi_person_images_detected"], "left for manual review": ref["manually_inspected"],
              "images used after refinement (paper: after cleaning)": ref["images_after_cleaning"]}
    table = pd.DataFrame({"this run": ours, "paper": theirs})
    table["this run (%)"] = 100 * table["this run"] / len(index)
    table["paper (%)"] = 100 * table["paper"] / ref["images_total_original"]
    return table


def detector_quality(run: Run) -> pd.DataFrame:
    """The run's multi-person flag (persons found on each full photo) against the by-eye labels, in %
    (:func:`refinement.persons.flag_quality`: empty off CCP; ``attrs["labelled photos"]``)."""
    return flag_quality(run.refined_index().set_index("image_id")["persons_full"], run.profile.source)


def in_words(quality: pd.DataFrame, row: str) -> str:
    """A row of :func:`detector_quality` for prose, e.g. "70 % (95 % interval 65-74 %)"; :data:`NOT_MEASURED` for
    an empty table."""
    if quality.empty:
        return NOT_MEASURED
    estimate, low, high = quality.loc[row].iloc[:3]
    return f"{estimate:.0f} % (95 % interval {low:.0f}-{high:.0f} %)"


def review_gallery(run: Run, status: str = "review", max_images: int = 24, cols: int = 6, thumb_height: int = 3):
    """A matplotlib Figure of the run's images of one status (default: left for review): detections on the full
    image (red), the last crop tried (for ``cropped``: the accepted one; yellow dashed lines) and, in the title,
    the persons found at each step."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if status not in refine.STATUSES:
        raise ValueError(f"status must be one of {refine.STATUSES}, got {status!r}")
    index = run.refined_index()
    shown = index[index["status"] == status].head(max_images)
    steps = [c for c in index.columns if c.startswith("persons_m")]
    if shown.empty:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, f"no image with status {status!r}", ha="center", va="center")
        ax.axis("off")
        return fig
    source = run.source()
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * thumb_height * 0.7, rows * thumb_height), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), shown.itertuples()):
        try:
            ax.imshow(source.read(r.image_id).image)
        except DataError as e:
            ax.text(0.5, 0.5, e.reason, ha="center", va="center", wrap=True, fontsize=7)
            continue
        for x0, y0, x1, y1 in json.loads(r.boxes_full):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="red", linewidth=1.5))
        for x in (r.last_x0, r.last_x1):
            if not pd.isna(x):
                ax.axvline(x, color="yellow", linestyle="--", linewidth=1.5)
        persons = "/".join(str(getattr(r, c)) for c in ["persons_full", *steps])
        ax.set_title(f"{r.image_id}\npersons {persons}", fontsize=8)
    fig.suptitle(f"{status}: {int((index['status'] == status).sum())} images, {len(shown)} shown "
                 f"(persons: full image/{'/'.join(s.removeprefix('persons_') for s in steps)})", fontsize=10)
    fig.tight_layout()
    return fig
