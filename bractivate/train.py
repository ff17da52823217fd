"""Train a model in full (docs/method.md#experiments): the training protocol, device detection, seeding and precision.

:func:`fit` is the one training protocol of the project: Adam, binary cross-entropy, early
stopping on the validation loss with the best weights restored. The search, the full training,
the ablation's retraining and the baselines all go through it; the search's own evaluation of
a genome is :mod:`bractivate.evaluation`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from bractivate.batchnorm import recalibrate_batchnorm
from bractivate.compat import compiled_loss, set_keras_global_seed
from bractivate.io import Dataset
from bractivate.scores import binary_cross_entropy, collapsed, dice

# How Keras runs the training step: `auto` lets Keras choose (XLA where the backend supports
# it), `graph` compiles without XLA, `eager` compiles nothing — fastest for tiny data, where
# tracing a model costs more than the few steps it would speed up.
# `torch` runs the training steps of a PyTorch-backend float32 genome model as torch calls on
# its own variables (bractivate.torch_exec; 1.9x faster than `eager` on the CPU,
# docs/benchmarks.md); models it cannot translate run as under `auto`.
EXECUTIONS = {"auto": {}, "graph": {"jit_compile": False}, "eager": {"run_eagerly": True},
              "torch": {}}
# Keras dtype policies. float32 is the default: on an H200 mixed_bfloat16 made the search's
# small models no faster (docs/benchmarks.md); mixed_float16 is for GPUs without bfloat16.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# BatchNormalization statistics for inference-mode evaluation (docs/method.md#batchnorm-statistics):
# `recalibrate` re-estimates them on the train split after every epoch; `moving` keeps Keras'
# moving averages, stale for models trained for a few dozen steps (kept to measure exactly that).
BATCHNORM_MODES = ("recalibrate", "moving")
# What picks the kept epoch and what early stopping watches (docs/method.md#training-protocol).
MONITORS = ("val_loss", "val_dice")


@functools.lru_cache(maxsize=1)
def accelerator_visible() -> bool:
    """Whether the Keras backend sees a GPU."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def use_precision(precision: str) -> str:
    """Set the Keras dtype policy for the models built next; return its name."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not in {PRECISIONS}")
    keras.config.set_dtype_policy(precision)
    return precision


def tensorflow_unused() -> bool:
    """Whether this process runs another Keras backend and has not imported TensorFlow: then
    nothing needs it seeded or serialised, and importing it would cost 3.4 s (docs/benchmarks.md)."""
    return keras.config.backend() != "tensorflow" and "tensorflow" not in sys.modules


def seed_everything(seed: int) -> None:
    """The one place that seeds Python, NumPy, the Keras backend and Keras' global seed
    generator: what ``keras.utils.set_random_seed`` does, except that on another backend it
    does not import TensorFlow only to seed it (3.4 s of every PyTorch job, docs/benchmarks.md)."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    seed = int(seed) % 2**31
    if not tensorflow_unused():
        keras.utils.set_random_seed(seed)
        return
    # Private API of Keras (bractivate.compat); tests/test_torch_exec.py::
    # test_seeding_on_torch_matches_keras_and_imports_no_tensorflow fails if this stops matching it.
    set_keras_global_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    if keras.config.backend() == "torch":
        import torch

        torch.manual_seed(seed)


class ValidateAndStop(keras.callbacks.Callback):
    """The end of every epoch: BatchNormalization statistics re-estimated on the train split
    (:mod:`bractivate.batchnorm`), the validation loss in inference mode, early stopping, and
    the epoch's wall time, training and validation together.

    Training stops after ``patience`` epochs without an improvement of more than ``min_delta``
    over the reference loss; the weights of the epoch with the lowest validation loss, whether
    or not it beat the reference by ``min_delta``, are restored at the end (moving statistics
    included, so the restored model predicts as it did when it was validated). With ``monitor``
    ``val_dice`` the same holds for the validation Dice at threshold 0.5, highest best (tracked
    as its negative), which is then also in the logs.
    """

    def __init__(self, forward, train_x, val_x, val_y, *, batch_size: int, patience: int | None,
                 min_delta: float, batchnorm: str, monitor: str = "val_loss"):
        super().__init__()
        # forward(x, training=...): the Keras model itself, or its torch program (execution
        # `torch`), which computes the same function on the same variables.
        self.forward = forward
        self.train_x, self.val_x, self.val_y = train_x, val_x, val_y
        self.batch_size, self.batchnorm = batch_size, batchnorm
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best_loss, self.best_weights, self.best_epoch = math.inf, None, -1
        self.reference, self.wait, self.seconds = math.inf, 0, []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.batchnorm == "recalibrate":
            recalibrate_batchnorm(self.model, self.train_x, self.batch_size, forward=self.forward)
        val_loss = mean_bce(self.forward, self.val_x, self.val_y, self.batch_size)
        if logs is not None:
            logs["val_loss"] = val_loss  # the same dict reaches the History callback after this one
        loss = val_loss
        if self.monitor == "val_dice" and math.isfinite(val_loss):
            val_dice = _val_dice(self.forward, self.val_x, self.val_y, self.batch_size)
            if logs is not None:
                logs["val_dice"] = val_dice
            loss = -val_dice
        self.seconds.append(time.perf_counter() - self._start)
        if not math.isfinite(loss):
            self.model.stop_training = True
            return
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_weights = self.model.get_weights()
        if loss < self.reference - self.min_delta:
            self.reference, self.wait = loss, 0
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def mean_bce(forward, x, y, batch_size: int) -> float:
    """Binary cross-entropy of ``forward`` in inference mode on ``(x, y)``, averaged over pixels,
    as Keras' ``binary_crossentropy`` computes it (probabilities clipped to [1e-7, 1 - 1e-7])."""
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        pred = forward(x[start:start + batch_size], training=False)
        true = keras.ops.cast(y[start:start + batch_size], pred.dtype)
        loss = keras.ops.sum(keras.losses.binary_crossentropy(true, pred))
        total += float(keras.ops.convert_to_numpy(loss))
        count += int(math.prod(pred.shape[:-1]))
    return total / count if count else math.nan


def _val_dice(forward, x, y, batch_size: int) -> float:
    """Dice of ``forward`` in inference mode on ``(x, y)`` at threshold 0.5, as the test split is
    scored (:func:`bractivate.scores.dice`)."""
    pred = [keras.ops.convert_to_numpy(forward(x[start:start + batch_size], training=False))
            for start in range(0, len(x), batch_size)]
    return dice(keras.ops.convert_to_numpy(y), np.concatenate(pred))


@dataclass
class FitResult:
    """What one training run measured."""

    epochs: int
    best_epoch: int
    seconds_per_epoch: float
    train_seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    finite: bool = True


def _training_arrays(data: Dataset, split: str):
    """A split as ``fit`` takes it: on a GPU, backend tensors copied there once per job (no
    step waits for a host-to-device copy); elsewhere the NumPy arrays."""
    if not accelerator_visible():
        return data.split(split)
    key = f"{split}@{keras.config.backend()}"
    if key not in data.cache:
        data.cache[key] = tuple(keras.ops.convert_to_tensor(a) for a in data.split(split))
    return data.cache[key]


def _torch_exec():
    """bractivate.torch_exec, imported on first use: it imports torch, which a TensorFlow job lacks."""
    from bractivate import torch_exec

    return torch_exec


def _torch_program(model: keras.Model):
    """The torch-native program of ``model`` for execution ``torch``, or None where it cannot
    run (another backend, another layer: ``fit`` then lets Keras choose, as ``auto`` does).
    On another backend the fallback is logged as a warning, once per process and backend."""
    backend = keras.config.backend()
    if backend != "torch":
        _warn_torch_execution_elsewhere(backend)
        return None
    return _torch_exec().program_for(model)


@functools.lru_cache(maxsize=None)
def _warn_torch_execution_elsewhere(backend: str) -> None:
    """Say, once per backend, that execution ``torch`` runs as ``auto`` on ``backend``."""
    logging.getLogger(__name__).warning(
        "execution 'torch' needs the torch Keras backend; on backend %r the training steps run as "
        "under execution 'auto' (set KERAS_BACKEND=torch, or execution to 'auto' to silence this)", backend)


def _build_loss(model: keras.Model) -> None:
    """Build the compiled loss from the output's known shape. Otherwise ``fit`` runs the whole
    model symbolically to learn that shape, which costs ~0.4 s per model on the PyTorch
    backend (half of a demo evaluation's overhead, docs/benchmarks.md)."""
    # Private API of Keras (bractivate.compat): if ``_compile_loss`` goes, this silently does nothing
    # and fit pays the symbolic pass again; tests/test_model.py::test_compiled_loss_is_built_from_the_output_shape
    # fails loudly instead.
    loss = compiled_loss(model)
    if loss is not None and not loss.built and len(model.outputs) == 1:
        output = model.outputs[0]
        loss.build(keras.KerasTensor(output.shape, "float32"), output)


def compiled_forward(model: keras.Model, execution: str):
    """``model(x, training=...)`` for the end-of-epoch passes (statistics re-estimation and
    validation): on TensorFlow a function traced once per mode, unless execution is ``eager``;
    elsewhere the model itself. Eager TensorFlow calls made those passes 27.9 of a demo R2-UNet's
    54.5 s of ``fit`` (7.8 of 32.0 s traced, docs/benchmarks.md). The training-mode function is traced during the
    re-estimation, with momentum 0 (:func:`~bractivate.batchnorm.recalibrate_batchnorm`), and
    keeps that momentum: it serves nothing else."""
    if keras.config.backend() != "tensorflow" or execution == "eager":
        return model
    import tensorflow as tf

    # One trace per mode: any batch size (the last batch of a split is often smaller).
    signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)]
    modes = {training: tf.function(functools.partial(model.__call__, training=training), input_signature=signature)
             for training in (False, True)}
    return lambda x, training: modes[bool(training)](tf.convert_to_tensor(x))


def fit(model: keras.Model, data: Dataset, *, epochs: int, batch_size: int, learning_rate: float,
        patience: int | None = None, min_delta: float = 0.0, execution: str = "auto",
        precision: str | None = None, batchnorm: str = "recalibrate", monitor: str = "val_loss",
        callbacks: tuple = (), verbose: int = 0) -> FitResult:
    """Train ``model`` on the train split with Adam and binary cross-entropy, validating on the
    val split in inference mode after re-estimating its BatchNormalization statistics; keep the
    weights of the best validation epoch by ``monitor`` (docs/method.md, "Training protocol"). ``precision``, if
    given, must be the policy the model was built under (see :func:`use_precision`).
    ``callbacks`` (Keras callbacks) see each epoch's end after the validation, with its
    ``val_loss`` in the logs: to observe training, not to change it."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution {execution!r} not in {tuple(EXECUTIONS)}")
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm {batchnorm!r} not in {BATCHNORM_MODES}")
    if monitor not in MONITORS:
        raise ValueError(f"monitor {monitor!r} not in {MONITORS}")
    if precision is not None and model.dtype_policy.name != precision:
        raise ValueError(f"model {model.name} was built under dtype policy {model.dtype_policy.name}, "
                         f"not {precision!r}; call use_precision before building it")
    x_train, y_train = _training_arrays(data, "train")
    x_val, y_val = _training_arrays(data, "val")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"need non-empty train and val splits, got {len(x_train)} and {len(x_val)}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  **EXECUTIONS[execution])
    _build_loss(model)
    # Built here, eagerly: created inside the first traced training step (TensorFlow), the
    # optimizer's variables cost ~20 ms each to lift out of the graph, and TensorFlow then
    # traces the step a second time (a demo R2-UNet's first epoch: 25 s, 19 s built here,
    # docs/benchmarks.md).
    model.optimizer.build(model.trainable_variables)
    program = _torch_program(model) if execution == "torch" else None
    if program is not None:
        x_train, y_train, x_val, y_val = _torch_exec().on_device(x_train, y_train, x_val, y_val)
    stopper = ValidateAndStop(program or compiled_forward(model, execution), x_train, x_val, y_val,
                              batch_size=batch_size, patience=patience, min_delta=min_delta, batchnorm=batchnorm,
                              monitor=monitor)
    if program is not None:
        history = _torch_exec().fit_arrays(model, program, x_train, y_train, epochs=epochs,
                                           batch_size=batch_size, callbacks=[stopper, *callbacks])
    else:
        history = model.fit(
            x_train, y_train, epochs=epochs, batch_size=batch_size,
            shuffle=True, verbose=verbose, callbacks=[keras.callbacks.TerminateOnNaN(), stopper, *callbacks],
        ).history
    losses = history.get("loss", []) + history.get("val_loss", [])
    timed = stopper.seconds[1:] or stopper.seconds
    return FitResult(
        epochs=len(stopper.seconds),
        best_epoch=stopper.best_epoch,
        seconds_per_epoch=float(np.median(timed)) if timed else math.nan,
        train_seconds=float(sum(stopper.seconds)),
        history={k: [float(v) for v in vals] for k, vals in history.items()},
        finite=bool(losses) and all(math.isfinite(v) for v in losses) and stopper.best_weights is not None,
    )


def predict_batches(model: keras.Model, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``model`` called batch by batch: no predict function is traced for a model used once."""
    return np.concatenate([
        np.asarray(keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False)), dtype="float32")
        for i in range(0, len(x), batch_size)
    ])


def split_metrics(model: keras.Model, data: Dataset, split: str, batch_size: int = 16) -> dict:
    """BCL and Dice of ``model`` on one split, and whether it predicts one class everywhere there."""
    x, y = data.split(split)
    pred = predict_batches(model, x, batch_size)
    return {"bcl": binary_cross_entropy(y, pred), "dice": dice(y, pred), "collapsed": collapsed(y, pred)}
