"""Throughput of the data stage's read + preprocess on a DSB2018-sized synthetic set (docs/data.md).

Writes 670 synthetic nuclei images in the nine stage1_train sizes, with the size counts of the
real set, then times ``read_raw`` + ``preprocess`` (generation is not timed) and prints one JSON
line with images per second.

    python benchmarks/preprocess.py [--n 670] [--image-size 128] [--workers 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bractivate.data import preprocess, read_raw, write_synthetic
from common import machine

# (height, width): images of that size in DSB2018 stage1_train (670 in all)
DSB2018_SIZES = {
    (256, 256): 334,
    (256, 320): 112,
    (520, 696): 92,
    (360, 360): 91,
    (1024, 1024): 16,
    (512, 640): 13,
    (603, 1272): 6,
    (260, 347): 5,
    (1040, 1388): 1,
}


def dsb2018_shapes(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` image sizes in the real set's proportions (every size at least once), shuffled."""
    total = sum(DSB2018_SIZES.values())
    shapes = [s for s, c in DSB2018_SIZES.items() for _ in range(max(1, round(c * n / total)))]
    rng = np.random.default_rng(seed)
    rng.shuffle(shapes)
    biggest = sorted(DSB2018_SIZES, key=lambda s: -DSB2018_SIZES[s])
    while len(shapes) < n:
        shapes.append(biggest[0])
    while len(shapes) > n:
        shapes.remove(biggest[0])
    return shapes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=670)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1, help="threads loading samples")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated set here")
    args = parser.parse_args(argv)
    if args.n < len(DSB2018_SIZES):
        parser.error(f"--n must be at least {len(DSB2018_SIZES)}, one image per DSB2018 size")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp) / "nuclei"
        if not (root / "synthetic.json").is_file():
            write_synthetic("nuclei", root, n=args.n, seed=0, size=dsb2018_shapes(args.n))
        start = time.perf_counter()
        raw = read_raw("dsb2018", root)
        dataset = preprocess(raw, image_size=args.image_size, workers=args.workers)
        seconds = time.perf_counter() - start
        masks = sum(1 for _ in root.glob("stage1_train/*/masks/*.png"))
    result = {
        "benchmark": "read_raw+preprocess",
        "format": "dsb2018",
        "images": len(dataset.names),
        "mask_files": masks,
        "image_size": args.image_size,
        "workers": args.workers,
        "seconds": round(seconds, 2),
        "images_per_second": round(len(dataset.names) / seconds, 2),
        "machine": machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
