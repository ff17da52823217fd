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

from bractivate.data import extract, fetch, preprocess, read_raw
from bractivate.genome import Genome
from bractivate.io import load_dataset
from bractivate.predict import predict_folder
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


def corrupt_png(tmp):
    root = pairs(tmp, {"a": (8, 8)}, {"a": np.zeros((8, 8), np.uint8)})
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
    preprocess(read_raw("pairs", pairs(tmp, {"a": (8, 8)}, {"a": np.zeros((8, 9), np.uint8)})), 8)


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
        preprocess(read_raw("pairs", pairs(tmp, {"a": (8, 8)}, {"a": mask})), 8)


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
