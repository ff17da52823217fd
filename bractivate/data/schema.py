"""The workflow's JSON schemas as the data package's source of facts (docs/data.md).

The bounds and lists the config's schemas declare (the smallest ``image_size``, the archive
name endings, the synthetic stand-in's defaults) are read from ``schemas/`` here, so that the
code and the schemas cannot disagree.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@functools.cache
def load_schema(name: str) -> dict:
    """The parsed ``schemas/<name>`` (read once), or ``FileNotFoundError`` naming the file."""
    path = SCHEMAS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: schema not found; the package reads its bounds from the "
                                "workflow's schemas/ folder beside it (install it with pip install -e)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def schema_node(name: str, *keys: str) -> dict:
    """The sub-schema of ``schemas/<name>`` at ``keys``, or ``KeyError`` naming the path."""
    node = load_schema(name)
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"schemas/{name}: no {'.'.join(keys[: i + 1])}")
        node = node[key]
    return node
