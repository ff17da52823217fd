"""The workflow's schemas, ``schemas/*.yaml``: the one home of every setting's default, bounds and
description, read here by the code that needs them (the config's, the data set entries' bounds
and archive endings).

:class:`~bractivate.evaluation.SearchSettings` and :class:`~bractivate.pipeline.TrainSettings` take
their defaults from it (:func:`defaults`) and check their bounds and choices against it
(:func:`check_bounds`), :mod:`bractivate.genome` its largest depth and width; Snakemake fills a
config's missing keys from it; the settings tables of docs/method.md are generated from it::

    python -m bractivate.schema docs/method.md           # rewrite the tables
    python -m bractivate.schema docs/method.md --check   # status 1 when they differ

and tests/test_defaults.py fails when config.yaml, the docs or the code's own lists drift from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import sys
from pathlib import Path
from typing import Mapping

from bractivate.config import read_yaml, resolve_ref

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_PATH = SCHEMAS / "config.schema.yaml"
# The sections whose settings docs/method.md tabulates.
TABLED_SECTIONS = ("search", "train")
# A generated table sits between these two lines; the opening one says where it comes from.
TABLE_START = ("<!-- settings:{section} generated from schemas/config.schema.yaml by "
               "`python -m bractivate.schema docs/method.md`: edit the schema, not this table -->")
TABLE_END = "<!-- /settings:{section} -->"


@functools.cache
def load_schema(name: str) -> dict:
    """The parsed ``schemas/<name>`` (read once); the package runs from its repository, whose
    schemas/ folder sits beside it."""
    path = SCHEMAS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: schema not found; the bractivate package reads its defaults and "
                                "bounds from the schemas/ folder of its repository, beside the package")
    return read_yaml(path, "schema")


def schema_node(name: str, *keys: str) -> dict:
    """The sub-schema of ``schemas/<name>`` at ``keys``, or ``KeyError`` naming the path."""
    node = load_schema(name)
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"schemas/{name}: no {'.'.join(keys[: i + 1])}")
        node = node[key]
    return node


def config_schema() -> dict:
    """The config schema, ``schemas/config.schema.yaml``."""
    return load_schema(SCHEMA_PATH.name)


def section(name: str) -> dict[str, dict]:
    """The schema node of each setting of config section ``name`` (``search``, ``train``, …), with
    ``search``'s types and descriptions from ``$defs/search_settings`` merged in, in schema order."""
    root = config_schema()
    if name not in root["properties"]:
        raise ValueError(f"{SCHEMA_PATH}: no config section {name!r}; expected one of {sorted(root['properties'])}")
    node = resolve_ref(root["properties"][name], root, SCHEMA_PATH.parent)
    properties = node.get("properties", {})
    order = list(root["$defs"]["search_settings"]["properties"]) if name == "search" else list(properties)
    return {key: properties[key] for key in order}


def defaults(name: str | None = None) -> dict:
    """The schema's default of every setting of section ``name``, or of every top-level key when
    ``name`` is None; a setting without a default is left out."""
    nodes = config_schema()["properties"] if name is None else section(name)
    return {key: node["default"] for key, node in nodes.items() if "default" in node}


def _bound_words(node: Mapping, signs: tuple[str, str, str] = ("≥", ">", "≤")) -> str:
    """A numeric node's bounds as they follow its type's word: `` in [1, 16]``, `` ≥ 1``,
    `` > 0``, `` ≤ 9`` or nothing; ``signs`` are the at-least, more-than and at-most signs."""
    at_least, more_than, at_most = signs
    low = (f"[{node['minimum']}" if "minimum" in node
           else f"({node['exclusiveMinimum']}" if "exclusiveMinimum" in node else None)
    if low is not None and "maximum" in node:
        return f" in {low}, {node['maximum']}]"
    if low is not None:
        return f" {at_least if low[0] == '[' else more_than} {low[1:]}"
    return f" {at_most} {node['maximum']}" if "maximum" in node else ""


def _number_words(node: Mapping) -> str:
    """``an integer >= 1``, ``a number > 0``, ``an integer in [1, 16]``: a numeric node in an
    error message (plain signs; the docs' tables write ≥ and ≤)."""
    types = node.get("type", "number")
    kind = "an integer" if "integer" in ([types] if isinstance(types, str) else types) else "a number"
    return kind + _bound_words(node, (">=", ">", "<="))


def _within(node: Mapping, value) -> bool:
    """Whether the number ``value`` meets a schema node's minimum, exclusiveMinimum and maximum."""
    return not (("minimum" in node and value < node["minimum"])
                or ("exclusiveMinimum" in node and value <= node["exclusiveMinimum"])
                or ("maximum" in node and value > node["maximum"]))


def check_bounds(settings, section_name: str) -> None:
    """Each field of a settings dataclass (types already checked) within its schema node's
    bounds and choices: the config section ``section_name``'s, or the top-level key's (``seed``).
    Raises a one-line ``ValueError``: ``search.epochs: expected an integer >= 1, got 0``."""
    nodes, top = section(section_name), config_schema()["properties"]
    for f in dataclasses.fields(settings):
        node = nodes.get(f.name, top.get(f.name))
        value = getattr(settings, f.name)
        if node is None or value is None:
            continue
        name = f"{section_name}.{f.name}"
        if "enum" in node and value not in node["enum"]:
            raise ValueError(f"{name}: expected one of {tuple(node['enum'])}, got {value!r}")
        if node.get("type") == "array" and not all(_within(node["items"], v) for v in value):
            raise ValueError(f"{name}: expected [low, high], each {_number_words(node['items'])}, "
                             f"got {list(value)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _within(node, value):
            null = "null or " if "null" in (node.get("type") or []) else ""
            raise ValueError(f"{name}: expected {null}{_number_words(node)}, got {value}")


def _yaml_value(value) -> str:
    """A default as config.yaml writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


def _allowed(node: Mapping) -> str:
    """What a setting accepts, in a few words: its choices, or its type and bounds."""
    if "enum" in node:
        return ", ".join(f"`{v}`" for v in node["enum"])
    items = node.get("items") if node.get("type") == "array" else None
    bounded = items or node
    types = bounded.get("type", "")
    types = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
    words = {"integer": "integer", "number": "number", "boolean": "true or false", "string": "text"}
    text = " or ".join(words.get(t, t) for t in types) + _bound_words(bounded)
    if items is not None:
        pair = node.get("minItems") == node.get("maxItems") == 2
        text = f"[low, high], each an {text}" if pair else f"list of {text}"
    if "null" in (node.get("type") or []):
        text += ", or null"
    return text


def settings_table(name: str) -> str:
    """The markdown table of section ``name``'s settings: key, default, what it accepts, meaning."""
    lines = ["| key | default | accepts | meaning |", "|---|---|---|---|"]
    for key, node in section(name).items():
        description = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
        lines.append(f"| `{key}` | `{_yaml_value(node.get('default'))}` | {_allowed(node)} | {description} |")
    return "\n".join(lines)


def render_tables(text: str) -> str:
    """``text`` with every generated settings table (between its two marker lines) made anew."""
    for name in TABLED_SECTIONS:
        start, end = TABLE_START.format(section=name), TABLE_END.format(section=name)
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
        text = pattern.sub(lambda _: f"{start}\n{settings_table(name)}\n{end}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only compare) the settings tables of the given markdown files."""
    parser = argparse.ArgumentParser(prog="python -m bractivate.schema", description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table differs")
    args = parser.parse_args(argv)
    stale = []
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        fresh = render_tables(text)
        if fresh != text:
            stale.append(path)
            if not args.check:
                path.write_text(fresh, encoding="utf-8")
    if stale and args.check:
        print(f"settings tables differ from {SCHEMA_PATH.name} in: {', '.join(map(str, stale))}; "
              "run python -m bractivate.schema on them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
