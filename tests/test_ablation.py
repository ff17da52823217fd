"""The ablation's block probes: every block's conv2 of the intact, zeroed and retrained models."""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pytest

from bractivate.ablation import (MAP_IMAGES, ablation_block, block_maps, control_block, run_ablation,
                                 zeroed_model)
from bractivate.genome import Genome
from bractivate.model import build_model
from bractivate.outputs import ABLATION_MODELS
from bractivate.report import activation_blocks, load_ablation_metrics, read_activations

GENOME = Genome(2, 4, (("enc0", "dec1", "add"), ("enc0", "mid", "concat"), ("enc1", "dec0", "add")))
TRAIN = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": None, "min_delta": 0.0,
         "execution": "eager"}


def test_the_control_is_the_least_active_other_receiving_block():
    # GENOME's receiving blocks: mid (from enc0), dec1 (enc0), dec0 (enc1); enc0, enc1 receive none.
    activity = {"enc0": 9.0, "enc1": 0.1, "mid": 2.0, "dec1": 3.0, "dec0": 1.0}
    assert ablation_block(GENOME, activity) == "dec1"
    assert control_block(GENOME, activity, "dec1") == "dec0"  # not enc1: it receives no dendrite
    assert control_block(GENOME, {**activity, "dec0": 5.0}, "dec1") == "mid"
    # ties go to the later block, so the control is never the earlier block by default
    assert control_block(GENOME, {**activity, "mid": 1.0}, "dec1") == "dec0"
    single = Genome(2, 4, (("enc0", "dec1", "add"),))
    assert control_block(single, activity, ablation_block(single, activity)) is None


def test_block_maps_are_the_mean_absolute_conv2_outputs(blobs):
    keras.utils.set_random_seed(0)
    model = build_model(GENOME, blobs.input_shape)
    x, _ = blobs.split("test")
    means, maps = block_maps(model, GENOME.blocks, x, batch_size=3, map_images=4)
    assert list(means) == list(maps) == GENOME.blocks
    for block in GENOME.blocks:
        probe = keras.Model(model.input, model.get_layer(f"{block}_conv2").output)
        out = np.abs(keras.ops.convert_to_numpy(probe(x, training=False)))
        assert means[block] == pytest.approx(float(out.mean()), rel=1e-5)
        np.testing.assert_allclose(maps[block], out[:4].mean(axis=-1), rtol=1e-5, atol=1e-7)
    assert maps["enc0"].shape == (4, *blobs.input_shape[:2]) and maps["mid"].shape == (4, 16, 16)


def test_zeroing_changes_only_the_ablated_block_and_those_after_it(blobs):
    keras.utils.set_random_seed(1)
    model = build_model(GENOME, blobs.input_shape)
    x, _ = blobs.split("test")
    intact, _ = block_maps(model, GENOME.blocks, x, batch_size=8)
    zeroed, _ = block_maps(zeroed_model(model, GENOME, "dec1"), GENOME.blocks, x, batch_size=8)
    position = GENOME.blocks.index("dec1")
    for block in GENOME.blocks[:position]:
        assert zeroed[block] == pytest.approx(intact[block], rel=1e-6), block
    for block in GENOME.blocks[position:]:
        assert zeroed[block] != pytest.approx(intact[block], rel=1e-4), block


@pytest.mark.slow
def test_run_ablation_writes_every_block_of_every_model(blobs, tmp_path):
    keras.utils.set_random_seed(2)
    model = build_model(GENOME, blobs.input_shape)
    metrics_path = tmp_path / "results/ablation/blobs/trial1/metrics.json"
    maps_path = tmp_path / "results/ablation/blobs/trial1/activations.h5"
    metrics = run_ablation(model, GENOME, blobs, train=TRAIN, seed=3, activity_mode="weight",
                           metrics_path=metrics_path, maps_path=maps_path,
                           provenance={"dataset": "blobs", "trial": 1, "experiment": "main"})
    assert json.loads(metrics_path.read_text()) == json.loads(json.dumps(metrics))
    assert metrics["blocks"] == GENOME.blocks and metrics["keras_backend"] == keras.config.backend()
    assert set(metrics["mean_abs_activation"]) == set(ABLATION_MODELS)
    control = control_block(GENOME, metrics["activity"], metrics["block"])
    assert control is not None and metrics["control_block"] == control != metrics["block"]
    assert metrics["control_block_activity"] < metrics["block_activity"]
    assert [e["dst"] for e in metrics["control_edges"]] == [control] * len(GENOME.incoming(control))
    for key in ("control_zeroed_dice", "control_retrained_dice"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["control_retrained_genome_hash"] != metrics["retrained_genome_hash"]
    for model_name in ABLATION_MODELS:
        assert list(metrics["mean_abs_activation"][model_name]) == GENOME.blocks
    with h5py.File(maps_path) as h5:
        assert h5["images"].shape[0] == MAP_IMAGES and set(h5["maps"]) == set(ABLATION_MODELS)
        assert h5.attrs["block"] == metrics["block"] and h5.attrs["control_block"] == metrics["control_block"]
    maps = read_activations(maps_path, 2)
    assert maps["blocks"] == GENOME.blocks and maps["maps"]["zeroed"]["mid"].shape == (2, 16, 16)
    assert (maps["dataset"], maps["trial"]) == ("blobs", 1)  # from the file, not from its path
    assert maps["control"] == metrics["control_block"]
    rows = activation_blocks(load_ablation_metrics([metrics_path]))
    assert len(rows) == len(ABLATION_MODELS) * len(GENOME.blocks)
    ablated = rows[(rows["model"] == "zeroed")]
    assert list(ablated["block"]) == GENOME.blocks
    assert set(ablated["test_dice"]) == {metrics["zeroed_dice"]}
