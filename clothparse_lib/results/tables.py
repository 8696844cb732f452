"""Scores of a run as table rows: one row per seed, mean and spread, beside the paper's numbers."""
from __future__ import annotations

import pandas as pd

from .. import paper
from ..taxonomy import CLASSES
from .run import Run

__all__ = ["PAPER_COLUMNS", "score_row", "seed_rows", "mean_std", "beside_paper", "models_table"]


PAPER_COLUMNS = ["iou_excl_bg", "iou_overall", "iou_mask", *CLASSES]


def score_row(scores: dict, mode: str = "none") -> dict:
    s = scores["scores"][mode]
    return {"iou_excl_bg": s["iou_excl_bg"], "iou_overall": s["iou_overall"], "iou_mask": s["iou_mask"], **s["per_class"]}


def seed_rows(run: Run, model: str, variant: str = "refined", mode: str = "none") -> pd.DataFrame:
    """One row of test scores (fractions) per seed of the model (:meth:`Profile.seeds_for`): index ``seed``, columns as
    :func:`score_row`."""
    return pd.DataFrame({s: score_row(run.ensure(model, variant, s), mode) for s in run.profile.seeds_for(model)}).T.rename_axis("seed")


def mean_std(per_seed: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Mean and sample standard deviation over seeds (rows); the std is NaN for a single seed."""
    return per_seed.mean(), per_seed.std(ddof=1)


def beside_paper(ours: dict[str, pd.DataFrame], table: str, rows: dict[str, str]) -> pd.DataFrame:
    """This run's rows (fractions, one row per seed) beside the paper's (percent) for the paper table ``table``.

    ``rows`` maps this run's row label to the paper's row label (None: a row the paper does not have).
    Columns: (metric, run|std|paper|diff), in %: ``run`` is the mean over seeds, ``std`` their standard deviation.
    """
    ref = paper.numbers()[table]
    frames = {}
    for label, paper_label in rows.items():
        mean, std = mean_std(100 * ours[label])
        ref_row = pd.Series(dict(zip(ref["columns"], ref.get(paper_label) or [float("nan")] * len(ref["columns"]))))
        parts = {"run": mean, "std": std, "paper": ref_row, "diff": mean - ref_row}
        frames[label] = pd.Series({(c, k): v[c] for c in ref["columns"] if c in mean.index for k, v in parts.items()})
    return pd.DataFrame(frames).T


def models_table(run: Run, rows: dict[str, tuple[str, str | None]]) -> pd.DataFrame:
    """Rows of Table 2 (all trained on the refined data, scored on its test part) beside the paper's."""
    ours = {label: seed_rows(run, model) for label, (model, _) in rows.items()}
    return beside_paper(ours, "table2_models", {label: ref for label, (_, ref) in rows.items()})
