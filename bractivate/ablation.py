"""Ablation of the most active block's dendrites (SPEC §10, paper §4.7 and Fig. 6).

``zero``: the trained weights, with the block's incoming dendritic tensors multiplied by 0.
``retrain``: the genome without those edges, trained from scratch under the same protocol.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from bractivate.activity import block_activity
from bractivate.genome import Genome
from bractivate.io import Dataset, atomic_path, write_json
from bractivate.model import MIN_SIZE, build_model, count_params
from bractivate.train import fit, seed_everything, split_metrics, use_precision

log = logging.getLogger(__name__)
MAP_IMAGES = 4


def ablation_block(genome: Genome, activity: dict[str, float]) -> str:
    """The most active block among those that receive dendrites (ties go to the earlier one)."""
    receiving = [b for b in genome.blocks if genome.incoming(b)]
    if not receiving:
        raise ValueError(f"genome {genome.hash} has no dendritic edge to ablate")
    return max(receiving, key=lambda b: (activity[b], -genome.blocks.index(b)))


def zeroed_model(model: keras.Model, genome: Genome, block: str, min_size: int = MIN_SIZE) -> keras.Model:
    """``model`` rebuilt with the dendrites into ``block`` multiplied by 0, same weights."""
    ablated = build_model(genome, model.input_shape[1:], min_size, zero_inputs_of=block)
    for layer in ablated.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return ablated


def layer_maps(model: keras.Model, layer: str, x: np.ndarray) -> np.ndarray:
    probe = keras.Model(model.input, model.get_layer(layer).output)
    return np.asarray(keras.ops.convert_to_numpy(probe(x, training=False)), dtype="float32")


def run_ablation(model: keras.Model, genome: Genome, data: Dataset, *, train: dict, seed: int,
                 activity_mode: str, metrics_path, maps_path, provenance: dict, min_size: int = MIN_SIZE) -> dict:
    """Zero and retrain the dendrites of the trained model's most active receiving block;
    write test Dice intact / zeroed / retrained and the block's activation maps. ``min_size`` is
    the search's, so the zeroed and retrained networks pool where the trained one does."""
    use_precision(train.get("precision", "float32"))  # the zeroed and retrained models too
    x_val, _ = data.split("val")
    activity = block_activity(model, x_val[: train["batch_size"]], activity_mode)
    block = ablation_block(genome, activity)
    edges = genome.incoming(block)
    log.info("ablating %d dendrite(s) of %s (activity %.4g)", len(edges), block, activity[block])
    intact = split_metrics(model, data, "test", train["batch_size"])
    zeroed = zeroed_model(model, genome, block, min_size)
    zeroed_metrics = split_metrics(zeroed, data, "test", train["batch_size"])

    x_test, y_test = data.split("test")
    layer = f"{block}_conv2"
    with atomic_path(maps_path) as tmp:
        import h5py

        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("images", data=x_test[:MAP_IMAGES])
            h5.create_dataset("masks", data=y_test[:MAP_IMAGES])
            h5.create_dataset("intact", data=layer_maps(model, layer, x_test[:MAP_IMAGES]))
            h5.create_dataset("zeroed", data=layer_maps(zeroed, layer, x_test[:MAP_IMAGES]))
            h5.attrs.update(block=block, layer=layer)
            group = h5.create_group("activity")
            group.attrs.update(activity)

    pruned = genome.with_edges([e for e in genome.edges if e.dst != block])
    seed_everything(seed)
    retrained = build_model(pruned, data.input_shape, min_size)
    run = fit(retrained, data, **train)
    retrained_metrics = split_metrics(retrained, data, "test", train["batch_size"])
    metrics = {
        **provenance, "genome_hash": genome.hash, "block": block, "block_activity": activity[block],
        "activity": activity, "edges": [e.to_dict() for e in edges],
        "intact_dice": intact["dice"], "zeroed_dice": zeroed_metrics["dice"],
        "retrained_dice": retrained_metrics["dice"], "params_intact": count_params(model),
        "params_retrained": count_params(retrained), "retrained_genome_hash": pruned.hash,
        "retrained_epochs": run.epochs, "retrained_finite": run.finite,
    }
    write_json(metrics_path, metrics)
    log.info("test Dice intact %.4f, zeroed %.4f, retrained %.4f", intact["dice"],
             zeroed_metrics["dice"], retrained_metrics["dice"])
    return metrics
