"""Export a trained model for use elsewhere (``bractivate export``): the network as ONNX and a
bioimage.io model package that Fiji (deepImageJ), ilastik, napari and QuPath can load.

``OUT/`` receives ``model.onnx``; the package: ``rdf.yaml``, ``test_input.npy`` and
``test_output.npy``, ``cover.png`` and ``README.md``; the same package zipped as
``bioimageio-package.zip`` (uploadable as it is); and ``export.json``, the checks' results.

Before anything is written the command checks that the model is a one-channel segmentation
network (one square single-channel input, a sigmoid map of the same size out). It then checks
its own output: onnxruntime on the model's own test images must equal Keras within
``TOLERANCE``, and the package must pass bioimage.io's own model test
(``bioimageio.core.test_model``, what ``bioimageio test`` runs). A failed check leaves ``OUT/``
as it was.

The package states its pre- and post-processing so that a tool that knows nothing of this
project reproduces ``bractivate predict``: the input is one grayscale channel at the model's
size, scaled per image to [0, 1] by its minimum and maximum (``scale_range`` over y and x,
percentiles 0 and 100); the output is the probability map, binarized at 0.5. What the format
cannot state — the bilinear resize to the input size and of the map back to the image's size —
the package's README does.

onnx, onnxruntime and bioimageio are imported here only: nothing else in the package needs them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np

from bractivate.compat import producing_layer_name

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # onnxruntime against Keras, largest absolute difference of a probability
PACKAGE_ZIP = "bioimageio-package.zip"
THRESHOLD = 0.5
CITATION = {"text": "Abdelrahman, L. Bractivate: Dendritic Branching in Medical Image Segmentation Neural "
                    "Architecture Search. ICLR 2021 submission.",
            "url": "https://openreview.net/forum?id=X9LHtgR4vq"}


def check_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; expected the output folder")
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: exists; pass --overwrite to replace it or choose another folder")


def check_segmentation_model(model, path) -> int:
    """The input size of a one-channel segmentation network, or a one-line error naming ``path``."""
    import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{path}: not a one-channel segmentation network: {len(model.inputs)} input(s) and "
                         f"{len(model.outputs)} output(s); expected one of each")
    shape_in, shape_out = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    size = shape_in[1] if len(shape_in) == 4 else None
    if len(shape_in) != 4 or not isinstance(size, int) or shape_in[2] != size or shape_in[3] != 1:
        raise ValueError(f"{path}: not a one-channel segmentation network: input {shape_in}; "
                         "expected (None, N, N, 1)")
    if shape_out != (shape_in[0], size, size, 1):
        raise ValueError(f"{path}: not a one-channel segmentation network: output {shape_out} for input "
                         f"{shape_in}; expected one channel of the input's size")
    last = model.get_layer(producing_layer_name(model.outputs[0]))
    activation = getattr(last, "activation", None)
    if activation is not keras.activations.sigmoid:
        name = getattr(activation, "__name__", type(last).__name__)
        raise ValueError(f"{path}: not a one-channel segmentation network: its output layer {last.name!r} "
                         f"ends in {name}, not a sigmoid probability")
    return size


def _find(given, recorded, layout: str | None, what: str) -> Path | None:
    """The file given on the command line, else the one metrics.json records, else the one at
    the workflow's layout (relative to the working directory)."""
    if given:
        if not Path(given).is_file():
            raise FileNotFoundError(f"{given}: {what} not found")
        return Path(given)
    for candidate in (recorded, layout):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _sources(model_path: Path, data_path, genome_path) -> tuple[dict, Path, Path | None]:
    """metrics.json beside the model, the data set it was trained on and its genome file."""
    from bractivate.io import read_json

    metrics_path = model_path.parent / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else {}
    if not isinstance(metrics, dict):
        metrics = {}
    dataset = metrics.get("dataset")
    layout_data = f"resources/{dataset}.h5" if dataset else None
    layout_genome = (f"results/search/{dataset}/{metrics['experiment']}/trial{metrics['trial']}/best_genome.json"
                     if dataset and "experiment" in metrics and "trial" in metrics else None)
    data = _find(data_path, metrics.get("data_file"), layout_data, "data set file")
    if data is None:
        raise ValueError(f"{model_path}: cannot tell which data set it was trained on; pass --data DATA.h5 "
                         "(its test images check the export)")
    genome = _find(genome_path, metrics.get("genome_file"), layout_genome, "genome file")
    return metrics, data, genome


def _load_keras_model(model_path: Path):
    import keras

    from bractivate.pipeline import _tensorflow_left_unimported
    from bractivate.predict import load_model

    if keras.config.backend() != "torch":
        raise ValueError(f"bractivate export runs on the PyTorch backend (the ONNX export goes through it); "
                         f"KERAS_BACKEND is {keras.config.backend()!r}: unset it or set it to torch")
    with _tensorflow_left_unimported():  # loading asks about tf.TensorShape: 3.4 s of TensorFlow import
        return load_model(model_path)


def keras_predict(model, x: np.ndarray) -> np.ndarray:
    from bractivate.train import predict_batches

    return predict_batches(model, x.astype(np.float32))


def export_onnx(model, size: int, path: Path) -> tuple[int, str]:
    """Write ``model`` as ONNX with a dynamic batch axis; return its opset version and the route.

    A genome's network goes through its torch program (bractivate.torch_exec: the same function
    on the same variables as the Keras model, the path its training runs) and PyTorch's
    TorchScript exporter: Keras' own export fails on the genomes' Resizing layers (a multi-axis
    squeeze) under a dynamic batch, and its static-batch route (torch.export) fails too. Any
    other model goes through Keras' own export. Either way the caller compares onnxruntime
    with Keras on the test images."""
    import onnx
    import torch

    from bractivate.torch_exec import program_for

    # Keras exports only a model that was called. Known discrepancy (docs/reliability.md): on
    # PyTorch, Keras' Resizing layer (the genomes' resized dendrites) computes like TensorFlow's
    # on the first call of a model loaded with TensorFlow left unimported, and on every call when
    # TensorFlow is imported, and like its torch program (F.interpolate) on later calls; the two
    # differ by up to ~1e-2 in probability on the test model. The ONNX file follows the torch
    # program, the function the training runs under execution `torch`; the check compares it
    # with Keras after this first call.
    model(np.zeros((1, size, size, 1), np.float32))
    program = program_for(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if program is not None:
            class Inference(torch.nn.Module):
                def forward(self, x):
                    return program(x, training=False)

            grads = [v.value.requires_grad for v in model.variables]
            for v in model.variables:  # weights become constants of the graph
                v.value.requires_grad_(False)
            try:
                torch.onnx.export(Inference(), (torch.zeros((1, size, size, 1)),), str(path), dynamo=False,
                                  input_names=["image"], output_names=["mask"],
                                  dynamic_axes={"image": {0: "batch"}, "mask": {0: "batch"}})
            finally:
                for v, grad in zip(model.variables, grads):
                    v.value.requires_grad_(grad)
            route = "torch program (bractivate.torch_exec), TorchScript exporter"
        else:
            model.export(str(path), format="onnx", verbose=False)
            route = "Keras export"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    return int(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))), route


def onnx_predict(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 16].astype(np.float32)})[0]
                           for i in range(0, len(x), 16)])


def scale_range(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """bioimage.io's ``scale_range`` with percentiles 0 and 100 over y and x, per image."""
    low = x.min(axis=(1, 2), keepdims=True)
    high = x.max(axis=(1, 2), keepdims=True)
    return ((x - low) / (high - low + eps)).astype(np.float32)


def _cover(image: np.ndarray, mask: np.ndarray, path: Path) -> None:
    """Input and predicted mask side by side (2:1, as bioimage.io recommends), at least 512 wide."""
    from PIL import Image

    pair = np.concatenate([image, mask.astype(np.float32)], axis=1)
    scale = max(1, -(-256 // image.shape[0]))
    pixels = (np.clip(pair, 0, 1) * 255).astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
    Image.fromarray(pixels).save(path, format="PNG")


def _readme(name: str, facts: dict) -> str:
    f = facts
    origin = (f"search experiment `{f['experiment']}`, trial {f['trial']}" if f.get("experiment") is not None
              else "a `bractivate search` run")
    genome = f"\n```\n{f['genome_table']}\n```\n" if f.get("genome_table") else f" (hash `{f['genome_hash']}`)\n"
    return f"""# {name}

A UNet whose skip connections ("dendrites") were found by Bractivate's evolutionary
architecture search (ICLR 2021 workshop) and then trained in full; exported by `bractivate export`.

## Data and result

- Data set: `{f['dataset']}` (`{f['data_file']}`): {f['n_images']} images at {f['size']}×{f['size']}, split
  train / val / test = {f['split']['train']} / {f['split']['val']} / {f['split']['test']} images.
- Test Dice: **{f['test_dice']:.4f}** on the {f['split']['test']} held-out test images (threshold {THRESHOLD}).
- Trainable parameters: {f['params']:,}.
- Genome `{f['genome_hash']}`, from {origin}{genome}
## Input and preprocessing

One image, one grayscale channel, axes (batch, y, x, channel), float32. To reproduce
`bractivate predict` exactly:

1. convert the image to grayscale;
2. resize it to {f['size']}×{f['size']} bilinearly (`skimage.transform.resize`, order 1, anti-aliased
   when shrinking);
3. scale it to [0, 1] by its own minimum and maximum: the package's `scale_range` preprocessing
   (percentiles 0 and 100 over y and x) does this step.

## Output and postprocessing

The network outputs the foreground probability, {f['size']}×{f['size']}, one channel. The package's
`binarize` postprocessing thresholds it at {THRESHOLD}: 1 is foreground. `bractivate predict` resizes the
probability map back to the image's own size bilinearly before thresholding it.

## Files

- `model.onnx`: the network (ONNX opset {f['opset']}, dynamic batch axis). onnxruntime's output equals
  Keras' within {f['tolerance']:g} on the {f['split']['test']} test images (largest difference
  {f['onnx_max_abs_diff']:.2g}).
- `test_input.npy`, `test_output.npy`: a test image and the mask the package must produce from it.
- `cover.png`: that test image and its predicted mask.

## Validation

Test Dice {f['test_dice']:.4f} on the {f['split']['test']} held-out test images of `{f['dataset']}`, which played no
part in the search or the training (the search chose the genome on the validation split). The
package passes bioimage.io's own model test (`bioimageio test`): its pre- and post-processing
reproduce `test_output.npy` from `test_input.npy`.

TorchScript weights are not included: the network is a Keras model, and ONNX is its exact export.
"""


def export_model(model_path, out_dir, *, data_path=None, genome_path=None, overwrite: bool = False,
                 tolerance: float = TOLERANCE, test_package: bool = True) -> dict:
    """Write the ONNX file and the bioimage.io package of ``model_path`` into ``out_dir`` (see the
    module's docstring); return the checks' results (also written as ``export.json``)."""
    from bractivate.genome import Genome
    from bractivate.io import load_dataset
    from bractivate.model import count_params

    model_path, out = Path(model_path), Path(out_dir)
    check_out_dir(out, overwrite)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: model file not found")
    metrics, data_file, genome_file = _sources(model_path, data_path, genome_path)
    genome = Genome.load(genome_file) if genome_file else None
    data = load_dataset(data_file)
    model = _load_keras_model(model_path)
    size = check_segmentation_model(model, model_path)
    if data.images.shape[1:3] != (size, size):
        raise ValueError(f"{data_file}: images of {data.images.shape[1]}×{data.images.shape[2]}, but the model "
                         f"{model_path} takes {size}×{size}; pass --data with the data set it was trained on")
    x_test = data.split("test")[0].astype(np.float32)

    work = out.with_name(f".{out.name}.export-tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        opset, route = export_onnx(model, size, work / "model.onnx")
        difference = float(np.max(np.abs(onnx_predict(work / "model.onnx", x_test) - keras_predict(model, x_test))))
        if not difference <= tolerance:
            raise RuntimeError(f"{model_path}: onnxruntime differs from Keras by {difference:.3g} on the test "
                               f"images (tolerance {tolerance:g}); nothing exported")
        log.info("ONNX (%s): opset %d, onnxruntime within %.2g of Keras on %d test images", route, opset, difference,
                 len(x_test))
        test_input = x_test[:1]
        probability = keras_predict(model, scale_range(test_input))
        test_output = (probability > THRESHOLD).astype(np.float32)
        np.save(work / "test_input.npy", test_input)
        np.save(work / "test_output.npy", test_output)
        _cover(test_input[0, ..., 0], test_output[0, ..., 0], work / "cover.png")
        from bractivate.pipeline import describe_genome

        hash_ = genome.hash if genome else metrics.get("genome_hash", "unknown")
        dataset = metrics.get("dataset") or data_file.stem
        facts = {
            "dataset": dataset, "data_file": data_file.as_posix(), "size": size, "n_images": len(data.images),
            "split": {k: int(len(v)) for k, v in data.splits.items()},
            "test_dice": metrics.get("test_dice", float("nan")), "params": int(count_params(model)),
            "genome_hash": hash_, "experiment": metrics.get("experiment"), "trial": metrics.get("trial"),
            "genome_table": describe_genome(genome, (size, size, 1)) if genome else "",
            "opset": opset, "onnx_max_abs_diff": difference, "tolerance": tolerance,
        }
        name = f"Bractivate {dataset} {hash_[:8]}"
        (work / "README.md").write_text(_readme(name, facts))
        rdf = _rdf(name, facts, genome, metrics, opset, size)
        import yaml

        (work / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True))
        status = _test_package(work / "rdf.yaml") if test_package else "not run"
        _zip(work, work / PACKAGE_ZIP)
        checks = {"onnx_max_abs_diff": difference, "tolerance": tolerance, "test_images": int(len(x_test)),
                  "onnx_route": route,
                  "bioimageio_test": status, "opset": opset, "package": PACKAGE_ZIP, "model": model_path.as_posix()}
        (work / "export.json").write_text(json.dumps(checks, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return checks


def _rdf(name: str, facts: dict, genome, metrics: dict, opset: int, size: int) -> dict:
    from bioimageio.spec.model.v0_5 import ModelDescr

    space = [{"type": "space", "id": axis, "size": size} for axis in ("y", "x")]
    return {
        "type": "model",
        "format_version": ModelDescr.implemented_format_version,
        "name": name,
        "description": (f"Binary segmentation of {facts['dataset']} images ({size}×{size}, one channel) by a UNet "
                        f"whose skip connections Bractivate's architecture search found; test Dice "
                        f"{facts['test_dice']:.3f}, {facts['params']:,} parameters."),
        "authors": [{"name": "Bractivate contributors"}],
        "cite": [CITATION],
        "license": "MIT",
        "documentation": {"source": "README.md"},
        "covers": [{"source": "cover.png"}],
        "tags": ["segmentation", "2d", "unet", "binary-segmentation", "bractivate", "neural-architecture-search"],
        "inputs": [{
            "id": "image",
            "description": "one grayscale image, resized bilinearly to the model's size (see README.md)",
            "axes": [{"type": "batch"}, *space, {"type": "channel", "channel_names": ["gray"]}],
            "test_tensor": {"source": "test_input.npy"},
            "data": {"type": "float32"},
            "preprocessing": [{"id": "scale_range",
                               "kwargs": {"axes": ["y", "x"], "min_percentile": 0.0, "max_percentile": 100.0}}],
        }],
        "outputs": [{
            "id": "mask",
            "description": f"foreground (1) where the predicted probability is above {THRESHOLD}",
            "axes": [{"type": "batch"}, *space, {"type": "channel", "channel_names": ["foreground"]}],
            "test_tensor": {"source": "test_output.npy"},
            "data": {"type": "float32"},
            "postprocessing": [{"id": "binarize", "kwargs": {"threshold": THRESHOLD}}],
        }],
        "weights": {"onnx": {"source": "model.onnx", "opset_version": opset}},
        "config": {"bractivate": {
            "genome": genome.to_dict() if genome else None, "genome_hash": facts["genome_hash"],
            "dataset": facts["dataset"], "experiment": facts["experiment"], "trial": facts["trial"],
            "split": facts["split"], "test_dice": facts["test_dice"], "params": facts["params"],
            "seed": metrics.get("seed"), "keras_backend": metrics.get("keras_backend"),
        }},
    }


def _test_package(rdf: Path) -> str:
    """bioimage.io's own validation and model test (what ``bioimageio test`` runs): "passed", or
    a one-line error with the first failure."""
    os.environ.setdefault("BIOIMAGEIO_PERFORM_IO_CHECKS", "false")  # no network: the cite URL is not fetched
    from bioimageio.core import test_model

    summary = test_model(rdf, devices=["cpu"])
    if summary.status != "passed":
        failures = [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors] or [str(summary.status)]
        raise RuntimeError(f"{rdf}: the bioimage.io model test failed ({len(failures)} error(s)): {failures[0]}")
    return "passed"


def _zip(folder: Path, path: Path) -> None:
    """The package as one zip: rdf.yaml and the files it names, at the archive's root."""
    files = ["rdf.yaml", "model.onnx", "test_input.npy", "test_output.npy", "cover.png", "README.md"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(folder / name, name)
