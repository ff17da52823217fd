"""The project's one YAML reader (bractivate.config): YAML 1.2 numbers, duplicate keys, and the
config check the Snakefile runs before any job."""

from pathlib import Path

import pytest
import yaml

from bractivate.config import (
    DuplicateKeyError,
    check_workflow_config,
    config_error_line,
    key_path,
    load_yaml,
    read_json_strict,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("text, value", [
    ("1e-4", 1e-4), ("5E-3", 5e-3), ("1.0e4", 1e4), ("-2e2", -200.0), ("+1.5e-1", 0.15), ("1e4", 1e4),
    ("1.0e-4", 1e-4), ("0.001", 0.001), ("1_000", 1000), ("3", 3), ("1e", "1e"), ("e4", "e4"), ("1e4x", "1e4x"),
])
def test_numbers_as_people_write_them(text, value):
    got = load_yaml(f"x: {text}", "t")["x"]
    assert (type(got), got) == (type(value), value)


def test_a_key_twice_is_refused_at_any_depth_naming_both_lines():
    with pytest.raises(DuplicateKeyError, match=r"^p\.yaml: key 'epochs' given twice \(lines 3 and 4\)"):
        load_yaml("search:\n  population: 2\n  epochs: 1\n  epochs: 2\n", "p.yaml")
    with pytest.raises(DuplicateKeyError, match=r"key 'a' given twice \(lines 1 and 1\)"):
        load_yaml("{a: 1, a: 2}", "f.yaml")
    # the same key in two mappings, and YAML merge keys, are not duplicates
    assert load_yaml("a: {x: 1}\nb: {x: 2}\n", "t") == {"a": {"x": 1}, "b": {"x": 2}}
    assert load_yaml("base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", "t")["c"] == {"x": 1, "y": 2}


def test_a_json_config_file_with_a_key_twice_is_refused(tmp_path):
    (tmp_path / "c.json").write_text('{"search": {"epochs": 1}, "search": {"population": 2}}')
    with pytest.raises(DuplicateKeyError, match=r"c\.json: key 'search' given twice"):
        read_json_strict(tmp_path / "c.json")


def test_numbers_are_coerced_only_where_the_schema_expects_one(tmp_path):
    (tmp_path / "p.yaml").write_text("seed: 1\n")
    config = {"search": {"learning_rate": "1e-4", "loss": "1e-4"}, "train": {"learning_rate": "5E-5"},
              "split": {"train": "0.7", "val": "0.1", "test": "0.2"}, "experiments": {"main": {"min_delta": "1e-2"}},
              "datasets": {"d": {"format": "pairs", "source": "path", "path": "1e5"}}}
    check_workflow_config(config, [tmp_path / "p.yaml"], SCHEMA)
    assert config["search"] == {"learning_rate": 1e-4, "loss": "1e-4"}  # loss is a string in the schema
    assert config["train"]["learning_rate"] == 5e-5 and config["experiments"]["main"]["min_delta"] == 0.01
    assert config["split"] == {"train": 0.7, "val": 0.1, "test": 0.2}
    assert config["datasets"]["d"]["path"] == "1e5"


def test_a_schema_error_is_one_line_naming_the_key():
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(SCHEMA.read_text())
    error = next(Draft202012Validator(schema["$defs"]["search_settings"]).iter_errors({"depth_range": [0, 3]}))
    assert config_error_line(error) == "depth_range[0]: 0 is less than the minimum of 1 (ValidationError)"
    assert config_error_line(ValueError("split: bad\n  more")) == "split: bad more (ValueError)"
    assert key_path(["experiments", "main", "depth_range", 0]) == "experiments.main.depth_range[0]"
