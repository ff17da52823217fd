"""Per-sample transforms of the preprocessing (docs/data.md): resize, normalise, binarise.

Images: bilinear (order 1, anti-aliased) to ``size``², then min-max to [0, 1]. Masks: the same
filter on the float mask, thresholded at 0.5. The side's bounds are the config schema's
``image_size`` (schemas/config.schema.yaml), read from it.
"""

from __future__ import annotations

import numpy as np

from bractivate.schema import schema_node

_IMAGE_SIZE = schema_node("config.schema.yaml", "properties", "image_size")
# Every job holds a data set's N images of S×S pixels in memory (5 bytes a pixel with the mask): the
# schema's maximum keeps that in bounds, and the command line keeps the same bounds as the workflow.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = _IMAGE_SIZE["minimum"], _IMAGE_SIZE["maximum"]


def check_image_size(image_size, where: str = "image_size") -> int:
    """An integer side in [MIN_IMAGE_SIZE, MAX_IMAGE_SIZE] (the schema's), or a one-line error naming ``where``."""
    integer = isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool)
    if not integer or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"{where}: expected an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size!r}")
    return int(image_size)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear, anti-aliased resize to size×size, then min-max to [0, 1] (constant → zeros)."""
    from skimage.transform import resize

    out = resize(image.astype(np.float32), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    low, high = float(out.min()), float(out.max())
    if high <= low:
        return np.zeros((size, size), np.float32)
    return ((out - low) / (high - low)).astype(np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The mask resized as a float with the images' filter, then thresholded: foreground ≥ 0.5."""
    from skimage.transform import resize

    out = resize(mask.astype(np.float32), (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return (out >= 0.5).astype(np.uint8)
