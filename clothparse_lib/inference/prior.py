"""What a class prior may be, for every backend (numpy for onnxruntime, torch for the models): (B, 8) or (8,), NaN =
unknown, 0 / 1 = known absent / present, values in between probabilities; and the one refusal of a prior by a model
whose ClassBranch does not feed the segmentation (where a prior would silently change nothing)."""
from __future__ import annotations

import numpy as np

from ..taxonomy import GARMENTS

__all__ = ["check_prior", "refuse_prior", "prior_input"]


def check_prior(prior) -> None:
    """Refuse a prior (a numpy array or a torch tensor) with a known value outside [0, 1]."""
    if ((prior < 0) | (prior > 1)).any():
        raise ValueError("class prior values must be probabilities in [0, 1] (NaN = unknown)")


def refuse_prior(model: str) -> ValueError:
    """The refusal of a class prior by ``model``, which has no prior input."""
    return ValueError(f"model {model!r} cannot take a class prior (it has no prior input): only the models whose "
                      "ClassBranch feeds the segmentation take one; for any other a prior would silently change nothing")


def prior_input(n: int, class_prior=None) -> np.ndarray:
    """The (n, 8) float32 prior of ``class_prior`` ((8,) or (n, 8); None: nothing known, all NaN), checked."""
    if class_prior is None:
        return np.full((n, len(GARMENTS)), np.nan, np.float32)
    prior = np.array(np.broadcast_to(np.asarray(class_prior, np.float32), (n, len(GARMENTS))))
    check_prior(prior)
    return prior
