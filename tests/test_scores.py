import itertools
import math

import numpy as np
import pytest

from bractivate.scores import binary_cross_entropy, collapsed, dice, efficiency_loss_scaling, search_score


def test_els_positive_and_strictly_increasing_including_sub_second_epochs():
    params = [10, 1_000, 120_000, 7.7e6, 9.5e7]
    times = [0.01, 0.2, 0.9, 1.0, 1.5, 30.0, 600.0]
    losses = [1e-4, 0.05, 0.3, 0.69, 2.0]
    for p, t, b in itertools.product(params, times, losses):
        assert efficiency_loss_scaling(p, t, b) > 0
    for t, b in itertools.product(times, losses):
        values = [efficiency_loss_scaling(p, t, b) for p in params]
        assert all(x < y for x, y in zip(values, values[1:]))
    for p, b in itertools.product(params, losses):
        values = [efficiency_loss_scaling(p, t, b) for t in times]
        assert all(x < y for x, y in zip(values, values[1:]))
    for p, t in itertools.product(params, times):
        values = [efficiency_loss_scaling(p, t, b) for b in losses]
        assert all(x < y for x, y in zip(values, values[1:]))


def test_els_formula_and_bad_inputs():
    assert efficiency_loss_scaling(1e6, 10.0, 0.5) == pytest.approx(0.01 * math.log(1e6 + 1) * math.log(11) * 0.5)
    for bad in [(0, 1, 1), (1, -1, 1), (1, 1, math.nan), (1, math.inf, 1)]:
        with pytest.raises(ValueError, match="positive finite"):
            efficiency_loss_scaling(*bad)


def test_search_score_modes():
    kw = dict(params=1000, seconds=2.0, flops=5e9, bcl=0.25)
    assert search_score("bcl", time_measure="wallclock", **kw) == 0.25
    assert search_score("els", time_measure="flops", **kw) == pytest.approx(efficiency_loss_scaling(1000, 5.0, 0.25))
    assert search_score("els", time_measure="wallclock", **kw) == pytest.approx(efficiency_loss_scaling(1000, 2.0, 0.25))
    with pytest.raises(ValueError, match="time_measure 'gpu'"):
        search_score("els", time_measure="gpu", **kw)


def test_dice_and_bce_values():
    truth = np.zeros((2, 4, 4, 1))
    truth[0, :2] = 1  # 8 pixels
    pred = np.zeros_like(truth)
    pred[0, :1] = 0.9  # 4 pixels, all inside
    # image 0: 2*4/(8+4); image 1: both empty -> 1
    assert dice(truth, pred) == pytest.approx((8 / 12 + 1) / 2)
    assert binary_cross_entropy([[1.0, 0.0]], [[0.5, 0.5]]) == pytest.approx(math.log(2))


def test_collapsed_means_one_class_everywhere_while_the_masks_hold_both():
    masks = np.zeros((2, 4, 4, 1), "float32")
    masks[0, :2] = 1
    assert collapsed(masks, np.full_like(masks, 0.3))          # background everywhere
    assert collapsed(masks, np.full_like(masks, 0.7))          # foreground everywhere
    assert not collapsed(masks, masks * 0.9)                   # both classes predicted
    one_pixel = np.zeros_like(masks)
    one_pixel[1, 3, 3] = 0.6
    assert not collapsed(masks, one_pixel)                     # a single foreground pixel is not collapse
    assert not collapsed(np.zeros_like(masks), np.zeros_like(masks))  # right: nothing to find
    assert not collapsed(np.ones_like(masks), np.ones_like(masks))
