"""Synthetic data sets: deterministic, in the real layouts, learnable (docs/data.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bractivate.data import TASK_LAYOUT, preprocess, read_raw, write_synthetic

SMALL = {"lungs": (64, 56), "nuclei": (64, 80), "em": (64, 64)}


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("task", sorted(TASK_LAYOUT))
def test_same_seed_same_files_other_seed_other_files(tmp_path, task):
    a = write_synthetic(task, tmp_path / "a", n=4, seed=7, size=SMALL[task])
    b = write_synthetic(task, tmp_path / "b", n=4, seed=7, size=SMALL[task])
    c = write_synthetic(task, tmp_path / "c", n=4, seed=8, size=SMALL[task])
    assert _digest(a) == _digest(b) != _digest(c)


@pytest.mark.parametrize("task", sorted(TASK_LAYOUT))
def test_synthetic_data_is_read_by_the_real_reader_and_is_learnable(tmp_path, task):
    root = write_synthetic(task, tmp_path / task, n=6, seed=0, size=SMALL[task])
    raw = read_raw(TASK_LAYOUT[task], root)
    assert len(raw) == 6
    ds = preprocess(raw, image_size=32)
    fraction = ds.masks.mean()
    assert 0.01 < fraction < 0.6
    # intensity alone separates foreground from background well above chance
    r = np.corrcoef(ds.images.ravel(), ds.masks.ravel().astype(float))[0, 1]
    assert abs(r) > 0.3, r


def test_lungs_have_two_disjoint_lung_masks(tmp_path):
    root = write_synthetic("lungs", tmp_path / "l", n=3, seed=1, size=(80, 64))
    raw = read_raw("montgomery", root)
    from skimage.io import imread

    for name in raw.names:
        left = imread(root / "MontgomerySet" / "ManualMask" / "leftMask" / f"{name}.png")
        right = imread(root / "MontgomerySet" / "ManualMask" / "rightMask" / f"{name}.png")
        assert set(np.unique(left)) == set(np.unique(right)) == {0, 255}
        assert not ((left > 0) & (right > 0)).any()
        assert (left > 0).mean() > 0.05 and (right > 0).mean() > 0.05


def test_nuclei_one_mask_per_nucleus_of_varied_size_and_given_shapes(tmp_path):
    shapes = [(64, 64), (48, 80), (80, 96)]
    root = write_synthetic("nuclei", tmp_path / "n", n=3, seed=2, size=shapes)
    from skimage.io import imread

    got_shapes, areas = [], []
    for folder in sorted((root / "stage1_train").iterdir()):
        image = imread(folder / "images" / f"{folder.name}.png")
        assert image.ndim == 3 and image.shape[-1] == 4
        got_shapes.append(image.shape[:2])
        masks = np.stack([imread(p) > 0 for p in sorted((folder / "masks").iterdir())])
        assert len(masks) >= 3
        assert masks.sum(axis=0).max() == 1  # nuclei do not overlap
        areas += masks.sum(axis=(1, 2)).tolist()
    assert sorted(got_shapes) == sorted(shapes)
    assert np.std(areas) > 0.2 * np.mean(areas)


def test_em_writes_training_and_testing_stacks(tmp_path):
    root = write_synthetic("em", tmp_path / "e", n=5, seed=0, size=(40, 48))
    raw = read_raw("lucchi_em", root)
    assert len(raw) == 5 and raw.test_names == {"testing_000", "testing_001"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(task="cells", n=2), ValueError, "unknown synthetic task 'cells'"),
        (dict(task="em", n=1), ValueError, "n must be an integer >= 2"),
        (dict(task="em", n=2, size=[(32, 32), (40, 40)]), ValueError, "share one size"),
        (dict(task="lungs", n=2, size=(8, 8)), ValueError, "at least 16"),
        (dict(task="nuclei", n=3, size=[(32, 32)]), ValueError, "list of 3"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_synthetic(root=tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        write_synthetic("lungs", tmp_path / "x", n=2)
    assert (tmp_path / "x" / "mine.txt").read_text() == "keep"
