"""The bad-input catalogue of docs/reliability.md: every entry is run here and must fail with
the documented error, before any expensive work starts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tifffile
from PIL import Image

from bractivate.data import extract, fetch, preprocess, preprocess_cli, read_raw
from bractivate.genome import Genome
from bractivate.io import load_dataset
from bractivate.predict import predict_folder
from conftest import blob_dataset
from test_download import DIGEST, FAST, Server

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "reliability.md").read_text()


def pairs(root: Path, images: dict, masks: dict) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem, shape in images.items():
        Image.fromarray(np.zeros(shape, np.uint8)).save(root / "images" / f"{stem}.png")
    for stem, mask in masks.items():
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    return root


# Two good samples beside a bad one `a` (read first): a data set of one sample is refused for its
# split before any sample is read.
GOOD_IMAGES = {"y": (8, 8), "z": (8, 8)}
GOOD_MASKS = {"y": np.zeros((8, 8), np.uint8), "z": np.zeros((8, 8), np.uint8)}


def corrupt_png(tmp):
    root = pairs(tmp, {"a": (8, 8), **GOOD_IMAGES}, {"a": np.zeros((8, 8), np.uint8), **GOOD_MASKS})
    (root / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    preprocess(read_raw("pairs", root), 8)


def truncated_tiff(tmp):
    for name in ("training", "training_groundtruth", "testing", "testing_groundtruth"):
        tifffile.imwrite(tmp / f"{name}.tif", np.zeros((4, 16, 16), np.uint8), photometric="minisblack")
    data = (tmp / "testing.tif").read_bytes()
    (tmp / "testing.tif").write_bytes(data[: len(data) // 3])
    preprocess(read_raw("lucchi_em", tmp), 8)


def stack_of_wrong_shape(tmp):
    for name in ("training", "training_groundtruth", "testing", "testing_groundtruth"):
        tifffile.imwrite(tmp / f"{name}.tif", np.zeros((4, 16, 16), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp / "testing_groundtruth.tif", np.zeros((4, 16, 12), np.uint8), photometric="minisblack")
    preprocess(read_raw("lucchi_em", tmp), 8)


def with_server(route):
    def trigger(tmp):
        server = Server()
        server.thread.start()
        try:
            server.routes["/f.bin"] = route
            fetch([server.url("/f.bin")], DIGEST, tmp / "f.bin", **{**FAST, "retries": 1})
        finally:
            server.httpd.shutdown()
            server.httpd.server_close()
    return trigger


def archive_member(member):
    def trigger(tmp):
        import zipfile

        with zipfile.ZipFile(tmp / "a.zip", "w") as zf:
            zf.writestr(member, b"x")
        extract(tmp / "a.zip", tmp / "out")
    return trigger


def images_without_masks(tmp):
    read_raw("pairs", pairs(tmp, {"a": (8, 8), "b": (8, 8)}, {"a": np.zeros((8, 8), np.uint8)}))


def mask_of_another_size(tmp):
    preprocess(read_raw("pairs", pairs(tmp, {"a": (8, 8), **GOOD_IMAGES}, {"a": np.zeros((8, 9), np.uint8), **GOOD_MASKS})), 8)


def empty_folder(tmp):
    (tmp / "images").mkdir()
    (tmp / "masks").mkdir()
    read_raw("pairs", tmp)


def non_binary_mask(tmp):
    mask = np.zeros((8, 8), np.uint8)
    mask[:2] = 255
    mask[2, :3] = 128
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(read_raw("pairs", pairs(tmp, {"a": (8, 8), **GOOD_IMAGES}, {"a": mask, **GOOD_MASKS})), 8)


def bad_config(text):
    def trigger(tmp):
        (tmp / "bad.yaml").write_text(text)
        done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--configfile",
                               "presets/tiny.yaml", str(tmp / "bad.yaml")], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode != 0 and "Job stats" not in done.stdout
        raise RuntimeError(done.stdout + done.stderr)
    return trigger


def backward_edge(tmp):
    (tmp / "g.json").write_text(json.dumps({"depth": 2, "filters": 8, "edges": [{"src": "dec0", "dst": "enc1", "op": "add"}]}))
    Genome.load(tmp / "g.json")


def lambda_layer_model(tmp):
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp / "evil.keras")
    pairs(tmp / "in", {"a": (8, 8)}, {})
    predict_folder(tmp / "evil.keras", tmp / "in" / "images", tmp / "out")


def not_hdf5(tmp):
    (tmp / "lungs.h5").write_text("not an HDF5 file")
    load_dataset(tmp / "lungs.h5")


def unknown_format(tmp):
    read_raw("dicom", tmp)


def predict_into(output):
    def trigger(tmp):
        pairs(tmp / "in", {"a": (8, 8)}, {})
        (tmp / "model.keras").write_bytes(b"checked before the model is loaded")
        predict_folder(tmp / "model.keras", tmp / "in" / "images", output(tmp))
    return trigger


def predict_over_existing_mask(tmp):
    pairs(tmp / "in", {"a": (8, 8)}, {})
    (tmp / "out").mkdir()
    (tmp / "out" / "a.png").write_bytes(b"a mask from an earlier run")
    (tmp / "model.keras").write_bytes(b"checked before the model is loaded")
    predict_folder(tmp / "model.keras", tmp / "in" / "images", tmp / "out")


def predict_colliding_stems(tmp):
    pairs(tmp / "in", {"p0": (8, 8), "p1": (8, 8)}, {})
    tifffile.imwrite(tmp / "in" / "images" / "p0.tif", np.zeros((8, 8), np.uint8))
    (tmp / "model.keras").write_bytes(b"checked before the model is loaded")
    predict_folder(tmp / "model.keras", tmp / "in" / "images", tmp / "out")


def preprocess_to_unwritable(tmp):
    pairs(tmp / "in", {"a": (8, 8)}, {"a": np.zeros((8, 8), np.uint8)})
    (tmp / "file").write_text("a file where a folder should be")
    preprocess_cli("pairs", tmp / "in", tmp / "file" / "out.h5")


def disk_full_while_writing(tmp):
    import errno
    from unittest import mock

    from bractivate.io import write_dataset

    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        with mock.patch("bractivate.io.os.fsync", side_effect=full):
            write_dataset(tmp / "lungs.h5", blob_dataset(n=4, size=32))
    finally:
        assert sorted(p.name for p in tmp.iterdir()) == [], "a temporary file was left behind"


def hdf5_with_nan(tmp):
    from bractivate.io import write_dataset

    data = blob_dataset(n=10, size=32)
    data.images[3, 0, 0, 0] = np.nan
    write_dataset(tmp / "lungs.h5", data)
    load_dataset(tmp / "lungs.h5")


def hdf5_with_empty_split(tmp):
    from bractivate.io import Dataset, write_dataset

    data = blob_dataset(n=4, size=32)
    splits = {"train": np.arange(3), "val": np.array([3]), "test": np.array([], np.int64)}
    write_dataset(tmp / "lungs.h5", Dataset(data.images, data.masks, splits, data.names))
    load_dataset(tmp / "lungs.h5")


def raw_image_with_nan(tmp):
    root = pairs(tmp, GOOD_IMAGES, {"a": np.zeros((8, 8), np.uint8), **GOOD_MASKS})
    image = np.ones((8, 8), np.float32)
    image[2, 2] = np.nan
    tifffile.imwrite(root / "images" / "a.tif", image)
    preprocess(read_raw("pairs", root), 8)


def masks_all_foreground(tmp):
    full = np.full((8, 8), 255, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(read_raw("pairs", pairs(tmp, {"a": (8, 8), "b": (8, 8), "c": (8, 8)}, {"a": full, "b": full, "c": full})), 8)


def dangling_symlink(tmp):
    root = pairs(tmp, {"a": (8, 8), "b": (8, 8)}, {"a": np.zeros((8, 8), np.uint8)})
    (root / "masks" / "b.png").symlink_to(tmp / "gone.png")
    read_raw("pairs", root)


def split_too_small_in_cli(tmp):
    root = pairs(tmp / "in", {"a": (8, 8), "b": (8, 8)}, {"a": np.zeros((8, 8), np.uint8), "b": np.zeros((8, 8), np.uint8)})
    preprocess_cli("pairs", root, tmp / "o.h5")


def search_setting(**settings):
    def trigger(tmp):
        from bractivate.cli import _settings

        _settings(None, [f"{k}={v}" for k, v in settings.items()])
    return trigger


def genome_too_deep(tmp):
    (tmp / "g.json").write_text(json.dumps({"depth": 100, "filters": 8, "edges": []}))
    Genome.load(tmp / "g.json")


def model_not_keras(tmp):
    pairs(tmp / "in", {"a": (8, 8)}, {})
    (tmp / "model.keras").write_text("not a model")
    predict_folder(tmp / "model.keras", tmp / "in" / "images", tmp / "out")


def genome_is_an_image(tmp):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp / "g.png")
    Genome.load(tmp / "g.png")


def model_of_any_size(tmp):
    inputs = keras.Input((None, None, 1))
    keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs)).save(tmp / "m.keras")
    pairs(tmp / "in", {"a": (8, 8)}, {})
    predict_folder(tmp / "m.keras", tmp / "in" / "images", tmp / "out")


def train_setting(**settings):
    def trigger(tmp):
        from bractivate.cli import _settings

        _settings(None, [f"{k}={v}" for k, v in settings.items()], "train")
    return trigger


def command(*argv):
    """A ``bractivate`` command's own error (``main`` prints it as one line and exits 2)."""
    def trigger(tmp):
        from bractivate.cli import parser

        args = parser().parse_args([a.format(d=tmp) for a in argv])
        (tmp / "out").mkdir()
        (tmp / "out" / "model.keras").write_text("trained before")
        args.func(args)
    return trigger


def threads_zero(tmp):
    from bractivate.runtime import setup_command

    setup_command(0)


def export_not_segmentation(tmp):
    from bractivate.export import check_segmentation_model

    inputs = keras.Input((16, 16, 1))
    check_segmentation_model(keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(inputs)), tmp / "m.keras")


def export_into_existing_folder(tmp):
    from bractivate.cli import parser

    (tmp / "out").mkdir()
    args = parser().parse_args(["export", str(tmp / "m.keras"), str(tmp / "out")])
    args.func(args)


CATALOGUE = {
    "corrupt-png": (corrupt_png, r"images/a\.png: cannot read image \("),
    "truncated-tiff": (truncated_tiff, r"testing\.tif: cannot read TIFF stack"),
    "stack-wrong-shape": (stack_of_wrong_shape, r"testing_groundtruth\.tif.*\(4, 16, 12\)"),
    "checksum-mismatch": (with_server("wrong"), r"f\.bin: download failed from every URL:\n  .*sha256 mismatch: expected "),
    "interrupted-download": (with_server("500"), r"f\.bin: download failed from every URL:\n  .*attempt 1: .*\n  .*attempt 2"),
    "archive-dotdot": (archive_member("../evil.txt"), r"a\.zip: refusing member '\.\./evil\.txt': '\.\.' path component"),
    "archive-absolute": (archive_member("/etc/evil.txt"), r"a\.zip: refusing member '/etc/evil\.txt': absolute path"),
    "images-without-masks": (images_without_masks, r"image without mask: b"),
    "mask-other-size": (mask_of_another_size, r"masks/a\.png: mask of shape \(8, 9\) but its image is \(8, 8\)"),
    "empty-folder": (empty_folder, r"empty data set: no images in images/ found"),
    "non-binary-mask": (non_binary_mask, r"masks/a\.png.*3 pixel"),
    "config-unknown-key": (bad_config("search: {epoch: 3}\n"), r"Additional properties are not allowed \('epoch' was unexpected\)"),
    "config-wrong-type": (bad_config("trials: three\n"), r"'three' is not of type 'integer'"),
    "config-depth-below-1": (bad_config("experiments: {main: {depth_range: [0, 3]}}\n"),
                             r"0 is less than the minimum of 1.*On instance\['experiments'\]\['main'\]\['depth_range'\]\[0\]"),
    "config-population-0": (bad_config("search: {population: 0}\n"),
                            r"0 is less than the minimum of 1.*On instance\['search'\]\['population'\]"),
    "config-split-sum": (bad_config("split: {train: 0.7, val: 0.2, test: 0.2}\n"), r"fractions .* must sum to 1"),
    "genome-backward-edge": (backward_edge, r"g\.json: edge dec0->enc1 goes backwards"),
    "keras-lambda-untrusted": (lambda_layer_model, r"(?i)lambda.*(unsafe|safe_mode)|safe_mode"),
    "not-hdf5": (not_hdf5, r"lungs\.h5: not a readable HDF5 file"),
    "unknown-format": (unknown_format, r"unknown data set layout 'dicom'; expected one of montgomery"),
    "predict-into-input": (predict_into(lambda tmp: tmp / "in" / "images"),
                           r"images: output folder is, contains or lies inside the input folder"),
    "predict-inside-input": (predict_into(lambda tmp: tmp / "in" / "images" / "masks"),
                             r"masks: output folder is, contains or lies inside the input folder"),
    "predict-existing-mask": (predict_over_existing_mask, r"out/a\.png: exists \(1 mask\(s\) would be replaced\); pass --overwrite"),
    "predict-colliding-stems": (predict_colliding_stems, r"images: p0\.png and p0\.tif would both write p0\.png"),
    "model-not-keras": (model_not_keras, r"model\.keras: not a Keras model file"),
    "preprocess-unwritable": (preprocess_to_unwritable, r"out\.h5: cannot write the data set here \("),
    "disk-full": (disk_full_while_writing, r"lungs\.h5: cannot write \d+ bytes \(No space left on device\); nothing was written"),
    "hdf5-nan": (hdf5_with_nan, r"lungs\.h5: images hold NaN or infinite values \(1 sample\(s\): blob3\)"),
    "hdf5-empty-split": (hdf5_with_empty_split, r"lungs\.h5: split\(s\) test empty \(train 3, val 1, test 0 of 4 samples\)"),
    "raw-nan": (raw_image_with_nan, r"images/a\.tif: 1 pixel\(s\) are NaN or infinite"),
    "masks-all-foreground": (masks_all_foreground, r"every one of the 3 masks is all foreground"),
    "dangling-symlink": (dangling_symlink, r"masks/b\.png: symbolic link to a missing file"),
    "config-split-empty": (bad_config("split: {train: 1.0, val: 0.0, test: 0.0}\n"),
                           r"datasets\.lungs: split \{'train': 1\.0, 'val': 0\.0, 'test': 0\.0\} of 16 samples leaves val and test empty"),
    "config-dataset-too-small": (bad_config("datasets: {lungs: {format: synthetic, source: synthetic, synthetic: {task: lungs, n: 2}}}\n"),
                                 r"datasets\.lungs: split .* of 2 samples leaves test empty \(train 1, val 1, test 0\)"),
    "split-too-small-cli": (split_too_small_in_cli, r"in: split .* of 2 samples leaves test empty"),
    "config-image-size-huge": (bad_config("image_size: 100000\n"), r"100000 is greater than the maximum of 1024"),
    "set-wrong-type": (search_setting(epochs=1.5), r"search\.epochs: expected an integer, got 1\.5"),
    "set-range-not-pair": (search_setting(depth_range=3), r"search\.depth_range: expected a pair \[low, high\] of integers, got 3"),
    "set-negative-seed": (search_setting(seed=-1), r"search\.seed: expected an integer >= 0, got -1"),
    "set-not-yaml": (search_setting(depth_range="[2,"), r"--set depth_range: not valid YAML"),
    "genome-is-an-image": (genome_is_an_image, r"g\.png: not valid JSON \('utf-8' codec can't decode"),
    "model-any-size": (model_of_any_size, r"m\.keras: expected a square single-channel model input, got \(None, None, None, 1\)"),
    "genome-too-deep": (genome_too_deep, r"g\.json: depth 100 is more than 16"),
    "train-set-wrong-type": (train_setting(patience=0.5), r"train\.patience: expected an integer or null, got 0\.5"),
    "train-over-a-model": (command("train", "{d}/g.json", "{d}/d.h5", "{d}/out"),
                           r"out/model\.keras: exists \(a model was already trained into .*out\); pass --overwrite"),
    "threads-zero": (threads_zero, r"--threads: expected an integer >= 1, got 0"),
    "export-not-segmentation": (export_not_segmentation, r"m\.keras: not a one-channel segmentation network: output \(None, 16, 16, 3\)"),
    "export-existing-folder": (export_into_existing_folder, r"out: exists; pass --overwrite to replace it"),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_bad_input_gets_its_documented_error(name, tmp_path):
    trigger, expected = CATALOGUE[name]
    with pytest.raises(Exception) as err:
        trigger(tmp_path)
    assert re.search(expected, str(err.value), re.S), f"{name}: got {type(err.value).__name__}: {err.value}"
    assert f"| `{name}` |" in DOC, f"{name} is not in docs/reliability.md"


def test_catalogue_is_complete():
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", DOC, re.M)
    assert sorted(documented) == sorted(CATALOGUE) and len(CATALOGUE) >= 15


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_outputs_get_the_umask_mode(tmp_path, umask, mode):
    """A temporary file's 0600 must not survive the rename: the group reads results on a cluster."""
    import os
    import stat

    import pandas as pd

    from bractivate.io import atomic_path, write_dataset, write_json, write_table

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_table(tmp_path / "h.tsv", pd.DataFrame({"x": [1]}))
        write_dataset(tmp_path / "d.h5", blob_dataset(n=4, size=32))
        with atomic_path(tmp_path / "m.png") as tmp:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp, format="PNG")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        with atomic_path(tmp_path / "model.keras") as tmp:
            model.save(tmp)
    finally:
        os.umask(old)
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()}
    assert modes == {name: oct(mode) for name in ("a.json", "h.tsv", "d.h5", "m.png", "model.keras")}


# JSON Schema keywords the two schemas may use; anything else is a typo or a description cut
# short by a comma in a flow mapping (`{description: a, b}` makes `b` a key).
SCHEMA_KEYWORDS = {
    "$schema", "$ref", "$defs", "title", "description", "type", "enum", "const", "default",
    "properties", "additionalProperties", "required", "items", "minItems", "maxItems",
    "uniqueItems", "minimum", "maximum", "exclusiveMinimum", "minLength", "pattern",
    "minProperties", "propertyNames", "allOf", "anyOf", "not", "if", "then",
}


def schema_nodes(node, where="schema"):
    """Every sub-schema of a schema, with where it sits."""
    yield where, node
    for key in ("properties", "$defs"):
        for name, sub in node.get(key, {}).items():
            yield from schema_nodes(sub, f"{where}.{key}.{name}")
    for key in ("items", "additionalProperties", "propertyNames", "not", "if", "then"):
        if isinstance(node.get(key), dict):
            yield from schema_nodes(node[key], f"{where}.{key}")
    for key in ("allOf", "anyOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from schema_nodes(sub, f"{where}.{key}[{i}]")


@pytest.mark.parametrize("schema", ["config.schema.yaml", "dataset.schema.yaml"])
def test_schema_descriptions_are_whole_and_no_stray_keys(schema):
    import yaml

    nodes = list(schema_nodes(yaml.safe_load((ROOT / "schemas" / schema).read_text())))
    assert len(nodes) > 20
    for where, node in nodes:
        assert isinstance(node, dict), where
        assert set(node) <= SCHEMA_KEYWORDS, f"{where}: unknown key(s) {sorted(set(node) - SCHEMA_KEYWORDS)}"
        if "description" in node:
            text = node["description"]
            assert isinstance(text, str) and text.strip(), f"{where}: empty description"
            assert text.rstrip().endswith((".", ")")), f"{where}: description cut short: {text!r}"
        # every property that declares its type says what it is (the search defaults point to $defs)
        if where.split(".")[-2:-1] == ["properties"] and "type" in node:
            assert "description" in node, f"{where}: no description"
