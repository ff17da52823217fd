"""The data stage of one data set (docs/data.md), as the workflow and the command line run it.

- :func:`obtain` (rule download): download and verify, generate, or find the raw files;
- :func:`preprocess_stage` (rule preprocess): read the folder that :func:`obtain` returned,
  preprocess, write the HDF5 file; it downloads and generates nothing;
- :func:`prepare`: both in one call, for a data set used outside the workflow;
- :func:`check_datasets`: the workflow's check of every entry before any job;
- :func:`preprocess_cli`: ``bractivate preprocess``, a local folder to an HDF5 file.

Each takes a config entry as it comes and checks it once with
:func:`~bractivate.data.entry.validate_entry`; what they hand on is trusted from then on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Sequence

from bractivate.io import SPLITS, check_writable, write_dataset

from .download import download_files
from .entry import DatasetEntry, check_source_path, layout_of, validate_entry
from .preprocess import preprocess
from .readers import read_raw
from .splits import DEFAULT_SPLIT, check_planned_split, check_seed, check_split
from .synthetic import MARKER, write_synthetic
from .transforms import check_image_size

log = logging.getLogger(__name__)


def check_datasets(datasets: Mapping[str, Mapping], split: Mapping[str, float]) -> dict[str, DatasetEntry]:
    """Every data set entry of the config checked once, with the split, before any job (docs/reliability.md).

    Refuses a bad entry, a bad split, a split that leaves a data set's split empty and a
    ``path:`` that is missing or a file; returns the validated entries by name.
    """
    entries = {name: validate_entry(name, entry) for name, entry in datasets.items()}
    check_split(split)
    for name, entry in entries.items():
        # A split left without a sample fails only in the search or the training: refuse it now.
        check_planned_split(name, entry, split)
        # A `path:` that is missing or a file would fail only in its preprocess job.
        check_source_path(name, entry)
    return entries


def _synthetic(entry: DatasetEntry, raw_dir: Path) -> Path:
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


def _check_stage(name: str, entry: Mapping, out_h5, image_size, split, seed) -> DatasetEntry:
    """The entry, split, size, seed and output folder, checked before anything is read or fetched."""
    entry = validate_entry(name, entry)
    check_planned_split(name, entry, split)
    check_image_size(image_size)
    check_seed(seed)
    check_writable(out_h5, "data set")
    return entry


def _read_and_write(name: str, entry: DatasetEntry, root: Path, out_h5, image_size, split, seed, workers) -> Path:
    """Read ``root`` in the entry's layout, preprocess, write ``out_h5`` with the entry's provenance."""
    log.info("reading %s (%s) from %s", name, layout_of(entry), root)
    raw = read_raw(layout_of(entry), root)
    attrs = {"name": name, "source": entry["source"]}
    if entry["source"] == "synthetic":
        attrs["synthetic"] = json.dumps(entry["synthetic"], sort_keys=True)
    write_dataset(out_h5, preprocess(raw, image_size, split, seed, attrs, workers=workers))
    return Path(out_h5)


def preprocess_stage(
    name: str,
    entry: Mapping,
    root: str | os.PathLike,
    out_h5: str | os.PathLike,
    *,
    image_size: int = 128,
    split: Mapping[str, float] = DEFAULT_SPLIT,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Rule preprocess (docs/data.md): read ``root``, the folder :func:`obtain` returned, preprocess it
    and write ``out_h5``. Nothing is downloaded, verified again or generated here."""
    entry = _check_stage(name, entry, out_h5, image_size, split, seed)
    return _read_and_write(name, entry, Path(root), out_h5, image_size, split, seed, workers)


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
    """The data stage of one data set in one call (docs/data.md): :func:`obtain` once, then read,
    preprocess and write ``out_h5`` as :func:`preprocess_stage` does.

    The entry, split and size are checked before anything is downloaded or generated.
    """
    entry = _check_stage(name, entry, out_h5, image_size, split, seed)
    root = obtain(name, entry, raw_dir, checksums=checksums, strict=strict)
    return _read_and_write(name, entry, root, out_h5, image_size, split, seed, workers)


def is_hdf5(path: Path) -> bool:
    """A plain file with the HDF5 signature at its start (where preprocessing writes it)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _split_fractions(split: Mapping[str, float] | Sequence[float] | None) -> Mapping[str, float]:
    """The command line's split: a mapping, three fractions in train, val, test order, or the default."""
    if split is None:
        return DEFAULT_SPLIT
    if isinstance(split, Mapping):
        return split
    split = list(split)
    if len(split) != len(SPLITS):
        raise ValueError(f"split: expected three fractions (train, val, test), got {split!r}")
    return dict(zip(SPLITS, split))


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
    split = _split_fractions(split)
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
    write_dataset(output, preprocess(raw, image_size, split, seed, workers=workers))
    return Path(output)
