"""Segment a folder of a user's own images with a trained model (``bractivate predict``).

Each image goes through the training preprocessing (grayscale, bilinear resize to the model's
input size, min-max to [0, 1]); the predicted probability map is resized back to the image's
native size bilinearly and thresholded, and the mask is written as a 0/255 PNG of the same stem.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from bractivate.io import atomic_path

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def plan_outputs(input_dir: Path, output_dir: Path, overwrite: bool = False) -> dict[Path, Path]:
    """Image → mask path for every image of ``input_dir``, refusing every clash before any work.

    The output folder must not be, contain or lie inside the input folder (its masks would
    replace or join the images); two images of one stem (``p0.png``, ``p0.tif``) would write one
    mask; an existing mask is replaced only with ``overwrite``.
    """
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    inside, outside = input_dir.resolve(), output_dir.resolve()
    if inside == outside or inside.is_relative_to(outside) or outside.is_relative_to(inside):
        raise ValueError(f"{output_dir}: output folder is, contains or lies inside the input folder "
                         f"{input_dir}; its masks would mix with the images: choose another folder")
    images = sorted(p for p in input_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise ValueError(f"{input_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) to segment")
    broken = [p for p in images if not p.is_file()]
    if broken:
        raise ValueError(f"{broken[0]}: not a readable file (a broken link or a folder); expected an image")
    plan: dict[Path, Path] = {}
    by_stem: dict[str, Path] = {}
    for path in images:
        if path.stem in by_stem:
            raise ValueError(f"{input_dir}: {by_stem[path.stem].name} and {path.name} would both write "
                             f"{path.stem}.png; rename one")
        by_stem[path.stem] = path
        plan[path] = output_dir / f"{path.stem}.png"
    existing = [out for out in plan.values() if out.exists() or out.is_symlink()]
    if existing and not overwrite:
        raise ValueError(f"{existing[0]}: exists ({len(existing)} mask(s) would be replaced); "
                         "pass --overwrite to replace them or choose another folder")
    # --overwrite replaces masks, never a file of another kind that happens to share a mask's name.
    foreign = [out for out in existing if not _is_png(out)]
    if foreign:
        raise ValueError(f"{foreign[0]}: exists and is not a PNG mask ({len(foreign)} such file(s)); "
                         "--overwrite replaces only masks: it is left as it is, choose another folder")
    return plan


def _is_png(path: Path) -> bool:
    """A plain file that starts with the PNG signature."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


def predict_folder(model_path: str | os.PathLike, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   threshold: float = 0.5, overwrite: bool = False) -> list[Path]:
    """Write ``OUTPUT_DIR/<stem>.png`` for every image of ``input_dir``; return the paths.

    Every argument is checked before the model is loaded: see :func:`plan_outputs`.
    """
    from bractivate.io import check_writable
    from bractivate.runtime import output_folder_lock

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"{model_path}: model file not found")
    if not 0 < threshold < 1:  # also refuses NaN
        raise ValueError(f"--threshold: expected a number in (0, 1), got {threshold}")
    plan = plan_outputs(input_dir, output_dir, overwrite)
    check_writable(next(iter(plan.values())), "mask")
    model = load_model(model_path)
    height = check_segmentation_model(model, model_path)
    with output_folder_lock(output_dir, "bractivate predict"):  # one writer per folder (docs/reliability.md)
        return _predict_all(model, model_path, plan, height, threshold)


def _predict_all(model, model_path, plan: dict[Path, Path], height: int, threshold: float) -> list[Path]:
    """Predict and write every planned mask (:func:`predict_folder` has checked everything)."""
    from PIL import Image
    from skimage.transform import resize

    from bractivate.data.preprocess import resize_image
    from bractivate.data.readers import read_image_file, to_grayscale

    written = []
    for path, out in plan.items():
        native = to_grayscale(read_image_file(path), path)
        x = resize_image(native, height)[None, ..., None]
        prob = np.asarray(model.predict(x, verbose=0))[0, ..., 0]
        if not (np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1):
            raise ValueError(f"{model_path}: predicts values in [{np.nanmin(prob):g}, {np.nanmax(prob):g}] for "
                             f"{path.name}; expected probabilities in [0, 1] (a sigmoid output, as from train_best)")
        prob = resize(prob, native.shape[:2], order=1, anti_aliasing=False, preserve_range=True)
        with atomic_path(out) as tmp:
            Image.fromarray(((prob >= threshold) * 255).astype(np.uint8)).save(tmp, format="PNG")
        written.append(out)
        log.info("%s -> %s (%d×%d)", path.name, out, *native.shape[:2])
    return written


def check_segmentation_model(model, model_path) -> int:
    """The side of a model's square single-channel input, refusing a model that is not a segmentation
    model of that input: one image in, one output channel per pixel at the input's size out.

    A classifier (one Dense output) would otherwise be resized to a full mask, all 255."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{model_path}: a model of {len(model.inputs)} input(s) and {len(model.outputs)} "
                         "output(s); expected one image in and one mask out, as model.keras from train_best")
    shape_in, shape_out = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    height = shape_in[1] if len(shape_in) == 4 else None
    if len(shape_in) != 4 or not isinstance(height, int) or height != shape_in[2] or shape_in[3] != 1:
        raise ValueError(f"{model_path}: expected a square single-channel model input, got {shape_in}")
    if shape_out[1:] != (height, height, 1):
        raise ValueError(f"{model_path}: output of shape {shape_out} for input {shape_in}; expected one channel "
                         f"per pixel at the input's size, (None, {height}, {height}, 1): a segmentation model "
                         "such as model.keras from train_best")
    return height


def load_model(model_path: str | os.PathLike):
    """Load a ``.keras`` file, refusing one that is not (a one-line error, not a zip traceback)."""
    import zipfile

    import keras

    if not zipfile.is_zipfile(model_path):
        raise ValueError(f"{model_path}: not a Keras model file (.keras is a zip archive); "
                         "expected model.keras from train_best")
    # safe_mode stays on: a .keras file from elsewhere must not run code (lambda layers) on load.
    try:
        return keras.saving.load_model(model_path, safe_mode=True)
    except (KeyError, OSError, zipfile.BadZipFile) as err:  # a zip that is not a Keras archive
        raise ValueError(f"{model_path}: not a readable Keras model ({type(err).__name__}: {err})") from err
