"""From raw samples to a :class:`~bractivate.io.Dataset` (docs/data.md).

``preprocess`` resizes and normalises every sample (:mod:`.transforms`: 128×128 bilinear,
images min-max normalised, masks binarised), draws the seeded split (:mod:`.splits`) and records
where the data came from (``input_sha256``). The config entry lives in :mod:`.entry`, the stage
that obtains, reads and writes in :mod:`.stage`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import numpy as np

from bractivate.io import Dataset

from .download import sha256_file
from .images import ConstantImageWarning, LossyMaskWarning, MaskWarning
from .readers import RawData
from .splits import DEFAULT_SPLIT, check_seed, check_split, check_split_sizes, split_indices
from .transforms import check_image_size, resize_image, resize_mask

# Names of the former single module that the command line, the predictor and tests import from here.
from .entry import check_source_path  # noqa: F401
from .splits import check_planned_split, split_counts  # noqa: F401
from .transforms import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE  # noqa: F401


def input_sha256(raw: RawData) -> str:
    """One digest of every input file: SHA-256 over sorted ``relative path, file SHA-256`` lines."""
    digest = hashlib.sha256()
    for path in sorted(raw.files, key=lambda p: p.relative_to(raw.root).as_posix()):
        digest.update(f"{path.relative_to(raw.root).as_posix()}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def preprocess(
    raw: RawData,
    image_size: int = 128,
    split: Mapping[str, float] = DEFAULT_SPLIT,
    seed: int = 0,
    attrs: Mapping | None = None,
    *,
    workers: int = 1,
) -> Dataset:
    """Resize, normalise and split a raw data set (docs/data.md).

    Images: bilinear (order 1, anti-aliased) to ``image_size``², min-max to [0, 1] per image.
    Masks: the same filter on the float mask, thresholded at 0.5. ``attrs`` (e.g. ``source``)
    extend the recorded format, seed, image_size, split and ``input_sha256``. ``workers`` threads
    load samples in parallel; the result does not depend on it.
    """
    image_size, seed = check_image_size(image_size), check_seed(seed)
    if not raw.samples:
        raise ValueError(f"{raw.root}: empty data set: nothing to preprocess")
    fixed_test = None if raw.test_names is None else sum(name in raw.test_names for name in raw.names)
    check_split_sizes(str(raw.root), len(raw.samples), split, fixed_test)
    fractions = check_split(split)
    images, masks = _load_resized(raw, image_size, workers)
    splits = split_indices(raw.names, fractions, seed, raw.test_names)
    meta = {
        "source": "path",
        "format": raw.format,
        "seed": int(seed),
        "image_size": int(image_size),
        "split": json.dumps(fractions, sort_keys=True),
        "input_sha256": input_sha256(raw),
        **(attrs or {}),
    }
    return Dataset(images, masks, splits, raw.names, meta)


def _load_resized(raw: RawData, image_size: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Every sample loaded and resized, as (N, S, S, 1) float32 images and uint8 masks; warns once
    per kind about the masks, and about images of one intensity."""
    from tqdm import tqdm

    def one(sample):
        image, mask = sample.load()
        return resize_image(image, image_size), resize_mask(mask, image_size)

    n = len(raw.samples)
    images = np.empty((n, image_size, image_size, 1), np.float32)
    masks = np.empty((n, image_size, image_size, 1), np.uint8)
    constant = []
    # A warning per mask file would bury the one that matters: collect them, give one per kind.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # threads, not processes: PNG decoding and the resize filters release the GIL
        with ThreadPoolExecutor(max(1, int(workers))) as pool:
            done = tqdm(pool.map(one, raw.samples), total=n, desc=f"preprocess {raw.format}", disable=None)
            for i, (image, mask) in enumerate(done):
                images[i, ..., 0], masks[i, ..., 0] = image, mask
                if image.max() == 0:
                    constant.append(raw.names[i])
    summarise_warnings(caught, raw, n)
    if constant:
        warnings.warn(ConstantImageWarning(
            f"{raw.root}: {len(constant)} of {n} images are of one intensity ({', '.join(constant[:3])}"
            f"{', …' if len(constant) > 3 else ''}) and become blank after min-max normalisation; check them"),
            stacklevel=3)
    warn_if_degenerate(masks, raw)
    return images, masks


def summarise_warnings(caught: list, raw: RawData, n: int) -> None:
    """Warn once per kind of mask warning (docs/data.md#masks), naming the first file and how many
    masks it concerns; other warnings pass on unchanged."""
    kinds: dict[type, list[str]] = {}
    for item in caught:
        if issubclass(item.category, MaskWarning):
            kinds.setdefault(item.category, []).append(str(item.message))
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    for category, messages in kinds.items():
        what = "lossy" if category is LossyMaskWarning else "not binary"
        warnings.warn(category(f"{raw.root}: {len(messages)} of {n} mask file(s) {what}, the first: {messages[0]}"),
                      stacklevel=4)


def warn_if_degenerate(masks: np.ndarray, raw: RawData) -> None:
    """Warn when every mask is empty or every mask is all foreground: nothing to learn from.

    All-255 masks usually mean inverted masks (foreground is every nonzero pixel).
    """
    per_sample = masks.reshape(len(masks), -1).mean(axis=1)
    for value, what in ((0, "empty (no foreground)"), (1, "all foreground")):
        if len(per_sample) and (per_sample == value).all():
            warnings.warn(
                f"{raw.root}: every one of the {len(masks)} masks is {what}; nothing to segment: "
                "check the masks (foreground is every nonzero pixel)",
                stacklevel=4,
            )
