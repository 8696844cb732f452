"""Run profiles: which data, at which size, and how to train on it.

* ``smoke`` — synthetic paper-doll images, tiny: seconds per chapter (CI, nbval).
* ``demo`` — CCP on a CPU at a reduced size (128x96) and a short schedule (1 + 2 epochs), so that the
  whole book (13 trainings: 9 models, 2 of them with 3 seeds) runs in about half an hour on 2 cores:
  the committed results.
* ``paper`` — iMaterialist 2019 at the paper's 288x192, on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training (the paper's where its text gives them)."""

    encoder: str = "resnet34"
    weights: str | None = "imagenet"
    batch_size: int = 16
    epochs_frozen: int = 10
    epochs_unfrozen: int = 10
    lr_frozen: float = 1e-3  # one-cycle maximum, phase 1 (the paper's exponent is lost)
    lr_unfrozen: float = 1e-4  # one-cycle maximum, phase 2 (lost in the text)
    wd: float = 1e-2  # decoupled weight decay (exponent lost in the text)
    w_bce: float | None = None  # None: losses.W_BCE
    w_box: float = 75.0


@dataclass(frozen=True)
class Profile:
    name: str
    source: str  # "synthetic", "ccp" or "imaterialist"
    size: tuple[int, int]  # (height, width) of the cache and of training
    source_params: dict = field(default_factory=dict)
    split_seed: int = 0
    detector: str = "hog"  # person detector of the refinement (persons.make_detector)
    train: TrainSettings = field(default_factory=TrainSettings)
    seeds: tuple[int, ...] = (0,)  # seeds of the "Beyond the paper" spread (the first trains every table)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "synthetic", (96, 64), {"n": 96, "seed": 0, "height": 192, "width": 128}, detector="skin",
                     train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=1, epochs_unfrozen=1,
                                         lr_frozen=3e-3, lr_unfrozen=1e-3), seeds=(0, 1)),
    # lrs: fastai's fine_tune defaults (2e-3 frozen, then lower); at 128x96 the lr finder's valley is lower
    # (about 4e-4, book chapter "Training"): the short schedule favours the larger step
    "demo": Profile("demo", "ccp", (128, 96),
                    train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=1, epochs_unfrozen=2,
                                        lr_frozen=2e-3, lr_unfrozen=5e-4), seeds=(0, 1, 2)),
    "paper": Profile("paper", "imaterialist", (288, 192), detector="maskrcnn", train=TrainSettings(), seeds=(0, 1, 2)),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
