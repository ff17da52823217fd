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
from helpers import DIGEST, FAST, Server, blob_dataset

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "reliability.md").read_text()


def pairs(root: Path, images: dict, masks: dict) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem, shape in images.items():  # a gradient: an image of one intensity gets a warning of its own
        Image.fromarray((np.indices(shape).sum(0) * 9 % 256).astype(np.uint8)).save(root / "images" / f"{stem}.png")
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
        # one line, before any job, and no traceback of the Snakefile
        assert 'File "' not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("config error: "), done.stderr
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
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


def settings_file(text):
    def trigger(tmp):
        from bractivate.cli import _settings

        (tmp / "s.yaml").write_text(text)
        _settings(str(tmp / "s.yaml"), [])
    return trigger


def exponent_in_set(tmp):
    from bractivate.cli import _settings

    settings = _settings(None, ["learning_rate=1e-4", "min_delta=5E-3"])
    return f"learning_rate={settings.learning_rate!r} min_delta={settings.min_delta!r}"


def exponent_in_preset(tmp):
    from snakemake.common.configfile import load_configfile

    from bractivate.config import check_workflow_config

    (tmp / "lr.yaml").write_text("search: {learning_rate: 1e-4}\ntrain: {learning_rate: 5e-5}\n")
    done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--quiet", "rules", "--configfile",
                           "presets/tiny.yaml", str(tmp / "lr.yaml")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    config = check_workflow_config(load_configfile(tmp / "lr.yaml"), [tmp / "lr.yaml"], ROOT / "schemas/config.schema.yaml")
    return f"dry run planned {done.stdout.count(chr(10))} lines; search.learning_rate={config['search']['learning_rate']!r} " \
           f"train.learning_rate={config['train']['learning_rate']!r}"


SQUARE = np.zeros((32, 32), bool)
SQUARE[8:24, 8:24] = True  # a quarter of the image


def masks_as(encode, suffix=".png", n=4):
    """``n`` samples whose masks are ``SQUARE`` written by ``encode(square) -> array`` with ``suffix``,
    preprocessed at their size: the warnings given and the foreground fraction read."""
    def trigger(tmp):
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for i in range(n):
            Image.fromarray((np.indices((32, 32)).sum(0) * 4 + i).astype(np.uint8)).save(tmp / "images" / f"s{i}.png")
            array = encode(SQUARE)
            if suffix == ".tif":
                tifffile.imwrite(tmp / "masks" / f"s{i}.tif", array)
            else:
                Image.fromarray(array).save(tmp / "masks" / f"s{i}{suffix}", **({"quality": 75} if suffix == ".jpg" else {}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = preprocess(read_raw("pairs", tmp), 32, {"train": 0.5, "val": 0.25, "test": 0.25})
        said = "; ".join(f"{w.category.__name__}: {w.message}" for w in caught)
        return f"{len(caught)} warning(s){': ' + said if said else ''}; foreground {data.masks.mean():.3f}"
    return trigger


def jpeg_noise_in_png(square):
    noise = np.random.default_rng(0).integers(0, 6, square.shape)
    return np.where(square, 255 - noise, noise).astype(np.uint8)


def drawn_in_alpha(square):
    rgba = np.full((*square.shape, 4), 255, np.uint8)  # white everywhere; the drawing is the opacity
    rgba[..., 3] = square * 255
    return rgba


def instance_labels(square):
    labels = np.zeros(square.shape, np.uint16)
    labels[8:24, 8:16], labels[8:24, 16:24] = 1, 2
    return labels


def image_of_side(shape):
    def trigger(tmp):
        root = pairs(tmp, GOOD_IMAGES, {"a": np.zeros(shape, np.uint8), **GOOD_MASKS})
        Image.fromarray(np.full(shape, 200, np.uint8)).save(root / "images" / "a.png")
        preprocess(read_raw("pairs", root), 8)
    return trigger


def constant_images(tmp):
    root = pairs(tmp, GOOD_IMAGES, {"a": (SQUARE[:8, :8] * 255).astype(np.uint8), **GOOD_MASKS})
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "images" / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(read_raw("pairs", root), 8)


def second_writer(command, argv):
    """``bractivate COMMAND`` into a folder that another process is writing to (it holds the folder's lock)."""
    def trigger(tmp):
        from bractivate.io import write_dataset

        write_dataset(tmp / "d.h5", blob_dataset(n=10, size=32))
        a_model(tmp, lambda x: keras.layers.Conv2D(1, 1, activation="sigmoid")(x))
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from bractivate.runtime import output_folder_lock\n"
             f"with output_folder_lock({str(tmp / 'out')!r}, 'bractivate {command}'):\n"
             "    print('locked', flush=True); time.sleep(60)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            outcome = run_cli(command, *(a.format(d=tmp) for a in argv))
        finally:
            holder.kill()
            holder.wait()
        assert not list((tmp / "out").glob("*.png")) and not (tmp / "out" / "best_genome.json").exists()
        return outcome.replace(str(holder.pid), "<pid>")
    return trigger


def run_cli(*argv) -> str:
    """``bractivate ARGV`` in this process: its exit status and stderr, which must be one line."""
    import contextlib
    import io

    from bractivate.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    assert err.getvalue().count("\n") == 1, err.getvalue()
    return f"exit {status}: {err.getvalue().strip()}"


def internal_error_in_cli(tmp):
    from unittest import mock

    (tmp / "g.json").write_text(json.dumps(Genome(1, 4).to_dict()))
    with mock.patch("bractivate.genome.Genome.load", side_effect=KeyError("a bug")):
        outcome = run_cli("show", tmp / "g.json")
    log = Path(re.search(r"traceback is in (\S+):", outcome).group(1))
    assert "Traceback (most recent call last)" in log.read_text() and "KeyError: 'a bug'" in log.read_text()
    log.unlink()
    return outcome


def every_evaluation_fails(tmp):
    from bractivate.evaluation import SearchSettings
    from bractivate.search import run_search

    def broken(genome, data, settings, seed):
        return {"params": 0, "seconds_per_epoch": float("nan"), "train_seconds": 0.0, "flops_per_epoch": 0,
                "epochs": 0, "val_bcl": float("nan"), "val_dice": float("nan"), "score": float("inf"),
                "activity": {}, "outcome": "failed", "error": "ValueError: input of 16x16 is too small for depth 5"}

    run_search(blob_dataset(n=10, size=32), SearchSettings(population=2, evaluations=3), tmp / "state.json",
               tmp / "history.tsv", evaluate_fn=broken)


def script_error(code):
    """A workflow script's error after ``setup_job`` (what every script calls first): its stderr and log."""
    def trigger(tmp):
        program = ("import sys; from bractivate.runtime import setup_job; "
                   f"setup_job({str(tmp / 'job.log')!r}); {code}")
        done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True)
        log = (tmp / "job.log").read_text()
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert log.rstrip().splitlines()[-1] == done.stderr.strip(), log
        return f"log has {len(log.splitlines())} lines, ends with: {done.stderr.strip()}"
    return trigger


def users_file_as_state(state, prepare=None):
    """``bractivate search`` with ``--state`` at a file the search did not write: refused, left as it was."""
    def trigger(tmp):
        (tmp / "out").mkdir()
        (tmp / "notes.json").write_text('{"todo": ["buy milk"]}\n')
        write_json = __import__("bractivate.io", fromlist=["write_json"]).write_json
        write_json(tmp / "out" / "best_genome.json", {"genome": Genome(1, 4).to_dict(), "result": {}, "settings": {}})
        if prepare:
            prepare(tmp)
        before = {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()}
        outcome = run_cli("search", tmp / "none.h5", tmp / "out", "--state", state(tmp))
        assert {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file()} == before, "a file was changed"
        return outcome
    return trigger


def h5_with(**change):
    """A data set file whose arrays ``change`` replaces (None deletes one; a dict makes a group)."""
    def trigger(tmp):
        import h5py

        from bractivate.io import write_dataset

        write_dataset(tmp / "d.h5", blob_dataset(n=10, size=32))
        with h5py.File(tmp / "d.h5", "a") as h5:
            for key, value in change.items():
                del h5[key]
                if isinstance(value, dict):
                    h5.create_group(key)
                else:
                    h5.create_dataset(key, data=value)
        load_dataset(tmp / "d.h5")
    return trigger


def genome_text(text):
    def trigger(tmp):
        (tmp / "g.json").write_text(text)
        Genome.load(tmp / "g.json")
    return trigger


def a_model(tmp, outputs):
    inputs = keras.Input((16, 16, 1))
    keras.Model(inputs, outputs(inputs)).save(tmp / "m.keras")
    pairs(tmp / "in", {"a": (20, 20), "b": (16, 16)}, {})
    return tmp / "m.keras"


def predict_with(outputs):
    def trigger(tmp):
        try:
            predict_folder(a_model(tmp, outputs), tmp / "in" / "images", tmp / "out")
        finally:
            assert not list((tmp / "out").glob("*.png")), "a mask was written"
    return trigger


def classifier(inputs):
    return keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))


def overwrite_a_users_file(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "a.png").write_text("my notes, named like a mask")
    try:
        predict_folder(a_model(tmp, lambda x: keras.layers.Conv2D(1, 1, activation="sigmoid")(x)),
                       tmp / "in" / "images", tmp / "out", overwrite=True)
    finally:
        assert (tmp / "out" / "a.png").read_text() == "my notes, named like a mask"


def preprocess_over_a_users_file(tmp):
    pairs(tmp / "in", {"a": (8, 8), **GOOD_IMAGES}, {"a": np.zeros((8, 8), np.uint8), **GOOD_MASKS})
    (tmp / "o.h5").write_text("my notes")
    try:
        preprocess_cli("pairs", tmp / "in", tmp / "o.h5", image_size=8, split=[0.4, 0.3, 0.3], overwrite=True)
    finally:
        assert (tmp / "o.h5").read_text() == "my notes"


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
                             r"config error: experiments\.main\.depth_range\[0\]: 0 is less than the minimum of 1 \(ValidationError\)"),
    "config-population-0": (bad_config("search: {population: 0}\n"),
                            r"config error: search\.population: 0 is less than the minimum of 1 \(ValidationError\)"),
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
    # Round three (issue 22): files of another kind, encodings, one line per error, numbers, duplicate keys.
    "settings-duplicate-key": (settings_file("epochs: 3\npopulation: 2\nepochs: 5\n"),
                               r"s\.yaml: key 'epochs' given twice \(lines 1 and 3\); keep one"),
    "config-duplicate-key": (bad_config("search:\n  population: 3\n  evaluations: 5\nsearch:\n  epochs: 2\n"),
                             r"bad\.yaml: key 'search' given twice \(lines 1 and 4\)"),
    "hdf5-images-rank": (h5_with(images=np.zeros((10, 32, 32), np.float32)),
                         r"d\.h5: images is a float32 array of shape \(10, 32, 32\); expected \(N, H, W, 1\) float32"),
    "hdf5-masks-float": (h5_with(masks=np.zeros((10, 32, 32, 1), np.float64)),
                         r"d\.h5: masks is a float64 array of shape \(10, 32, 32, 1\); expected \(N, H, W, 1\) uint8"),
    "hdf5-group": (h5_with(images={}), r"d\.h5: HDF5 'images' is a group, not an array"),
    "hdf5-split-float": (h5_with(**{"split/val": np.array([0.5, 1.5])}),
                         r"d\.h5: split/val is a float64 array of shape \(2,\); expected a list of integer sample indices"),
    "hdf5-split-repeated": (h5_with(**{"split/test": np.array([1, 1, 2])}), r"d\.h5: split 'test' repeats 1 sample index"),
    "hdf5-split-overlap": (h5_with(**{"split/val": np.array([0])}), r"d\.h5: split '(val|test)' shares 1 samples with another split"),
    "hdf5-split-out-of-range": (h5_with(**{"split/val": np.array([10])}), r"d\.h5: split 'val' has indices outside \[0, 10\)"),
    "genome-nested": (genome_text("[" * 100_000 + "]" * 100_000), r"g\.json: JSON nested too deeply to be one of the project's files"),
    "genome-huge": (genome_text(json.dumps({"depth": 2, "filters": 8, "edges": [], "pad": "x" * (9 << 20)})),
                    r"g\.json: \d+ bytes is more than a genome file holds \(at most 8388608\)"),
    "genome-too-many-edges": (genome_text(json.dumps({"depth": 2, "filters": 8, "edges": [["enc0", "dec0", "add"]] * 7})),
                              r"g\.json: 7 edges; a genome of depth 2 has at most 6"),
    "predict-classifier": (predict_with(classifier), r"m\.keras: output of shape \(None, 1\) for input \(None, 16, 16, 1\); "
                           r"expected one channel per pixel at the input's size, \(None, 16, 16, 1\)"),
    "predict-three-channels": (predict_with(lambda x: keras.layers.Conv2D(3, 1, activation="softmax")(x)),
                               r"output of shape \(None, 16, 16, 3\) .*expected one channel per pixel"),
    "predict-other-size": (predict_with(lambda x: keras.layers.Conv2D(1, 1, activation="sigmoid")(keras.layers.MaxPooling2D()(x))),
                           r"output of shape \(None, 8, 8, 1\) for input \(None, 16, 16, 1\)"),
    "predict-logits": (predict_with(lambda x: keras.layers.Conv2D(1, 1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(-3.0))(x)),
                       r"m\.keras: predicts values in \[-3, -3\] for a\.png; expected probabilities in \[0, 1\]"),
    "predict-overwrite-not-a-mask": (overwrite_a_users_file, r"out/a\.png: exists and is not a PNG mask \(1 such file\(s\)\)"),
    "preprocess-overwrite-not-hdf5": (preprocess_over_a_users_file,
                                      r"o\.h5: exists and is not an HDF5 data set; --overwrite replaces only a data set"),
    "mask-float": (lambda tmp: masks_as(lambda sq: sq.astype(np.float32), ".tif")(tmp),
                   r"masks/s0\.tif: mask has dtype float32; expected an integer type: save it as a 0/255 PNG"),
    "image-1x1": (image_of_side((1, 1)), r"images/a\.png: image of 1×1 pixels is too small to carry a mask \(at least 4×4\)"),
    "image-constant": (constant_images, r"1 of 3 images are of one intensity \(a\) and become blank after min-max"),
    "config-backend-not-installed": (bad_config("keras_backend: jax\n"), r"'jax' is not one of \['torch', 'tensorflow'\]"),
    "config-negative-seed": (bad_config("seed: -1\n"), r"config error: seed: -1 is less than the minimum of 0 \(ValidationError\)"),
    "config-path-missing": (bad_config("datasets: {mine: {format: pairs, source: path, path: no/such/folder}}\n"),
                            r"datasets\.mine\.path: no/such/folder not found; expected the data set's folder \(images/ and masks/\)"),
    "config-path-is-file": (bad_config("datasets: {mine: {format: montgomery, source: path, path: README.md}}\n"),
                            r"datasets\.mine\.path: README\.md is a file; expected the data set's folder \(montgomery layout\)"),
    "search-all-failed": (every_evaluation_fails, r"^all 3 evaluations failed, 3 of them with ValueError: input of 16x16 is "
                          r"too small for depth 5; no genome could be trained .*: see the error column of .*history\.tsv$"),
    "train-set-wrong-type": (train_setting(patience=0.5), r"train\.patience: expected an integer or null, got 0\.5"),
    "train-over-a-model": (command("train", "{d}/g.json", "{d}/d.h5", "{d}/out"),
                           r"out/model\.keras: exists \(a model was already trained into .*out\); pass --overwrite"),
    "threads-zero": (threads_zero, r"--threads: expected an integer >= 1, got 0"),
    "export-not-segmentation": (export_not_segmentation, r"m\.keras: not a one-channel segmentation network: output \(None, 16, 16, 3\)"),
    "export-existing-folder": (export_into_existing_folder, r"out: exists; pass --overwrite to replace it"),
}

# Inputs read correctly, and errors seen as the user sees them (a command's one line): each trigger
# returns what it got.
OUTCOMES = {
    "set-exponent-number": (exponent_in_set, r"^learning_rate=0\.0001 min_delta=0\.005$"),
    "config-exponent-number": (exponent_in_preset, r"search\.learning_rate=0\.0001 train\.learning_rate=5e-05$"),
    "state-users-json": (users_file_as_state(lambda tmp: tmp / "notes.json"),
                         r"^exit 2: bractivate search: error: \S+notes\.json: not a search state \(no version, settings, queue, "
                         r"rows, best, rng\); --state takes only a file that a search wrote; the file is left as it is"),
    "state-is-best-genome": (users_file_as_state(lambda tmp: tmp / "out" / "best_genome.json"),
                             r"^exit 2: .*out/best_genome\.json: the search state would replace the search's own output "
                             r"best_genome\.json; give --state another file$"),
    "state-not-json": (users_file_as_state(lambda tmp: tmp / "in" / "images" / "y.png",
                                           lambda tmp: pairs(tmp / "in", GOOD_IMAGES, GOOD_MASKS)),
                       r"^exit 2: .*images/y\.png: not valid JSON \('utf-8' codec can't decode"),
    "search-output-not-ours": (users_file_as_state(lambda tmp: tmp / "s.json",
                                                   lambda tmp: (tmp / "out" / "history.tsv").write_text("a\tb\n1\t2\n")),
                               r"^exit 2: .*out/history\.tsv: exists and is not a search history .*it is left as it is"),
    "mask-jpeg": (masks_as(lambda sq: (sq * 255).astype(np.uint8), ".jpg"),
                  r"^1 warning\(s\): LossyMaskWarning: \S+: 4 of 4 mask file\(s\) lossy, the first: \S+masks/s0\.jpg: lossy mask "
                  r"\(JPEG or compression noise\): thresholded at half its range, 127\.5 of 255; .*; foreground 0\.250$"),
    "mask-lossy-png": (masks_as(jpeg_noise_in_png), r"^1 warning\(s\): LossyMaskWarning: .*4 of 4 mask file\(s\) lossy, "
                       r"the first: \S+masks/s0\.png: lossy mask .*; foreground 0\.250$"),
    "mask-alpha": (masks_as(drawn_in_alpha), r"^0 warning\(s\); foreground 0\.250$"),
    "mask-rgb": (masks_as(lambda sq: np.stack([sq * 200, sq * 30, sq * 0], -1).astype(np.uint8)), r"^0 warning\(s\); foreground 0\.250$"),
    "mask-0-1": (masks_as(lambda sq: sq.astype(np.uint8)), r"^0 warning\(s\); foreground 0\.250$"),
    "mask-instance-labels": (masks_as(instance_labels), r"^1 warning\(s\): NotBinaryMaskWarning: \S+: 4 of 4 mask file\(s\) not binary, "
                             r"the first: \S+masks/s0\.png: mask is not binary: .*instance labels give their union\); foreground 0\.250$"),
    "cli-image-size-below-schema": (lambda tmp: run_cli("preprocess", "--format", "pairs", "--image-size", "4", tmp, tmp / "o.h5"),
                                    r"^exit 2: bractivate preprocess: error: --image-size: expected an integer in \[8, 1024\], got 4$"),
    "two-searches-one-folder": (second_writer("search", ["{d}/d.h5", "{d}/out", "--set", "evaluations=1"]),
                                r"^exit 2: bractivate search: error: \S+/out: another bractivate search is writing to this folder "
                                r"\(process <pid>: \S*python\S* -c .*\); wait for it to end or choose another folder$"),
    "two-predicts-one-folder": (second_writer("predict", ["{d}/m.keras", "{d}/in/images", "{d}/out"]),
                                r"^exit 2: bractivate predict: error: \S+/out: another bractivate predict is writing to this folder "
                                r"\(process <pid>: .*\); wait for it to end or choose another folder$"),
    "cli-bad-argument": (lambda tmp: run_cli("preprocess", "--format", "pairs", "--image-size", "abc", tmp, tmp / "o.h5"),
                         r"^exit 2: bractivate preprocess: error: argument --image-size: invalid int value: 'abc'; "
                         r"see bractivate preprocess --help$"),
    "cli-internal-error": (internal_error_in_cli, r"^exit 1: bractivate show: internal error \(KeyError: missing key 'a bug'\); "
                           r"its traceback is in \S+bractivate-show-\S+\.log: please report it"),
    "script-user-error": (script_error("import json; json.loads('{')"),
                          r"log has 2 lines, ends with: error: Expecting property name enclosed in double quotes: line 1"),
    "script-internal-error": (script_error("{}['settings']"),
                              r"ends with: internal error \(KeyError: missing key 'settings'\); its traceback is in \S+job\.log"),
}


# The config rows start Snakemake for a dry run: seconds each, so they are the slow lane's.
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name.startswith("config-") else name
                                  for name in CATALOGUE])
def test_bad_input_gets_its_documented_error(name, tmp_path):
    trigger, expected = CATALOGUE[name]
    with pytest.raises(Exception) as err:
        trigger(tmp_path)
    assert re.search(expected, str(err.value), re.S), f"{name}: got {type(err.value).__name__}: {err.value}"
    assert f"| `{name}` |" in DOC, f"{name} is not in docs/reliability.md"


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name.startswith("config-") else name
                                  for name in OUTCOMES])
def test_input_read_correctly_gets_its_documented_result(name, tmp_path):
    trigger, expected = OUTCOMES[name]
    outcome = trigger(tmp_path)
    assert re.search(expected, outcome, re.S), f"{name}: got {outcome}"
    assert f"| `{name}` |" in DOC, f"{name} is not in docs/reliability.md"


def test_catalogue_is_complete():
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", DOC, re.M)
    assert sorted(documented) == sorted([*CATALOGUE, *OUTCOMES]) and len(CATALOGUE) >= 15
    assert not set(CATALOGUE) & set(OUTCOMES)


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
