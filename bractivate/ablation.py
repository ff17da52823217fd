"""Ablation of the most active block's dendrites (paper §4.7, §5.3 and Fig. 6), with a control.

``zero``: the trained weights, with the block's incoming dendritic tensors multiplied by 0.
``retrain``: the genome without those edges, trained from scratch under the same protocol.
The control block, the least active other block that receives dendrites, goes through the same
two operations, so that what zeroing the most active block costs can be compared with what
zeroing another block costs (docs/method.md#ablation).

For each of the models the conv2 output of every block is probed on the test split:
its mean absolute value per block (over all test images, pixels and channels) goes into the
metrics, and its channel-mean absolute map on the first test images into the maps file, so
that where in the network the saliency lies can be compared before and after ablation.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from bractivate.activity import block_activity
from bractivate.genome import Genome
from bractivate.io import Dataset, atomic_path, write_json
from bractivate.model import MIN_SIZE, build_model, count_params
from bractivate.schema import defaults
from bractivate.train import accelerator_visible, fit, seed_everything, split_metrics, use_precision

log = logging.getLogger(__name__)
TRAIN_DEFAULTS = defaults("train")
MAP_IMAGES = 4
MAP_LAYER = "conv2"  # each block's last conv layer, before its batch norm


def ablation_block(genome: Genome, activity: dict[str, float]) -> str:
    """The most active block among those that receive dendrites (ties go to the earlier one)."""
    receiving = [b for b in genome.blocks if genome.incoming(b)]
    if not receiving:
        raise ValueError(f"genome {genome.hash} has no dendritic edge to ablate")
    return max(receiving, key=lambda b: (activity[b], -genome.blocks.index(b)))


def control_block(genome: Genome, activity: dict[str, float], ablated: str) -> str | None:
    """The least active block other than ``ablated`` among those that receive dendrites (ties go
    to the later one), or None where ``ablated`` is the only one."""
    receiving = [b for b in genome.blocks if genome.incoming(b) and b != ablated]
    if not receiving:
        return None
    return min(receiving, key=lambda b: (activity[b], -genome.blocks.index(b)))


def zeroed_model(model: keras.Model, genome: Genome, block: str, min_size: int = MIN_SIZE) -> keras.Model:
    """``model`` rebuilt with the dendrites into ``block`` multiplied by 0, same weights."""
    ablated = build_model(genome, model.input_shape[1:], min_size, zero_inputs_of=block)
    for layer in ablated.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return ablated


def block_maps(model: keras.Model, blocks: list[str], x: np.ndarray, batch_size: int,
               map_images: int = MAP_IMAGES) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Per block of ``blocks`` that ``model`` has, the mean |conv2 output| over ``x`` (images,
    pixels and channels) and the channel-mean |conv2 output| maps of the first ``map_images``
    images, from one forward pass per batch."""
    names = {b: f"{b}_{MAP_LAYER}" for b in blocks}
    present = [b for b in blocks if names[b] in {layer.name for layer in model.layers}]
    probe = keras.Model(model.input, [model.get_layer(names[b]).output for b in present])
    sums = dict.fromkeys(present, 0.0)
    counts = dict.fromkeys(present, 0)
    maps: dict[str, list[np.ndarray]] = {b: [] for b in present}
    for start in range(0, len(x), batch_size):
        outputs = probe(x[start:start + batch_size], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for block, out in zip(present, outputs):
            magnitude = np.abs(np.asarray(keras.ops.convert_to_numpy(out), dtype="float64"))
            sums[block] += float(magnitude.sum())
            counts[block] += magnitude.size
            if start < map_images:
                maps[block].append(magnitude[: map_images - start].mean(axis=-1).astype("float32"))
    means = {b: sums[b] / counts[b] for b in present}
    return means, {b: np.concatenate(maps[b])[:map_images] for b in present}


def write_maps(path, images: np.ndarray, masks: np.ndarray, maps: dict[str, dict[str, np.ndarray]],
               blocks: list[str], ablated: str, activity: dict[str, float], provenance: dict | None = None) -> None:
    """The maps file: the test images and masks, and ``maps/<model>/<block>`` (N, H, W); its
    attributes carry ``provenance`` (data set, trial, …) beside the ablated block."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("images", data=images)
            h5.create_dataset("masks", data=masks)
            for model, per_block in maps.items():
                group = h5.create_group(f"maps/{model}")
                for block, values in per_block.items():
                    group.create_dataset(block, data=values)
            h5.attrs.update(block=ablated, layer=MAP_LAYER, blocks=",".join(blocks),
                            models=",".join(maps), reduction="mean |activation| over channels",
                            **(provenance or {}))
            h5.create_group("activity").attrs.update(activity)


def _ablate(model: keras.Model, genome: Genome, block: str, data: Dataset, *, train: dict, seed: int,
            min_size: int) -> dict:
    """Zero the dendrites into ``block`` in the trained ``model`` and retrain ``genome`` without
    them from scratch under ``train`` and ``seed``; both models with their test metrics."""
    zeroed = zeroed_model(model, genome, block, min_size)
    pruned = genome.with_edges([e for e in genome.edges if e.dst != block])
    seed_everything(seed)
    retrained = build_model(pruned, data.input_shape, min_size)
    run = fit(retrained, data, **train)
    return {"zeroed": zeroed, "retrained": retrained, "pruned": pruned, "run": run,
            "zeroed_metrics": split_metrics(zeroed, data, "test", train["batch_size"]),
            "retrained_metrics": split_metrics(retrained, data, "test", train["batch_size"])}


def run_ablation(model: keras.Model, genome: Genome, data: Dataset, *, train: dict, seed: int,
                 activity_mode: str, metrics_path, maps_path, provenance: dict, min_size: int = MIN_SIZE) -> dict:
    """Zero and retrain the dendrites of the trained model's most active receiving block and
    of its control block (:func:`control_block`); write test Dice intact / zeroed / retrained
    of each, the mean |conv2| of every block of every model (``metrics_path``) and their maps
    on the first test images (``maps_path``). ``min_size`` is the search's, so the zeroed and
    retrained networks pool where the trained one does."""
    use_precision(train.get("precision", TRAIN_DEFAULTS["precision"]))  # the zeroed and retrained models too
    x_val, _ = data.split("val")
    activity = block_activity(model, x_val[: train["batch_size"]], activity_mode)
    block = ablation_block(genome, activity)
    control = control_block(genome, activity, block)
    log.info("ablating %d dendrite(s) of %s (activity %.4g); control: %s", len(genome.incoming(block)), block,
             activity[block], f"{control} (activity {activity[control]:.4g})" if control else "none")
    intact = split_metrics(model, data, "test", train["batch_size"])
    ablated = _ablate(model, genome, block, data, train=train, seed=seed, min_size=min_size)
    models = {"intact": model, "zeroed": ablated["zeroed"], "retrained": ablated["retrained"]}
    metrics = {
        **provenance, "genome_hash": genome.hash, "block": block, "block_activity": activity[block],
        "activity": activity, "edges": [e.to_dict() for e in genome.incoming(block)],
        "intact_dice": intact["dice"], "zeroed_dice": ablated["zeroed_metrics"]["dice"],
        "retrained_dice": ablated["retrained_metrics"]["dice"], "params_intact": count_params(model),
        "params_retrained": count_params(ablated["retrained"]),
        "retrained_genome_hash": ablated["pruned"].hash, "retrained_epochs": ablated["run"].epochs,
        "retrained_finite": ablated["run"].finite,
        "control_block": control, "control_block_activity": activity[control] if control else None,
        "control_edges": [e.to_dict() for e in genome.incoming(control)] if control else [],
        "control_zeroed_dice": None, "control_retrained_dice": None,
    }
    if control is not None:
        checked = _ablate(model, genome, control, data, train=train, seed=seed, min_size=min_size)
        models.update(control_zeroed=checked["zeroed"], control_retrained=checked["retrained"])
        metrics.update(control_zeroed_dice=checked["zeroed_metrics"]["dice"],
                       control_retrained_dice=checked["retrained_metrics"]["dice"],
                       params_control_retrained=count_params(checked["retrained"]),
                       control_retrained_genome_hash=checked["pruned"].hash,
                       control_retrained_epochs=checked["run"].epochs,
                       control_retrained_finite=checked["run"].finite)

    x_test, y_test = data.split("test")
    probed = {name: block_maps(m, genome.blocks, x_test, train["batch_size"]) for name, m in models.items()}
    write_maps(maps_path, x_test[:MAP_IMAGES], y_test[:MAP_IMAGES],
               {name: maps for name, (_, maps) in probed.items()}, genome.blocks, block, activity,
               {**provenance, "control_block": control or ""})
    metrics.update({
        "blocks": genome.blocks, "map_layer": MAP_LAYER,
        "mean_abs_activation": {name: means for name, (means, _) in probed.items()},
        "n_test": int(len(x_test)), "keras_backend": keras.config.backend(),
        "device": "gpu" if accelerator_visible() else "cpu",
    })
    write_json(metrics_path, metrics)
    log.info("test Dice intact %.4f, zeroed %.4f, retrained %.4f; control zeroed %s, retrained %s",
             intact["dice"], metrics["zeroed_dice"], metrics["retrained_dice"],
             _fmt(metrics["control_zeroed_dice"]), _fmt(metrics["control_retrained_dice"]))
    return metrics


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
