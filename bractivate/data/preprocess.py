"""From a config entry to the preprocessed HDF5 data set (docs/data.md).

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
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

import numpy as np

from bractivate.io import SPLITS, Dataset, check_writable, write_dataset

from .download import check_sha256, download_files, is_archive, sha256_file
from .readers import LAYOUTS, ConstantImageWarning, LossyMaskWarning, MaskWarning, RawData, read_raw
from .synthetic import MARKER, TASK_LAYOUT, write_synthetic

log = logging.getLogger(__name__)

FORMATS = (*LAYOUTS, "synthetic")
SOURCES = ("download", "path", "synthetic")
DEFAULT_SPLIT = {"train": 0.7, "val": 0.1, "test": 0.2}
SYNTHETIC_DEFAULTS = {"n": 64, "seed": 0, "size": [256, 256]}
ENTRY_KEYS = {"format", "source", "files", "path", "synthetic"}
SOURCE_KEY = {"download": "files", "path": "path", "synthetic": "synthetic"}
FILE_KEYS = {"name", "sha256", "urls", "extract", "into"}
# Every job holds a data set's N images of S×S pixels in memory (5 bytes a pixel with the mask):
# at 1024 the 670 DSB2018 images take 3.5 GB, and at 100 000 preprocessing alone asks for 596 GiB.
MAX_IMAGE_SIZE = 1024
# The smallest side the schema allows (schemas/config.schema.yaml); the command line keeps the same bounds.
MIN_IMAGE_SIZE = 8
# Generated stand-ins (schemas/dataset.schema.yaml): a stack is held in memory while written.
MAX_SYNTHETIC_N, MAX_SYNTHETIC_SIDE = 5000, 4096


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
    if out["n"] > MAX_SYNTHETIC_N:
        raise ValueError(f"{where}.n: expected an integer <= {MAX_SYNTHETIC_N}, got {out['n']!r}")
    size = out["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(s, int) and not isinstance(s, bool) and 16 <= s <= MAX_SYNTHETIC_SIDE for s in size)):
        raise ValueError(f"{where}.size: expected [height, width], integers in [16, {MAX_SYNTHETIC_SIDE}], "
                         f"got {size!r}")
    return out


def validate_entry(name: str, entry) -> dict:
    """Check one data set entry of the config and return it with defaults filled in (docs/data.md).

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
        raise ValueError(f"split: fractions {fractions} sum to {sum(fractions.values()):.6g}; they must sum to 1")
    return fractions


def check_image_size(image_size, where: str = "image_size") -> int:
    """An integer side in [MIN_IMAGE_SIZE, MAX_IMAGE_SIZE] (the schema's), or a one-line error naming ``where``."""
    integer = isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool)
    if not integer or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"{where}: expected an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size!r}")
    return int(image_size)


def check_seed(seed, where: str = "seed") -> int:
    """A non-negative integer seed (NumPy's generators take no other), or an error naming ``where``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{where}: expected an integer >= 0, got {seed!r}")
    return int(seed)


def check_split_sizes(where: str, n: int, split: Mapping[str, float], fixed_test: int | None = None) -> dict[str, int]:
    """The sizes :func:`split_indices` will cut from ``n`` samples; refuse a split left empty.

    ``fixed_test`` is the size of a test set the format fixes (``lucchi_em``: its testing stack),
    which the train and val fractions do not divide. The error names ``where`` (the data set),
    its size and the split, before any sample is read.
    """
    fractions = check_split(split)
    if fixed_test is None:
        counts = split_counts(n, fractions)
    else:
        train_val = fractions["train"] + fractions["val"]
        ratio = {k: fractions[k] / train_val if train_val > 0 else 0.0 for k in ("train", "val")}
        counts = {**split_counts(n - fixed_test, ratio), "test": fixed_test}
    empty = [k for k in SPLITS if counts[k] == 0]
    if empty:
        sizes = ", ".join(f"{k} {counts[k]}" for k in SPLITS)
        raise ValueError(
            f"{where}: split {fractions} of {n} samples leaves {' and '.join(empty)} empty ({sizes}); "
            "every split needs a sample: give each a positive fraction or use more samples"
        )
    return counts


def check_planned_split(name: str, entry: Mapping, split: Mapping[str, float]) -> None:
    """The workflow's check before any job: refuse a split that leaves a data set's split empty.

    A generated data set's size is known from its entry; for the others only the fractions can
    be checked now (a zero fraction always empties its split, except lucchi_em's test split,
    which is its testing stack), and :func:`preprocess` checks the size once the files are read.
    """
    entry = validate_entry(name, entry)
    fixed = layout_of(entry) == "lucchi_em"
    if entry["source"] == "synthetic":
        n = entry["synthetic"]["n"]
        check_split_sizes(f"datasets.{name}", n, split, n - (n + 1) // 2 if fixed else None)
        return
    fractions = check_split(split)
    zero = [k for k in SPLITS if fractions[k] == 0 and not (fixed and k == "test")]
    if zero:
        raise ValueError(f"datasets.{name}: split {fractions} leaves {' and '.join(zero)} empty; "
                         "every split needs a positive fraction")


def check_source_path(name: str, entry: Mapping) -> None:
    """The workflow's check before any job: a ``source: path`` entry names an existing folder.

    A missing folder would otherwise stop the run only at the preprocess job (Snakemake: "missing
    input files"), and a file would be taken as the folder of images."""
    entry = validate_entry(name, entry)
    if entry["source"] != "path":
        return
    root = Path(entry["path"])
    layout = "images/ and masks/" if entry["format"] == "pairs" else f"{entry['format']} layout"
    what = f"the data set's folder ({layout})"
    if not root.exists():
        raise ValueError(f"datasets.{name}.path: {root} not found; expected {what}")
    if not root.is_dir():
        raise ValueError(f"datasets.{name}.path: {root} is a file; expected {what}")


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
    """Seeded split of ``range(len(names))`` into train/val/test, sorted int64 indices (docs/data.md).

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
            stacklevel=2)
    warn_if_degenerate(masks, raw)
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
                      stacklevel=3)


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
                stacklevel=3,
            )


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
    """Make a data set's raw files available and return the folder its reader reads (docs/data.md).

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
    """The data stage of one data set (docs/data.md): :func:`obtain`, read, preprocess, write ``out_h5``.

    The entry, split and size are checked before anything is downloaded or generated.
    """
    check_planned_split(name, entry, split)
    entry = validate_entry(name, entry)
    check_image_size(image_size)
    check_seed(seed)
    check_writable(out_h5, "data set")
    root = obtain(name, entry, raw_dir, checksums=checksums, strict=strict)
    log.info("reading %s (%s) from %s", name, layout_of(entry), root)
    raw = read_raw(layout_of(entry), root)
    attrs = {"name": name, "source": entry["source"]}
    if entry["source"] == "synthetic":
        attrs["synthetic"] = json.dumps(entry["synthetic"], sort_keys=True)
    dataset = preprocess(raw, image_size, split, seed, attrs, workers=workers)
    write_dataset(out_h5, dataset)
    return Path(out_h5)


def is_hdf5(path: Path) -> bool:
    """A plain file with the HDF5 signature at its start (where preprocessing writes it)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def preprocess_cli(
    format: str,
    input_dir: str | os.PathLike,
    output: str | os.PathLike,
    image_size: int = 128,
    seed: int = 0,
    split: Mapping[str, float] | Sequence[float] | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> Path:
    """``bractivate preprocess --format F INPUT OUTPUT.h5``: read a local folder, write HDF5.

    ``split`` is a mapping or three fractions in train, val, test order (default 0.7/0.1/0.2).
    Every argument and the output's folder are checked before any image is read; an existing
    output is replaced only with ``overwrite``, and never one of the input files.
    """
    if split is None:
        split = DEFAULT_SPLIT
    elif not isinstance(split, Mapping):
        split = list(split)
        if len(split) != len(SPLITS):
            raise ValueError(f"split: expected three fractions (train, val, test), got {split!r}")
        split = dict(zip(SPLITS, split))
    check_image_size(image_size, "--image-size")
    check_seed(seed, "--seed")
    check_split(split)
    output = check_writable(output, "data set")
    raw = read_raw(format, input_dir)
    if output.resolve() in {p.resolve() for p in raw.files}:
        raise ValueError(f"{output}: is one of the input files; write the data set elsewhere")
    if output.exists() and not overwrite:
        raise ValueError(f"{output}: exists; pass --overwrite to replace it")
    if output.exists() and not is_hdf5(output):  # --overwrite replaces a data set, not a user's other file
        raise ValueError(f"{output}: exists and is not an HDF5 data set; --overwrite replaces only a data set: "
                         "it is left as it is, choose another name")
    dataset = preprocess(raw, image_size, split, seed, workers=workers)
    write_dataset(output, dataset)
    return Path(output)
