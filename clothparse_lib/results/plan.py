"""Every training the book needs, so that a runner can train them before (and beside) the chapters."""
from __future__ import annotations

from .ablations import ABLATIONS
from .baselines import BASELINES
from .run import Run

__all__ = ["planned_trainings"]


def planned_trainings(run: Run) -> list[tuple[str, str, int]]:
    """Every (model, data variant, seed) the book trains: each trained row of Tables 1 and 2 once per seed of
    the profile, and the seed spread of chapter "Beyond"; the costliest models first within each seed."""
    models = dict.fromkeys(model for model, _ in (*ABLATIONS.values(), *BASELINES.values()))
    spread = [(m, "refined", s) for s in run.profile.spread_seeds for m in ("plain_unet", "extended")]
    planned = [(m, "refined", s) for s in run.profile.seeds for m in models] + \
              [("plain_unet", "base", s) for s in run.profile.seeds] + spread
    return list(dict.fromkeys(planned))
