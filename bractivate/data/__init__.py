"""The data stage (docs/data.md): download or generate, read the public layouts, preprocess to HDF5.

- :func:`fetch` / :func:`download_files` / :func:`extract` (``download``): checksummed, resumable
  downloads (trust on first use, or strict), safe unpacking;
- :func:`read_raw` (``readers``): the Montgomery, Lucchi EM, DSB2018 and image/mask-pair layouts;
- :func:`write_synthetic` (``synthetic``): deterministic stand-ins written in those layouts;
- :func:`obtain` / :func:`preprocess` / :func:`prepare` (``preprocess``): get the raw files, then
  resize, normalise, split and write HDF5.
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
from .preprocess import (
    DEFAULT_SPLIT,
    FORMATS,
    SOURCES,
    obtain,
    prepare,
    preprocess,
    preprocess_cli,
    validate_entry,
)
from .readers import LAYOUTS, RawData, RawDataError, Sample, read_raw
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
    "Sample",
    "download_files",
    "extract",
    "fetch",
    "obtain",
    "prepare",
    "preprocess",
    "preprocess_cli",
    "read_checksums",
    "read_raw",
    "validate_entry",
    "write_synthetic",
]
