"""The experiments behind the book's tables, each one call that trains and evaluates only what is missing.

Data variants of a run folder:

* ``base`` — the merged, unfiltered data set; its stratified split (``split.csv``) is the run's split;
* ``refined`` — the refinement of section 4.1 (:mod:`refine`) applied to it, with the same split
  restricted to the images refinement keeps (``split-refined.csv``): every image stays in its part.

Table 1 compares the plain U-Net trained on each, **evaluated on the same test images**: the test
part of the refined data set (bystanders cropped away where refinement cropped, images it dropped
left out), the closest thing to correct annotations we have; the base model is also scored on the
base test set for reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import paper, settings
from .data import open_source
from .dataset import PreparedData, prepare_dataset
from .evaluation import evaluate, load_scores, save_evaluation
from .persons import make_detector
from .profiles import Profile, TrainSettings, get_profile
from .refine import RefinedSource, apply_review, read_index, refine, summary, write_index, write_review_list
from .taxonomy import CLASSES
from .training import is_finished, load_model, train_model

PAPER_COLUMNS = ["iou_excl_bg", "iou_overall", "iou_mask", *CLASSES]


@dataclass
class Run:
    """A run folder of a profile: data variants, trained models and their evaluations."""

    profile: Profile
    run_dir: Path
    data_dir: str | None = None
    device: str | None = None
    progress: bool = True

    @classmethod
    def open(cls, profile: str, run_dir=None, data_dir=None, **kwargs) -> "Run":
        p = get_profile(profile)
        return cls(p, Path(run_dir) if run_dir else settings.runs_dir() / p.name, data_dir or None, **kwargs)

    def source(self):
        """The profile's data source (full-resolution images and masks)."""
        return open_source(self.profile.source, self.data_dir, **self.profile.source_params)

    def base(self) -> PreparedData:
        return prepare_dataset(self.profile, self.data_dir, self.run_dir, progress=self.progress)

    def refined_index(self) -> pd.DataFrame:
        """The refinement's index (computed once; detections cached in ``persons.jsonl``), with the decisions a
        person wrote into ``review.csv`` (``keep`` / ``drop`` per image left for review; blank: left out)."""
        path, review = self.run_dir / "refined_index.csv", self.run_dir / "review.csv"
        if not path.exists():
            index = refine(self.source(), make_detector(self.profile.detector), cache_file=self.run_dir / "persons.jsonl",
                           progress=self.progress)
            write_review_list(index, review)
            write_index(index, path)
        return apply_review(read_index(path), review) if review.exists() else read_index(path)

    def refined(self) -> PreparedData:
        base = self.base()
        return prepare_dataset(self.profile, self.data_dir, self.run_dir, progress=self.progress,
                               source=RefinedSource(self.source(), self.refined_index()), base_split=base.split,
                               split_name="split-refined")

    def data(self, variant: str) -> PreparedData:
        if variant not in ("base", "refined"):
            raise ValueError(f"data variant must be 'base' or 'refined', got {variant!r}")
        return self.base() if variant == "base" else self.refined()

    def model_dir(self, model: str, variant: str = "refined", seed: int = 0) -> Path:
        return self.run_dir / "models" / tag(model, variant, seed)

    def trained(self, model: str, variant: str = "refined", seed: int = 0) -> bool:
        folder = self.model_dir(model, variant, seed)
        return (folder / "best.pt").exists() and is_finished(folder)

    def evaluated(self, model: str, variant: str = "refined", seed: int = 0) -> bool:
        return self.trained(model, variant, seed) and (self.model_dir(model, variant, seed) / "evaluation.json").exists()

    def ensure(self, model: str, variant: str = "refined", seed: int = 0, train: TrainSettings | None = None,
               evaluate_on: str | None = None) -> dict:
        """Train (or resume) and evaluate ``model`` unless done; returns its test scores.

        ``evaluate_on``: data variant of the test images (default: the refined one, see module doc).
        """
        folder = self.model_dir(model, variant, seed)
        on = evaluate_on or "refined"
        name = "test" if on == "refined" else f"test-on-{on}"
        if not self.trained(model, variant, seed):
            train_model(self.data(variant), model, train or self.profile.train, self.run_dir, seed=seed,
                        device=self.device, progress=self.progress, tag=tag(model, variant, seed))
            for stale in folder.glob("evaluation*.json"):  # scores of the model before this training
                stale.unlink()
        if not (folder / f"evaluation{'' if name == 'test' else '-' + name}.json").exists():
            test = self.data(on)
            result = evaluate(load_model(folder / "best.pt", self.device), test.cache, test.split, "test",
                              progress=self.progress)
            save_evaluation(result, folder, name, {"split": "test", "data": on})
        return load_scores(folder, name)


def tag(model: str, variant: str, seed: int) -> str:
    return f"{model}-{variant}" + (f"-seed{seed}" if seed else "")


def score_row(scores: dict, mode: str = "none") -> dict:
    s = scores["scores"][mode]
    return {"iou_excl_bg": s["iou_excl_bg"], "iou_overall": s["iou_overall"], "iou_mask": s["iou_mask"], **s["per_class"]}


def seed_rows(run: Run, model: str, variant: str = "refined", mode: str = "none") -> pd.DataFrame:
    """One row of test scores (fractions) per seed of the profile: index ``seed``, columns as :func:`score_row`."""
    return pd.DataFrame({s: score_row(run.ensure(model, variant, s), mode) for s in run.profile.seeds}).T.rename_axis("seed")


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


def table1(run: Run) -> pd.DataFrame:
    """Plain U-Net trained on base vs refined data, both scored on the refined test images, beside Table 1."""
    ours = {"Base": seed_rows(run, "plain_unet", "base"), "Refined": seed_rows(run, "plain_unet", "refined")}
    return beside_paper(ours, "table1_base_vs_refined_plain_unet", {"Base": "Base", "Refined": "Refined"})


def refinement_summary(run: Run) -> pd.DataFrame:
    return summary(run.refined_index())


# Table 2's rows: this run's label -> (model, the paper's row label or None).
BASELINES = {"FPN": ("fpn", "FPN"), "DeepLabV3": ("deeplabv3", "DeepLabV3"), "DeepLabV3+": ("deeplabv3plus", "DeepLabV3+"),
             "Plain U-Net": ("plain_unet", "Plain U-Net"), "smp Unet": ("smp_unet", None), "Our model": ("extended", "Our model")}
ABLATIONS = {"Plain U-Net": ("plain_unet", "Plain U-Net"), "ClassBranch only": ("class_branch_only", "ClassBranch only"),
             "Branches": ("branches", "Branches"), "Our model": ("extended", "Our model")}


def models_table(run: Run, rows: dict[str, tuple[str, str | None]]) -> pd.DataFrame:
    """Rows of Table 2 (all trained on the refined data, scored on its test part) beside the paper's."""
    ours = {label: seed_rows(run, model) for label, (model, _) in rows.items()}
    return beside_paper(ours, "table2_models", {label: ref for label, (_, ref) in rows.items()})


def table2(run: Run) -> pd.DataFrame:
    return models_table(run, BASELINES)


def ablation_rows(run: Run) -> pd.DataFrame:
    return models_table(run, ABLATIONS)


def table4(run: Run, model: str = "extended") -> pd.DataFrame:
    """ClassBranch presence scores (F1, F2 macro; exact match; per-class accuracy) beside Table 4, in %."""
    mean, std = mean_std(100 * classbranch_rows(run, model))
    ref = paper.numbers()["table4_classbranch"]
    theirs = {"F1": ref["f1"], "F2": ref["f2"], "exact match (% of images)": ref["exact_match_percent_of_images"],
              **{f"accuracy: {g}": v for g, v in ref["per_class_accuracy"].items()}}
    table = pd.DataFrame({"run": mean, "std": std, "paper": pd.Series(theirs)}).loc[list(theirs)].rename_axis("metric")
    return table.assign(diff=table["run"] - table["paper"])


def classbranch_rows(run: Run, model: str = "extended") -> pd.DataFrame:
    """The ClassBranch's presence scores (fractions, labelled as in Table 4), one row per seed of the profile."""
    return pd.DataFrame({s: classbranch_row(run.ensure(model, seed=s)) for s in run.profile.seeds}).T.rename_axis("seed")


def classbranch_row(scores: dict) -> dict:
    """The ClassBranch's presence scores of one evaluation (fractions), labelled as in Table 4."""
    cb = scores["scores"]["classbranch"]
    return {"F1": cb["f1"], "F2": cb["f2"], "exact match (% of images)": cb["exact_match"],
            **{f"accuracy: {g}": v for g, v in cb["per_class_accuracy"].items()}}


def table5(run: Run, model: str = "extended") -> pd.DataFrame:
    """Ground-truth injection (Table 5): no prior, the full truth, and the partial (dress/skirt) prior of Figure 5."""
    ours = {"Without GT": seed_rows(run, model, mode="none"), "With GT": seed_rows(run, model, mode="gt"),
            "Partial GT (dress, skirt)": seed_rows(run, model, mode="partial")}
    return beside_paper(ours, "table5_gt_injection", {"Without GT": "Without GT", "With GT": "With GT",
                                                      "Partial GT (dress, skirt)": None})


def confusion(run: Run, model: str = "extended") -> dict[str, tuple]:
    """Table 3: this run's row- and column-normalised confusion (%) with the paper's, per form; the counts are
    summed over the profile's seeds."""
    from .metrics import normalize_confusion
    counts = sum(confusion_counts(run, model, seed=s) for s in run.profile.seeds)
    ref = paper.numbers()["table3_confusion_percent"]
    return {"rows": (100 * normalize_confusion(counts, "rows"), np.array(ref["row_normalized_gt_rows_pred_columns"])),
            "columns": (100 * normalize_confusion(counts, "columns"),
                        np.array(ref["column_normalized_pred_columns_gt_rows_as_printed"]))}


def confusion_counts(run: Run, model: str = "extended", variant: str = "refined", seed: int = 0, mode: str = "none"):
    """The test confusion counts (ground truth rows, prediction columns) of one trained model."""
    run.ensure(model, variant, seed)
    return np.load(run.model_dir(model, variant, seed) / "confusion.npz")[mode]


def seed_spread(run: Run, models=("plain_unet", "extended"), seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
    """The headline IoUs (%) of each model for each seed of the profile (or ``seeds``), same data and split;
    rows (model, "seed N"), then (model, "mean") and (model, "std") when there are several seeds."""
    seeds = tuple(seeds or run.profile.spread_seeds)
    frames = {}
    for model in models:
        table = pd.DataFrame({f"seed {s}": {k: 100 * v for k, v in score_row(run.ensure(model, seed=s)).items()
                                            if k in ("iou_excl_bg", "iou_overall", "iou_mask")} for s in seeds}).T
        if len(seeds) > 1:
            table.loc["mean"], table.loc["std"] = table.mean(), table.iloc[: len(seeds)].std(ddof=1)
        frames[model] = table
    return pd.concat(frames, names=["model", "seed"])


def planned_trainings(run: Run) -> list[tuple[str, str, int]]:
    """Every (model, data variant, seed) the book trains: each trained row of Tables 1 and 2 once per seed of
    the profile, and the seed spread of chapter "Beyond"; the costliest models first within each seed."""
    models = dict.fromkeys(model for model, _ in (*ABLATIONS.values(), *BASELINES.values()))
    spread = [(m, "refined", s) for s in run.profile.spread_seeds for m in ("plain_unet", "extended")]
    planned = [(m, "refined", s) for s in run.profile.seeds for m in models] + \
              [("plain_unet", "base", s) for s in run.profile.seeds] + spread
    return list(dict.fromkeys(planned))
