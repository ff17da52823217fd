"""Pins of the private APIs in bractivate.compat: each test fails, naming the private name,
when an upgrade of Keras, matplotlib or Snakemake renames or removes it."""

import importlib.metadata
import importlib.util
from pathlib import Path

import keras
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bractivate import compat  # noqa: E402


@pytest.mark.parametrize("package, pinned", [("keras", compat.KERAS_PINNED),
                                             ("matplotlib", compat.MATPLOTLIB_PINNED),
                                             ("snakemake", compat.SNAKEMAKE_PINNED)])
def test_the_pinned_versions_are_the_installed_ones(package, pinned):
    """A version change is the moment to read bractivate/compat.py again: update its pins then."""
    assert importlib.metadata.version(package) == pinned


def _functional():
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    inner = keras.Sequential([keras.layers.BatchNormalization(name="inner_bn")], name="inner")
    return keras.Model(inputs, keras.layers.ReLU(name="relu")(inner(x)))


def test_keras_flatten_layers_reaches_nested_models():
    names = [layer.name for layer in compat.flatten_layers(_functional())]
    assert "inner_bn" in names and "conv" in names


def test_keras_nodes_by_depth_orders_the_graph_from_the_output():
    graph = compat.nodes_by_depth(_functional())
    assert [node.operation.name for node in graph[0]] == ["relu"]
    assert [node.operation.name for node in graph[max(graph)]] == ["image"]


def test_keras_history_names_the_producing_layer():
    model = _functional()
    assert compat.producing_layer_name(model.outputs[0]) == "relu"


def test_keras_compiled_loss_is_the_loss_container():
    model = _functional()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    loss = compat.compiled_loss(model)
    assert loss is not None and hasattr(loss, "built") and hasattr(loss, "build")


def test_keras_lazy_tensorflow_flag_is_set_and_restored():
    from keras.src.utils.module_utils import tensorflow as lazy_tensorflow

    before = lazy_tensorflow._available
    with compat.tensorflow_taken_as_unavailable():
        assert lazy_tensorflow.available is False
    assert lazy_tensorflow._available == before


def test_keras_global_seed_is_what_set_random_seed_sets():
    from keras.src.utils import rng_utils

    compat.set_keras_global_seed(11)
    assert rng_utils.get_random_seed() == 11


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_keras_torch_get_device_exists():
    from keras.src.backend.torch import core

    assert callable(core.get_device)


def test_matplotlib_suptitle_and_side_titles_are_text_objects():
    fig, ax = plt.subplots()
    fig.suptitle("whole")
    ax.set_title("left", loc="left")
    ax.set_title("right", loc="right")
    try:
        assert compat.suptitle(fig).get_text() == "whole"
        assert [t.get_text() for t in compat.side_titles(ax)] == ["left", "right"]
        assert compat.suptitle(fig.subfigures(1, 1)) is None
    finally:
        plt.close(fig)


def test_snakemake_config_settings_keep_the_command_line_config():
    from snakemake.settings.types import ConfigSettings

    settings = ConfigSettings(config={"datasets": {"blobs": {}}})
    assert settings.overwrite_config == {"datasets": {"blobs": {}}}


def test_snakemake_workflow_lists_its_config_files():
    # Read, not imported: snakemake.workflow imports only after snakemake.api has set it up.
    source = Path(importlib.util.find_spec("snakemake.workflow").origin).read_text()
    assert "self.configfiles = list(self.config_settings.configfiles)" in source
