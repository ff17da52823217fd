"""Checks of execution 'torch' (bractivate.torch_exec) on the torch backend; prints one JSON
object. Run by tests/test_torch_exec.py in a process of its own, as the backend is fixed at
the first Keras import."""

import json
import os
import sys
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bractivate import torch_exec  # noqa: E402
from bractivate.baselines.nasunet import NAS_UNET_V3, Genotype, nas_unet  # noqa: E402
from bractivate.batchnorm import recalibrate_batchnorm  # noqa: E402
from bractivate.genome import Edge, Genome, unet_skip_edges  # noqa: E402
from bractivate.model import build_model  # noqa: E402
from bractivate.scores import binary_cross_entropy  # noqa: E402
from bractivate.train import fit, predict_batches, seed_everything  # noqa: E402
from helpers import blob_dataset  # noqa: E402

out = {}
torch.set_num_threads(1)
data = blob_dataset(n=16, size=32)
# Every layer the builder makes: concat and add dendrites across scales (resizing, 1x1
# projection), pooling, transposed convolutions, and a zeroed block (Rescaling).
genome = Genome(2, 4, tuple(unet_skip_edges(2)) + (Edge("enc0", "dec1", "add"), Edge("mid", "dec0", "concat")))
seed_everything(0)
model = build_model(genome, data.input_shape, zero_inputs_of="dec1")
out["layers"] = sorted({type(layer).__name__ for layer in model.layers})
program = torch_exec.TorchProgram(model)
x = data.split("train")[0][:8]
stats = [v.numpy().copy() for v in model.non_trainable_variables]
keras_train = keras.ops.convert_to_numpy(model(x, training=True))
keras_stats = [v.numpy().copy() for v in model.non_trainable_variables]
for variable, value in zip(model.non_trainable_variables, stats):
    variable.assign(value)
exec_train = program(torch.from_numpy(x), training=True).detach().numpy()
exec_stats = [v.numpy().copy() for v in model.non_trainable_variables]
out["train_output_diff"] = float(np.abs(keras_train - exec_train).max())
out["moving_stats_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(keras_stats, exec_stats))
out["moving_stats_moved"] = max(float(np.abs(a - b).max()) for a, b in zip(stats, exec_stats))
out["inference_output_diff"] = float(np.abs(keras.ops.convert_to_numpy(model(x, training=False))
                                            - program(torch.from_numpy(x), training=False).detach().numpy()).max())

# The same training under both executions: one batch per epoch, so the shuffled order cannot
# matter and the curves must agree up to float rounding.
curves = {}
for execution in ("eager", "torch"):
    seed_everything(1)
    m = build_model(genome, data.input_shape)
    run = fit(m, data, epochs=6, batch_size=16, learning_rate=1e-3, execution=execution)
    curves[execution] = run.history
    curves[execution + "_weights"] = m.get_weights()
out["curves"] = {k: curves[k] for k in ("eager", "torch")}
out["weights_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(curves["eager_weights"], curves["torch_weights"]))

# Several batches per epoch, early stopping: the weights of the best validation epoch come back.
seed_everything(2)
m = build_model(genome, data.input_shape)
run = fit(m, data, epochs=8, batch_size=4, learning_rate=1e-2, patience=2, min_delta=0.0, execution="torch")
x_val, y_val = data.split("val")
out["early"] = {"epochs": run.epochs, "best_epoch": run.best_epoch, "history": run.history,
                "finite": run.finite, "val_bcl_after": binary_cross_entropy(y_val, predict_batches(m, x_val))}

# The BatchNormalization statistics' re-estimation runs on this path too: re-estimating them
# again with Keras's own call on the restored best weights changes nothing.
x_train = data.split("train")[0]
for batchnorm in ("recalibrate", "moving"):
    seed_everything(3)
    m = build_model(genome, data.input_shape)
    fit(m, data, epochs=3, batch_size=4, learning_rate=1e-2, execution="torch", batchnorm=batchnorm)
    stats = [v.numpy().copy() for v in m.non_trainable_variables]
    recalibrate_batchnorm(m, x_train, 4)
    out[f"restats_diff_{batchnorm}"] = max(float(np.abs(a - v.numpy()).max())
                                           for a, v in zip(stats, m.non_trainable_variables))

# Still a Keras model: saved as .keras and loaded with Keras, it predicts the same.
path = Path(sys.argv[1]) / "model.keras"
m.save(path)
out["reload_diff"] = float(np.abs(predict_batches(keras.saving.load_model(path), x_val) - predict_batches(m, x_val)).max())

# NAS-UNet, with a genotype that uses every one of its operations: the same outputs and the
# same loss curve as Keras' own steps.
every_op = Genotype(
    down=(("avg_pool", 0), ("max_pool", 1), ("down_dep_conv", 0), ("identity", 2), ("down_conv", 1), ("dep_conv", 3),
          ("down_cweight", 0), ("dil_conv", 4), ("down_dil_conv", 1), ("cweight", 5)),
    down_concat=(2, 3, 4, 5, 6),
    up=(("up_cweight", 1), ("identity", 0), ("up_dep_conv", 1), ("dil_conv", 2), ("up_conv", 1), ("dep_conv", 0),
        ("up_dil_conv", 1), ("shuffle_conv", 3)),
    up_concat=(2, 3, 4, 5),
)
nas = {}
for label, genotype in (("v3", NAS_UNET_V3), ("every_op", every_op)):
    seed_everything(4)
    m = nas_unet(data.input_shape, channels=4, depth=2, genotype=genotype)
    nas.setdefault("layers", set()).update(type(layer).__name__ for layer in m.layers)
    nas_program = torch_exec.TorchProgram(m)
    nas[label] = max(float(np.abs(keras.ops.convert_to_numpy(m(x, training=mode))
                                  - nas_program(torch.from_numpy(x), training=mode).detach().numpy()).max())
                     for mode in (True, False))
for execution in ("eager", "torch"):
    seed_everything(5)
    m = nas_unet(data.input_shape, channels=4, depth=2, genotype=every_op)
    nas[execution] = fit(m, data, epochs=3, batch_size=16, learning_rate=1e-3, execution=execution).history
nas["fit_used_the_program"] = torch_exec.program_for(m) is not None
nas["layers"] = sorted(nas["layers"])
out["nasunet"] = nas

# A layer the program does not translate: refused by name, and fit falls back to Keras.
inputs = keras.Input(data.input_shape)
normalised = keras.layers.LayerNormalization(name="norm_head")(inputs)
other = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(normalised))
try:
    torch_exec.TorchProgram(other)
    out["refusal"] = ""
except NotImplementedError as err:
    out["refusal"] = str(err)
out["fallback_epochs"] = fit(other, data, epochs=2, batch_size=8, learning_rate=1e-3, execution="torch").epochs
print(json.dumps(out))
