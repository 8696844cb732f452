"""Run profiles: which data, at which size, how much of it (training settings join them later).

* ``smoke`` — synthetic paper-doll images, tiny: seconds per chapter (CI, nbval).
* ``demo`` — CCP on a CPU at a reduced size (192x128): the committed results.
* ``paper`` — iMaterialist 2019 at the paper's 288x192, on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    source: str  # "synthetic", "ccp" or "imaterialist"
    size: tuple[int, int]  # (height, width) of the cache and of training
    source_params: dict = field(default_factory=dict)
    split_seed: int = 0


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "synthetic", (96, 64), {"n": 96, "seed": 0, "height": 192, "width": 128}),
    "demo": Profile("demo", "ccp", (192, 128)),
    "paper": Profile("paper", "imaterialist", (288, 192)),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
