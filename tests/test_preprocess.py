"""Config entries, splits, preprocessing and the whole data stage (docs/data.md)."""

from __future__ import annotations

import functools
import warnings
import hashlib
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import yaml

from bractivate.data import (
    FORMATS,
    SOURCES,
    DatasetEntry,
    RawDataError,
    check_datasets,
    obtain,
    prepare,
    preprocess,
    preprocess_cli,
    preprocess_stage,
    read_raw,
    validate_entry,
)
from bractivate.data.entry import ARCHIVE_SUFFIXES, SYNTHETIC_DEFAULTS, is_archive
from bractivate.data.preprocess import input_sha256
from bractivate.data.splits import check_planned_split, check_split, split_counts, split_indices
from bractivate.io import load_dataset

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "dataset.schema.yaml"
SHA = "0" * 64


def make_pairs(root, n=10, shape=(30, 24), seed=0):
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        mask = np.zeros(shape, np.uint8)
        mask[5:20, 4 : 4 + i + 2] = 255
        iio.imwrite(root / "images" / f"s{i:02d}.png", image)
        iio.imwrite(root / "masks" / f"s{i:02d}.png", mask)
    return root


def make_lucchi(root, train=6, test=4, shape=(20, 24)):
    rng = np.random.default_rng(1)
    for stem, count in (("training", train), ("testing", test)):
        tifffile.imwrite(root / f"{stem}.tif", rng.integers(0, 256, (count, *shape), dtype=np.uint8), photometric="minisblack")
        tifffile.imwrite(root / f"{stem}_groundtruth.tif", (rng.random((count, *shape)) > 0.7).astype(np.uint8) * 255, photometric="minisblack")
    return root


# --- config entries -------------------------------------------------------------------------

DOWNLOAD = {
    "format": "dsb2018",
    "source": "download",
    "files": [{"name": "stage1_train.zip", "sha256": SHA, "urls": ["https://example.org/a.zip"], "into": "stage1_train"}],
}
SYNTHETIC = {"format": "synthetic", "source": "synthetic", "synthetic": {"task": "nuclei"}}


def test_validate_entry_fills_defaults():
    download = validate_entry("nuclei", DOWNLOAD)
    assert download["files"][0]["extract"] is True
    tif = validate_entry("em", {"format": "lucchi_em", "source": "download", "files": [
        {"name": "training.tif", "sha256": SHA, "urls": ["https://example.org/t.tif"]}]})
    assert tif["files"][0] == {"name": "training.tif", "sha256": SHA, "urls": ["https://example.org/t.tif"],
                               "extract": False, "into": "."}
    assert validate_entry("x", SYNTHETIC)["synthetic"] == {"task": "nuclei", "n": 64, "seed": 0, "size": [256, 256]}
    assert validate_entry("x", {"format": "pairs", "source": "path", "path": "data/mine"})["path"] == "data/mine"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"format": "kaggle", "source": "path", "path": "x"}, "unknown format 'kaggle'; expected one of " + ", ".join(FORMATS)),
        ({"format": "pairs", "source": "ftp", "path": "x"}, "unknown source 'ftp'; expected one of " + ", ".join(SOURCES)),
        ({"format": "pairs", "source": "path", "path": "x", "colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"format": "pairs", "source": "path"}, "source 'path' needs the key 'path'"),
        ({"format": "pairs", "source": "path", "path": "x", "files": []}, r"\['files'\] do not apply to source 'path'"),
        ({"source": "path", "path": "x"}, r"missing required key\(s\) \['format'\]"),
        ({**DOWNLOAD, "files": [{**DOWNLOAD["files"][0], "sha256": "abc"}]}, r"files\[0\]\.sha256: expected 64 hexadecimal"),
        ({**DOWNLOAD, "files": [{**DOWNLOAD["files"][0], "urls": ["ftp://x"]}]}, r"files\[0\]\.urls"),
        ({**DOWNLOAD, "files": [{**DOWNLOAD["files"][0], "into": "../up"}]}, r"files\[0\]\.into: expected a relative path"),
        ({**DOWNLOAD, "files": []}, "files: expected a non-empty list"),
        ({"format": "synthetic", "source": "path", "path": "x"}, "'synthetic' needs source: synthetic"),
        ({"format": "montgomery", "source": "synthetic", "synthetic": {"task": "em"}}, "written in the 'lucchi_em' layout"),
        ({**SYNTHETIC, "synthetic": {"task": "cells"}}, "unknown task 'cells'"),
        ({**SYNTHETIC, "synthetic": {"task": "em", "size": [8, 8]}}, r"synthetic\.size"),
        ({**SYNTHETIC, "synthetic": {"task": "em", "n": 1}}, r"synthetic\.n: expected an integer >= 2"),
    ],
)
def test_validate_entry_errors_name_key_and_value(entry, message):
    with pytest.raises(ValueError, match=message):
        validate_entry("d", entry)


def _schema():
    return yaml.safe_load(SCHEMA.read_text())


def test_schema_describes_every_property():
    def walk(node, where):
        for key, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}.{key} has no description"
            walk(prop, f"{where}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{where}[]")

    schema = _schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]["format"]["enum"]) == set(FORMATS)
    assert set(schema["properties"]["source"]["enum"]) == set(SOURCES)
    walk(schema, "entry")


@pytest.mark.parametrize(
    "entry, valid",
    [
        (DOWNLOAD, True),
        (SYNTHETIC, True),
        ({"format": "pairs", "source": "path", "path": "x"}, True),
        ({"format": "kaggle", "source": "path", "path": "x"}, False),
        ({"format": "pairs", "source": "path"}, False),
        ({"format": "pairs", "source": "path", "path": "x", "synthetic": {"task": "em"}}, False),
        ({"format": "synthetic", "source": "path", "path": "x"}, False),
        ({**DOWNLOAD, "files": [{**DOWNLOAD["files"][0], "sha256": "abc"}]}, False),
        ({"format": "pairs", "source": "path", "path": "x", "extra": 1}, False),
        ({**DOWNLOAD, "files": [{**DOWNLOAD["files"][0], "sha256": None}]}, True),
        ({**SYNTHETIC, "synthetic": {"task": "em", "n": 1}}, False),
    ],
)
def test_schema_agrees_with_validate_entry(entry, valid):
    jsonschema = pytest.importorskip("jsonschema")
    schema_ok = jsonschema.Draft7Validator(_schema()).is_valid(entry)
    try:
        validate_entry("d", entry)
        python_ok = True
    except ValueError:
        python_ok = False
    assert schema_ok is python_ok is valid


def test_archive_endings_and_synthetic_defaults_are_read_from_the_schema():
    schema = _schema()
    endings = schema["$defs"]["archive_suffix"]["enum"]
    assert ARCHIVE_SUFFIXES == tuple(endings)
    assert all(is_archive(f"data{ending.upper()}") for ending in endings) and not is_archive("training.tif")
    extract = schema["properties"]["files"]["items"]["properties"]["extract"]["description"]
    assert set(endings) <= {word.strip("(),") for word in extract.split()}, "the description lists them"
    synthetic = schema["properties"]["synthetic"]["properties"]
    assert SYNTHETIC_DEFAULTS == {key: synthetic[key]["default"] for key in ("n", "seed", "size")}


def test_a_validated_entry_is_trusted_as_it_is(monkeypatch):
    from bractivate.data import entry as entry_module

    checked = validate_entry("x", SYNTHETIC)
    assert isinstance(checked, DatasetEntry) and validate_entry("x", checked) is checked
    calls = []
    original = entry_module._source_fields
    monkeypatch.setattr(entry_module, "_source_fields", lambda *args: calls.append(args) or original(*args))
    assert check_datasets({"x": SYNTHETIC}, {"train": 0.7, "val": 0.1, "test": 0.2}) == {"x": checked}
    assert len(calls) == 1


# --- splits ---------------------------------------------------------------------------------

def test_split_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match=r"'train': 0\.7, 'val': 0\.1, 'test': 0\.1\} sum to 0\.9"):
        check_split({"train": 0.7, "val": 0.1, "test": 0.1})
    with pytest.raises(ValueError, match="exactly"):
        check_split({"train": 0.8, "test": 0.2})
    check_split({"train": 0.7, "val": 0.1, "test": 0.2 + 5e-7})


def test_split_sizes_follow_the_fractions():
    assert split_counts(100, {"train": 0.7, "val": 0.1, "test": 0.2}) == {"train": 70, "val": 10, "test": 20}
    assert split_counts(138, {"train": 0.7, "val": 0.1, "test": 0.2}) == {"train": 97, "val": 14, "test": 27}
    assert split_counts(4, {"train": 0.7, "val": 0.1, "test": 0.2}) == {"train": 2, "val": 1, "test": 1}
    assert sum(split_counts(670, {"train": 0.7, "val": 0.1, "test": 0.2}).values()) == 670


def test_split_is_seeded_and_covers_every_sample_once():
    names = [f"s{i}" for i in range(50)]
    split = {"train": 0.7, "val": 0.1, "test": 0.2}
    a, b, c = split_indices(names, split, 3), split_indices(names, split, 3), split_indices(names, split, 4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(50))
    assert [len(a[k]) for k in ("train", "val", "test")] == [35, 5, 10]


def test_fixed_test_subset_is_the_test_split():
    names = [f"training_{i}" for i in range(10)] + [f"testing_{i}" for i in range(5)]
    split = split_indices(names, {"train": 0.8, "val": 0.2, "test": 0.0}, 0, {f"testing_{i}" for i in range(5)})
    assert split["test"].tolist() == list(range(10, 15))
    assert (len(split["train"]), len(split["val"])) == (8, 2)


# --- preprocess -----------------------------------------------------------------------------

def test_preprocess_resizes_normalises_and_records_attrs(tmp_path):
    make_pairs(tmp_path)
    ds = preprocess(read_raw("pairs", tmp_path), image_size=16, seed=5, attrs={"source": "path", "name": "mine"})
    assert ds.images.shape == ds.masks.shape == (10, 16, 16, 1)
    assert ds.images.dtype == np.float32 and ds.masks.dtype == np.uint8
    assert ds.images.min() == 0 and np.allclose(ds.images.max(axis=(1, 2, 3)), 1)
    assert set(np.unique(ds.masks)) <= {0, 1}
    assert {"source", "format", "seed", "image_size", "input_sha256", "split", "name"} <= set(ds.attrs)
    assert (ds.attrs["format"], ds.attrs["seed"], ds.attrs["image_size"]) == ("pairs", 5, 16)
    assert sum(len(v) for v in ds.splits.values()) == 10


def test_constant_image_becomes_zeros(tmp_path):
    make_pairs(tmp_path, n=3)
    iio.imwrite(tmp_path / "images" / "s01.png", np.full((30, 24), 77, np.uint8))
    ds = preprocess(read_raw("pairs", tmp_path), image_size=8)
    assert not ds.images[1].any()


def test_input_sha256_follows_the_files(tmp_path):
    make_pairs(tmp_path, n=3)
    before = input_sha256(read_raw("pairs", tmp_path))
    assert before == input_sha256(read_raw("pairs", tmp_path))
    iio.imwrite(tmp_path / "masks" / "s02.png", np.zeros((30, 24), np.uint8))
    assert input_sha256(read_raw("pairs", tmp_path)) != before


def test_lucchi_testing_stack_is_exactly_the_test_split(tmp_path):
    ds = preprocess(read_raw("lucchi_em", make_lucchi(tmp_path)), image_size=16)
    assert [ds.names[i] for i in ds.splits["test"]] == [f"testing_{i:03d}" for i in range(4)]
    train_val = [ds.names[i] for k in ("train", "val") for i in ds.splits[k]]
    assert sorted(train_val) == [f"training_{i:03d}" for i in range(6)]
    assert (len(ds.splits["train"]), len(ds.splits["val"])) == (5, 1)  # 0.7 : 0.1 of 6


# --- the whole stage ------------------------------------------------------------------------

def test_prepare_from_a_path_round_trips_through_hdf5(tmp_path):
    src = make_pairs(tmp_path / "src")
    entry = {"format": "pairs", "source": "path", "path": str(src)}
    out = prepare("mine", entry, tmp_path / "raw", tmp_path / "mine.h5", image_size=16, seed=2)
    direct = preprocess(read_raw("pairs", src), image_size=16, seed=2)
    loaded = load_dataset(out)
    np.testing.assert_array_equal(loaded.images, direct.images)
    np.testing.assert_array_equal(loaded.masks, direct.masks)
    assert loaded.names == direct.names
    assert all(np.array_equal(loaded.splits[k], direct.splits[k]) for k in direct.splits)
    assert loaded.attrs["source"] == "path" and loaded.attrs["name"] == "mine"
    assert loaded.attrs["input_sha256"] == direct.attrs["input_sha256"]
    assert not (tmp_path / "raw").exists()


def test_prepare_validates_the_entry_once(tmp_path, monkeypatch):
    from bractivate.data import entry as entry_module

    calls = []
    original = entry_module._source_fields
    monkeypatch.setattr(entry_module, "_source_fields", lambda *args: calls.append(args) or original(*args))
    entry = {"format": "synthetic", "source": "synthetic", "synthetic": {"task": "lungs", "n": 5, "size": [48, 40]}}
    prepare("lungs", entry, tmp_path / "raw", tmp_path / "a.h5", image_size=16)
    assert len(calls) == 1


def test_preprocess_stage_reads_what_the_download_stage_wrote(tmp_path):
    """The preprocess rule's job: no download, no second verification, the same data set as prepare."""
    raw = make_pairs(tmp_path / "raw", n=4)
    entry = {"format": "pairs", "source": "download",
             "files": [{"name": "pairs.zip", "sha256": SHA, "urls": ["http://127.0.0.1:9/pairs.zip"]}]}
    out = preprocess_stage("p", entry, raw, tmp_path / "p.h5", image_size=8, seed=3)
    assert sorted(p.name for p in raw.iterdir()) == ["images", "masks"]  # nothing fetched or recorded
    loaded, direct = load_dataset(out), preprocess(read_raw("pairs", raw), image_size=8, seed=3)
    np.testing.assert_array_equal(loaded.images, direct.images)
    assert (loaded.attrs["source"], loaded.attrs["name"]) == ("download", "p")
    with pytest.raises(ValueError, match="sum to"):
        preprocess_stage("p", entry, raw, tmp_path / "q.h5", split={"train": 0.5, "val": 0.1, "test": 0.1})


def test_prepare_synthetic_generates_once(tmp_path):
    entry = {"format": "synthetic", "source": "synthetic", "synthetic": {"task": "lungs", "n": 5, "size": [48, 40]}}
    prepare("lungs", entry, tmp_path / "raw", tmp_path / "a.h5", image_size=16)
    marker = tmp_path / "raw" / "synthetic.json"
    stamp = marker.stat().st_mtime_ns
    prepare("lungs", entry, tmp_path / "raw", tmp_path / "b.h5", image_size=16)
    assert marker.stat().st_mtime_ns == stamp
    a, b = load_dataset(tmp_path / "a.h5"), load_dataset(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.images, b.images)
    assert a.attrs["source"] == "synthetic" and a.attrs["format"] == "montgomery"
    entry["synthetic"]["seed"] = 1
    prepare("lungs", entry, tmp_path / "raw", tmp_path / "c.h5", image_size=16)
    assert not np.array_equal(load_dataset(tmp_path / "c.h5").images, a.images)


@pytest.fixture
def file_server(tmp_path):
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_prepare_downloads_verifies_and_extracts(tmp_path, file_server):
    www, base = file_server
    src = make_pairs(tmp_path / "src", n=4)
    with zipfile.ZipFile(www / "pairs.zip", "w") as zf:
        for path in sorted(src.rglob("*.png")):
            zf.write(path, path.relative_to(src).as_posix())
    sha = hashlib.sha256((www / "pairs.zip").read_bytes()).hexdigest()
    entry = {"format": "pairs", "source": "download",
             "files": [{"name": "pairs.zip", "sha256": sha, "urls": [f"{base}/missing.zip", f"{base}/pairs.zip"]}]}
    raw = tmp_path / "raw"
    prepare("p", entry, raw, tmp_path / "p.h5", image_size=8)
    assert (raw / "pairs.zip").is_file() and (raw / "images" / "s00.png").is_file()
    assert load_dataset(tmp_path / "p.h5").attrs["source"] == "download"
    (www / "pairs.zip").unlink()  # a second run needs no network: the zip is verified locally
    prepare("p", entry, raw, tmp_path / "q.h5", image_size=8)
    (raw / "images" / "s00.png").unlink()  # and is not unpacked again
    with pytest.raises(RawDataError, match="mask without image: s00"):
        prepare("p", entry, raw, tmp_path / "r.h5", image_size=8)


def test_prepare_validates_before_any_work(tmp_path):
    entry = {"format": "pairs", "source": "download",
             "files": [{"name": "x.zip", "sha256": SHA, "urls": ["http://127.0.0.1:9/x.zip"]}]}
    with pytest.raises(ValueError, match="sum to"):
        prepare("p", entry, tmp_path / "raw", tmp_path / "p.h5", split={"train": 0.5, "val": 0.1, "test": 0.1})
    with pytest.raises(ValueError, match="unknown format"):
        prepare("p", {**entry, "format": "png"}, tmp_path / "raw", tmp_path / "p.h5")
    assert list(tmp_path.iterdir()) == []


def test_obtain_path_checks_the_folder(tmp_path):
    entry = {"format": "pairs", "source": "path", "path": str(tmp_path / "src")}
    with pytest.raises(FileNotFoundError, match=r"datasets\.mine\.path: folder .*src not found"):
        obtain("mine", entry, tmp_path / "raw")
    make_pairs(tmp_path / "src", n=2)
    assert obtain("mine", entry, tmp_path / "raw") == tmp_path / "src"


def test_obtain_synthetic_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        obtain("lungs", {"format": "synthetic", "source": "synthetic", "synthetic": {"task": "lungs"}}, tmp_path / "raw")


def test_preprocess_cli_is_read_preprocess_write(tmp_path):
    src = make_pairs(tmp_path / "src", n=5)
    out = preprocess_cli("pairs", src, tmp_path / "o.h5", image_size=8, seed=1, split=[0.6, 0.2, 0.2])
    ds = load_dataset(out)
    assert ds.images.shape == (5, 8, 8, 1)
    assert [len(ds.splits[k]) for k in ("train", "val", "test")] == [3, 1, 1]
    with pytest.raises(ValueError, match="three fractions"):
        preprocess_cli("pairs", src, tmp_path / "o.h5", split=[0.5, 0.5])


def test_planned_split_refuses_every_empty_split_before_any_job():
    download = {"format": "montgomery", "source": "download", "files": [{"name": "a.zip", "sha256": SHA, "urls": ["https://x/a.zip"]}]}
    em = {**download, "format": "lucchi_em"}
    no_val = {"train": 0.8, "val": 0.0, "test": 0.2}
    no_test = {"train": 0.8, "val": 0.2, "test": 0.0}
    with pytest.raises(ValueError, match=r"datasets\.lungs: split .* leaves val empty"):
        check_planned_split("lungs", download, no_val)
    with pytest.raises(ValueError, match=r"leaves test empty"):
        check_planned_split("lungs", download, no_test)
    check_planned_split("em", em, no_test)  # its testing stack is the test split
    with pytest.raises(ValueError, match=r"datasets\.em: split .* leaves val empty"):
        check_planned_split("em", em, no_val)
    tiny = {"format": "synthetic", "source": "synthetic", "synthetic": {"task": "em", "n": 3}}
    # 3 slices: 2 training (1 train, 1 val under 0.5/0.5), 1 testing
    check_planned_split("em", tiny, {"train": 0.5, "val": 0.5, "test": 0.0})
    with pytest.raises(ValueError, match=r"of 3 samples leaves val empty \(train 2, val 0, test 1\)"):
        check_planned_split("em", tiny, {"train": 1.0, "val": 0.0, "test": 0.0})


def test_preprocess_refuses_a_split_before_reading_a_pixel(tmp_path):
    from bractivate.data import RawData, Sample

    def never():
        raise AssertionError("a sample was loaded")

    raw = RawData("pairs", tmp_path, [Sample(f"s{i}", never) for i in range(5)], [])
    with pytest.raises(ValueError, match=r"split \{'train': 1\.0, 'val': 0\.0, 'test': 0\.0\} of 5 samples leaves val and test empty"):
        preprocess(raw, 8, {"train": 1.0, "val": 0.0, "test": 0.0})
    for size in (1, 100_000, 8.0, True):
        with pytest.raises(ValueError, match=r"image_size: expected an integer in \[8, 1024\]"):
            preprocess(raw, size)


def test_degenerate_masks_warn_only_when_every_mask_is(tmp_path):
    from bractivate.data import RawData, Sample

    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    empty, full, some = np.zeros((8, 8), bool), np.ones((8, 8), bool), np.eye(8, dtype=bool)

    def raw(*masks):
        return RawData("pairs", tmp_path, [Sample(f"s{i}", lambda m=m: (image, m)) for i, m in enumerate(masks)], [])

    with pytest.warns(UserWarning, match=r"every one of the 3 masks is empty"):
        preprocess(raw(empty, empty, empty), 8)
    with pytest.warns(UserWarning, match=r"every one of the 3 masks is all foreground"):
        preprocess(raw(full, full, full), 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(raw(empty, full, some), 8)
