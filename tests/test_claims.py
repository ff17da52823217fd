"""The claims statistics (docs/method.md#claims): p values, effect sizes and every branch of the
decision rule on inputs with known answers, and the claims table built from stage outputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bractivate.claims import (DICE_EFFECT, FAR_FEWER, INCONCLUSIVE, NOT_SUPPORTED, RATIO_EFFECT, SUPPORTED,
                               claims_frame, claims_table, decide, one_sided_test)


def test_p_value_effect_size_and_bound_by_hand():
    part = one_sided_test([0.1, 0.2, 0.3], minimal=0.01)
    # mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3); with 2 degrees of freedom the t distribution's
    # upper tail is 0.5 * (1 - t / sqrt(t^2 + 2)).
    t = 0.2 / (0.1 / math.sqrt(3))
    assert part.mean == pytest.approx(0.2) and part.std == pytest.approx(0.1)
    assert part.p == pytest.approx(0.5 * (1 - t / math.sqrt(t * t + 2)), rel=1e-9)
    assert part.p == pytest.approx(0.037089, abs=1e-6)
    assert part.d_z == pytest.approx(2.0)
    assert part.upper == pytest.approx(0.2 + 2.919986 * 0.1 / math.sqrt(3), rel=1e-6)
    assert part.verdict == SUPPORTED


@pytest.mark.parametrize("effects", [[0.05, -0.02, 0.11, 0.03], [1.0, 2.5, 0.2], [-0.3, -0.1, 0.05, 0.0, 0.2]])
def test_p_value_is_scipys_one_sided_t_test(effects):
    expected = stats.ttest_1samp(effects, 0.0, alternative="greater").pvalue
    assert one_sided_test(effects, minimal=0.0).p == pytest.approx(expected, rel=1e-9)


def test_paired_effects_give_the_paired_t_test():
    ours, theirs = np.array([0.91, 0.88, 0.93, 0.90]), np.array([0.89, 0.87, 0.90, 0.91])
    expected = stats.ttest_rel(ours, theirs, alternative="greater").pvalue
    assert one_sided_test(ours - theirs, minimal=0.0).p == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("effects, minimal, verdict", [
    ([0.1, 0.2, 0.3], 0.01, SUPPORTED),                 # p < 0.05 and mean >= m
    ([0.001, 0.002, 0.0015], 0.01, NOT_SUPPORTED),      # p < 0.05, but the upper bound is below m
    ([-0.1, 0.0, -0.05], 0.01, NOT_SUPPORTED),          # the mean goes against the claim
    ([0.0, 0.0, 0.0], 0.01, NOT_SUPPORTED),             # no effect at all (e.g. the same genome)
    ([0.3, -0.1, 0.2], 0.01, INCONCLUSIVE),             # positive, not significant, large bound
    ([0.5, 0.6], 0.01, INCONCLUSIVE),                   # fewer than 3 trials, however large
    ([0.1, 0.1, 0.1], 0.01, SUPPORTED),                 # every effect equal and positive: p = 0
    ([0.02, 0.04, 0.03, 0.5], 0.3, INCONCLUSIVE),       # mean 0.1475 < m, but the bound reaches it
])
def test_every_branch_of_the_decision_rule(effects, minimal, verdict):
    assert one_sided_test(effects, minimal).verdict == verdict


def test_degenerate_tests():
    assert one_sided_test([0.1, 0.1, 0.1], 0.0).p == 0.0
    assert one_sided_test([0.0, 0.0, 0.0], 0.0).p == 1.0
    assert math.isnan(one_sided_test([0.4], 0.0).p)
    with pytest.raises(ValueError, match="finite"):
        one_sided_test([0.1, float("nan"), 0.2], 0.0)


def test_a_claim_of_several_parts_needs_every_part():
    good = one_sided_test([0.1, 0.2, 0.3], 0.01)
    unclear = one_sided_test([0.3, -0.1, 0.2], 0.01)
    wrong = one_sided_test([-0.1, -0.2, -0.15], 0.01)
    assert decide([good, good]) == (SUPPORTED, pytest.approx(good.p))
    assert decide([good, unclear])[0] == INCONCLUSIVE
    assert decide([good, unclear])[1] == pytest.approx(unclear.p)  # the largest p
    assert decide([unclear, wrong])[0] == NOT_SUPPORTED
    assert decide([good, wrong])[0] == NOT_SUPPORTED


# ------------------------------------------------------------------------- the claims table

TRIALS = (1, 2, 3)


def _train() -> pd.DataFrame:
    """Full-training metrics of five experiments on one data set with known effects."""
    rows = []
    spec = {  # experiment: (test Dice per trial, params per trial, seconds per epoch per trial)
        "main": ((0.90, 0.92, 0.91), (1e4, 2e4, 1.5e4), (1.0, 1.1, 0.9)),
        "random": ((0.85, 0.86, 0.80), (3e4, 2e4, 4e4), (1.2, 1.0, 1.0)),
        "bcl": ((0.91, 0.90, 0.93), (8e4, 1e5, 9e4), (1.5, 1.6, 1.4)),
        "deep5": ((0.88, 0.90, 0.89), (2e5, 3e5, 2e5), (3.0, 3.3, 2.9)),
        "deep7": ((0.80, 0.82, 0.79), (5e5, 6e5, 4e5), (6.0, 6.1, 5.8)),
    }
    for experiment, (dices, params, seconds) in spec.items():
        for trial, d, p, s in zip(TRIALS, dices, params, seconds):
            rows.append({"dataset": "cells", "experiment": experiment, "trial": trial, "seed": trial,
                         "genome_hash": f"{experiment}{trial}", "test_dice": d, "params": p,
                         "seconds_per_epoch": s})
    return pd.DataFrame(rows)


def _searches() -> pd.DataFrame:
    rows = []
    for experiment, scores in (("main", (0.10, 0.12, 0.11)), ("random", (0.14, 0.12, 0.15))):
        for trial, score in zip(TRIALS, scores):
            same = experiment == "random" and trial == 2  # trial 2 ends on main's genome
            rows.append({"dataset": "cells", "experiment": experiment, "trial": trial,
                         "genome_hash": "main2" if same else f"{experiment}{trial}", "search_score": score})
    return pd.DataFrame(rows)


def _ablation() -> pd.DataFrame:
    return pd.DataFrame({"dataset": ["cells"] * 3, "experiment": ["main"] * 3, "trial": list(TRIALS),
                         "block": ["dec1", "dec0", "dec1"], "intact_dice": [0.90, 0.92, 0.91],
                         "zeroed_dice": [0.40, 0.50, 0.30], "retrained_dice": [0.91, 0.93, 0.91],
                         "control_block": ["mid", None, "enc1"],
                         "control_zeroed_dice": [0.85, None, 0.88], "control_retrained_dice": [0.9, None, 0.9]})


def _baselines() -> pd.DataFrame:
    rows = []
    for model, dices, params in (("unet", (0.93, 0.94, 0.92), 7.7e6), ("nasunet", (0.89, 0.90, 0.88), 1.2e5)):
        for trial, d in zip(TRIALS, dices):
            rows.append({"dataset": "cells", "model": model, "trial": trial, "seed": trial,
                         "test_dice": d, "params": params})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return claims_frame(train=_train(), searches=_searches(), ablation=_ablation(), baselines=_baselines())


def test_one_row_per_claim_with_the_required_columns(claims):
    assert list(claims.columns) == ["claim", "dataset", "paper", "measured", "n", "test", "p_value", "verdict"]
    assert list(claims["claim"]) == ["C1a", "C1b", "C2", "C3", "C4", "C5", "C6"]
    assert set(claims["verdict"]) <= {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


def _row(claims, claim) -> dict:
    return claims.set_index("claim").loc[claim].to_dict()


def test_c1_pairs_main_and_random_by_trial(claims):
    scores = np.log(np.array([0.14, 0.12, 0.15]) / np.array([0.10, 0.12, 0.11]))
    expected = stats.ttest_1samp(scores, 0.0, alternative="greater").pvalue
    row = _row(claims, "C1a")
    assert row["p_value"] == pytest.approx(expected) and row["n"] == 3
    assert "same best genome in 1 of 3 trials" in row["measured"]
    assert row["verdict"] == one_sided_test(scores, RATIO_EFFECT).verdict
    dice = np.array([0.90, 0.92, 0.91]) - np.array([0.85, 0.86, 0.80])
    assert _row(claims, "C1b")["p_value"] == pytest.approx(stats.ttest_1samp(dice, 0, alternative="greater").pvalue)
    assert _row(claims, "C1b")["verdict"] == SUPPORTED


def test_c2_compares_with_the_control_and_drops_trials_without_one(claims):
    row = _row(claims, "C2")
    assert row["n"] == 2 and row["verdict"] == INCONCLUSIVE  # fewer than 3 trials with a control
    assert "1 trial(s) without a control block" in row["measured"]
    effects = [0.85 - 0.40, 0.88 - 0.30]
    assert f"{np.mean(effects):+.3f}" in row["measured"]


def test_c3_retrained_recovers_here(claims):
    row = _row(claims, "C3")  # intact − retrained: −0.01, −0.01, 0: retraining recovers
    assert row["verdict"] == NOT_SUPPORTED


def test_c4_c5_c6_are_intersection_union_tests(claims):
    c4 = _row(claims, "C4")
    assert c4["verdict"] == SUPPORTED and "intersection-union of 2" in c4["test"]
    c5 = _row(claims, "C5")
    ratio = np.log(np.array([8e4, 1e5, 9e4]) / np.array([1e4, 2e4, 1.5e4]))
    dice = np.array([0.90, 0.92, 0.91]) - np.array([0.91, 0.90, 0.93]) + 0.05
    parts = [stats.ttest_1samp(x, 0, alternative="greater").pvalue for x in (ratio, dice)]
    assert c5["p_value"] == pytest.approx(max(parts)) and c5["verdict"] == SUPPORTED
    c6 = _row(claims, "C6")  # the best baseline is UNet (highest mean Dice): 7.7e6 params
    assert "best baseline unet" in c6["measured"] and c6["verdict"] == SUPPORTED
    part = one_sided_test(np.log(7.7e6 / np.array([1e4, 2e4, 1.5e4])), FAR_FEWER)
    assert part.verdict == SUPPORTED and c6["p_value"] >= part.p


def test_far_fewer_parameters_means_an_order_of_magnitude():
    baselines = _baselines().assign(params=lambda f: f["params"].where(f["model"] != "unet", 5e4))
    row = claims_frame(train=_train(), baselines=baselines).set_index("claim").loc["C6"]
    assert row["verdict"] == NOT_SUPPORTED  # 5e4 / 1.5e4: about 3x, not 10x


def test_claims_without_their_experiments_have_no_row():
    train = _train()
    frame = claims_frame(train=train[train["experiment"].isin(["main", "bcl"])])
    assert list(frame["claim"]) == ["C5"]


def test_the_table_shows_p_and_verdicts(claims):
    table = claims_table(claims)
    assert list(table.display.columns[:2]) == ["Claim", "Data set"]
    assert table.display.set_index("Claim").loc["C2", "p"] == f"{_row(claims, 'C2')['p_value']:.3g}"
    assert DICE_EFFECT == 0.01


def test_a_zero_dice_leaves_its_trial_out_of_the_dice_time_ratio():
    train = _train()
    zero = (train["experiment"] == "deep7") & (train["trial"] == 1)
    train.loc[zero, "test_dice"] = 0.0  # a collapsed deep model: its Dice:time has no log ratio
    row = claims_frame(train=train).set_index("claim").loc["C4"]
    assert row["n"] == 2 and row["verdict"] == INCONCLUSIVE  # fewer than 3 trials left for one part
    assert "1 trial(s) with a test Dice of 0 left out of main / deep7" in row["measured"]
