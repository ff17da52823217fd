"""The data stage (docs/data.md): download or generate, read the public layouts, preprocess to HDF5.

- :func:`fetch` / :func:`download_files` / :func:`extract` (``download``): checksummed, resumable
  downloads (trust on first use, or strict), safe unpacking;
- :func:`read_raw` (``readers``): the Montgomery, Lucchi EM, DSB2018 and image/mask-pair layouts;
- :func:`write_synthetic` (``synthetic``): deterministic stand-ins written in those layouts;
- :func:`validate_entry` (``entry``): one config entry, checked once where it enters;
- :func:`preprocess` (``preprocess``, with ``splits`` and ``transforms``): resize, normalise, split;
- :func:`obtain` / :func:`preprocess_stage` / :func:`prepare` / :func:`preprocess_cli` (``stage``):
  get the raw files, then read, preprocess and write HDF5.
"""

from .download import (
    ChecksumError,
    DownloadError,
    FirstUseWarning,
    UnsafeArchiveError,
    UnverifiedDownloadError,
    download_files,
    extract,
    fetch,
    read_checksums,
)
from .entry import FORMATS, SOURCES, DatasetEntry, validate_entry
from .preprocess import preprocess
from .readers import LAYOUTS, RawData, RawDataError, Sample, read_raw
from .splits import DEFAULT_SPLIT
from .stage import check_datasets, obtain, prepare, preprocess_cli, preprocess_stage
from .synthetic import TASK_LAYOUT, write_synthetic

__all__ = [
    "FORMATS",
    "SOURCES",
    "LAYOUTS",
    "TASK_LAYOUT",
    "DEFAULT_SPLIT",
    "ChecksumError",
    "DownloadError",
    "FirstUseWarning",
    "UnsafeArchiveError",
    "UnverifiedDownloadError",
    "RawDataError",
    "RawData",
    "DatasetEntry",
    "Sample",
    "check_datasets",
    "download_files",
    "extract",
    "fetch",
    "obtain",
    "prepare",
    "preprocess",
    "preprocess_cli",
    "preprocess_stage",
    "read_checksums",
    "read_raw",
    "validate_entry",
    "write_synthetic",
]
