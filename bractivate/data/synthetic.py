"""Synthetic stand-ins of the three tasks, written in the public layouts (docs/data.md).

Each generator is deterministic given its seed and writes files the real readers parse, so a
synthetic data set goes through exactly the code path of real data:

- ``lungs``  → ``montgomery`` layout: two large dark lung fields with rib texture inside a bright
  chest on a vertical gradient; left and right masks written separately (0/255 PNGs);
- ``nuclei`` → ``dsb2018`` layout: many small bright blobs of varied size on a dark background,
  RGBA images, one mask PNG per nucleus (nuclei do not overlap, as in DSB2018);
- ``em``     → ``lucchi_em`` layout: elongated dark organelles with cristae stripes on a textured
  background, as ``training.tif`` / ``testing.tif`` stacks with 0/255 ground truth.

In every task intensity correlates with the mask, so a small segmentation network learns it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

TASK_LAYOUT = {"lungs": "montgomery", "nuclei": "dsb2018", "em": "lucchi_em"}
MARKER = "synthetic.json"


def _imwrite(path: Path, array: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, array)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def _ellipse(shape, centre, radii, rotation) -> np.ndarray:
    """Boolean ellipse mask (centre and radii in pixels, rotation in radians)."""
    from skimage.draw import ellipse

    mask = np.zeros(shape, bool)
    rr, cc = ellipse(centre[0], centre[1], radii[0], radii[1], shape=shape, rotation=rotation)
    mask[rr, cc] = True
    return mask


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-spread Gaussian-filtered noise: a texture with grain ``sigma`` pixels."""
    from skimage.filters import gaussian

    field = gaussian(rng.standard_normal(shape), sigma=sigma)
    return field / (field.std() + 1e-12)


def lung_sample(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chest-like image and its (left, right) lung masks; the image is float in [0, 1]."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    y, x = yy / h, xx / w
    body = _ellipse(shape, (h * rng.uniform(0.5, 0.6), w * 0.5), (h * 0.6, w * rng.uniform(0.42, 0.48)), 0.0)
    image = np.where(body, 0.55 + 0.2 * y, 0.08)
    image += 0.18 * np.exp(-(((x - 0.5) / 0.06) ** 2))  # spine and mediastinum
    masks = []
    for side in (+1, -1):  # patient's left lung appears on the image's right
        centre = (h * rng.uniform(0.42, 0.5), w * (0.5 + side * rng.uniform(0.2, 0.24)))
        radii = (h * rng.uniform(0.26, 0.32), w * rng.uniform(0.11, 0.14))
        masks.append(_ellipse(shape, centre, radii, side * rng.uniform(0.0, 0.15)))
    lungs = masks[0] | masks[1]
    ribs = 0.05 * np.sin(2 * np.pi * (y * rng.uniform(9, 12) + 0.3 * np.abs(x - 0.5)))
    image = np.where(lungs, 0.22 + 0.1 * y + ribs, image)
    image += 0.03 * _smooth_noise(rng, shape, 1.0) + 0.02 * rng.standard_normal(shape)
    return np.clip(image, 0, 1), masks[0], masks[1]


def nuclei_sample(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One fluorescence-like image (float RGB in [0, 1]) and its nucleus labels (0 = background).

    About 15-60 nuclei per 256×256 image, more in larger images (DSB2018 averages 44 per image);
    a nucleus never covers another, as in DSB2018's masks.
    """
    from skimage.draw import ellipse

    h, w = shape
    scale = np.sqrt(min(h, w) / 256)
    count = max(3, int(rng.uniform(15, 60) * np.sqrt(h * w) / 256))
    background = rng.uniform(0.02, 0.15)
    image = np.full(shape, background) + 0.02 * _smooth_noise(rng, shape, 4.0)
    labels = np.zeros(shape, np.int32)
    found = 0
    for _ in range(count):
        major = rng.uniform(3, 12) * scale
        rr, cc = ellipse(rng.uniform(0, h), rng.uniform(0, w), major, major * rng.uniform(0.6, 1.0),
                         shape=shape, rotation=rng.uniform(0, np.pi))
        free = labels[rr, cc] == 0
        brightness = rng.uniform(background + 0.25, 1.0)
        if free.sum() < 6:
            continue
        found += 1
        labels[rr[free], cc[free]] = found
        image[rr[free], cc[free]] = brightness
    image += 0.05 * _smooth_noise(rng, shape, 1.0) * (labels > 0) + 0.02 * rng.standard_normal(shape)
    tint = rng.uniform(0.8, 1.0, size=3)
    return np.clip(image[..., None] * tint, 0, 1), labels


def em_sample(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One EM-like slice (float in [0, 1]) and its mitochondria mask."""
    h, w = shape
    side = min(h, w)
    image = 0.62 + 0.08 * _smooth_noise(rng, shape, 2.0) + 0.05 * _smooth_noise(rng, shape, 8.0)
    mask = np.zeros(shape, bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.integers(3, 9))):
        major = side * rng.uniform(0.06, 0.15)
        angle = rng.uniform(0, np.pi)
        centre = (rng.uniform(0, h), rng.uniform(0, w))
        organelle = _ellipse(shape, centre, (major, major * rng.uniform(0.3, 0.5)), angle)
        mask |= organelle
        cristae = 0.06 * np.sin(2 * np.pi * (np.cos(angle) * yy + np.sin(angle) * xx) / rng.uniform(4, 7))
        image = np.where(organelle, 0.35 + cristae, image)
    for _ in range(int(rng.integers(2, 6))):  # vesicles: round, light, not mitochondria
        vesicle = _ellipse(shape, (rng.uniform(0, h), rng.uniform(0, w)), (side * 0.03,) * 2, 0.0) & ~mask
        image = np.where(vesicle, 0.75, image)
    image += 0.04 * rng.standard_normal(shape)
    return np.clip(image, 0, 1), mask


def _write_lungs(root: Path, shapes: list[tuple[int, int]], rng: np.random.Generator) -> None:
    base = root / "MontgomerySet"
    for i, shape in enumerate(shapes):
        image, left, right = lung_sample(rng, shape)
        name = f"MCUCXR_{i + 1:04d}_{int(rng.integers(2))}.png"
        _imwrite(base / "CXR_png" / name, _to_uint8(image))
        _imwrite(base / "ManualMask" / "leftMask" / name, left.astype(np.uint8) * 255)
        _imwrite(base / "ManualMask" / "rightMask" / name, right.astype(np.uint8) * 255)


def _write_nuclei(root: Path, shapes: list[tuple[int, int]], rng: np.random.Generator, seed: int) -> None:
    from scipy.ndimage import find_objects

    for i, shape in enumerate(shapes):
        image, labels = nuclei_sample(rng, shape)
        sample_id = hashlib.sha256(f"synthetic-nuclei-{seed}-{i}".encode()).hexdigest()
        folder = root / "stage1_train" / sample_id
        alpha = np.full(shape + (1,), 255, np.uint8)
        _imwrite(folder / "images" / f"{sample_id}.png", np.concatenate([_to_uint8(image), alpha], axis=-1))
        for k, box in enumerate(find_objects(labels), start=1):
            mask = np.zeros(shape, np.uint8)
            mask[box][labels[box] == k] = 255
            mask_id = hashlib.sha256(f"{sample_id}-{k}".encode()).hexdigest()
            _imwrite(folder / "masks" / f"{mask_id}.png", mask)


def _write_em(root: Path, shapes: list[tuple[int, int]], rng: np.random.Generator) -> None:
    import tifffile

    n_train = (len(shapes) + 1) // 2
    for stem, count in (("training", n_train), ("testing", len(shapes) - n_train)):
        slices = [em_sample(rng, shapes[0]) for _ in range(count)]
        # minisblack: tifffile would store a stack of 3 or 4 slices as one RGB(A) image
        tifffile.imwrite(root / f"{stem}.tif", np.stack([_to_uint8(im) for im, _ in slices]), photometric="minisblack")
        tifffile.imwrite(
            root / f"{stem}_groundtruth.tif", np.stack([m.astype(np.uint8) * 255 for _, m in slices]),
            photometric="minisblack",
        )


def _shapes(task: str, n: int, size) -> list[tuple[int, int]]:
    """``size`` is one (h, w) for all samples or a list of ``n`` of them; em needs one size."""
    sizes = np.asarray(size, dtype=int)
    if sizes.ndim == 1 and sizes.shape == (2,):
        sizes = np.tile(sizes, (n, 1))
    if sizes.ndim != 2 or sizes.shape != (n, 2):
        raise ValueError(f"synthetic {task}: size must be [h, w] or a list of {n} [h, w] pairs, got {size!r}")
    if (sizes < 16).any():
        raise ValueError(f"synthetic {task}: every size must be at least 16×16 pixels, got {size!r}")
    if task == "em" and len({tuple(s) for s in sizes}) > 1:
        raise ValueError("synthetic em: all slices of a TIFF stack share one size; give a single [h, w]")
    return [(int(h), int(w)) for h, w in sizes]


def write_synthetic(
    task: str,
    root: str | os.PathLike,
    *,
    n: int,
    seed: int = 0,
    size: Sequence[int] | Sequence[Sequence[int]] = (256, 256),
) -> Path:
    """Write a synthetic ``task`` data set of ``n`` samples into the new folder ``root`` (docs/data.md).

    ``task`` is ``lungs``, ``nuclei`` or ``em`` (``n`` slices, the first half the training stack);
    the folder's layout is ``TASK_LAYOUT[task]``. Files are written to a temporary folder that is
    renamed to ``root``, with ``synthetic.json`` recording the parameters; ``root`` must not exist
    or be empty.
    """
    if task not in TASK_LAYOUT:
        raise ValueError(f"unknown synthetic task {task!r}; expected one of {', '.join(TASK_LAYOUT)}")
    min_n = 2 if task == "em" else 1
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < min_n:
        raise ValueError(f"synthetic {task}: n must be an integer >= {min_n}, got {n!r}")
    shapes = _shapes(task, int(n), size)
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: exists and is not an empty folder; synthetic data needs a new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".synthetic", dir=root.parent))
    try:
        rng = np.random.default_rng(seed)
        if task == "lungs":
            _write_lungs(tmp, shapes, rng)
        elif task == "nuclei":
            _write_nuclei(tmp, shapes, rng, seed)
        else:
            _write_em(tmp, shapes, rng)
        params = {"task": task, "n": int(n), "seed": int(seed), "size": np.asarray(size).tolist()}
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True) + "\n", encoding="utf-8")
        if root.exists():
            root.rmdir()
        os.rename(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
