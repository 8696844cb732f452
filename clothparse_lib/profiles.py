"""Run profiles: which data, at which size, and how to train on it.

* ``smoke`` — synthetic paper-doll images, tiny: seconds per chapter (CI, nbval).
* ``demo`` — CCP on a CPU at a reduced size (128x96) and a short schedule (1 + 2 epochs), so that the
  whole book (11 trainings: 9 models, 2 of them with 2 seeds) runs in well under an hour on 2 cores: the
  newcomer's quick run, too small to test the paper's claims.
* ``cpu`` — CCP at 128x96 with a schedule (3 + 9 epochs) and seeds (3 for the central rows, 2 for the others)
  that test the paper's claims, the whole book in at most 150 minutes on 2 cores with the fast CPU path: the
  published book while no GPU is lent (the measurements behind its choices are beside its definition).
* ``full`` — CCP at the paper's 288x192 and batch 16, a GPU schedule and 3 seeds for every trained row of
  Tables 1 and 2 (27 trainings, run concurrently on one GPU): the book meant for publication, planned to
  take about 10 minutes on one H200.
* ``paper`` — iMaterialist 2019 at the paper's 288x192, on a GPU.

Any profile ``NAME`` has a dry run ``NAME-dry`` (:func:`dry_run`): the same code path on a few images at a
tiny size for one epoch, two seeds at most, so that CI can run a profile's whole book in minutes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

__all__ = ["W_BOX", "W_BCE", "ENCODERS", "check_encoder", "Phase", "TrainSettings", "PRECISIONS", "check_precision",
           "DATA_ON_DEVICE", "CENTRAL_MODELS", "Profile", "DRY_RUN_SUFFIX", "DRY_RUN_IMAGES", "DRY_RUN_SIZE",
           "DRY_RUN_EARLY_SIZE", "PROFILES", "profile_names", "dry_run", "get_profile"]


W_BOX = 75.0  # the paper's box-term weight
W_BCE = 1.0  # lost in the paper's text ("terms contribute about evenly"): checked in the book's chapter Training
ENCODERS: tuple[str, ...] = ("resnet34", "efficientnet-lite0")  # the encoders models.encoders builds


def check_encoder(encoder: str) -> str:
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; valid encoders: {', '.join(ENCODERS)}")
    return encoder


@dataclass(frozen=True)
class Phase:
    """One one-cycle fit of a training: its number (1, 2, 3), epochs, maximum learning rate, whether the encoder is
    frozen, and the (height, width) it trains at."""

    number: int
    epochs: int
    lr: float
    frozen: bool
    size: tuple[int, int]


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
    w_bce: float = W_BCE
    w_box: float = W_BOX
    # How to run it (training.loop; the defaults pick the fast path on CUDA and on a CPU with native bfloat16):
    precision: str = "auto"  # "auto" (fp16 on CUDA, bf16 + channels-last on a CPU with native bfloat16 for the models
    # where it is faster, fp32 elsewhere: training.precision), "fp32", "fp16" or "bf16"
    compile: bool = False  # torch.compile the model, anew for each phase
    data_on_device: str = "auto"  # batches: "auto" (on CUDA: the cache on the GPU when it fits, else "host";
    # elsewhere "off"), "device", "host" (pinned, prefetched) or "off" (fastai's DataLoader); data.device
    cudnn_benchmark: bool = True  # on CUDA: cudnn autotuning (fastest kernels; not bitwise repeatable on a GPU)
    # Progressive resizing: phases 1 and 2 at ``early_size`` (None: the profile's size), then phase 3, ``epochs_final``
    # unfrozen epochs at the profile's size (the size every evaluation uses) with maximum learning rate ``lr_final``.
    early_size: tuple[int, int] | None = None
    epochs_final: int = 0
    lr_final: float = 1e-4

    def __post_init__(self):
        if self.early_size is not None:  # (a list when read back from a manifest)
            object.__setattr__(self, "early_size", tuple(int(v) for v in self.early_size))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.data_on_device not in DATA_ON_DEVICE:
            raise ValueError(f"data_on_device must be one of {', '.join(DATA_ON_DEVICE)}, got {self.data_on_device!r}")
        _check_ranges(self)

    def phases(self, size: tuple[int, int]) -> list[Phase]:
        """The schedule for a profile of final size ``size``: the frozen phase, the unfrozen one, and the unfrozen
        epochs at ``size`` after progressive resizing (phases of 0 epochs included)."""
        early = self.early_size or tuple(size)
        return [Phase(1, self.epochs_frozen, self.lr_frozen, True, early),
                Phase(2, self.epochs_unfrozen, self.lr_unfrozen, False, early),
                Phase(3, self.epochs_final, self.lr_final, False, tuple(size))]

    def schedule(self) -> str:
        """The epochs in words: "3 + 9", or "3 + 6 at 128x96, then 3 at the profile's size"."""
        epochs = f"{self.epochs_frozen} + {self.epochs_unfrozen}"
        if self.early_size is None and not self.epochs_final:
            return epochs
        early = f" at {self.early_size[0]}x{self.early_size[1]}" if self.early_size else ""
        return f"{epochs}{early}, then {self.epochs_final} at the profile's size"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        """Settings as a manifest records them (fields added since then at their defaults, unknown ones ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _check_ranges(s: TrainSettings) -> None:
    """Refuse numbers no training can use: by field name, every ``epochs_*`` an integer >= 0 (at least one epoch in
    all), every ``lr_*`` finite and > 0, the batch size >= 1, the weights of the decay and of the loss terms >= 0."""
    check_encoder(s.encoder)
    values = {f.name: getattr(s, f.name) for f in fields(s)}
    epochs = {k: v for k, v in values.items() if k.startswith("epochs_")}
    for name, value in values.items():
        bad = None
        if name.startswith("epochs_") or name == "batch_size":
            least = 1 if name == "batch_size" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                bad = f"an integer >= {least}"
        elif name.startswith("lr_") and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            bad = "a finite number > 0"
        elif name in ("wd", "w_bce", "w_box") and not (isinstance(value, (int, float)) and math.isfinite(value)
                                                        and value >= 0):
            bad = "a finite number >= 0"
        if bad:
            raise ValueError(f"{name.replace('_', '-')} must be {bad}, got {value!r}")
    if sum(epochs.values()) < 1:
        raise ValueError(f"a training needs at least one epoch ({', '.join(k.replace('_', '-') for k in epochs)} "
                         "are all 0)")


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def check_precision(precision: str, device_type: str) -> None:
    """Refuse a precision the device cannot run well: fp16 on a CPU (no fast fp16 kernels there, and the loss
    scaler's steps diverge: measured about 15x slower per epoch, the loss 1.5 -> 400-800)."""
    if precision == "fp16" and device_type == "cpu":
        raise ValueError("precision fp16 is for CUDA: on a CPU use bf16 (fast where the CPU has native bfloat16), "
                         "fp32 or auto")


DATA_ON_DEVICE = ("auto", "device", "host", "off")
CENTRAL_MODELS = ("extended", "plain_unet")  # the rows the central claims read: our model, plain U-Net (refined, base)


@dataclass(frozen=True)
class Profile:
    name: str
    source: str  # "synthetic", "ccp" or "imaterialist"
    size: tuple[int, int]  # (height, width) of the cache and of training
    source_params: dict = field(default_factory=dict)
    split_seed: int = 0
    detector: str = "hog"  # person detector of the refinement (refinement.persons.make_detector)
    train: TrainSettings = field(default_factory=TrainSettings)
    seeds: tuple[int, ...] = (0,)  # every trained row of Tables 1 and 2 is trained once per seed
    central_seeds: tuple[int, ...] | None = None  # the seeds of CENTRAL_MODELS' rows (None: ``seeds``)
    spread_seeds: tuple[int, ...] | None = None  # the seed spread of chapter "Beyond" (None: ``central_seeds``)
    budget: str = "GPU time"  # why the schedule is shorter than the paper's (the deviations list)
    lr_find_iterations: int = 60  # the learning-rate finder's mini-batches in chapter Training

    def __post_init__(self):
        if self.central_seeds is None:
            object.__setattr__(self, "central_seeds", self.seeds)
        if self.spread_seeds is None:
            object.__setattr__(self, "spread_seeds", self.central_seeds)

    def seeds_for(self, model: str) -> tuple[int, ...]:
        """The seeds ``model``'s rows are trained with: :attr:`central_seeds` for :data:`CENTRAL_MODELS`."""
        return self.central_seeds if model in CENTRAL_MODELS else self.seeds

    def seed_counts(self) -> str:
        """How many seeds a trained row has, in words: "2", or "3 (our model and the plain U-Net) or 2"."""
        if self.central_seeds == self.seeds:
            return str(len(self.seeds))
        return f"{len(self.central_seeds)} (our model and the plain U-Net) or {len(self.seeds)}"

    def summary(self) -> str:
        """The profile in one line: data, size, schedule and seeds."""
        t = self.train
        return (f"{self.source} at {self.size[0]}x{self.size[1]}, {t.encoder}, batch {t.batch_size}, "
                f"{t.schedule()} epochs, {self.seed_counts()} seed(s) per trained row")


DRY_RUN_SUFFIX = "-dry"
DRY_RUN_IMAGES = 64  # a dry run's data: the first photos of the source,
DRY_RUN_SIZE = (64, 64)  # at this size,
DRY_RUN_EARLY_SIZE = (32, 32)  # and at this one first where the profile resizes progressively

PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "synthetic", (96, 64), {"n": 96, "seed": 0, "height": 192, "width": 128}, detector="skin",
                     train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=1, epochs_unfrozen=1,
                                         lr_frozen=3e-3, lr_unfrozen=1e-3), seeds=(0,), spread_seeds=(0, 1),
                     budget="seconds per chapter (CI)", lr_find_iterations=20),
    # lrs: fastai's fine_tune defaults (2e-3 frozen, then lower); at 128x96 the lr finder's valley is lower
    # (about 4e-4, book chapter "Training"): the short schedule favours the larger step
    "demo": Profile("demo", "ccp", (128, 96),
                    train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=1, epochs_unfrozen=2,
                                        lr_frozen=2e-3, lr_unfrozen=5e-4), seeds=(0,), spread_seeds=(0, 1),
                    budget="CPU time: the whole book in well under an hour on 2 cores"),
    # the paper's size and batch; the demo's learning rates; epochs: on one H200, 12 concurrent trainings at 3 + 7
    # epochs took ~9 s per epoch each and their U-Nets' validation IoU was still rising at the last epoch
    # (extended 29.4 -> 31.8 -> 31.3 %, plain 19.5 -> 20.9 -> 20.4 %; FPN flat at 43 %), so 4 + 12, the most
    # that 27 trainings, 15 at a time, allow in about 10 minutes for the whole book
    # The published CPU book. The fast CPU path (training.precision) and two trainings at a time, one thread each
    # (book.parallel), make a training of 16 epochs at 128x96 cost about 7 minutes of both cores; there 4 + 12 epochs
    # (bf16, seed 0, base data) gave test IoU excl. bg 31.1 (our model) and 34.3 (plain U-Net; demo: 19.3 / 15.2) and
    # ground-truth injection +10.4 points (demo: -1.9), and the validation IoU had flattened after the 8th unfrozen
    # epoch (our model 0.24 -> 0.30 at epoch 3 -> 0.33-0.34 at 8-12; plain U-Net 0.23 -> 0.30 at 6 -> 0.35 at 12).
    # 21 trainings (3 seeds for the rows of the central claims, 2 for the others: the least that a paired test over
    # seeds can read) at 3 + 9 epochs, one-cycle annealing by the 9th unfrozen epoch, fit 150 minutes with the
    # refinement and the chapters; 4 + 12 would not. The demo's learning rates and batch.
    # The fast CPU path against fp32, same training (extended, demo schedule 1 + 2, base data, 2 threads, seeds 0 and
    # 1; benchmarks/train_check.py --compare-precision): test IoU excl. bg fp32 16.61 / 18.53, fast 17.63 / 19.59
    # (+1.0 in both seeds; best validation +2.0), real loop 1.34x / 1.44x faster, bare step 2.02x: the default.
    "cpu": Profile("cpu", "ccp", (128, 96),
                   train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=3, epochs_unfrozen=9,
                                       lr_frozen=2e-3, lr_unfrozen=5e-4), seeds=(0, 1), central_seeds=(0, 1, 2),
                   budget="CPU time: the whole book (21 trainings) in at most 150 minutes on 2 cores"),
    # The published CPU book at the paper's size (issue: the paper-resolution pilot). 288x192 throughout costs 240-430 s
    # per frozen epoch on this machine (128x96: about 55 s), 21 trainings of 12 epochs 10-12 hours; so progressive
    # resizing: phases 1 and 2 at 128x96, then unfrozen epochs at 288x192, where every table is scored. The recipe
    # was chosen by validation IoU at 288x192 against core-minutes in a pilot (benchmarks/pilot_recipes.py; its table
    # is clothparse_lib/pilots/cpu288.csv, shown in chapter Training): seed 0, refined data, two trainings at a time,
    # one thread each; seconds at each size's median epoch (128x96: 70-81 s, 288x192: 342-375 s):
    #   3 + 7 at 128x96, 2 at 288x192: valid IoU excl. bg our model 33.55, plain U-Net 30.26; 1555 / 1388 s
    #   3 + 8 at 128x96, 1 at 288x192: valid IoU excl. bg our model 30.38, plain U-Net 27.30; 1235 / 1111 s
    # The second epoch at 288x192 is worth 3 points but costs 25 % more: the 24 trainings would take about 5 hours of
    # the 2 cores with it (over the budget with the evaluations and chapters), about 4 without. So 3 + 8, then 1.
    # 4 seeds for the rows of the central claims, 2 for the others.
    "cpu288": Profile("cpu288", "ccp", (288, 192),
                      train=TrainSettings(encoder="efficientnet-lite0", batch_size=8, epochs_frozen=3, epochs_unfrozen=8,
                                          lr_frozen=2e-3, lr_unfrozen=5e-4, early_size=(128, 96), epochs_final=1,
                                          lr_final=2.5e-4),
                      seeds=(0, 1), central_seeds=(0, 1, 2, 3),
                      budget="CPU time: the whole book (24 trainings) in at most 5 hours on 2 cores"),
    "full": Profile("full", "ccp", (288, 192),
                    train=TrainSettings(encoder="efficientnet-lite0", batch_size=16, epochs_frozen=4,
                                        epochs_unfrozen=12, lr_frozen=2e-3, lr_unfrozen=5e-4),
                    seeds=(0, 1, 2), budget="GPU time: the whole book (27 trainings) in 10 minutes on one GPU"),
    "paper": Profile("paper", "imaterialist", (288, 192), detector="maskrcnn", train=TrainSettings(), seeds=(0, 1, 2)),
}


def dry_run(profile: Profile) -> Profile:
    """``profile``'s code path at the smallest cost: :data:`DRY_RUN_IMAGES` images at :data:`DRY_RUN_SIZE`, 1 frozen
    epoch, 2 seeds for the central rows (the paired tests' path) and 1 for the others, a short learning-rate finder."""
    params = profile.source_params if profile.source == "synthetic" else {**profile.source_params, "limit": DRY_RUN_IMAGES}
    seeds, central = profile.seeds[:1], profile.central_seeds[:2]
    t = profile.train
    progressive = dict(early_size=DRY_RUN_EARLY_SIZE, epochs_final=1) if t.early_size or t.epochs_final else {}
    return replace(profile, name=profile.name + DRY_RUN_SUFFIX, size=DRY_RUN_SIZE, source_params=params, seeds=seeds,
                   central_seeds=central, spread_seeds=central,
                   train=replace(t, epochs_frozen=1, epochs_unfrozen=0, **progressive), lr_find_iterations=10,
                   budget="a dry run checks the code path; its numbers mean nothing")


def profile_names() -> str:
    """The profiles a command accepts, in words (for help texts)."""
    return ", ".join(PROFILES) + f" (and NAME{DRY_RUN_SUFFIX}, a profile's dry run)"


def get_profile(name: str) -> Profile:
    """A profile by name; ``NAME-dry`` is the dry run of profile ``NAME``."""
    if name.endswith(DRY_RUN_SUFFIX) and name[:-len(DRY_RUN_SUFFIX)] in PROFILES:
        return dry_run(PROFILES[name[:-len(DRY_RUN_SUFFIX)]])
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {profile_names()}") from None
