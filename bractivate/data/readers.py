"""Readers of the public archive layouts (docs/data.md), one per ``format``.

Each reader checks the layout up front (matching image and mask names, non-empty data set, stack
shapes) and returns a :class:`RawData` whose samples load lazily, so a Montgomery set of 138
images of 4020×4892 pixels never sits in memory at full size. Loading a sample checks its mask
(integer type, same shape as the image) and warns when a mask is not binary. Foreground is every
nonzero mask pixel, the convention of all three public sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .images import (  # noqa: F401  (the mask rules and warnings, also imported from here)
    ConstantImageWarning,
    LossyMaskWarning,
    MaskWarning,
    NotBinaryMaskWarning,
    RawDataError,
    check_finite,
    check_image_side,
    read_image_file,
    to_grayscale,
    to_mask,
    warn_if_not_binary,
)

IGNORED_FILES = frozenset({"Thumbs.db", ".DS_Store", "desktop.ini"})
LUCCHI_STACKS = {
    "training": ("training.tif", "training_groundtruth.tif"),
    "testing": ("testing.tif", "testing_groundtruth.tif"),
}


@dataclass(frozen=True)
class Sample:
    """One image and its mask; ``load()`` reads them: (2-D grayscale image, 2-D bool mask)."""

    name: str
    loader: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False, compare=False)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return self.loader()


@dataclass
class RawData:
    """The samples of one raw data set, sorted by name.

    ``test_names`` is the fixed test subset of formats that ship one (``lucchi_em``: the testing
    stack), else None. ``files`` lists every input file, for the data set's input checksum.
    """

    format: str
    root: Path
    samples: list[Sample]
    files: list[Path]
    test_names: frozenset[str] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]


def _visible_files(folder: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Plain files of ``folder`` minus hidden and OS clutter files, sorted; optional suffix filter."""
    if not folder.is_dir():
        return []
    entries = [p for p in folder.iterdir() if p.name not in IGNORED_FILES and not p.name.startswith(".")]
    # A link to nothing is a sample the user meant to give us: refuse it rather than drop it.
    broken = sorted(p for p in entries if p.is_symlink() and not p.exists())
    if broken:
        raise RawDataError(
            f"{broken[0]}: symbolic link to a missing file ({os.readlink(broken[0])})"
            + (f" and {len(broken) - 1} more" if len(broken) > 1 else "")
            + "; fix or remove the link(s)"
        )
    files = [p for p in entries if p.is_file()]
    if suffixes is not None:
        files = [p for p in files if p.suffix.lower() in suffixes]
    return sorted(files)



def _check_pairs(images: dict[str, Path], masks: dict[str, Path], where: Path) -> None:
    """Raise naming the stems that have an image but no mask, or a mask but no image."""
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    problems = []
    if lonely_images:
        problems.append(f"image without mask: {', '.join(lonely_images)}")
    if lonely_masks:
        problems.append(f"mask without image: {', '.join(lonely_masks)}")
    if problems:
        raise RawDataError(f"{where}: " + "; ".join(problems))


def _by_stem(files: list[Path], where: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in files:
        if path.stem in out:
            raise RawDataError(f"{where}: two files share the stem {path.stem!r}: {out[path.stem].name}, {path.name}")
        out[path.stem] = path
    return out


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise RawDataError(f"{path}: folder not found; expected {what}")


def _empty(folder: Path, what: str) -> RawDataError:
    return RawDataError(f"{folder}: empty data set: no {what} found")


def read_montgomery(root: Path) -> RawData:
    """``MontgomerySet/CXR_png/*.png``; mask = leftMask ∪ rightMask of the same name (0/255)."""
    base = root / "MontgomerySet"
    image_dir, left_dir, right_dir = base / "CXR_png", base / "ManualMask/leftMask", base / "ManualMask/rightMask"
    for folder in (image_dir, left_dir, right_dir):
        _require_dir(folder, "the Montgomery layout MontgomerySet/{CXR_png,ManualMask/leftMask,ManualMask/rightMask}")
    images = {p.stem: p for p in _visible_files(image_dir, (".png",))}
    if not images:
        raise _empty(image_dir, "*.png chest X-rays")
    lefts = {p.stem: p for p in _visible_files(left_dir, (".png",))}
    rights = {p.stem: p for p in _visible_files(right_dir, (".png",))}
    _check_pairs(images, lefts, left_dir)
    _check_pairs(images, rights, right_dir)

    def loader(stem: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            image = to_grayscale(read_image_file(images[stem]), images[stem])
            left = to_mask(read_image_file(lefts[stem]), lefts[stem], image.shape)
            right = to_mask(read_image_file(rights[stem]), rights[stem], image.shape)
            return image, left | right
        return load

    samples = [Sample(stem, loader(stem)) for stem in sorted(images)]
    files = [*images.values(), *lefts.values(), *rights.values()]
    return RawData("montgomery", root, samples, files)


def _read_stack(path: Path) -> np.ndarray:
    import tifffile

    if not path.is_file():
        raise RawDataError(f"{path}: file not found; expected the Lucchi EM stack {path.name}")
    try:
        stack = tifffile.imread(path)
    except Exception as err:  # tifffile raises several types for a corrupt file
        raise RawDataError(f"{path}: cannot read TIFF stack ({type(err).__name__}: {err})") from err
    if stack.size == 0:  # tifffile returns an empty array when no page can be read
        raise RawDataError(f"{path}: cannot read TIFF stack (no readable image data)")
    if stack.ndim != 3:
        raise RawDataError(f"{path}: stack of the wrong shape {stack.shape}; expected 3-D (slices, height, width)")
    check_image_side(stack.shape[1:], path)
    return check_finite(stack, path)


def read_lucchi_em(root: Path) -> RawData:
    """``training.tif`` + ``testing.tif`` and their ``*_groundtruth.tif`` (255 = mitochondria).

    The testing stack is the fixed test split (docs/data.md); slices are named ``training_000`` ….
    """
    _require_dir(root, "the Lucchi EM folder with training.tif and testing.tif")
    if not any((root / f).exists() for pair in LUCCHI_STACKS.values() for f in pair):
        raise _empty(root, "Lucchi EM stacks (training.tif, testing.tif and their *_groundtruth.tif)")
    samples: list[Sample] = []
    files: list[Path] = []
    test_names: set[str] = set()
    for stem, (image_file, mask_file) in LUCCHI_STACKS.items():
        image_path, mask_path = root / image_file, root / mask_file
        images, masks = _read_stack(image_path), _read_stack(mask_path)
        if images.shape != masks.shape:
            raise RawDataError(
                f"{mask_path}: stack of the wrong shape {masks.shape}; "
                f"expected {images.shape} like {image_path}"
            )
        if not (np.issubdtype(masks.dtype, np.integer) or masks.dtype == bool):
            raise RawDataError(f"{mask_path}: mask has dtype {masks.dtype}; expected an integer type")
        warn_if_not_binary(masks, mask_path)
        masks = masks > 0
        width = max(3, len(str(len(images) - 1)))
        for i in range(len(images)):
            name = f"{stem}_{i:0{width}d}"
            samples.append(Sample(name, lambda i=i, im=images, m=masks: (im[i], m[i])))
            if stem == "testing":
                test_names.add(name)
        files += [image_path, mask_path]
    return RawData("lucchi_em", root, samples, files, frozenset(test_names))


def read_dsb2018(root: Path) -> RawData:
    """``stage1_train/<id>/images/<id>.png`` (RGBA → gray) and ``masks/*.png``, one per nucleus."""
    base = root / "stage1_train"
    _require_dir(base, "the DSB2018 layout stage1_train/<id>/{images,masks}")
    ids = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not ids:
        raise _empty(base, "stage1_train/<id>/ folders")
    for i in ids:
        _visible_files(base / i / "images")  # refuses a broken link there, like the masks' one
    images = {i: base / i / "images" / f"{i}.png" for i in ids if (base / i / "images" / f"{i}.png").is_file()}
    masks = {i: files for i in ids if (files := _visible_files(base / i / "masks", (".png",)))}
    neither = [i for i in ids if i not in images and i not in masks]
    if neither:
        raise RawDataError(f"{base}: folder(s) with neither images/<id>.png nor masks/*.png: {', '.join(neither)}")
    _check_pairs(images, masks, base)

    def loader(sample_id: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            path = images[sample_id]
            image = to_grayscale(read_image_file(path), path)
            union = np.zeros(image.shape, bool)
            for mask_path in masks[sample_id]:
                union |= to_mask(read_image_file(mask_path), mask_path, image.shape)
            return image, union
        return load

    samples = [Sample(i, loader(i)) for i in ids]
    files = [*images.values(), *(p for i in ids for p in masks[i])]
    return RawData("dsb2018", root, samples, files)


def read_pairs(root: Path) -> RawData:
    """``images/`` and ``masks/`` matched by file stem, any format scikit-image reads."""
    image_dir, mask_dir = root / "images", root / "masks"
    _require_dir(image_dir, "images/ and masks/ folders matched by file stem")
    _require_dir(mask_dir, "images/ and masks/ folders matched by file stem")
    images = _by_stem(_visible_files(image_dir), image_dir)
    masks = _by_stem(_visible_files(mask_dir), mask_dir)
    if not images and not masks:
        raise _empty(root, "images in images/")
    _check_pairs(images, masks, root)

    def loader(stem: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def load() -> tuple[np.ndarray, np.ndarray]:
            image = to_grayscale(read_image_file(images[stem]), images[stem])
            return image, to_mask(read_image_file(masks[stem]), masks[stem], image.shape)
        return load

    samples = [Sample(stem, loader(stem)) for stem in sorted(images)]
    return RawData("pairs", root, samples, [*images.values(), *masks.values()])


READERS: dict[str, Callable[[Path], RawData]] = {
    "montgomery": read_montgomery,
    "lucchi_em": read_lucchi_em,
    "dsb2018": read_dsb2018,
    "pairs": read_pairs,
}


LAYOUTS = tuple(READERS)


def read_raw(format: str, root: str | os.PathLike) -> RawData:
    """Read the raw data set at ``root`` laid out as ``format`` (one of :data:`LAYOUTS`)."""
    if format not in READERS:
        raise ValueError(f"unknown data set layout {format!r}; expected one of {', '.join(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise RawDataError(f"{root}: data set folder not found")
    return READERS[format](root)
