"""One line for every error (docs/reliability.md): what the ``bractivate`` command and the
workflow's scripts print when something goes wrong.

An error the user can fix (a bad file, value or folder, a full disk, a search whose every
evaluation failed) is one line naming what to fix. Any other exception is a bug in the package:
its traceback goes to a log file, and the one line says where.
"""

from __future__ import annotations

import datetime
import os
import tempfile
import traceback
from pathlib import Path


class UserError(Exception):
    """Base of the package's own errors that the user fixes (not bugs): a failed download, a search
    whose every evaluation failed, a training that diverged."""


class SearchFailed(UserError, RuntimeError):
    """Every evaluation of a search failed: nothing to report as its best genome."""


class TrainingFailed(UserError, RuntimeError):
    """A full training gave a non-finite loss (learning rate, data)."""


# ValueError covers JSON and Unicode decoding errors and the readers' RawDataError; OSError
# covers missing, unreadable and unwritable files, a full disk and h5py's "not HDF5".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, MemoryError, UserError)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (whitespace runs, newlines included, become one space)."""
    text = " ".join(str(err).split())
    if isinstance(err, MemoryError):
        return f"out of memory ({text or 'MemoryError'}); use smaller images, batches or models"
    if isinstance(err, KeyError):  # str(KeyError) is only the quoted key
        return f"missing key {text}"
    return text or type(err).__name__


def is_user_error(err: BaseException) -> bool:
    return isinstance(err, USER_ERRORS)


def log_traceback(err: BaseException, prog: str, log_path: str | os.PathLike | None = None) -> Path:
    """Write the traceback of ``err`` to ``log_path`` (appended) or a new file in the temporary
    folder, and return that file."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    if log_path is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        handle, name = tempfile.mkstemp(prefix=f"{prog.replace(' ', '-')}-{stamp}-", suffix=".log")
        with os.fdopen(handle, "w") as fh:
            fh.write(text)
        return Path(name)
    with open(log_path, "a") as fh:
        fh.write(text)
    return Path(log_path)


def internal_error_line(err: BaseException, where: Path) -> str:
    return (f"internal error ({type(err).__name__}: {one_line(err)}); its traceback is in {where}: "
            "please report it with that file")
