"""From a config entry to the preprocessed HDF5 data set (SPEC §2).

``validate_entry`` checks one ``datasets: {name: entry}`` entry of the config (the Python twin of
``schemas/dataset.schema.yaml``), ``preprocess`` turns raw samples into a :class:`Dataset`
(128×128 bilinear, images min-max normalised, masks binarised, seeded split) and ``prepare``
runs the whole stage: download or generate, read, preprocess, write atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import numpy as np

from bractivate.io import SPLITS, Dataset, write_dataset

from .download import check_sha256, download_files, is_archive, sha256_file
from .readers import LAYOUTS, RawData, read_raw
from .synthetic import MARKER, TASK_LAYOUT, write_synthetic

log = logging.getLogger(__name__)

FORMATS = (*LAYOUTS, "synthetic")
SOURCES = ("download", "path", "synthetic")
DEFAULT_SPLIT = {"train": 0.7, "val": 0.1, "test": 0.2}
SYNTHETIC_DEFAULTS = {"n": 64, "seed": 0, "size": [256, 256]}
ENTRY_KEYS = {"format", "source", "files", "path", "synthetic"}
SOURCE_KEY = {"download": "files", "path": "path", "synthetic": "synthetic"}
FILE_KEYS = {"name", "sha256", "urls", "extract", "into"}


def _keys(where: str, value, allowed: set[str], required: Sequence[str] = ()) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")


def _relative(where: str, value) -> str:
    """A relative path with no ``..`` (file names and ``into`` folders stay inside the raw folder)."""
    path = PurePosixPath(value) if isinstance(value, str) and value else None
    if path is None or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{where}: expected a relative path without '..', got {value!r}")
    return value


def _file_entry(where: str, item) -> dict:
    _keys(where, item, FILE_KEYS, ("name", "sha256", "urls"))
    name = _relative(f"{where}.name", item["name"])
    if "/" in name or "\\" in name:
        raise ValueError(f"{where}.name: expected a file name, got {name!r}")
    urls = item["urls"]
    if not isinstance(urls, list) or not urls or not all(
        isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls
    ):
        raise ValueError(f"{where}.urls: expected a non-empty list of http(s) URLs, got {urls!r}")
    extract_ = item.get("extract", is_archive(name))
    if not isinstance(extract_, bool):
        raise ValueError(f"{where}.extract: expected true or false, got {extract_!r}")
    return {
        "name": name,
        "sha256": None if item["sha256"] is None else check_sha256(item["sha256"], f"{where}.sha256"),
        "urls": list(urls),
        "extract": extract_,
        "into": _relative(f"{where}.into", item.get("into", ".")),
    }


def _synthetic_entry(where: str, value) -> dict:
    _keys(where, value, {"task", *SYNTHETIC_DEFAULTS}, ("task",))
    out = {**SYNTHETIC_DEFAULTS, **value}
    if out["task"] not in TASK_LAYOUT:
        raise ValueError(f"{where}.task: unknown task {out['task']!r}; expected one of {', '.join(TASK_LAYOUT)}")
    for key, least in (("n", 2), ("seed", 0)):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < least:
            raise ValueError(f"{where}.{key}: expected an integer >= {least}, got {out[key]!r}")
    size = out["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s >= 16 for s in size)):
        raise ValueError(f"{where}.size: expected [height, width], integers >= 16, got {size!r}")
    return out


def validate_entry(name: str, entry) -> dict:
    """Check one data set entry of the config and return it with defaults filled in (SPEC §2).

    Raises ``ValueError`` naming the key, the value found and what was expected.
    """
    where = f"datasets.{name}"
    _keys(where, entry, ENTRY_KEYS, ("format", "source"))
    fmt, source = entry["format"], entry["source"]
    if fmt not in FORMATS:
        raise ValueError(f"{where}.format: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if source not in SOURCES:
        raise ValueError(f"{where}.source: unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    needed = SOURCE_KEY[source]
    if needed not in entry:
        raise ValueError(f"{where}: source {source!r} needs the key {needed!r}")
    stray = sorted(k for k in set(SOURCE_KEY.values()) - {needed} if k in entry)
    if stray:
        raise ValueError(f"{where}: key(s) {stray} do not apply to source {source!r} (it uses {needed!r})")
    out = {"format": fmt, "source": source}
    if source == "download":
        files = entry["files"]
        if not isinstance(files, list) or not files:
            raise ValueError(f"{where}.files: expected a non-empty list of files, got {files!r}")
        out["files"] = [_file_entry(f"{where}.files[{i}]", item) for i, item in enumerate(files)]
    elif source == "path":
        if not isinstance(entry["path"], (str, os.PathLike)) or not str(entry["path"]):
            raise ValueError(f"{where}.path: expected a folder path, got {entry['path']!r}")
        out["path"] = str(entry["path"])
    else:
        out["synthetic"] = _synthetic_entry(f"{where}.synthetic", entry["synthetic"])
    if fmt == "synthetic" and source != "synthetic":
        raise ValueError(f"{where}.format: 'synthetic' needs source: synthetic, got source {source!r}")
    if source == "synthetic" and fmt not in ("synthetic", TASK_LAYOUT[out["synthetic"]["task"]]):
        task = out["synthetic"]["task"]
        raise ValueError(
            f"{where}.format: synthetic task {task!r} is written in the {TASK_LAYOUT[task]!r} layout, "
            f"got format {fmt!r} (use {TASK_LAYOUT[task]!r} or 'synthetic')"
        )
    return out


def layout_of(entry: dict) -> str:
    """The reader format of a validated entry (``synthetic`` resolves to its task's layout)."""
    if entry["format"] == "synthetic":
        return TASK_LAYOUT[entry["synthetic"]["task"]]
    return entry["format"]


def check_split(split: Mapping[str, float]) -> dict[str, float]:
    """Split fractions keyed train/val/test, each in [0, 1], summing to 1 within 1e-6."""
    if not isinstance(split, Mapping) or set(split) != set(SPLITS):
        raise ValueError(f"split: expected fractions for exactly {list(SPLITS)}, got {split!r}")
    fractions = {k: float(split[k]) for k in SPLITS}
    if any(not 0 <= f <= 1 for f in fractions.values()):
        raise ValueError(f"split: every fraction must lie in [0, 1], got {fractions}")
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split: fractions {fractions} sum to {sum(fractions.values()):.6g}, expected 1")
    return fractions


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Sizes summing to ``n`` (largest remainder), at least 1 per positive fraction when n allows."""
    exact = {k: n * f for k, f in fractions.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    # ties (up to float noise) go to the earlier split: train, then val, then test
    for k in sorted(exact, key=lambda k: -round(exact[k] - counts[k], 9))[: n - sum(counts.values())]:
        counts[k] += 1
    for k, f in fractions.items():
        if f > 0 and counts[k] == 0:
            donor = max(counts, key=counts.get)
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    return counts


def split_indices(
    names: Sequence[str], fractions: Mapping[str, float], seed: int, test_names=None
) -> dict[str, np.ndarray]:
    """Seeded split of ``range(len(names))`` into train/val/test, sorted int64 indices (SPEC §2).

    With ``test_names`` (``lucchi_em``: the testing stack) those samples are exactly the test
    split and the rest is divided by the train:val ratio; the test fraction is then unused.
    """
    fractions = check_split(fractions)
    rng = np.random.default_rng(seed)
    if test_names is None:
        pool, test = np.arange(len(names)), np.array([], np.int64)
        counts = split_counts(len(names), fractions)
    else:
        is_test = np.array([n in test_names for n in names], bool)
        pool, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        train_val = fractions["train"] + fractions["val"]
        if train_val <= 0:
            raise ValueError(f"split: train + val must be positive to divide the training stack, got {fractions}")
        counts = split_counts(len(pool), {"train": fractions["train"] / train_val, "val": fractions["val"] / train_val})
        counts["test"] = 0
    order = rng.permutation(pool)
    train = order[: counts["train"]]
    val = order[counts["train"]: counts["train"] + counts["val"]]
    test = np.concatenate([test, order[counts["train"] + counts["val"]:]])
    return {k: np.sort(v).astype(np.int64) for k, v in (("train", train), ("val", val), ("test", test))}


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
    """Resize, normalise and split a raw data set (SPEC §2).

    Images: bilinear (order 1, anti-aliased) to ``image_size``², min-max to [0, 1] per image.
    Masks: the same filter on the float mask, thresholded at 0.5. ``attrs`` (e.g. ``source``)
    extend the recorded format, seed, image_size, split and ``input_sha256``. ``workers`` threads
    load samples in parallel; the result does not depend on it.
    """
    fractions = check_split(split)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 2:
        raise ValueError(f"image_size: expected an integer >= 2, got {image_size!r}")
    if not raw.samples:
        raise ValueError(f"{raw.root}: empty data set: nothing to preprocess")
    from tqdm import tqdm

    def one(sample):
        image, mask = sample.load()
        return resize_image(image, image_size), resize_mask(mask, image_size)

    n = len(raw.samples)
    images = np.empty((n, image_size, image_size, 1), np.float32)
    masks = np.empty((n, image_size, image_size, 1), np.uint8)
    # threads, not processes: PNG decoding and the resize filters release the GIL
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        done = tqdm(pool.map(one, raw.samples), total=n, desc=f"preprocess {raw.format}", disable=None)
        for i, (image, mask) in enumerate(done):
            images[i, ..., 0], masks[i, ..., 0] = image, mask
    names = raw.names
    splits = split_indices(names, fractions, seed, raw.test_names)
    meta = {
        "source": "path",
        "format": raw.format,
        "seed": int(seed),
        "image_size": int(image_size),
        "split": json.dumps(fractions, sort_keys=True),
        "input_sha256": input_sha256(raw),
        **(attrs or {}),
    }
    return Dataset(images, masks, splits, names, meta)


def _synthetic(entry: dict, raw_dir: Path) -> Path:
    """Generate a ``source: synthetic`` entry into ``raw_dir`` unless it already holds the same."""
    params = {**entry["synthetic"]}
    marker = raw_dir / MARKER
    if marker.is_file():
        if json.loads(marker.read_text()) == params:
            return raw_dir
        shutil.rmtree(raw_dir)  # ours (it has the marker) but made with other parameters
    task = params.pop("task")
    return write_synthetic(task, raw_dir, **params)


def obtain(name: str, entry: Mapping, raw_dir: str | os.PathLike, *,
           checksums: str | os.PathLike | None = None, strict: bool = False) -> Path:
    """Make a data set's raw files available and return the folder its reader reads (SPEC §2).

    ``source: download`` fetches and verifies each file into ``raw_dir`` and unpacks archives
    (:func:`~bractivate.data.download.download_files`: digests missing from the entry are read
    from, or trusted on first use and recorded in, ``checksums``, default
    ``<raw_dir>/SHA256SUMS``; ``strict`` refuses them instead); ``source: path``
    returns ``entry['path']``; ``source: synthetic`` generates into ``raw_dir`` unless it
    already holds the same parameters. Safe to call again: finished work is not redone.
    """
    entry = validate_entry(name, entry)
    raw_dir = Path(raw_dir)
    if entry["source"] == "download":
        download_files(entry["files"], raw_dir, raw_dir / "SHA256SUMS" if checksums is None else checksums,
                       strict=strict, progress=sys.stderr.isatty())
        return raw_dir
    if entry["source"] == "synthetic":
        return _synthetic(entry, raw_dir)
    root = Path(entry["path"])
    if not root.is_dir():
        raise FileNotFoundError(f"datasets.{name}.path: folder {root} not found")
    return root


def prepare(
    name: str,
    entry: Mapping,
    raw_dir: str | os.PathLike,
    out_h5: str | os.PathLike,
    *,
    image_size: int = 128,
    split: Mapping[str, float] = DEFAULT_SPLIT,
    seed: int = 0,
    workers: int = 1,
    checksums: str | os.PathLike | None = None,
    strict: bool = False,
) -> Path:
    """The data stage of one data set (SPEC §2): :func:`obtain`, read, preprocess, write ``out_h5``.

    The entry, split and size are checked before anything is downloaded or generated.
    """
    entry = validate_entry(name, entry)
    check_split(split)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 2:
        raise ValueError(f"image_size: expected an integer >= 2, got {image_size!r}")
    root = obtain(name, entry, raw_dir, checksums=checksums, strict=strict)
    log.info("reading %s (%s) from %s", name, layout_of(entry), root)
    raw = read_raw(layout_of(entry), root)
    attrs = {"name": name, "source": entry["source"]}
    if entry["source"] == "synthetic":
        attrs["synthetic"] = json.dumps(entry["synthetic"], sort_keys=True)
    dataset = preprocess(raw, image_size, split, seed, attrs, workers=workers)
    write_dataset(out_h5, dataset)
    return Path(out_h5)


def preprocess_cli(
    format: str,
    input_dir: str | os.PathLike,
    output: str | os.PathLike,
    image_size: int = 128,
    seed: int = 0,
    split: Mapping[str, float] | Sequence[float] | None = None,
    workers: int = 1,
) -> Path:
    """``bractivate preprocess --format F INPUT OUTPUT.h5``: read a local folder, write HDF5.

    ``split`` is a mapping or three fractions in train, val, test order (default 0.7/0.1/0.2).
    """
    if split is None:
        split = DEFAULT_SPLIT
    elif not isinstance(split, Mapping):
        split = list(split)
        if len(split) != len(SPLITS):
            raise ValueError(f"split: expected three fractions (train, val, test), got {split!r}")
        split = dict(zip(SPLITS, split))
    dataset = preprocess(read_raw(format, input_dir), image_size, split, seed, workers=workers)
    write_dataset(output, dataset)
    return Path(output)
