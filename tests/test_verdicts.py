"""The verdict rules on made-up per-seed values, and the planned trainings and dry-run profiles behind them."""
import math

import pandas as pd
import pytest

from clothparse_lib.profiles import DRY_RUN_EARLY_SIZE, DRY_RUN_IMAGES, DRY_RUN_SIZE, get_profile
from clothparse_lib.results import verdicts as V
from clothparse_lib.results.plan import planned_trainings
from clothparse_lib.results.run import Run
from clothparse_lib.results.tables import beside_paper


def seeds(*values):
    return pd.Series(values, index=range(len(values)), dtype=float)


def test_difference_reproduced_when_the_one_sided_interval_clears_zero():
    v = V.difference(seeds(42.0, 43.0, 41.5), seeds(38.0, 38.5, 38.2))  # differences 4.0, 4.5, 3.3
    assert v.verdict == V.REPRODUCED and v.n == 3 and v.values == pytest.approx((4.0, 4.5, 3.3))
    assert v.mean == pytest.approx((4.0 + 4.5 + 3.3) / 3)
    half = 2.919986 * v.std / 3 ** 0.5  # Student's t, 95 % one-sided, 2 degrees of freedom
    assert (v.low, v.high) == (pytest.approx(v.mean - half), pytest.approx(v.mean + half)) and v.low > 0
    assert math.isnan(v.seeds_needed)  # decided


def test_difference_not_reproduced_when_the_interval_lies_on_the_other_side():
    assert V.difference(seeds(30, 31, 30.5), seeds(35, 35.5, 36)).verdict == V.NOT_REPRODUCED
    assert V.difference(seeds(30, 31, 30.5), seeds(35, 35.5, 36), sign=-1).verdict == V.REPRODUCED


def test_difference_inconclusive_when_the_interval_holds_zero_and_says_what_would_decide():
    v = V.difference(seeds(40, 45, 38), seeds(41, 39, 40))  # differences -1, 6, -2: mean 1, std ~4.4
    assert v.verdict == V.INCONCLUSIVE and v.low < 0 < v.high
    assert v.seeds_needed == V.seeds_to_decide(v.mean, v.std) and 50 < v.seeds_needed  # mean about zero: none would
    assert math.isinf(v.seeds_needed)


def test_difference_smaller_than_the_papers_when_the_interval_holds_zero_but_stops_short_of_it():
    v = V.difference(seeds(31.0, 31.5, 30.6, 31.2), seeds(31.2, 31.0, 30.9, 31.0), paper=4.1)  # mean 0.05
    assert v.verdict == V.SMALLER and v.low < 0 < v.high < 4.1 and math.isnan(v.seeds_needed)
    assert V.difference(seeds(31.0, 31.5, 30.6, 31.2), seeds(31.2, 31.0, 30.9, 31.0)).verdict == V.INCONCLUSIVE
    # a claim that A - B < 0 (paper -4.1): the interval holds zero and lies above -4.1
    assert V.difference(seeds(31.2, 31.0, 30.9, 31.0), seeds(31.0, 31.5, 30.6, 31.2), paper=-4.1,
                        sign=-1).verdict == V.SMALLER
    assert V.SMALLER in V.VERDICT_COLOURS and len(set(V.VERDICT_COLOURS.values())) == len(V.VERDICT_COLOURS)


def test_difference_inconclusive_when_the_interval_reaches_the_papers_difference():
    v = V.difference(seeds(42.0, 38.0, 41.0), seeds(40.0, 39.0, 39.0), paper=1.28)  # differences 2, -1, 2
    assert v.verdict == V.INCONCLUSIVE and v.low < 0 < 1.28 < v.high
    n = v.seeds_needed  # either way: the interval clears zero, or stops short of 1.28, at the observed mean and spread
    assert n == V.seeds_to_decide(v.mean, v.std, 1.28) and 3 < n < V.MAX_SEEDS
    low, high = V.one_sided_bounds(v.mean, v.std, int(n))
    assert low > 0 or high < 1.28
    assert V.seeds_to_decide(0.2, 1.0, 1.28) == 5 < V.seeds_to_decide(0.2, 1.0)  # short of the paper's: 5 seeds; zero: none


def test_two_close_seeds_no_longer_decide_a_claim():
    """|mean| > std was 80 % one-sided confidence with 2 seeds: differences of 1.0 and 1.5 read "reproduced"."""
    v = V.difference(seeds(41.0, 41.5), seeds(40.0, 40.0))
    assert v.verdict == V.INCONCLUSIVE and abs(v.mean) > v.std
    assert v.seeds_needed == 3  # t(0.95, 2) * 0.354 / sqrt(3) = 0.60 < 1.25
    assert V.seeds_to_decide(1.25, float("nan")) != V.seeds_to_decide(1.25, float("nan"))  # no spread: NaN


def test_seeds_to_decide_is_the_first_n_whose_interval_excludes_zero():
    for mean, std in ((1.0, 1.0), (0.5, 2.0), (3.0, 0.5)):
        n = int(V.seeds_to_decide(mean, std))
        assert V.one_sided_bounds(mean, std, n)[0] > 0 and (n == 2 or V.one_sided_bounds(mean, std, n - 1)[0] <= 0)


def test_difference_pairs_same_seeds_only_and_needs_two():
    a, b = pd.Series({0: 50.0, 1: 51.0, 2: 52.0}), pd.Series({0: 40.0})
    v = V.difference(a, b)
    assert v.n == 1 and v.verdict == V.INCONCLUSIVE and math.isnan(v.std)


def test_level_uses_spread_plus_tolerance():
    assert V.level(seeds(86.0, 87.0, 86.5), 87.14).verdict == V.REPRODUCED
    assert V.level(seeds(60.0, 61.0, 62.0), 87.14).verdict == V.NOT_REPRODUCED
    assert V.level(seeds(80.0), 80.0).verdict == V.INCONCLUSIVE


def test_every_seed_reports_the_number_the_claim_reads():
    v = V.every_seed(pd.Series([True, True]), pd.Series([31.7, 29.3]))
    assert v.verdict == V.REPRODUCED and v.mean == pytest.approx(30.5) and v.values == (31.7, 29.3) and v.std > 0


def test_skirt_row_top_reads_the_skirt_row_only():
    classes = ["background", "top", "overtop", "pants", "shorts", "skirt", "dress", "shoe", "bag"]
    m = [[0] * 9 for _ in classes]
    m[1][2] = 50.9  # top -> overtop: the largest confusion overall
    m[5][0], m[5][5], m[5][6], m[5][1] = 40.0, 30.0, 24.7, 5.3  # skirt: background and skirt itself do not count
    assert V.skirt_row_top(m, classes) == "dress"


def test_every_seed():
    assert V.every_seed(pd.Series([True, True, True])).verdict == V.REPRODUCED
    assert V.every_seed(pd.Series([False, False])).verdict == V.NOT_REPRODUCED
    assert V.every_seed(pd.Series([True, False, True])).verdict == V.INCONCLUSIVE
    assert V.every_seed(pd.Series([True])).verdict == V.INCONCLUSIVE


def test_tables_carry_mean_and_std_over_seeds():
    ours = {"Plain U-Net": pd.DataFrame({"iou_excl_bg": [0.40, 0.42, 0.44]}, index=[0, 1, 2])}
    table = beside_paper(ours, "table2_models", {"Plain U-Net": "Plain U-Net"})
    row = table.loc["Plain U-Net", "iou_excl_bg"]
    assert row["run"] == pytest.approx(42.0) and row["std"] == pytest.approx(2.0)
    assert row["diff"] == pytest.approx(42.0 - 72.10)


def test_cpu_profile_gives_the_central_rows_three_seeds_and_the_others_two(tmp_path):
    cpu = get_profile("cpu")
    assert cpu.source == "ccp" and cpu.size == (128, 96) and cpu.central_seeds == (0, 1, 2) and cpu.seeds == (0, 1)
    planned = planned_trainings(Run(cpu, tmp_path))
    assert len(planned) == len(set(planned)) == 21  # 3 central rows x 3 seeds + 6 other rows x 2 seeds
    seeds = {}
    for model, variant, seed in planned:
        seeds.setdefault((model, variant), set()).add(seed)
    assert seeds.pop(("extended", "refined")) == seeds.pop(("plain_unet", "refined")) == seeds.pop(("plain_unet", "base")) == {0, 1, 2}
    assert len(seeds) == 6 and all(s == {0, 1} for s in seeds.values())
    assert get_profile("cpu-dry").central_seeds == get_profile("cpu-dry").spread_seeds == (0, 1)


def test_full_profile_plans_every_row_for_every_seed(tmp_path):
    full = get_profile("full")
    assert full.size == (288, 192) and full.train.batch_size == 16 and full.seeds == (0, 1, 2)
    planned = planned_trainings(Run(full, tmp_path))
    assert len(planned) == len(set(planned)) == 27  # 8 models on refined data + plain U-Net on base, 3 seeds each
    assert {("plain_unet", "base", s) for s in full.seeds} <= set(planned)


def test_dry_run_profile_is_the_same_path_at_a_tiny_cost():
    dry = get_profile("full-dry")
    assert dry.name == "full-dry" and dry.source == "ccp" and dry.source_params["limit"] == DRY_RUN_IMAGES
    assert dry.size == DRY_RUN_SIZE and (dry.train.epochs_frozen, dry.train.epochs_unfrozen) == (1, 0)
    assert dry.seeds == (0,) and dry.central_seeds == (0, 1) and dry.train.encoder == get_profile("full").train.encoder
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("nope-dry")


def test_cpu288_profile_scores_at_the_papers_size_with_four_seeds_on_the_central_rows(tmp_path):
    p = get_profile("cpu288")
    assert p.size == (288, 192) and p.train.early_size == (128, 96) and p.train.epochs_final > 0
    assert [(ph.number, ph.size) for ph in p.train.phases(p.size) if ph.epochs] == [
        (1, (128, 96)), (2, (128, 96)), (3, (288, 192))]
    planned = planned_trainings(Run(p, tmp_path))
    assert len(planned) == len(set(planned)) == 24  # 3 central rows x 4 seeds + 6 other rows x 2 seeds
    central = {job for job in planned if (job[0], job[1]) in {("extended", "refined"), ("plain_unet", "refined"),
                                                                ("plain_unet", "base")}}
    assert {seed for *_, seed in central} == {0, 1, 2, 3} and len(central) == 12
    dry = get_profile("cpu288-dry")  # the dry run keeps the size change, at its own small sizes
    assert dry.size == DRY_RUN_SIZE and dry.train.early_size == DRY_RUN_EARLY_SIZE and dry.train.epochs_final == 1
