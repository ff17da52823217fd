"""One image or mask file as the readers load it (docs/data.md#masks).

Decoding (any format scikit-image reads; PNGs through Pillow), grayscale conversion, and the mask
conventions: the plane that holds the drawing, nonzero is foreground, lossy masks thresholded at
half their range, a warning for masks that are not binary. Errors name the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


class RawDataError(ValueError):
    """A raw data set does not match the layout of its format; the message names the file."""


def read_image_file(path: Path) -> np.ndarray:
    """Read any image scikit-image reads, naming the file when it cannot.

    PNGs go to Pillow directly (a third faster than through imageio, which matters for the
    ~30 000 nucleus masks of DSB2018); palette PNGs are expanded to RGB(A) as imageio would.
    """
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as image:
                if image.mode == "P":
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                return np.asarray(image)
        from skimage import io

        return np.asarray(io.imread(path))
    except Exception as err:  # Pillow/imageio raise many types for a corrupt file
        raise RawDataError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err


def check_finite(image: np.ndarray, path: Path) -> np.ndarray:
    """Refuse an image with NaN or infinite pixels (float TIFFs can hold them), naming the file."""
    if np.issubdtype(image.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise RawDataError(f"{path}: {bad} pixel(s) are NaN or infinite; expected finite intensities")
    return image


def to_grayscale(image: np.ndarray, path: Path) -> np.ndarray:
    """2-D grayscale: RGB(A) through ``skimage.color.rgb2gray`` with alpha dropped; finite pixels only."""
    from skimage.color import rgb2gray

    check_finite(image, path)
    check_image_side(image.shape, path)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return rgb2gray(image[..., :3])
    if image.ndim == 3 and image.shape[-1] == 2:  # gray + alpha
        return image[..., 0]
    raise RawDataError(f"{path}: image of shape {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")


class MaskWarning(UserWarning):
    """A mask read with a rule the user should know of; preprocessing gives one per data set."""


class LossyMaskWarning(MaskWarning):
    """A JPEG (or otherwise lossy) mask, thresholded at half its range."""


class NotBinaryMaskWarning(MaskWarning):
    """A mask with values other than 0 and its maximum (instance labels, soft edges)."""


class ConstantImageWarning(UserWarning):
    """An image of one intensity: it becomes blank after min-max normalisation."""


# Lossy formats: compression noise (values 1-5 around a 0/255 mask) must not become foreground.
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
# The smallest image side that still carries a mask: a 1×1 image resized to 128² is blank (one
# intensity) and its mask all foreground or all background.
MIN_IMAGE_SIDE = 4


def check_image_side(shape: tuple[int, ...], path: Path) -> None:
    """Refuse an image too small to carry a mask (a side under :data:`MIN_IMAGE_SIDE`)."""
    if len(shape) < 2:
        raise RawDataError(f"{path}: array of shape {tuple(shape)}; expected an image (height, width[, channels])")
    height, width = shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise RawDataError(f"{path}: image of {height}×{width} pixels is too small to carry a mask (at least "
                           f"{MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE}); remove it or give it at full size")


def mask_plane(mask: np.ndarray, path: Path) -> np.ndarray:
    """The 2-D plane of a mask file that holds the drawing (docs/data.md#masks).

    Gray: itself. Gray+alpha or RGBA: the alpha channel when it varies (a mask drawn as opacity,
    its colour constant, often white), else the colour. RGB: one channel when the three agree,
    else any nonzero channel (coloured labels on black).
    """
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim == 2:
        return mask
    if mask.ndim != 3 or mask.shape[-1] not in (2, 3, 4):
        raise RawDataError(f"{path}: mask of shape {mask.shape}; expected a 2-D image, gray+alpha, RGB or RGBA")
    if mask.shape[-1] in (2, 4):
        alpha = mask[..., -1]
        if alpha.size and alpha.min() != alpha.max():
            return alpha
        mask = mask[..., :-1]
    if mask.shape[-1] == 1 or (mask == mask[..., :1]).all():
        return mask[..., 0]
    return mask.max(axis=-1)


def is_lossy(mask: np.ndarray, path: Path) -> bool:
    """A JPEG mask, or one whose values all lie near 0 or near its maximum (within an eighth of the range)
    with some in between: compression noise, not instance labels (those spread over 1 … K)."""
    if path.suffix.lower() in LOSSY_SUFFIXES:
        return True
    top = int(mask.max()) if mask.size else 0
    if top < 8 or mask.dtype == bool:
        return False
    values = np.unique(mask)
    between = values[(values != 0) & (values != top)]
    return bool(between.size) and bool(((between <= top / 8) | (between >= top * 7 / 8)).all())


def to_mask(mask: np.ndarray, path: Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Binary mask from a mask file's pixels (docs/data.md#masks): nonzero is foreground, except in a lossy
    mask (:func:`is_lossy`), which is thresholded at half its range; checks type, shape, binariness."""
    mask = mask_plane(mask, path)
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise RawDataError(f"{path}: mask has dtype {mask.dtype}; expected an integer type: save it as a 0/255 "
                           "PNG (e.g. (mask > 0.5) * 255 as uint8)")
    if shape is not None and mask.shape != tuple(shape):
        raise RawDataError(f"{path}: mask of shape {mask.shape} but its image is {tuple(shape)}")
    if is_lossy(mask, path):
        top = np.iinfo(mask.dtype).max if path.suffix.lower() in LOSSY_SUFFIXES else int(mask.max())
        warnings.warn(LossyMaskWarning(
            f"{path}: lossy mask (JPEG or compression noise): thresholded at half its range, {top / 2:g} of {top}; "
            "save masks as 0/255 PNG to keep them exact"), stacklevel=2)
        return mask > top / 2
    warn_if_not_binary(mask, path)
    return mask > 0


def warn_if_not_binary(mask: np.ndarray, path: Path) -> None:
    """``warnings.warn`` naming ``path`` and the number of pixels that are neither 0 nor the max."""
    top = mask.max() if mask.size else 0
    between = int(np.count_nonzero((mask != 0) & (mask != top)))
    if between:
        warnings.warn(NotBinaryMaskWarning(
            f"{path}: mask is not binary: {between} pixels are neither 0 nor {top}; "
            "every nonzero pixel is taken as foreground (instance labels give their union)"),
            stacklevel=3,
        )
