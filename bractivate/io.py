"""Atomic file writes and the one reader/writer of the preprocessed HDF5 data sets (docs/data.md).

Every file the pipeline produces is written to a temporary name in the same folder and renamed
into place, so a killed job never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

SPLITS = ("train", "val", "test")
DATASET_FORMAT_VERSION = 1


def _new_temporary(path: Path, suffix: str) -> Path:
    """Create an empty hidden file beside ``path`` with the mode the umask gives a new file.

    Not ``tempfile.mkstemp``: its 0600 mode survives the rename, and on a shared cluster nobody
    else in the group could read the results.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary name beside it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    ``suffix`` defaults to the suffix of ``path`` so writers that dispatch on the file extension
    (``model.save("x.keras")``) still work. The temporary file is removed whatever happens.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temporary(path, suffix if suffix is not None else path.suffix)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """Raise a one-line ``ValueError`` unless ``path`` can be written, before any work is spent on it.

    Creates the parent folder and a temporary file in it (removed again); a folder at ``path``
    itself is refused too.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected the {what} file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _new_temporary(path, ".check").unlink()
    except OSError as err:
        raise ValueError(
            f"{path}: cannot write the {what} here ({type(err).__name__}: {err.strerror or err}); "
            "choose a writable folder"
        ) from err
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a failed write (a full disk) leaves nothing behind."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            raise OSError(err.errno, f"{path}: cannot write {len(data)} bytes ({err.strerror}); "
                          "nothing was written, free some space or choose another folder") from err


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file, naming the file in the error when it does not parse."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected a JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:  # an image or binary file given as JSON
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    except RecursionError as err:  # [[[[…]]]] thousands deep: none of the project's files nests so
        raise ValueError(f"{path}: JSON nested too deeply to be one of the project's files") from err


def write_table(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as a tab-separated table atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


@dataclass
class Dataset:
    """A preprocessed data set: images in [0, 1], binary masks and a fixed split."""

    images: np.ndarray  # (N, S, S, 1) float32 in [0, 1]
    masks: np.ndarray  # (N, S, S, 1) uint8 in {0, 1}
    splits: dict[str, np.ndarray]  # split name -> sorted int64 indices into images
    names: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    # Splits cut once per job, and their copies on the accelerator (see bractivate.train).
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.shape != self.masks.shape:
            raise ValueError(
                f"images {self.images.shape} and masks {self.masks.shape} differ in shape"
            )
        if self.images.ndim != 4 or self.images.shape[-1] != 1:
            raise ValueError(f"images must be (N, H, W, 1), got {self.images.shape}")
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"split(s) {missing} missing; expected {list(SPLITS)}")
        seen: set[int] = set()
        for name in SPLITS:
            idx = self.splits[name]
            if idx.size and (idx.min() < 0 or idx.max() >= len(self.images)):
                raise ValueError(f"split {name!r} has indices outside [0, {len(self.images)})")
            if np.unique(idx).size != idx.size:  # a repeated sample would count twice in Dice
                raise ValueError(f"split {name!r} repeats {idx.size - np.unique(idx).size} sample index(es)")
            overlap = seen.intersection(idx.tolist())
            if overlap:
                raise ValueError(f"split {name!r} shares {len(overlap)} samples with another split")
            seen.update(idx.tolist())

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, masks) of one split, masks as float32 for training; cut once per job (do not modify)."""
        if name not in self.cache:
            idx = self.splits[name]
            self.cache[name] = self.images[idx], self.masks[idx].astype("float32")
        return self.cache[name]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def write_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    """Write ``dataset`` to an HDF5 file atomically (layout of docs/data.md).

    The file is built in memory and written in one piece: HDF5 writing straight to a disk that
    fills up can crash the process and leave its temporary file behind.
    """
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("images", data=dataset.images.astype("float32"), compression="gzip")
        h5.create_dataset("masks", data=dataset.masks.astype("uint8"), compression="gzip")
        for name in SPLITS:
            h5.create_dataset(f"split/{name}", data=np.asarray(dataset.splits[name], "int64"))
        h5.create_dataset("names", data=np.array(dataset.names, dtype=h5py.string_dtype()))
        for key, value in dataset.attrs.items():
            h5.attrs[key] = value
        h5.attrs["version"] = DATASET_FORMAT_VERSION
    write_bytes(path, buffer.getvalue())


def check_layout(h5, path: Path) -> None:
    """Refuse an HDF5 file that is not a preprocessed data set (docs/data.md) before its arrays are read:
    ``images`` and ``masks`` (N, H, W, 1) float32 and uint8, each split a 1-D array of integers."""
    import h5py

    advice = "expected a data set that preprocessing wrote (docs/data.md)"
    for key in ("images", "masks", *(f"split/{s}" for s in SPLITS)):
        if key not in h5:
            raise ValueError(f"{path}: HDF5 key {key!r} missing (expected images, masks, split/*); {advice}")
        if not isinstance(h5[key], h5py.Dataset):
            raise ValueError(f"{path}: HDF5 {key!r} is a group, not an array; {advice}")
    for key, dtype in (("images", np.float32), ("masks", np.uint8)):
        array = h5[key]
        if array.ndim != 4 or array.shape[-1] != 1 or array.dtype != dtype:
            raise ValueError(f"{path}: {key} is a {array.dtype} array of shape {array.shape}; "
                             f"expected (N, H, W, 1) {np.dtype(dtype).name}; {advice}")
    if h5["masks"].shape != h5["images"].shape:
        raise ValueError(f"{path}: masks {h5['masks'].shape} and images {h5['images'].shape} differ in shape; {advice}")
    for name in SPLITS:
        split = h5[f"split/{name}"]
        if split.ndim != 1 or split.dtype.kind not in "iu":
            raise ValueError(f"{path}: split/{name} is a {split.dtype} array of shape {split.shape}; "
                             f"expected a list of integer sample indices; {advice}")


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read a preprocessed HDF5 data set, checking its layout and value ranges."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data set file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
    with h5:
        check_layout(h5, path)
        images = h5["images"][...]
        masks = h5["masks"][...]
        splits = {s: h5[f"split/{s}"][...].astype("int64") for s in SPLITS}
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["names"][...]] if "names" in h5 else []
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in h5.attrs.items()}
    if images.dtype != np.float32:
        raise ValueError(f"{path}: images must be float32 in [0, 1], got {images.dtype}")
    # NaN passes any min/max test: look for the samples that hold one, and name them.
    bad = [i for i in range(len(images)) if not np.isfinite(images[i]).all()]
    if bad:
        which = ", ".join(names[i] if i < len(names) else f"#{i}" for i in bad[:5])
        raise ValueError(f"{path}: images hold NaN or infinite values ({len(bad)} sample(s): {which}); "
                         "preprocess the data set again")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"{path}: images must be float32 in [0, 1], got [{images.min():g}, {images.max():g}]")
    if masks.dtype != np.uint8 or not np.isin(masks, (0, 1)).all():
        raise ValueError(f"{path}: masks must be uint8 in {{0, 1}}")
    if names and len(names) != len(images):
        raise ValueError(f"{path}: {len(names)} names for {len(images)} images")
    empty = [s for s in SPLITS if not splits[s].size]
    if empty:
        sizes = ", ".join(f"{s} {splits[s].size}" for s in SPLITS)
        raise ValueError(f"{path}: split(s) {', '.join(empty)} empty ({sizes} of {len(images)} samples); "
                         "every split needs a sample: preprocess with other split fractions")
    try:
        return Dataset(images, masks, splits, names, attrs)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
