"""Data variants of a run on the smoke profile (synthetic data, skin-blob person detector); Table 1 on the published
profile's dry run."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from clothparse_lib import paper
from clothparse_lib.profiles import get_profile
from clothparse_lib.results.ablations import table1
from clothparse_lib.results.run import Run


def test_refined_variant_keeps_the_split_and_crops(tmp_path):
    run = Run.open("smoke", tmp_path, progress=False, device="cpu")
    base, refined = run.base(), run.refined()
    index = run.refined_index()
    assert set(index["status"]) >= {"kept", "cropped"}
    assert (tmp_path / "review.csv").exists()
    # every refined image keeps the part of the split it had in the base data set
    merged = refined.split.merge(base.split, on="image_id", suffixes=("", "_base"))
    assert len(merged) == len(refined.split) and (merged["split"] == merged["split_base"]).all()
    assert set(refined.cache.index["image_id"]) == set(index.loc[index["use"], "image_id"])
    cropped = index[index["status"] == "cropped"]["image_id"]
    widths = refined.cache.index.set_index("image_id").loc[cropped, "width"]
    assert (widths < base.cache.index.set_index("image_id").loc[cropped, "width"]).all()


def test_table1_beside_the_paper(dry_run):
    run, models = dry_run, dry_run.run_dir / "models"
    table = table1(run)
    assert list(table.index) == ["Base", "Refined"]
    ref = paper.numbers()["table1_base_vs_refined_plain_unet"]
    assert np.isclose(table.loc["Refined", ("iou_excl_bg", "paper")], ref["Refined"][0])
    diff = table.loc["Base", ("iou_overall", "run")] - table.loc["Base", ("iou_overall", "paper")]
    assert np.isclose(table.loc["Base", ("iou_overall", "diff")], diff)
    for variant in ("base", "refined"):
        assert (models / f"plain_unet-{variant}" / "evaluation.json").exists()
    # both models are scored on the same test images
    a = (models / "plain_unet-base" / "per_image.csv").read_text().splitlines()
    b = (models / "plain_unet-refined" / "per_image.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in a] == [r.split(",")[0] for r in b]


def test_review_decisions_are_applied_to_the_refined_index(tmp_path):
    run = Run.open("smoke", tmp_path, progress=False, device="cpu")
    index = run.refined_index()
    review = pd.read_csv(tmp_path / "review.csv", dtype={"image_id": str, "decision": str}, keep_default_na=False)
    assert len(review) and not index.set_index("image_id").loc[review["image_id"], "use"].any()
    review.loc[review.index[0], "decision"] = "keep"
    review.to_csv(tmp_path / "review.csv", index=False)
    kept = run.refined_index().set_index("image_id").loc[review["image_id"].iloc[0]]
    assert kept["use"] and kept["reason"] == "reviewed: keep"


class Killed(Exception):
    pass


@pytest.mark.filterwarnings("ignore:.*RANDOMLY INITIALISED")  # weights=None: fast, and enough here
def test_model_killed_before_its_checkpoint_is_resumed_not_taken_as_finished(tmp_path, monkeypatch):
    """1 + 1 epochs, killed in phase 2 between the epoch's history row and its last.pt: the next ensure
    resumes phase 2 (two history rows do not make a finished model) and leaves no duplicated row."""
    from clothparse_lib.models import checkpoints
    from clothparse_lib.training import resume

    smoke = get_profile("smoke")
    tiny = replace(smoke, size=(32, 32), source_params={"n": 24, "seed": 0, "height": 64, "width": 64},
                   train=replace(smoke.train, weights=None))
    run = Run(tiny, tmp_path, progress=False, device="cpu")
    save = checkpoints.save_checkpoints

    def killed_before_phase_2_checkpoint(files):
        if any(obj["state"]["phase"] == 2 for obj in files.values()):
            raise Killed("killed before last.pt")
        return save(files)

    monkeypatch.setattr(resume, "save_checkpoints", killed_before_phase_2_checkpoint)
    with pytest.raises(Killed):
        run.ensure("plain_unet", "base", evaluate_on="base")
    monkeypatch.undo()
    folder = run.model_dir("plain_unet", "base")
    assert len(pd.read_csv(folder / "history.csv")) == 2  # the row of the epoch whose checkpoint was never written
    run.ensure("plain_unet", "base", evaluate_on="base")
    assert checkpoints.read_checkpoint(folder / "last.pt")["state"]["phase"] == 2
    history = pd.read_csv(folder / "history.csv")
    assert list(zip(history["phase"], history["epoch"])) == [(1, 1), (2, 1)]
