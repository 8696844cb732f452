"""Chapter Confusion: Table 3, the test confusion of a model beside the paper's."""
from __future__ import annotations

import numpy as np

from .. import paper
from ..runfolder import result_file
from .run import Run

__all__ = ["table3", "confusion_counts", "most_confused"]


def table3(run: Run, model: str = "extended") -> dict[str, tuple]:
    """Table 3: this run's row- and column-normalised confusion (%) with the paper's, per form; the counts are
    summed over the model's seeds."""
    from ..metrics import normalize_confusion
    counts = sum(confusion_counts(run, model, seed=s) for s in run.profile.seeds_for(model))
    ref = paper.numbers()["table3_confusion_percent"]
    return {"rows": (100 * normalize_confusion(counts, "rows"), np.array(ref["row_normalized_gt_rows_pred_columns"])),
            "columns": (100 * normalize_confusion(counts, "columns"),
                        np.array(ref["column_normalized_pred_columns_gt_rows_as_printed"]))}


def confusion_counts(run: Run, model: str = "extended", variant: str = "refined", seed: int = 0, mode: str = "none"):
    """The test confusion counts (ground truth rows, prediction columns) of one trained model."""
    run.ensure(model, variant, seed)
    return np.load(result_file(run.model_dir(model, variant, seed), "confusion"))[mode]


def most_confused(matrix: np.ndarray, classes=paper.numbers()["classes"], skip_background: bool = True) -> tuple:
    """(ground truth, prediction, %) of the largest off-diagonal entry of a row-normalised matrix (%)."""
    m = np.array(matrix, float)
    np.fill_diagonal(m, np.nan)
    if skip_background:
        m[0, :], m[:, 0] = np.nan, np.nan
    i, j = np.unravel_index(np.nanargmax(m), m.shape)
    return classes[i], classes[j], float(m[i, j])
