"""Data variants of a run and Table 1 on the smoke profile (synthetic data, skin-blob person detector)."""
import numpy as np
import pandas as pd

from clothparse_lib import paper
from clothparse_lib.experiments import Run, table1


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


def test_table1_beside_the_paper(tmp_path):
    run = Run.open("smoke", tmp_path, progress=False, device="cpu")
    table = table1(run)
    assert list(table.index) == ["Base", "Refined"]
    ref = paper.numbers()["table1_base_vs_refined_plain_unet"]
    assert np.isclose(table.loc["Refined", ("iou_excl_bg", "paper")], ref["Refined"][0])
    diff = table.loc["Base", ("iou_overall", "run")] - table.loc["Base", ("iou_overall", "paper")]
    assert np.isclose(table.loc["Base", ("iou_overall", "diff")], diff)
    for variant in ("base", "refined"):
        assert (tmp_path / "models" / f"plain_unet-{variant}" / "evaluation.json").exists()
    # both models are scored on the same test images
    a = (tmp_path / "models" / "plain_unet-base" / "per_image.csv").read_text().splitlines()
    b = (tmp_path / "models" / "plain_unet-refined" / "per_image.csv").read_text().splitlines()
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
