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

import pandas as pd

from . import paper, settings
from .data import open_source
from .dataset import PreparedData, prepare_dataset
from .evaluation import evaluate, load_scores, save_evaluation
from .persons import make_detector
from .profiles import Profile, TrainSettings, get_profile
from .refine import RefinedSource, read_index, refine, summary, write_index, write_review_list
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
        """The refinement's index (computed once; detections cached in ``persons.jsonl``)."""
        path = self.run_dir / "refined_index.csv"
        if path.exists():
            return read_index(path)
        index = refine(self.source(), make_detector(self.profile.detector), cache_file=self.run_dir / "persons.jsonl",
                       progress=self.progress)
        write_review_list(index, self.run_dir / "review.csv")
        write_index(index, path)
        return index

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

    def ensure(self, model: str, variant: str = "refined", seed: int = 0, train: TrainSettings | None = None,
               evaluate_on: str | None = None) -> dict:
        """Train (or resume) and evaluate ``model`` unless done; returns its test scores.

        ``evaluate_on``: data variant of the test images (default: the refined one, see module doc).
        """
        folder = self.model_dir(model, variant, seed)
        on = evaluate_on or "refined"
        name = "test" if on == "refined" else f"test-on-{on}"
        if not (folder / "best.pt").exists() or not is_finished(folder):
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


def beside_paper(ours: dict[str, dict], table: str, rows: dict[str, str]) -> pd.DataFrame:
    """This run's rows (fractions) beside the paper's (percent) for the paper table ``table``.

    ``rows`` maps this run's row label to the paper's row label (None: a row the paper does not have).
    Columns: (metric, run|paper|diff), in %.
    """
    ref = paper.numbers()[table]
    frames = {}
    for label, paper_label in rows.items():
        run = pd.Series({k: 100 * v for k, v in ours[label].items()})
        ref_row = pd.Series(dict(zip(ref["columns"], ref.get(paper_label) or [float("nan")] * len(ref["columns"]))))
        cols = [c for c in ref["columns"] if c in run.index]
        frames[label] = pd.DataFrame({"run": run[cols], "paper": ref_row[cols], "diff": run[cols] - ref_row[cols]}).stack()
    return pd.DataFrame(frames).T


def table1(run: Run) -> pd.DataFrame:
    """Plain U-Net trained on base vs refined data, both scored on the refined test images, beside Table 1."""
    ours = {"Base": score_row(run.ensure("plain_unet", "base")), "Refined": score_row(run.ensure("plain_unet", "refined"))}
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
    ours = {label: score_row(run.ensure(model)) for label, (model, _) in rows.items()}
    return beside_paper(ours, "table2_models", {label: ref for label, (_, ref) in rows.items()})


def table2(run: Run) -> pd.DataFrame:
    return models_table(run, BASELINES)


def ablation_rows(run: Run) -> pd.DataFrame:
    return models_table(run, ABLATIONS)


def table4(run: Run, model: str = "extended") -> pd.DataFrame:
    """ClassBranch presence scores (F1, F2 macro; exact match; per-class accuracy) beside Table 4, in %."""
    ours = run.ensure(model)["scores"]["classbranch"]
    ref = paper.numbers()["table4_classbranch"]
    rows = {"F1": (ours["f1"], ref["f1"]), "F2": (ours["f2"], ref["f2"]),
            "exact match (% of images)": (ours["exact_match"], ref["exact_match_percent_of_images"])}
    rows |= {f"accuracy: {g}": (ours["per_class_accuracy"][g], ref["per_class_accuracy"][g]) for g in ref["per_class_accuracy"]}
    table = pd.DataFrame([{"metric": k, "run": 100 * v, "paper": p} for k, (v, p) in rows.items()]).set_index("metric")
    return table.assign(diff=table["run"] - table["paper"])


def table5(run: Run, model: str = "extended") -> pd.DataFrame:
    """Ground-truth injection (Table 5): no prior, the full truth, and the partial (dress/skirt) prior of Figure 5."""
    scores = run.ensure(model)
    ours = {"Without GT": score_row(scores, "none"), "With GT": score_row(scores, "gt"),
            "Partial GT (dress, skirt)": score_row(scores, "partial")}
    return beside_paper(ours, "table5_gt_injection", {"Without GT": "Without GT", "With GT": "With GT",
                                                      "Partial GT (dress, skirt)": None})


def confusion(run: Run, model: str = "extended") -> dict[str, tuple]:
    """Table 3: this run's row- and column-normalised confusion (%) with the paper's, per form."""
    import numpy as np

    from .metrics import normalize_confusion
    run.ensure(model)
    counts = np.load(run.model_dir(model) / "confusion.npz")["none"]
    ref = paper.numbers()["table3_confusion_percent"]
    return {"rows": (100 * normalize_confusion(counts, "rows"), np.array(ref["row_normalized_gt_rows_pred_columns"])),
            "columns": (100 * normalize_confusion(counts, "columns"),
                        np.array(ref["column_normalized_pred_columns_gt_rows_as_printed"]))}


def seed_spread(run: Run, models=("plain_unet", "extended"), seeds: tuple[int, ...] | None = None) -> pd.DataFrame:
    """The headline IoUs (%) of each model for each seed of the profile (or ``seeds``), same data and split;
    rows (model, "seed N"), then (model, "mean") and (model, "std") when there are several seeds."""
    seeds = tuple(seeds or run.profile.seeds)
    frames = {}
    for model in models:
        table = pd.DataFrame({f"seed {s}": {k: 100 * v for k, v in score_row(run.ensure(model, seed=s)).items()
                                            if k in ("iou_excl_bg", "iou_overall", "iou_mask")} for s in seeds}).T
        if len(seeds) > 1:
            table.loc["mean"], table.loc["std"] = table.mean(), table.iloc[: len(seeds)].std(ddof=1)
        frames[model] = table
    return pd.concat(frames, names=["model", "seed"])
