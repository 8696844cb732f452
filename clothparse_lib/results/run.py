"""A run folder of a profile: its data variants, trained models and their evaluations.

Data variants:

* ``base`` — the merged, unfiltered data set; its stratified split (``split.csv``) is the run's split;
* ``refined`` — the refinement of section 4.1 (:mod:`refinement.refine`) applied to it, with the same split
  restricted to the images refinement keeps (``split-refined.csv``): every image stays in its part.

Every model is scored on the test part of the refined data (Table 1 explains why).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import settings
from ..data import open_source
from ..data.prepared import PreparedData, prepare_dataset
from ..evaluation.scores import evaluate, load_scores, result_file, save_evaluation
from ..models.checkpoints import is_finished, load_model
from ..profiles import Profile, TrainSettings, get_profile
from ..refinement.persons import make_detector
from ..refinement.refine import RefinedSource, apply_review, read_index, refine, write_index, write_review_list
from ..training.loop import train_model

__all__ = ["Run"]


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
        return cls(p, settings.run_dir(p.name, run_dir), data_dir or None, **kwargs)

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
        return self.run_dir / "models" / settings.tag(model, variant, seed)

    def trained(self, model: str, variant: str = "refined", seed: int = 0) -> bool:
        folder = self.model_dir(model, variant, seed)
        return (folder / "best.pt").exists() and is_finished(folder)

    def evaluated(self, model: str, variant: str = "refined", seed: int = 0) -> bool:
        return self.trained(model, variant, seed) and result_file(self.model_dir(model, variant, seed), "evaluation").exists()

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
                        device=self.device, progress=self.progress, tag=settings.tag(model, variant, seed))
            for stale in folder.glob("evaluation*.json"):  # scores of the model before this training
                stale.unlink()
        if not result_file(folder, "evaluation", name).exists():
            test = self.data(on)
            result = evaluate(load_model(folder / "best.pt", self.device), test.cache, test.split, "test",
                              progress=self.progress)
            save_evaluation(result, folder, name, {"split": "test", "data": on})
        return load_scores(folder, name)
