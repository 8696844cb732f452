"""What reproduced: a verdict on each claim of the paper, from this run's seeds.

Most claims are relative ("A beats B"), so they can be tested on CCP although its absolute numbers cannot
match iMaterialist's. The rules (:data:`RULES`), applied by code and stated in the introduction:

* **difference** claims ("A - B has the claimed sign"): the same-seed differences d_s = A_s - B_s (same data,
  split and schedule; only the seed changes), their mean m, sample standard deviation s and the one-sided 95 %
  confidence bounds of the mean, m -+ t(0.95, n - 1) s / sqrt(n) (Student's t over the n seeds; together a two-sided
  90 % interval). *Reproduced* when the interval lies on the claimed side of zero, *not reproduced* when it lies on
  the other side; *smaller than the paper's* when it holds zero but lies short of the paper's difference D (the
  direction is not established, and the paper's effect is out of reach); *inconclusive* otherwise or with fewer than
  2 seeds, where :func:`seeds_to_decide` says how many seeds would decide it either way at the observed mean and
  spread (none when the mean is about zero and about D). With 3 seeds the interval's half-width is 1.69 s, with 2
  seeds 4.46 s.
* **level** claims (an absolute number of the paper): *reproduced* when the paper's number lies within
  m +- (s + :data:`TOLERANCE`), else *not reproduced*; *inconclusive* with fewer than 2 seeds.
* **in every seed** claims (where skirt pixels go): *reproduced* when it holds in every seed, *not
  reproduced* when it holds in none, else *inconclusive*; fewer than 2 seeds: *inconclusive*.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .. import paper
from ..evaluation.scores import PARTIAL_PRIOR
from ..metrics import normalize_confusion
from .ablations import classbranch_rows
from .confusion import confusion_counts
from .run import Run
from .tables import seed_rows

__all__ = ["REPRODUCED", "NOT_REPRODUCED", "SMALLER", "INCONCLUSIVE", "TOLERANCE", "CONFIDENCE", "MAX_SEEDS", "RULES",
           "VERDICT_COLOURS", "Verdict", "one_sided_bounds", "seeds_to_decide", "difference", "level", "every_seed",
           "claims", "skirt_row_top", "tally"]


REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
SMALLER = "smaller than the paper's"  # a difference claim: direction not established, the paper's effect out of reach
TOLERANCE = 2.0  # percentage points around a level claim, on top of the seed spread
CONFIDENCE = 0.95  # one-sided, of the mean paired difference (Student's t over the seeds)
MAX_SEEDS = 50  # seeds_to_decide looks no further: a claim that needs more has a mean of about zero at its spread
RULES = {  # the "test" column of :func:`claims` -> the rule (the introduction states them in words)
    "paired difference": f"paired over seeds: the one-sided {CONFIDENCE:.0%} interval of the mean of A − B "
                         "(Student's t) lies on the claimed side of zero (the other side: not reproduced; holding zero "
                         "but short of the paper's difference: smaller than the paper's)",
    "level": f"the paper's number within mean ± (std + {TOLERANCE:g} points)",
    "every seed": "holds in every seed (none: not reproduced)",
}
VERDICT_COLOURS = {REPRODUCED: "#2e7d32", NOT_REPRODUCED: "#c62828", SMALLER: "#ef6c00",  # green, red, orange,
                   INCONCLUSIVE: "#9e9e9e"}  # grey


@dataclass(frozen=True)
class Verdict:
    mean: float  # of the difference (difference claims) or of the value (level claims); share of seeds otherwise
    std: float  # sample standard deviation over seeds (NaN for one seed)
    n: int  # seeds
    verdict: str
    values: tuple[float, ...] = ()  # per seed: the differences (difference claims) or the values (level claims)
    low: float = float("nan")  # one-sided 95 % lower and upper bounds of the mean (difference claims)
    high: float = float("nan")
    seeds_needed: float = float("nan")  # difference claims left inconclusive: seeds that would decide (inf: none would)


def one_sided_bounds(mean: float, std: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The one-sided ``confidence`` lower and upper bounds of a mean over ``n`` samples (Student's t)."""
    if n < 2 or math.isnan(std):
        return float("nan"), float("nan")
    half = stats.t.ppf(confidence, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def seeds_to_decide(mean: float, std: float, paper: float = float("nan"), confidence: float = CONFIDENCE) -> float:
    """The fewest seeds whose one-sided interval would exclude zero, or lie short of the paper's difference
    ``paper`` (> 0, in the claimed direction; NaN: no such bound), if the mean and spread stayed as observed; ``inf``
    when :data:`MAX_SEEDS` would not (the mean is about zero, and about ``paper``, at this spread); NaN without a
    spread."""
    if math.isnan(std) or math.isnan(mean):
        return float("nan")
    for n in range(2, MAX_SEEDS + 1):
        half = stats.t.ppf(confidence, n - 1) * std / math.sqrt(n)
        if half < abs(mean) or mean + half < paper:
            return float(n)
    return math.inf


def difference(a: pd.Series, b: pd.Series, paper: float = float("nan"), sign: int = 1) -> Verdict:
    """Verdict on "A - B has sign ``sign``" from per-seed values (indexed by seed; only common seeds count), the
    paper's difference A - B being ``paper`` (NaN: the paper gives none; then never "smaller than the paper's")."""
    seeds = a.index.intersection(b.index)
    d = (a[seeds] - b[seeds]).astype(float)
    m, s = float(d.mean()) if len(d) else float("nan"), float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    low, high = one_sided_bounds(m, s, len(d))
    if low > 0 or high < 0:
        verdict = REPRODUCED if (1 if low > 0 else -1) == sign else NOT_REPRODUCED
        return Verdict(m, s, len(d), verdict, tuple(d), low, high)
    # in the claimed direction: the interval holds zero; does it lie short of the paper's difference?
    near, claimed = (high, paper) if sign > 0 else (-low, -paper)
    if claimed > 0 and near < claimed:
        return Verdict(m, s, len(d), SMALLER, tuple(d), low, high)
    return Verdict(m, s, len(d), INCONCLUSIVE, tuple(d), low, high, seeds_to_decide(sign * m, s, claimed))


def level(values: pd.Series, paper_value: float) -> Verdict:
    """Verdict on "the value is ``paper_value``" from per-seed values."""
    v = values.astype(float)
    m, s = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    if len(v) < 2:
        return Verdict(m, s, len(v), INCONCLUSIVE, tuple(v))
    return Verdict(m, s, len(v), REPRODUCED if abs(m - paper_value) <= s + TOLERANCE else NOT_REPRODUCED, tuple(v))


def every_seed(holds: pd.Series, values: pd.Series | None = None) -> Verdict:
    """Verdict on a yes/no claim tested once per seed; ``mean`` and ``std`` are those of ``values`` (the number the
    claim reads, per seed), else ``mean`` is the share of seeds where it holds."""
    h = holds.astype(bool)
    v = values.astype(float) if values is not None else None
    mean = float(v.mean()) if v is not None else float(h.mean())
    std = float(v.std(ddof=1)) if v is not None and len(v) > 1 else float("nan")
    kept = tuple(v) if v is not None else ()
    if len(h) < 2:
        return Verdict(mean, std, len(h), INCONCLUSIVE, kept)
    verdict = REPRODUCED if h.all() else NOT_REPRODUCED if not h.any() else INCONCLUSIVE
    return Verdict(mean, std, len(h), verdict, kept)


def claims(run: Run) -> pd.DataFrame:
    """One row per claim of the paper: its number, this run's mean ± std over the seeds (percentage points), the
    one-sided 95 % bounds of the mean (difference claims), the seeds, those that would decide an inconclusive
    difference, the test and the verdict; the per-seed values (``per seed``) for :func:`viz.verdict_plot`."""
    ref = paper.numbers()
    t2 = _paper_rows("table2_models")
    iou = {m: 100 * seed_rows(run, m)["iou_excl_bg"] for m in
           ("extended", "plain_unet", "deeplabv3plus", "deeplabv3", "fpn", "class_branch_only", "branches")}
    label = {"extended": "Our model", "plain_unet": "Plain U-Net", "deeplabv3plus": "DeepLabV3+", "deeplabv3": "DeepLabV3",
             "fpn": "FPN", "class_branch_only": "ClassBranch only", "branches": "Branches"}
    rows = []

    def add(table, claim, paper_value, kind, verdict):
        rows.append({"table": table, "claim": claim, "paper": paper_value, "this run": verdict.mean, "std": verdict.std,
                     "low (95 %)": verdict.low, "high (95 %)": verdict.high, "seeds": verdict.n,
                     "seeds to decide": verdict.seeds_needed, "test": kind, "verdict": verdict.verdict,
                     "per seed": list(verdict.values)})

    for a, b in (("extended", "plain_unet"), ("plain_unet", "deeplabv3plus"), ("plain_unet", "deeplabv3"),
                 ("plain_unet", "fpn"), ("class_branch_only", "plain_unet"), ("extended", "class_branch_only"),
                 ("branches", "plain_unet"), ("extended", "branches")):
        gap = t2[label[a]]["iou_excl_bg"] - t2[label[b]]["iou_excl_bg"]
        add("Table 2", f"{label[a]} beats {label[b]} (IoU excl. bg)", gap, "paired difference",
            difference(iou[a], iou[b], gap))

    t1 = _paper_rows("table1_base_vs_refined_plain_unet")
    base = 100 * seed_rows(run, "plain_unet", "base")["iou_excl_bg"]
    gap = t1["Refined"]["iou_excl_bg"] - t1["Base"]["iou_excl_bg"]
    add("Table 1", "refinement raises IoU excl. bg (plain U-Net)", gap, "paired difference",
        difference(iou["plain_unet"], base, gap))

    cb = 100 * classbranch_rows(run)
    t4 = ref["table4_classbranch"]
    for name, paper_value in (("F1", t4["f1"]), ("F2", t4["f2"]), ("exact match (% of images)", t4["exact_match_percent_of_images"])):
        add("Table 4", f"ClassBranch {name}", paper_value, "level", level(cb[name], paper_value))

    t5 = _paper_rows("table5_gt_injection")
    gt = 100 * seed_rows(run, "extended", mode="gt")["iou_excl_bg"]
    gap = t5["With GT"]["iou_excl_bg"] - t5["Without GT"]["iou_excl_bg"]
    add("Table 5", "ground-truth injection raises IoU excl. bg", gap, "paired difference",
        difference(gt, iou["extended"], gap))
    injected = list(PARTIAL_PRIOR)
    partial = 100 * seed_rows(run, "extended", mode="partial")[injected].mean(axis=1)
    none = 100 * seed_rows(run, "extended", mode="none")[injected].mean(axis=1)
    add("Figure 5", f"the truth about {' and '.join(injected)} raises their IoU", float("nan"), "paired difference",
        difference(partial, none))

    classes = ref["classes"]
    skirt, dress = classes.index("skirt"), classes.index("dress")
    rows_by_seed = {s: normalize_confusion(confusion_counts(run, seed=s), "rows") for s in run.profile.seeds_for("extended")}
    taken_for = pd.Series({s: skirt_row_top(m, classes) for s, m in rows_by_seed.items()})
    as_dress = pd.Series({s: float(m[skirt][dress]) for s, m in rows_by_seed.items()})
    row = ref["table3_confusion_percent"]["row_normalized_gt_rows_pred_columns"]
    add("Table 3", "skirt pixels are most often taken for dress (% of skirt pixels)", row[skirt][dress], "every seed",
        every_seed(taken_for == "dress", as_dress))
    return pd.DataFrame(rows).set_index(["table", "claim"])


def skirt_row_top(matrix, classes) -> str:
    """The garment that ground-truth skirt pixels are most often predicted as, other than skirt (a row-normalised
    confusion matrix)."""
    row = np.array(matrix, float)[classes.index("skirt")]
    row[[0, classes.index("skirt")]] = np.nan
    return classes[int(np.nanargmax(row))]


def _paper_rows(table: str) -> dict[str, dict[str, float]]:
    """A paper table as {row label: {column: value}}."""
    t = paper.numbers()[table]
    return {k: dict(zip(t["columns"], v)) for k, v in t.items() if k != "columns"}


def tally(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict."""
    return {v: int((table["verdict"] == v).sum()) for v in VERDICT_COLOURS}
