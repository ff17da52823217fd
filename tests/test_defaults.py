"""Each default has one home, the config schema (bractivate.schema): ``SearchSettings`` and
``TrainSettings`` read their defaults there, and config.yaml's values, the docs' settings tables
and defaults, the preprocessing's own checks and the code's lists of choices agree with it, so
changing one of them without the others fails here."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from bractivate import schema as config_schema
from bractivate.activity import MODES as ACTIVITY_MODES
from bractivate.baselines import BASELINES
from bractivate.data import prepare
from bractivate.data.preprocess import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, check_image_size, check_split
from bractivate.evaluation import MUTATIONS, SearchSettings
from bractivate.model import MIN_SIZE
from bractivate.pipeline import TrainSettings
from bractivate.scores import LOSSES, TIME_MEASURES
from bractivate.train import EXECUTIONS, MONITORS, PRECISIONS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
# Settings the workflow sets itself instead of reading them from the config's search section:
# a search's seed is the config's seed plus the trial (rules/common.smk, search_settings).
SET_BY_THE_WORKFLOW = {"seed"}
# config.yaml values that differ from the schema's defaults on purpose, by section: none today.
DELIBERATE = {"search": {}, "train": {}, "ablation": {}, "baselines": {}, "figures": {}, "export": {}}


def _typed(value):
    """A value with its type, so that ``1 == True`` or ``1 == 1.0`` counts as a difference;
    tuples compare as the YAML lists they are written as."""
    value = list(value) if isinstance(value, tuple) else value
    return type(value).__name__, value


def test_schema_search_defaults_are_the_search_settings_defaults():
    schema = SCHEMA["properties"]["search"]["properties"]
    settings = {f.name: f.default for f in fields(SearchSettings)}
    assert set(schema) == set(settings) - SET_BY_THE_WORKFLOW
    assert {k: _typed(v["default"]) for k, v in schema.items()} == {k: _typed(settings[k]) for k in schema}
    # Every defaulted setting is typed and described once, in $defs/search_settings.
    assert set(SCHEMA["$defs"]["search_settings"]["properties"]) == set(schema)


def test_schema_train_defaults_are_the_train_settings_defaults():
    """`bractivate train` and the workflow's train_best share TrainSettings' defaults and bounds."""
    schema = SCHEMA["properties"]["train"]["properties"]
    settings = {f.name: f.default for f in fields(TrainSettings)}
    assert {k: _typed(v["default"]) for k, v in schema.items()} == {k: _typed(v) for k, v in settings.items()}
    assert TrainSettings.from_dict({k: v["default"] for k, v in schema.items()}) == TrainSettings()


@pytest.mark.parametrize("section", sorted(DELIBERATE))
def test_config_values_are_the_schema_defaults(section):
    schema = SCHEMA["properties"][section]["properties"]
    differing = {key: value for key, value in CONFIG[section].items()
                 if _typed(value) != _typed(schema[key].get("default"))}
    assert differing == DELIBERATE[section]


def test_config_top_level_values_are_the_schema_defaults():
    for key in ("seed", "image_size", "split", "trials", "keras_backend"):
        schema = SCHEMA["properties"][key]
        default = ({k: v["default"] for k, v in schema["properties"].items()} if key == "split"
                   else schema["default"])
        assert _typed(CONFIG[key]) == _typed(default), key


def test_the_schema_split_is_one_the_preprocessing_accepts():
    split = {k: v["default"] for k, v in SCHEMA["properties"]["split"]["properties"].items()}
    assert check_split(split) == split
    with pytest.raises(ValueError, match="must sum to 1"):
        check_split({**split, "train": split["train"] + 0.1})


def test_the_schema_image_size_range_is_the_preprocessings():
    schema = SCHEMA["properties"]["image_size"]
    assert (schema["minimum"], schema["maximum"]) == (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    for size in (schema["minimum"], schema["default"], schema["maximum"]):
        assert check_image_size(size) == size
    for size in (schema["minimum"] - 1, schema["maximum"] + 1):
        with pytest.raises(ValueError, match="image_size"):
            check_image_size(size)
    assert inspect.signature(prepare).parameters["image_size"].default == schema["default"]


def _bounds(node):
    """(low, high) that a schema node allows for an integer or number: None where open."""
    items = node.get("items", node)
    low = items.get("minimum", items.get("exclusiveMinimum"))
    return low, items.get("maximum"), "exclusiveMinimum" in items


SEARCH_NODES = SCHEMA["$defs"]["search_settings"]["properties"]
# The numeric settings and ranges; the others (choices, flags) are checked by their own tests.
BOUNDED_KEYS = sorted(k for k, node in SEARCH_NODES.items() if node.get("type") in ("integer", "number", "array"))


def test_every_bounded_search_setting_is_checked():
    assert {"population", "evaluations", "learning_rate", "depth_range", "filter_range"} <= set(BOUNDED_KEYS)


@pytest.mark.parametrize("key", BOUNDED_KEYS)
def test_the_search_settings_have_the_schemas_bounds(key):
    """``bractivate search --set`` accepts exactly what the config's schema accepts at each bound."""
    node = SEARCH_NODES[key]
    low, high, exclusive = _bounds(node)
    integer = node.get("type") == "integer" or node.get("items", {}).get("type") == "integer"
    step = 1 if integer else 1e-9

    def value(v):
        return [v, v] if node.get("type") == "array" else v

    for bound, outside in ((low, None if low is None else low - (0 if exclusive else step)),
                           (high, None if high is None else high + step)):
        if bound is None:
            continue
        if not exclusive or bound == high:
            SearchSettings(**{key: value(bound)})
        with pytest.raises(ValueError, match=f"search.{key}"):
            SearchSettings(**{key: value(outside)})


def test_the_schema_seed_is_one_a_search_takes():
    assert SCHEMA["properties"]["seed"]["minimum"] == 0
    SearchSettings(seed=SCHEMA["properties"]["seed"]["minimum"] + 1)
    with pytest.raises(ValueError, match="search.seed"):
        SearchSettings(seed=-1)


def test_the_settings_read_the_schema_defaults():
    assert SearchSettings() == SearchSettings.from_dict(
        {**config_schema.defaults("search"), "seed": config_schema.defaults()["seed"]})
    assert TrainSettings() == TrainSettings.from_dict(config_schema.defaults("train"))
    assert MIN_SIZE == config_schema.defaults("search")["min_size"]  # build_model's own default


def test_the_schema_is_read_by_the_project_reader():
    """The package reads the very file the Snakefile validates against, duplicate keys refused."""
    assert config_schema.SCHEMA_PATH == ROOT / "schemas" / "config.schema.yaml"
    assert config_schema.config_schema() == SCHEMA


@pytest.mark.parametrize("key, choices", [
    ("loss", LOSSES), ("time_measure", TIME_MEASURES), ("activity", ACTIVITY_MODES), ("mutation", MUTATIONS),
    ("execution", tuple(EXECUTIONS)), ("precision", PRECISIONS), ("monitor", MONITORS),
])
def test_the_schema_choices_are_the_codes(key, choices):
    if key != "monitor":  # a setting of the full training only
        search = config_schema.section("search")[key]["enum"]
        assert tuple(search) == tuple(choices)
    if key in ("execution", "precision", "monitor"):
        assert tuple(SCHEMA["properties"]["train"]["properties"][key]["enum"]) == tuple(choices)


def test_the_baseline_list_is_the_packages():
    """bractivate.baselines.BASELINES is the list; the schema's choices and default and config.yaml
    name the same baselines in the same order."""
    models = SCHEMA["properties"]["baselines"]["properties"]["models"]
    assert tuple(models["items"]["enum"]) == BASELINES
    assert tuple(models["default"]) == BASELINES
    assert tuple(CONFIG["baselines"]["models"]) == BASELINES


def test_the_docs_settings_tables_are_generated_from_the_schema():
    """docs/method.md#settings: regenerate with `python -m bractivate.schema docs/method.md`."""
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    for name in config_schema.TABLED_SECTIONS:
        assert config_schema.TABLE_START.format(section=name) in text, name
    assert config_schema.render_tables(text) == text
    assert config_schema.main([str(ROOT / "docs" / "method.md"), "--check"]) == 0


def _schema_defaults() -> dict[str, list]:
    """Every default of the schema by key and by ``section.key``: a key of several sections
    (``epochs``) may stand for any of them."""
    found: dict[str, list] = {}
    for key, node in SCHEMA["properties"].items():
        if "default" in node and key != "search":
            found.setdefault(key, []).append(node["default"])
        nodes = config_schema.section(key) if "properties" in node or "$ref" in node else {}
        for sub, child in nodes.items():
            if isinstance(child, dict) and "default" in child:
                for name in (sub, f"{key}.{sub}"):
                    found.setdefault(name, []).append(child["default"])
    return found


# How the docs state a default in prose: "`key` default V", "`key` (default V …)",
# "`key` defaults to V", "(`key: V`, the default)" and "default is … (`key: V`)".
PROSE_DEFAULTS = [
    re.compile(r"`([\w.]+)`\s*\(?default(?:s to)?\s+`?(\[[^\]]*\]|[^\s`),;]+)"),
    re.compile(r"`([\w.]+): ([^`]+)`, the default"),
    re.compile(r"default[^.;(]{0,40}\(`([\w.]+): ([^`]+)`"),
]


@pytest.mark.parametrize("doc", ["README.md", "docs/method.md"])
def test_the_defaults_the_docs_name_are_the_schemas(doc):
    text = " ".join((ROOT / doc).read_text(encoding="utf-8").split())
    known = _schema_defaults()
    named = [m.groups() for pattern in PROSE_DEFAULTS for m in pattern.finditer(text)]
    assert len(named) >= 3, "the patterns no longer find the docs' defaults"
    for key, written in named:
        value = yaml.safe_load(written)
        # a one-item list default may be named by its item: `export.experiments` (default `main`)
        accepted = [_typed(d) for d in known.get(key, [])] + [
            _typed(d[0]) for d in known.get(key, []) if isinstance(d, list) and len(d) == 1]
        assert _typed(value) in accepted, f"{doc}: {key} default {written!r}; the schema's is {known.get(key)}"
