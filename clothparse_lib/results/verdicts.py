"""What reproduced: a verdict on each claim of the paper, from this run's seeds.

Most claims are relative ("A beats B"), so they can be tested on CCP although its absolute numbers cannot
match iMaterialist's. The rules (:data:`RULES`), applied by code and stated in the introduction:

* **difference** claims: the same-seed differences d_s = A_s - B_s (same data, split and schedule; only the
  seed changes), their mean m and sample standard deviation s. *Reproduced* when m has the claimed sign and
  |m| > s; *not reproduced* when m has the other sign and |m| > s; *inconclusive* when |m| <= s (the seed
  spread covers the difference) or with fewer than 2 seeds.
* **level** claims (an absolute number of the paper): *reproduced* when the paper's number lies within
  m +- (s + :data:`TOLERANCE`), else *not reproduced*; *inconclusive* with fewer than 2 seeds.
* **in every seed** claims (the largest confusion): *reproduced* when it holds in every seed, *not
  reproduced* when it holds in none, else *inconclusive*; fewer than 2 seeds: *inconclusive*.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import paper
from ..evaluation.scores import PARTIAL_PRIOR
from ..metrics import normalize_confusion
from .ablations import classbranch_rows
from .confusion import confusion_counts, most_confused
from .run import Run
from .tables import seed_rows

__all__ = ["TOLERANCE", "RULES", "Verdict", "difference", "level", "every_seed", "claims", "tally"]


REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
TOLERANCE = 2.0  # percentage points around a level claim, on top of the seed spread
RULES = {  # the "test" column of :func:`claims` -> the rule (the introduction states them in words)
    "paired difference": "paired over seeds: mean ± std of A − B; the claimed sign and |mean| > std",
    "level": f"the paper's number within mean ± (std + {TOLERANCE:g} points)",
    "every seed": "holds in every seed (none: not reproduced)",
}


@dataclass(frozen=True)
class Verdict:
    mean: float  # of the difference (difference claims) or of the value (level claims); share of seeds otherwise
    std: float  # sample standard deviation over seeds (NaN for one seed)
    n: int  # seeds
    verdict: str


def difference(a: pd.Series, b: pd.Series, sign: int = 1) -> Verdict:
    """Verdict on "A - B has sign ``sign``" from per-seed values (indexed by seed; only common seeds count)."""
    seeds = a.index.intersection(b.index)
    d = (a[seeds] - b[seeds]).astype(float)
    m, s = float(d.mean()) if len(d) else float("nan"), float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    if len(d) < 2 or abs(m) <= s:
        return Verdict(m, s, len(d), INCONCLUSIVE)
    return Verdict(m, s, len(d), REPRODUCED if np.sign(m) == sign else NOT_REPRODUCED)


def level(values: pd.Series, paper_value: float) -> Verdict:
    """Verdict on "the value is ``paper_value``" from per-seed values."""
    v = values.astype(float)
    m, s = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    if len(v) < 2:
        return Verdict(m, s, len(v), INCONCLUSIVE)
    return Verdict(m, s, len(v), REPRODUCED if abs(m - paper_value) <= s + TOLERANCE else NOT_REPRODUCED)


def every_seed(holds: pd.Series) -> Verdict:
    """Verdict on a yes/no claim tested once per seed; ``mean`` is the share of seeds where it holds."""
    h = holds.astype(bool)
    share = float(h.mean())
    if len(h) < 2:
        return Verdict(share, float("nan"), len(h), INCONCLUSIVE)
    return Verdict(share, float("nan"), len(h), REPRODUCED if h.all() else NOT_REPRODUCED if not h.any() else INCONCLUSIVE)


def claims(run: Run) -> pd.DataFrame:
    """One row per claim of the paper: its number, this run's mean ± std over the profile's seeds (percentage
    points), the test and the verdict."""
    ref = paper.numbers()
    t2 = _paper_rows("table2_models")
    iou = {m: 100 * seed_rows(run, m)["iou_excl_bg"] for m in
           ("extended", "plain_unet", "deeplabv3plus", "deeplabv3", "fpn", "class_branch_only", "branches")}
    label = {"extended": "Our model", "plain_unet": "Plain U-Net", "deeplabv3plus": "DeepLabV3+", "deeplabv3": "DeepLabV3",
             "fpn": "FPN", "class_branch_only": "ClassBranch only", "branches": "Branches"}
    rows = []

    def add(table, claim, paper_value, kind, verdict):
        rows.append({"table": table, "claim": claim, "paper": paper_value, "this run": verdict.mean, "std": verdict.std,
                     "seeds": verdict.n, "test": kind, "verdict": verdict.verdict})

    for a, b in (("extended", "plain_unet"), ("plain_unet", "deeplabv3plus"), ("plain_unet", "deeplabv3"),
                 ("plain_unet", "fpn"), ("class_branch_only", "plain_unet"), ("extended", "class_branch_only"),
                 ("branches", "plain_unet"), ("extended", "branches")):
        gap = t2[label[a]]["iou_excl_bg"] - t2[label[b]]["iou_excl_bg"]
        add("Table 2", f"{label[a]} beats {label[b]} (IoU excl. bg)", gap, "paired difference", difference(iou[a], iou[b]))

    t1 = _paper_rows("table1_base_vs_refined_plain_unet")
    base = 100 * seed_rows(run, "plain_unet", "base")["iou_excl_bg"]
    add("Table 1", "refinement raises IoU excl. bg (plain U-Net)", t1["Refined"]["iou_excl_bg"] - t1["Base"]["iou_excl_bg"],
        "paired difference", difference(iou["plain_unet"], base))

    cb = 100 * classbranch_rows(run)
    t4 = ref["table4_classbranch"]
    for name, paper_value in (("F1", t4["f1"]), ("F2", t4["f2"]), ("exact match (% of images)", t4["exact_match_percent_of_images"])):
        add("Table 4", f"ClassBranch {name}", paper_value, "level", level(cb[name], paper_value))

    t5 = _paper_rows("table5_gt_injection")
    gt = 100 * seed_rows(run, "extended", mode="gt")["iou_excl_bg"]
    add("Table 5", "ground-truth injection raises IoU excl. bg", t5["With GT"]["iou_excl_bg"] - t5["Without GT"]["iou_excl_bg"],
        "paired difference", difference(gt, iou["extended"]))
    injected = list(PARTIAL_PRIOR)
    partial = 100 * seed_rows(run, "extended", mode="partial")[injected].mean(axis=1)
    none = 100 * seed_rows(run, "extended", mode="none")[injected].mean(axis=1)
    add("Figure 5", f"the truth about {' and '.join(injected)} raises their IoU", float("nan"), "paired difference",
        difference(partial, none))

    classes = ref["classes"]
    skirt_dress = pd.Series({s: most_confused(normalize_confusion(confusion_counts(run, seed=s), "rows"), classes)[:2]
                             == ("skirt", "dress") for s in run.profile.seeds_for("extended")})
    row = ref["table3_confusion_percent"]["row_normalized_gt_rows_pred_columns"]
    add("Table 3", "the largest garment confusion is skirt → dress", row[classes.index("skirt")][classes.index("dress")],
        "every seed", every_seed(skirt_dress))
    return pd.DataFrame(rows).set_index(["table", "claim"])


def _paper_rows(table: str) -> dict[str, dict[str, float]]:
    """A paper table as {row label: {column: value}}."""
    t = paper.numbers()[table]
    return {k: dict(zip(t["columns"], v)) for k, v in t.items() if k != "columns"}


def tally(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict."""
    return {v: int((table["verdict"] == v).sum()) for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)}
