"""The book's tables and galleries beyond Table 1, on the published profile's dry run (64 CCP photos, tiny
trainings)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from clothparse_lib import paper
from clothparse_lib.models import build_model, count_parameters
from clothparse_lib.profiles import get_profile
from clothparse_lib.results import (
    ablations,
    architecture,
    beyond,
    confusion,
    intro,
    qualitative,
)
from clothparse_lib.results import training as training_results
from clothparse_lib.taxonomy import CLASS_INDEX


@pytest.fixture(scope="module")
def run(dry_run):
    return dry_run


def test_table4_and_table5_beside_the_paper(run):
    t4 = ablations.table4(run)
    ref = paper.numbers()["table4_classbranch"]
    assert t4.loc["F1", "paper"] == ref["f1"] and t4.loc["accuracy: skirt", "paper"] == ref["per_class_accuracy"]["skirt"]
    seeds = run.profile.seeds_for("extended")
    scores = [json.loads((run.model_dir("extended", seed=s) / "evaluation.json").read_text())["scores"] for s in seeds]
    assert len(seeds) == 2  # the central rows' seeds: the mean over them
    assert np.isclose(t4.loc["F1", "run"], np.mean([100 * s["classbranch"]["f1"] for s in scores]))
    assert np.allclose(t4["diff"], t4["run"] - t4["paper"])
    t5 = ablations.table5(run)
    assert list(t5.index) == ["Without GT", "With GT", "Partial GT (dress, skirt)"]
    assert np.isclose(t5.loc["With GT", ("iou_excl_bg", "run")], np.mean([100 * s["gt"]["iou_excl_bg"] for s in scores]))
    assert np.isnan(t5.loc["Partial GT (dress, skirt)", ("iou_excl_bg", "paper")])  # not in the paper
    assert t5.loc["With GT", ("iou_excl_bg", "paper")] == paper.numbers()["table5_gt_injection"]["With GT"][0]


def test_confusion_is_normalised_like_the_papers(run):
    m = confusion.table3(run)
    ours_rows, paper_rows = m["rows"]
    assert np.allclose(np.nansum(ours_rows, 1)[~np.isnan(ours_rows).all(1)], 100)
    assert np.allclose(np.sum(paper_rows, 1), 100, atol=0.1)
    assert np.allclose(np.nansum(m["columns"][0], 0)[~np.isnan(m["columns"][0]).all(0)], 100)
    gt, pred, share = confusion.most_confused(paper_rows)
    assert gt != pred and "background" not in (gt, pred) and share == np.nanmax(
        np.where(np.eye(9, dtype=bool), np.nan, paper_rows)[1:, 1:])


def test_seed_spread_statistics(run):
    spread = beyond.seed_spread(run, ["extended"], (0, 1))
    values = spread.loc[("extended", ["seed 0", "seed 1"]), "iou_excl_bg"].to_numpy()
    assert np.isclose(spread.loc[("extended", "mean"), "iou_excl_bg"], values.mean())
    assert np.isclose(spread.loc[("extended", "std"), "iou_excl_bg"], values.std(ddof=1))
    assert (run.run_dir / "models" / "extended-refined-seed1" / "best.pt").exists()


def test_headline_and_aggregates(run):
    head = intro.headline(run)
    row = head.loc[("Table 2", "Our model: IoU excl. bg")]
    assert row["paper"] == paper.numbers()["table2_models"]["Our model"][0]
    assert np.isclose(row["diff"], row["this run"] - row["paper"]) and row["profile"] == run.profile.name
    agg = ablations.aggregate_definitions(run)
    assert np.isclose(agg.loc["paper: as printed", "IoU overall"], paper.numbers()["table1_base_vs_refined_plain_unet"]["Refined"][1])
    assert np.isclose(agg.loc["paper: mean of its per-class IoUs", "IoU excl. bg"], 65.25125)


def test_training_times_add_up_each_models_epochs(run):
    times = intro.training_times(run)
    history = pd.read_csv(run.model_dir("extended") / "history.csv")
    assert times.loc["extended-refined", "epochs"] == len(history)
    assert np.isclose(times.loc["extended-refined", "seconds"], history["seconds"].sum())
    assert times["seconds"].is_monotonic_decreasing and (times["seconds"] > 0).all()


def test_loss_sorted_groups_and_partial_injection(run):
    groups = qualitative.loss_sorted(run, n=2)
    assert list(groups) == ["highest loss", "middle", "lowest loss", "failures"]
    loss = lambda rows: [float(label.split("loss ")[1].split()[0]) for label, *_ in rows]
    assert min(loss(groups["highest loss"])) >= max(loss(groups["lowest loss"]))
    label, image, truth, pred = groups["highest loss"][0]
    assert image.shape[:2] == truth.shape == pred.shape == tuple(run.profile.size)
    rows, counts = qualitative.partial_injection(run, absent="dress")
    assert 0 <= counts["images_painted"] <= counts["images_without"] and len(rows) <= 4
    assert (counts["pixels_before"] > 0) == (counts["images_painted"] > 0)
    for label, image, truth, plain, told in rows:
        assert not (truth == CLASS_INDEX["dress"]).any() and (plain == CLASS_INDEX["dress"]).any()
    with pytest.raises(ValueError, match="no prior input"):
        qualitative.partial_injection(run, model="plain_unet")


def test_loss_calibration_of_the_trained_model(run):
    run.ensure("extended")
    table = training_results.loss_calibration(run, "extended", batches=1)
    assert list(table.index) == ["ce", "bce", "box"] and table.attrs["batches"] == 1
    assert table.loc["bce", "weight used"] == run.profile.train.w_bce
    assert table.loc["box", "weight used"] == run.profile.train.w_box
    even = table["unweighted mean"] * table["weight for even terms"]
    assert np.allclose(even, table.loc["ce", "unweighted mean"])  # the weights that make every term the CE


def test_figure1_and_deviations():
    assert architecture.decoder_channels()["match"].all()
    dev = intro.deviations(get_profile("demo"))
    assert {"data set", "encoder", "person detector", "BCE weight"} <= set(dev.index)
    assert "data set" not in intro.deviations(get_profile("paper")).index
    assert "bf16 autocast + channels-last" in intro.deviations(get_profile("cpu")).loc["precision", "this run"]
    costs = architecture.cost_ratios((128, 96), "efficientnet-lite0")  # the demo profile's: the numbers in the text
    assert f"needs {costs['resnet34_over_encoder']:.1f}x fewer multiply-adds" in dev.loc["encoder", "why"]
    assert f"within {costs['extended_extra_pct']:.1f} % of the plain" in dev.loc["final block of the Extended U-Net", "why"]
    assert 3 < costs["resnet34_over_encoder"] < 10 and 0 < costs["extended_extra_pct"] < 5


@pytest.mark.filterwarnings("ignore::UserWarning")  # random weights
def test_architecture_table_counts_without_computing():
    size = (96, 64)
    table = architecture.architecture_table(size, "efficientnet-lite0", ("plain_unet", "extended"))
    real = build_model("extended", encoder="efficientnet-lite0", weights=None, img_size=size)  # meta counts = real ones
    assert table.loc["extended", "parameters (M)"] == count_parameters(real) / 1e6
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        real.eval()(torch.zeros(1, 3, *size))
    assert table.loc["extended", architecture.MACS] == counter.get_total_flops() / 2e9
    assert table.loc["extended", "prior input"] and not table.loc["plain_unet", "prior input"]


def test_an_empty_gallery_says_so():
    """Figure 5 on a weak model (a dry run) may find no image where a dress was painted wrongly."""
    from clothparse_lib.results import viz

    fig = viz.gallery([])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no image to show"]
