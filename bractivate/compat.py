"""Every private API of Keras, matplotlib and Snakemake that the project uses, in one place.

Each function below reads or sets a name that its library does not document, for a reason
given in its docstring, at the version pinned in requirements.lock (Keras 3.15.1, matplotlib
3.11.2, Snakemake 9.27.1). tests/test_compat.py pins each name: after an upgrade that renames
or removes one, a test there fails and names it, instead of the project silently slowing down
or drawing wrong figures. Libraries are imported inside the functions, so the Snakefile can
import this module without importing Keras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

KERAS_PINNED = "3.15.1"
MATPLOTLIB_PINNED = "3.11.2"
SNAKEMAKE_PINNED = "9.27.1"


# Keras (pinned 3.15.1)

def flatten_layers(model) -> list:
    """Every layer of ``model``, nested models' layers included, without the model itself
    (``Model._flatten_layers``: ``model.layers`` lists only the top level)."""
    return list(model._flatten_layers(include_self=False))


def nodes_by_depth(model) -> dict[int, list]:
    """The nodes of a functional ``model`` by depth, 0 being the output
    (``Functional._nodes_by_depth``): the graph in an order in which each node's inputs are
    computed before it, from the deepest depth down."""
    return model._nodes_by_depth


def producing_layer_name(tensor) -> str:
    """The name of the layer whose call gave the symbolic ``tensor``
    (``KerasTensor._keras_history``)."""
    return tensor._keras_history.operation.name


def torch_device() -> str:
    """The device the torch Keras backend places its tensors on
    (``keras.src.backend.torch.core.get_device``)."""
    from keras.src.backend.torch.core import get_device

    return get_device()


@contextlib.contextmanager
def tensorflow_taken_as_unavailable() -> Iterator[None]:
    """Within the context, Keras takes TensorFlow as not installed (the ``_available`` flag of
    ``keras.src.utils.module_utils.tensorflow``): its serializer then does not import
    TensorFlow only to ask whether a value is a ``tf.TensorShape``."""
    from keras.src.utils.module_utils import tensorflow as lazy_tensorflow

    available = lazy_tensorflow._available
    lazy_tensorflow._available = False
    try:
        yield
    finally:
        lazy_tensorflow._available = available


def set_keras_global_seed(seed: int) -> None:
    """Set the two global attributes ``keras.utils.set_random_seed`` sets (the global seed and
    a fresh global seed generator), without that function's seeding of TensorFlow."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def compiled_loss(model):
    """The compiled loss container of a compiled ``model`` (``Trainer._compile_loss``), or None
    where the model has none."""
    return getattr(model, "_compile_loss", None)


# matplotlib (pinned 3.11.2)

def suptitle(figure):
    """The suptitle ``Text`` of a figure or subfigure, or None (``FigureBase._suptitle``;
    ``get_suptitle`` gives only its string, not its extent)."""
    return figure._suptitle


def side_titles(ax) -> tuple:
    """The left and right title ``Text`` objects of ``ax`` (``Axes._left_title`` and
    ``Axes._right_title``; ``ax.title`` is only the centre one)."""
    return ax._left_title, ax._right_title


# Snakemake (pinned 9.27.1)

def command_line_config(workflow) -> dict:
    """What ``--config`` and ``--configfile`` gave, merged
    (``workflow.config_settings.overwrite_config``)."""
    return workflow.config_settings.overwrite_config


def config_files(workflow) -> list:
    """config.yaml and every ``--configfile``, in the order read (``workflow.configfiles``)."""
    return workflow.configfiles
