"""The one YAML reader of the project: config.yaml, presets and ``--settings`` files (docs/reliability.md).

PyYAML implements YAML 1.1, which reads ``1e-4`` (no dot) and ``1.0e4`` (no exponent sign) as
strings; people write them as numbers, and YAML 1.2 agrees, so :class:`Loader` adds the YAML 1.2
float forms. A key given twice in one mapping is refused naming the key and both lines: PyYAML
keeps the last one silently, and a preset with two ``search:`` blocks would lose the first.

Snakemake parses config.yaml and ``--configfile`` presets with its own reader before the
Snakefile runs; :func:`check_workflow_config` reads the same files again with this one and
coerces YAML 1.2 numbers where the schema expects a number, before the schema is validated.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Mapping

import yaml

# YAML 1.2 floats that YAML 1.1 reads as strings: an exponent without a dot (1e-4), or with an
# unsigned exponent (1.0e4). Forms 1.1 reads already (1.0e-4, 0.001) keep their resolver.
FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class DuplicateKeyError(ValueError):
    """A YAML mapping names one key twice."""


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats and duplicate keys refused (see the module docstring)."""

    where = "YAML"

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen.setdefault(key, line)
            except TypeError:  # an unhashable key: SafeConstructor refuses it with its own error
                continue
            if first is not None:
                raise DuplicateKeyError(f"{self.where}: key {key!r} given twice (lines {first} and {line}); "
                                        "keep one: YAML would silently drop the first")
        return super().construct_mapping(node, deep)


Loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+0123456789."))


def load_yaml(text: str, where: str):
    """Parse YAML ``text`` with :class:`Loader`; any error is one line naming ``where``."""
    loader = Loader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    except DuplicateKeyError:
        raise
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML ({' '.join(str(err).split())})") from err
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str = "YAML file"):
    """Read a YAML file with :func:`load_yaml`, naming the file in every error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err}); expected a {what}") from err
    return load_yaml(text, str(path))


# A number as YAML 1.2 writes it; Snakemake's `--config split={train: 0.7, …}` gives such strings.
NUMBER = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$")


def read_json_strict(path: str | Path):
    """Read a JSON config file, refusing a key given twice in one object (json keeps the last)."""

    def pairs(items):
        seen = set()
        for key, _ in items:
            if key in seen:
                raise DuplicateKeyError(f"{path}: key {key!r} given twice in one object; keep one: "
                                        "JSON readers silently drop the first")
            seen.add(key)
        return dict(items)

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=pairs)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def as_number(value):
    """``value`` as a number when it is a string that YAML 1.2 reads as one, else unchanged."""
    if isinstance(value, str) and NUMBER.match(value.strip()):
        text = value.strip().replace("_", "")
        return float(text) if any(c in text for c in ".eE") else int(text)
    return value


def resolve_ref(node: Mapping, root: Mapping, schemas: Path) -> Mapping:
    """Follow the ``$ref`` of a schema node: ``#/$defs/…`` in ``root``, or a schema file beside it."""
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    if not ref:
        return node
    if ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
    else:
        target = yaml.safe_load((schemas / ref).read_text())
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "properties" in node and "properties" in target:  # the config's `search` block adds defaults
        ours, theirs = node["properties"], target["properties"]
        merged["properties"] = {k: {**theirs.get(k, {}), **ours.get(k, {})} for k in {*theirs, *ours}}
    return merged


def coerce_numbers(value, schema: Mapping, root: Mapping | None = None, schemas: Path = Path("schemas")):
    """``value`` with every YAML 1.2 float string turned into a float where ``schema`` expects a number.

    Snakemake's YAML reader (YAML 1.1) leaves ``learning_rate: 1e-4`` a string; the schema would
    then refuse it as "not of type 'number'".
    """
    root = schema if root is None else root
    schema = resolve_ref(schema, root, schemas)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "number" in types:
        return as_number(value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key in list(value):
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                value[key] = coerce_numbers(value[key], sub, root, schemas)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value[:] = [coerce_numbers(v, schema["items"], root, schemas) for v in value]
    return value


def check_workflow_config(config: dict, configfiles, schema_path: str | Path) -> dict:
    """Refuse a duplicate key in any of the workflow's ``configfiles`` and coerce YAML 1.2 numbers in
    ``config`` (in place) where ``schema_path`` expects a number; called by the Snakefile before
    ``validate`` (docs/reliability.md)."""
    for path in configfiles:
        if Path(path).suffix.lower() == ".json":  # Snakemake reads JSON first: so does this check
            read_json_strict(path)
        else:
            read_yaml(path, "config file")
    schema_path = Path(schema_path)
    return coerce_numbers(config, yaml.safe_load(schema_path.read_text()), schemas=schema_path.parent)


def check_config_values(config: Mapping) -> None:
    """What the schema cannot say, checked before any job (docs/reliability.md): each data set entry,
    the split (and that no data set's split is left empty), a ``path:`` that is a folder, and an
    ablated experiment that exists."""
    from bractivate.data import check_datasets

    check_datasets(config["datasets"], config["split"])
    ablated, experiments = config["ablation"]["experiment"], list(config["experiments"])
    if ablated not in experiments:
        raise ValueError(f"config ablation.experiment: {ablated!r} is not one of the experiments {experiments}")


def key_path(parts) -> str:
    """``['experiments', 'main', 'depth_range', 0]`` as ``experiments.main.depth_range[0]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def config_error_line(err: BaseException) -> str:
    """One line for an error in the config: a schema violation names the key (the ``ValidationError``
    that Snakemake's ``validate`` wraps), any other error gives its message."""
    from jsonschema import ValidationError

    from bractivate.errors import one_line

    # Snakemake raises its WorkflowError inside `except ValidationError`: the context is the schema's error.
    causes = [err, *getattr(err, "args", ()), err.__cause__, err.__context__]
    cause = next((a for a in causes if isinstance(a, ValidationError)), None)
    if cause is not None:
        return f"{key_path(cause.absolute_path) or 'the config'}: {one_line(cause.message)} (ValidationError)"
    return f"{one_line(err)} ({type(err).__name__})"


def stop_on_config_error(err: BaseException):
    """End the Snakemake run with one line on stderr (status 1), before any job; Snakemake itself
    would print the error with a traceback of the Snakefile."""
    sys.exit(f"config error: {config_error_line(err)}")
