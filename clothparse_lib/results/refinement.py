"""Chapter Refinement: the refinement's counts beside the paper's."""
from __future__ import annotations

import pandas as pd

from .. import paper
from ..refinement.refine import summary
from .run import Run


def refinement_summary(run: Run) -> pd.DataFrame:
    return summary(run.refined_index())


def refinement_counts(run: Run) -> pd.DataFrame:
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
