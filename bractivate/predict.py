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


def predict_folder(model_path: str | os.PathLike, input_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   threshold: float = 0.5) -> list[Path]:
    """Write ``OUTPUT_DIR/<stem>.png`` for every image of ``input_dir``; return the paths."""
    import keras
    from PIL import Image
    from skimage.transform import resize

    from bractivate.data.preprocess import resize_image
    from bractivate.data.readers import read_image_file, to_grayscale

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"{model_path}: model file not found")
    images = sorted(p for p in input_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if input_dir.is_dir() else []
    if not images:
        raise ValueError(f"{input_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) to segment")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    # safe_mode stays on: a .keras file from elsewhere must not run code (lambda layers) on load.
    model = keras.saving.load_model(model_path, safe_mode=True)
    height, width, channels = model.input_shape[1:]
    if height != width or channels != 1:
        raise ValueError(f"{model_path}: expected a square single-channel model input, got {model.input_shape}")
    written = []
    for path in images:
        native = to_grayscale(read_image_file(path), path)
        x = resize_image(native, height)[None, ..., None]
        prob = np.asarray(model.predict(x, verbose=0))[0, ..., 0]
        prob = resize(prob, native.shape[:2], order=1, anti_aliasing=False, preserve_range=True)
        out = output_dir / f"{path.stem}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            Image.fromarray(((prob >= threshold) * 255).astype(np.uint8)).save(tmp, format="PNG")
        written.append(out)
        log.info("%s -> %s (%d×%d)", path.name, out, *native.shape[:2])
    return written
