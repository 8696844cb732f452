"""How good a detector's multi-person flag (2+ persons) is, against CCP photos labelled by eye.

The labels (:data:`PERSON_LABELS`, package data of :mod:`clothparse_lib.data`, documented in its header) are a
seeded random sample of CCP's photos plus every photo the default detector flags; :func:`flag_metrics` turns them
into precision, recall and the share of photos showing several persons, with intervals; :func:`flag_quality` is
the chapter Refinement's table of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["jeffreys_interval", "PERSON_LABELS", "LABELLED_SOURCE", "read_person_labels", "flag_metrics",
           "flag_quality"]


def jeffreys_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Jeffreys interval of a binomial proportion k/n (equal-tailed Beta(k+1/2, n-k+1/2) quantiles)."""
    from scipy.stats import beta

    if n == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k + 0.5, n - k + 0.5))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 0.5, n - k + 0.5))
    return lo, hi


PERSON_LABELS = Path(__file__).parents[2] / "data" / "ccp_person_labels.csv"  # package data of clothparse_lib.data
LABELLED_SOURCE = "ccp"


def read_person_labels(path: str | Path = PERSON_LABELS) -> pd.DataFrame:
    """The by-eye labels (:data:`PERSON_LABELS`, documented in its header): image_id, persons_visible, bystander, sample."""
    return pd.read_csv(path, comment="#", dtype={"image_id": str})


def flag_metrics(labels: pd.DataFrame, persons: pd.Series, level: float = 0.95, draws: int = 20_000,
                 seed: int = 0) -> dict:
    """Precision and recall of the multi-person flag (``persons >= 2``) against by-eye labels.

    ``persons``: detected counts indexed by image id, for *every* image of the data set.
    ``labels``: ``persons_visible`` (1 or 2 = several) for a ``sample == "random"`` subset drawn
    uniformly from the data set, plus any number of other labelled images (typically all flagged ones).

    Precision is measured on every labelled flagged image. Recall is estimated by stratifying on
    the flag: true positives = flagged images x precision, misses = unflagged images x the share of
    several-person images among the unflagged images of the random sample; its interval comes from
    Beta (Jeffreys) posteriors of both shares. The random sample alone gives plain estimates too,
    and the data set's share of several-person images (bystanders).
    """
    flagged = persons >= 2
    lab = labels.set_index("image_id")
    lab = lab[lab.index.isin(persons.index)]
    pos = lab["persons_visible"] >= 2
    f = flagged.reindex(lab.index)
    k_fp, n_fp = int((pos & f).sum()), int(f.sum())
    rnd = lab["sample"] == "random"
    un = rnd & ~f
    k_un, n_un = int((pos & un).sum()), int(un.sum())
    n_flag, n_unflag = int(flagged.sum()), int((~flagged).sum())
    rng = np.random.default_rng(seed)
    p = rng.beta(k_fp + 0.5, n_fp - k_fp + 0.5, draws)
    m = rng.beta(k_un + 0.5, n_un - k_un + 0.5, draws)
    recall_draws = n_flag * p / (n_flag * p + n_unflag * m)
    share_draws = (n_flag * p + n_unflag * m) / len(persons)
    a = (1 - level) / 2
    tp_r, fn_r = int((pos & rnd & f).sum()), int((pos & un).sum())
    k_r, n_r = int((pos & rnd).sum()), int(rnd.sum())
    p_est = k_fp / n_fp if n_fp else float("nan")
    m_est = k_un / n_un if n_un else float("nan")
    return {
        "images": len(persons), "flagged": n_flag, "labelled": len(lab), "labelled_flagged": n_fp,
        "flagged_unlabelled": n_flag - n_fp, "random_sample": n_r,
        "precision": p_est, "precision_ci": jeffreys_interval(k_fp, n_fp, level),
        "recall": n_flag * p_est / (n_flag * p_est + n_unflag * m_est),
        "recall_ci": tuple(np.quantile(recall_draws, [a, 1 - a]).tolist()),
        "random_precision": tp_r / max(int((rnd & f).sum()), 1), "random_recall": tp_r / max(tp_r + fn_r, 1),
        "random_recall_ci": jeffreys_interval(tp_r, tp_r + fn_r, level),
        "several_share_random": k_r / max(n_r, 1), "several_share_random_ci": jeffreys_interval(k_r, n_r, level),
        "several_share": (n_flag * p_est + n_unflag * m_est) / len(persons),
        "several_share_ci": tuple(np.quantile(share_draws, [a, 1 - a]).tolist()),
    }


def flag_quality(persons: pd.Series, source: str, labels: str | Path = PERSON_LABELS) -> pd.DataFrame:
    """The multi-person flag of a run against the by-eye labels, in %: precision, recall and the share of
    photos showing several persons, with 95 % intervals and the labelled images behind each (:func:`flag_metrics`).

    ``persons``: the persons detected on every image of the data set, indexed by image id (NaN: unreadable,
    left out). For a ``source`` other than CCP the labels do not apply: the table is empty.
    ``attrs["labelled photos"]``: the photos of the labels file, whatever the source.
    """
    columns = ["estimate (%)", "interval low (%)", "interval high (%)", "labelled images"]
    table = pd.DataFrame(columns=columns, index=pd.Index([], name="flag: 2+ persons"), dtype=float)
    lab = read_person_labels(labels)
    if source == LABELLED_SOURCE:
        m = flag_metrics(lab, persons.dropna().astype(int))
        rows = {"precision": ("precision", m["labelled_flagged"]), "recall": ("recall", m["labelled"]),
                "photos with several persons": ("several_share", m["labelled"])}
        for row, (key, n) in rows.items():
            table.loc[row] = [100 * m[key], 100 * m[f"{key}_ci"][0], 100 * m[f"{key}_ci"][1], n]
        table = table.astype({"labelled images": int})
    table.attrs["labelled photos"] = len(lab)
    return table
