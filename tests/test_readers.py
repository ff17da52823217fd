"""Readers of the public layouts on small fixtures built by the tests (docs/data.md)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from skimage.color import rgb2gray
from skimage.transform import resize

from bractivate.data import RawDataError, preprocess, read_raw

SHAPE = (60, 50)


def _rect(rng, shape):
    mask = np.zeros(shape, np.uint8)
    r, c = rng.integers(0, shape[0] - 10), rng.integers(0, shape[1] - 10)
    mask[r : r + rng.integers(5, 20), c : c + rng.integers(5, 20)] = 255
    return mask


def make_montgomery(root, n=3, shape=SHAPE, seed=0):
    """A MontgomerySet fixture; returns name -> (image, left, right) as written."""
    rng = np.random.default_rng(seed)
    base = root / "MontgomerySet"
    folders = [base / "CXR_png", base / "ManualMask" / "leftMask", base / "ManualMask" / "rightMask"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "Thumbs.db").write_bytes(b"\x00junk")
        (folder / ".DS_Store").write_bytes(b"\x00junk")
    written = {}
    for i in range(n):
        name = f"MCUCXR_{i:04d}_0.png"
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        left, right = _rect(rng, shape), _rect(rng, shape)
        for folder, array in zip(folders, (image, left, right)):
            iio.imwrite(folder / name, array)
        written[name[:-4]] = (image, left, right)
    return written


def make_dsb(root, ids=("a1", "b2"), shape=(40, 48), seed=0):
    """A stage1_train fixture with three nuclei per RGBA image; returns id -> (rgba, [masks])."""
    rng = np.random.default_rng(seed)
    written = {}
    for sample_id in ids:
        folder = root / "stage1_train" / sample_id
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        rgba = rng.integers(0, 256, shape + (4,), dtype=np.uint8)  # random alpha: must be ignored
        iio.imwrite(folder / "images" / f"{sample_id}.png", rgba)
        masks = [_rect(rng, shape) for _ in range(3)]
        for k, mask in enumerate(masks):
            iio.imwrite(folder / "masks" / f"nucleus{k}.png", mask)
        written[sample_id] = (rgba, masks)
    return written


def make_lucchi(root, train=4, test=3, shape=(24, 32), seed=0):
    rng = np.random.default_rng(seed)
    stacks = {}
    for stem, count in (("training", train), ("testing", test)):
        images = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
        masks = np.stack([_rect(rng, shape) for _ in range(count)])
        tifffile.imwrite(root / f"{stem}.tif", images, photometric="minisblack")
        tifffile.imwrite(root / f"{stem}_groundtruth.tif", masks, photometric="minisblack")
        stacks[stem] = (images, masks)
    return stacks


def make_pairs(root, stems=("p1", "p2", "p3"), shape=(30, 20), seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    written = {}
    for k, stem in enumerate(stems):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        mask = _rect(rng, shape)
        iio.imwrite(root / "images" / f"{stem}{'.tif' if k % 2 else '.png'}", image)
        iio.imwrite(root / "masks" / f"{stem}.png", mask)
        written[stem] = (image, mask)
    return written


def test_montgomery_mask_is_the_union_of_left_and_right(tmp_path):
    written = make_montgomery(tmp_path)
    raw = read_raw("montgomery", tmp_path)
    assert raw.names == sorted(written)
    for sample in raw.samples:
        image, mask = sample.load()
        src, left, right = written[sample.name]
        np.testing.assert_array_equal(image, src)
        expected = np.logical_or(left == 255, right == 255)
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, expected)


def test_montgomery_after_preprocess_matches_an_independent_resize(tmp_path):
    written = make_montgomery(tmp_path)
    ds = preprocess(read_raw("montgomery", tmp_path), image_size=32)
    for i, name in enumerate(ds.names):
        _, left, right = written[name]
        union = ((left > 0) | (right > 0)).astype(float)
        expected = resize(union, (32, 32), order=1, anti_aliasing=True) >= 0.5
        np.testing.assert_array_equal(ds.masks[i, ..., 0], expected.astype(np.uint8))


def test_montgomery_mask_of_another_shape_names_the_file(tmp_path):
    make_montgomery(tmp_path)
    bad = tmp_path / "MontgomerySet" / "ManualMask" / "rightMask" / "MCUCXR_0001_0.png"
    iio.imwrite(bad, np.zeros((10, 10), np.uint8))
    sample = read_raw("montgomery", tmp_path).samples[1]
    with pytest.raises(RawDataError, match=r"rightMask.MCUCXR_0001_0\.png.*\(10, 10\)"):
        sample.load()


def test_montgomery_image_without_mask_names_the_stem(tmp_path):
    make_montgomery(tmp_path)
    (tmp_path / "MontgomerySet" / "ManualMask" / "leftMask" / "MCUCXR_0002_0.png").unlink()
    with pytest.raises(RawDataError, match=r"leftMask: image without mask: MCUCXR_0002_0$"):
        read_raw("montgomery", tmp_path)


def test_montgomery_empty_data_set_names_the_folder(tmp_path):
    make_montgomery(tmp_path, n=0)
    with pytest.raises(RawDataError, match=r"CXR_png: empty data set"):
        read_raw("montgomery", tmp_path)


def test_missing_layout_folder_says_what_was_expected(tmp_path):
    with pytest.raises(RawDataError, match=r"MontgomerySet.CXR_png: folder not found"):
        read_raw("montgomery", tmp_path)


def test_corrupt_image_names_the_file(tmp_path):
    make_montgomery(tmp_path)
    bad = tmp_path / "MontgomerySet" / "CXR_png" / "MCUCXR_0000_0.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    raw = read_raw("montgomery", tmp_path)
    with pytest.raises(RawDataError, match=r"MCUCXR_0000_0\.png: cannot read image"):
        preprocess(raw, image_size=16)


def test_non_binary_mask_warns_with_the_file_and_count(tmp_path):
    make_montgomery(tmp_path)
    path = tmp_path / "MontgomerySet" / "ManualMask" / "leftMask" / "MCUCXR_0000_0.png"
    mask = iio.imread(path)
    mask[0, :3] = 128  # three pixels neither 0 nor the max
    mask[1, 0] = 255
    iio.imwrite(path, mask)
    sample = read_raw("montgomery", tmp_path).samples[0]
    with pytest.warns(UserWarning, match=r"MCUCXR_0000_0\.png: mask is not binary: 3 pixels"):
        _, union = sample.load()
    assert union[0, :3].all()


def test_float_mask_is_refused(tmp_path):
    make_pairs(tmp_path)
    (tmp_path / "masks" / "p1.png").unlink()
    tifffile.imwrite(tmp_path / "masks" / "p1.tif", np.ones((30, 20), np.float32))
    sample = read_raw("pairs", tmp_path).samples[0]
    with pytest.raises(RawDataError, match=r"p1\.tif: mask has dtype float32; expected an integer"):
        sample.load()


def test_dsb2018_mask_is_the_union_of_its_nuclei_and_alpha_is_ignored(tmp_path):
    written = make_dsb(tmp_path)
    raw = read_raw("dsb2018", tmp_path)
    assert raw.names == ["a1", "b2"]
    for sample in raw.samples:
        image, mask = sample.load()
        rgba, masks = written[sample.name]
        np.testing.assert_allclose(image, rgb2gray(rgba[..., :3]))
        np.testing.assert_array_equal(mask, np.any(np.stack(masks) == 255, axis=0))


def test_dsb2018_image_without_masks_and_masks_without_image(tmp_path):
    make_dsb(tmp_path, ids=("a1", "b2", "c3"))
    for p in (tmp_path / "stage1_train" / "b2" / "masks").iterdir():
        p.unlink()
    (tmp_path / "stage1_train" / "c3" / "images" / "c3.png").unlink()
    with pytest.raises(RawDataError, match=r"image without mask: b2; mask without image: c3"):
        read_raw("dsb2018", tmp_path)


def test_dsb2018_empty_data_set_names_the_folder(tmp_path):
    (tmp_path / "stage1_train").mkdir()
    with pytest.raises(RawDataError, match=r"stage1_train: empty data set"):
        read_raw("dsb2018", tmp_path)


def test_lucchi_keeps_its_testing_stack_as_the_test_subset(tmp_path):
    stacks = make_lucchi(tmp_path)
    raw = read_raw("lucchi_em", tmp_path)
    assert len(raw) == 7
    assert raw.test_names == {"testing_000", "testing_001", "testing_002"}
    image, mask = raw.samples[-1].load()
    np.testing.assert_array_equal(image, stacks["testing"][0][-1])
    np.testing.assert_array_equal(mask, stacks["testing"][1][-1] == 255)


def test_lucchi_stack_of_the_wrong_shape_names_file_and_shapes(tmp_path):
    make_lucchi(tmp_path)
    tifffile.imwrite(tmp_path / "testing_groundtruth.tif", np.zeros((3, 24, 30), np.uint8), photometric="minisblack")
    with pytest.raises(RawDataError, match=r"testing_groundtruth\.tif: stack of the wrong shape \(3, 24, 30\); expected \(3, 24, 32\)"):
        read_raw("lucchi_em", tmp_path)


def test_lucchi_two_dimensional_stack_is_the_wrong_shape(tmp_path):
    make_lucchi(tmp_path)
    tifffile.imwrite(tmp_path / "training.tif", np.zeros((24, 32), np.uint8))
    with pytest.raises(RawDataError, match=r"training\.tif: stack of the wrong shape \(24, 32\); expected 3-D"):
        read_raw("lucchi_em", tmp_path)


def test_lucchi_missing_or_corrupt_stack_names_the_file(tmp_path):
    make_lucchi(tmp_path)
    (tmp_path / "testing.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(RawDataError, match=r"testing\.tif: cannot read TIFF stack"):
        read_raw("lucchi_em", tmp_path)
    (tmp_path / "testing.tif").unlink()
    with pytest.raises(RawDataError, match=r"testing\.tif: file not found"):
        read_raw("lucchi_em", tmp_path)


def test_lucchi_empty_folder(tmp_path):
    with pytest.raises(RawDataError, match="empty data set"):
        read_raw("lucchi_em", tmp_path)


def test_pairs_match_by_stem_across_formats(tmp_path):
    written = make_pairs(tmp_path)
    raw = read_raw("pairs", tmp_path)
    assert raw.names == ["p1", "p2", "p3"]
    for sample in raw.samples:
        image, mask = sample.load()
        np.testing.assert_array_equal(image, written[sample.name][0])
        np.testing.assert_array_equal(mask, written[sample.name][1] > 0)


def test_pairs_mask_without_image_names_the_stem(tmp_path):
    make_pairs(tmp_path)
    iio.imwrite(tmp_path / "masks" / "orphan.png", np.zeros((30, 20), np.uint8))
    with pytest.raises(RawDataError, match=r"mask without image: orphan"):
        read_raw("pairs", tmp_path)


def test_pairs_corrupt_image_and_empty_folder(tmp_path):
    make_pairs(tmp_path)
    (tmp_path / "images" / "p3.png").write_bytes(b"not an image")
    with pytest.raises(RawDataError, match=r"p3\.png: cannot read image"):
        read_raw("pairs", tmp_path).samples[2].load()
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    with pytest.raises(RawDataError, match=r"empty: empty data set"):
        read_raw("pairs", empty)


def test_unknown_format_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="montgomery, lucchi_em, dsb2018, pairs"):
        read_raw("kaggle", tmp_path)
