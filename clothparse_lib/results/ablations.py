"""Chapter Ablations: Table 1 (refined vs base data), the ablation rows of Table 2, Table 4 (ClassBranch),
Table 5 (ground-truth injection) and the definitions of the aggregate IoUs.

Table 1 compares the plain U-Net trained on each data variant, **evaluated on the same test images**: the
test part of the refined data set (bystanders cropped away where refinement cropped, images it dropped
left out), the closest thing to correct annotations we have.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paper
from ..runfolder import result_file
from .run import Run
from .tables import beside_paper, mean_std, models_table, seed_rows

__all__ = ["table1", "ABLATIONS", "ablation_rows", "table4", "classbranch_rows", "classbranch_row", "table5",
           "aggregate_definitions"]


def table1(run: Run) -> pd.DataFrame:
    """Plain U-Net trained on base vs refined data, both scored on the refined test images, beside Table 1."""
    ours = {"Base": seed_rows(run, "plain_unet", "base"), "Refined": seed_rows(run, "plain_unet", "refined")}
    return beside_paper(ours, "table1_base_vs_refined_plain_unet", {"Base": "Base", "Refined": "Refined"})


ABLATIONS = {"Plain U-Net": ("plain_unet", "Plain U-Net"), "ClassBranch only": ("class_branch_only", "ClassBranch only"),
             "Branches": ("branches", "Branches"), "Our model": ("extended", "Our model")}


def ablation_rows(run: Run) -> pd.DataFrame:
    return models_table(run, ABLATIONS)


def table4(run: Run, model: str = "extended") -> pd.DataFrame:
    """ClassBranch presence scores (F1, F2 macro; exact match; per-class accuracy) beside Table 4, in %."""
    mean, std = mean_std(100 * classbranch_rows(run, model))
    ref = paper.numbers()["table4_classbranch"]
    theirs = {"F1": ref["f1"], "F2": ref["f2"], "exact match (% of images)": ref["exact_match_percent_of_images"],
              **{f"accuracy: {g}": v for g, v in ref["per_class_accuracy"].items()}}
    table = pd.DataFrame({"run": mean, "std": std, "paper": pd.Series(theirs)}).loc[list(theirs)].rename_axis("metric")
    return table.assign(diff=table["run"] - table["paper"])


def classbranch_rows(run: Run, model: str = "extended") -> pd.DataFrame:
    """The ClassBranch's presence scores (fractions, labelled as in Table 4), one row per seed of the model."""
    return pd.DataFrame({s: classbranch_row(run.ensure(model, seed=s)) for s in run.profile.seeds_for(model)}).T.rename_axis("seed")


def classbranch_row(scores: dict) -> dict:
    """The ClassBranch's presence scores of one evaluation (fractions), labelled as in Table 4."""
    cb = scores["scores"]["classbranch"]
    return {"F1": cb["f1"], "F2": cb["f2"], "exact match (% of images)": cb["exact_match"],
            **{f"accuracy: {g}": v for g, v in cb["per_class_accuracy"].items()}}


def table5(run: Run, model: str = "extended") -> pd.DataFrame:
    """Ground-truth injection (Table 5): no prior, the full truth, and the partial (dress/skirt) prior of Figure 5."""
    ours = {"Without GT": seed_rows(run, model, mode="none"), "With GT": seed_rows(run, model, mode="gt"),
            "Partial GT (dress, skirt)": seed_rows(run, model, mode="partial")}
    return beside_paper(ours, "table5_gt_injection", {"Without GT": "Without GT", "With GT": "With GT",
                                                      "Partial GT (dress, skirt)": None})


def aggregate_definitions(run: Run, model: str = "plain_unet", variant: str = "refined") -> pd.DataFrame:
    """The paper's two aggregate IoUs under three definitions for one model of this run (test part), beside
    the mean of the paper's own per-class numbers and what it prints (Table 1's row of the same data)."""
    from ..metrics import segmentation_scores

    run.ensure(model, variant)
    s = segmentation_scores(np.load(result_file(run.model_dir(model, variant), "confusion"))["none"])
    ref = paper.numbers()["table1_base_vs_refined_plain_unet"]
    p = dict(zip(ref["columns"], ref["Refined" if variant == "refined" else "Base"]))
    classes = paper.numbers()["classes"]
    rows = {
        "this run: mean of the class IoUs (every table here)": (s["iou_excl_bg"], s["iou_overall"]),
        "this run: pooled over pixels (micro)": (s["iou_excl_bg_micro"], s["iou_micro"]),
        "this run: weighted by ground-truth pixels": (s["iou_excl_bg_freq_weighted"], s["iou_freq_weighted"]),
    }
    table = pd.DataFrame({k: {"IoU excl. bg": 100 * a, "IoU overall": 100 * b} for k, (a, b) in rows.items()}).T
    table.loc["paper: mean of its per-class IoUs"] = [np.mean([p[c] for c in classes[1:]]), np.mean([p[c] for c in classes])]
    table.loc["paper: as printed"] = [p["iou_excl_bg"], p["iou_overall"]]
    return table
