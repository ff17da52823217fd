"""One ``datasets: {name: entry}`` entry of the config, checked once where it enters (docs/data.md).

:func:`validate_entry` is the Python twin of ``schemas/dataset.schema.yaml``: it checks the rules
the schema states, reads the schema's bounds and defaults, adds what JSON schema cannot say (paths
that stay inside the raw folder, the synthetic task's layout) and returns a :class:`DatasetEntry`
with the defaults filled in. Every later step takes that result as it is: passing a
:class:`DatasetEntry` to :func:`validate_entry` again returns it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from .download import check_sha256
from .readers import LAYOUTS
from bractivate.schema import schema_node
from .synthetic import TASK_LAYOUT

SCHEMA = "dataset.schema.yaml"
FORMATS = (*LAYOUTS, "synthetic")
SOURCES = ("download", "path", "synthetic")
ENTRY_KEYS = {"format", "source", "files", "path", "synthetic"}
SOURCE_KEY = {"download": "files", "path": "path", "synthetic": "synthetic"}
FILE_KEYS = {"name", "sha256", "urls", "extract", "into"}
ARCHIVE_SUFFIXES = tuple(schema_node(SCHEMA, "$defs", "archive_suffix", "enum"))
# Generated stand-ins: a stack is held in memory while written, so the schema bounds n and size.
_SYNTHETIC = schema_node(SCHEMA, "properties", "synthetic", "properties")
SYNTHETIC_DEFAULTS = {key: _SYNTHETIC[key]["default"] for key in ("n", "seed", "size")}
MIN_SYNTHETIC_N, MAX_SYNTHETIC_N = _SYNTHETIC["n"]["minimum"], _SYNTHETIC["n"]["maximum"]
MIN_SYNTHETIC_SEED = _SYNTHETIC["seed"]["minimum"]
MIN_SYNTHETIC_SIDE = _SYNTHETIC["size"]["items"]["minimum"]
MAX_SYNTHETIC_SIDE = _SYNTHETIC["size"]["items"]["maximum"]


class DatasetEntry(dict):
    """A data set entry that :func:`validate_entry` checked, with its defaults filled in."""


def is_archive(name: str | os.PathLike) -> bool:
    """True when the file name ends like a zip or tar archive (the default of ``extract:``)."""
    return str(name).lower().endswith(ARCHIVE_SUFFIXES)


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
    for key, least in (("n", MIN_SYNTHETIC_N), ("seed", MIN_SYNTHETIC_SEED)):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < least:
            raise ValueError(f"{where}.{key}: expected an integer >= {least}, got {out[key]!r}")
    if out["n"] > MAX_SYNTHETIC_N:
        raise ValueError(f"{where}.n: expected an integer <= {MAX_SYNTHETIC_N}, got {out['n']!r}")
    size = out["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(s, int) and not isinstance(s, bool) and MIN_SYNTHETIC_SIDE <= s <= MAX_SYNTHETIC_SIDE
            for s in size)):
        raise ValueError(f"{where}.size: expected [height, width], integers in [{MIN_SYNTHETIC_SIDE}, "
                         f"{MAX_SYNTHETIC_SIDE}], got {size!r}")
    return {**out, "size": list(size)}


def _source_fields(where: str, entry: Mapping) -> dict:
    """The key that the entry's source needs, checked; the other sources' keys refused."""
    source = entry["source"]
    needed = SOURCE_KEY[source]
    if needed not in entry:
        raise ValueError(f"{where}: source {source!r} needs the key {needed!r}")
    stray = sorted(k for k in set(SOURCE_KEY.values()) - {needed} if k in entry)
    if stray:
        raise ValueError(f"{where}: key(s) {stray} do not apply to source {source!r} (it uses {needed!r})")
    if source == "download":
        files = entry["files"]
        if not isinstance(files, list) or not files:
            raise ValueError(f"{where}.files: expected a non-empty list of files, got {files!r}")
        return {"files": [_file_entry(f"{where}.files[{i}]", item) for i, item in enumerate(files)]}
    if source == "path":
        if not isinstance(entry["path"], (str, os.PathLike)) or not str(entry["path"]):
            raise ValueError(f"{where}.path: expected a folder path, got {entry['path']!r}")
        return {"path": str(entry["path"])}
    return {"synthetic": _synthetic_entry(f"{where}.synthetic", entry["synthetic"])}


def validate_entry(name: str, entry) -> DatasetEntry:
    """Check one data set entry of the config and return it with defaults filled in (docs/data.md).

    Raises ``ValueError`` naming the key, the value found and what was expected. An entry this
    function returned is trusted and returned as it is.
    """
    if isinstance(entry, DatasetEntry):
        return entry
    where = f"datasets.{name}"
    _keys(where, entry, ENTRY_KEYS, ("format", "source"))
    fmt, source = entry["format"], entry["source"]
    if fmt not in FORMATS:
        raise ValueError(f"{where}.format: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if source not in SOURCES:
        raise ValueError(f"{where}.source: unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    out = DatasetEntry(format=fmt, source=source, **_source_fields(where, entry))
    if fmt == "synthetic" and source != "synthetic":
        raise ValueError(f"{where}.format: 'synthetic' needs source: synthetic, got source {source!r}")
    if source == "synthetic" and fmt not in ("synthetic", TASK_LAYOUT[out["synthetic"]["task"]]):
        task = out["synthetic"]["task"]
        raise ValueError(
            f"{where}.format: synthetic task {task!r} is written in the {TASK_LAYOUT[task]!r} layout, "
            f"got format {fmt!r} (use {TASK_LAYOUT[task]!r} or 'synthetic')"
        )
    return out


def layout_of(entry: DatasetEntry) -> str:
    """The reader format of a validated entry (``synthetic`` resolves to its task's layout)."""
    if entry["format"] == "synthetic":
        return TASK_LAYOUT[entry["synthetic"]["task"]]
    return entry["format"]


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
