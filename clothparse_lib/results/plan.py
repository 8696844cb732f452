"""Every training the book needs, so that a runner can train them before (and beside) the chapters."""
from __future__ import annotations

from .ablations import ABLATIONS
from .baselines import BASELINES
from .run import Run

__all__ = ["planned_trainings"]


def planned_trainings(run: Run) -> list[tuple[str, str, int]]:
    """Every (model, data variant, seed) the book trains: each trained row of Tables 1 and 2 once per seed of its
    model (:meth:`Profile.seeds_for`), and the seed spread of chapter "Beyond"; seed by seed, in table order."""
    p = run.profile
    models = dict.fromkeys(model for model, _ in (*ABLATIONS.values(), *BASELINES.values()))
    seeds = sorted({s for m in models for s in p.seeds_for(m)})
    planned = [(m, "refined", s) for s in seeds for m in models if s in p.seeds_for(m)] + \
              [("plain_unet", "base", s) for s in p.seeds_for("plain_unet")] + \
              [(m, "refined", s) for s in p.spread_seeds for m in ("plain_unet", "extended")]
    return list(dict.fromkeys(planned))
