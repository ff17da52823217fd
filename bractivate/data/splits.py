"""The train/val/test split: fractions, sizes and the seeded assignment of samples (docs/data.md).

:func:`split_counts` turns fractions into sizes (largest remainder), :func:`split_indices` draws
the seeded split, and the ``check_*`` functions refuse, before any sample is read, a split that
would leave one of the three empty.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from bractivate.io import SPLITS

from .entry import layout_of, validate_entry

DEFAULT_SPLIT = {"train": 0.7, "val": 0.1, "test": 0.2}


def check_split(split: Mapping[str, float]) -> dict[str, float]:
    """Split fractions keyed train/val/test, each in [0, 1], summing to 1 within 1e-6."""
    if not isinstance(split, Mapping) or set(split) != set(SPLITS):
        raise ValueError(f"split: expected fractions for exactly {list(SPLITS)}, got {split!r}")
    fractions = {k: float(split[k]) for k in SPLITS}
    if any(not 0 <= f <= 1 for f in fractions.values()):
        raise ValueError(f"split: every fraction must lie in [0, 1], got {fractions}")
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise ValueError(f"split: fractions {fractions} sum to {sum(fractions.values()):.6g}; they must sum to 1")
    return fractions


def check_seed(seed, where: str = "seed") -> int:
    """A non-negative integer seed (NumPy's generators take no other), or an error naming ``where``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{where}: expected an integer >= 0, got {seed!r}")
    return int(seed)


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Sizes summing to ``n`` (largest remainder), at least 1 per positive fraction when n allows."""
    exact = {k: n * f for k, f in fractions.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    # ties (up to float noise) go to the earlier split: train, then val, then test
    for k in sorted(exact, key=lambda k: -round(exact[k] - counts[k], 9))[: n - sum(counts.values())]:
        counts[k] += 1
    for k, f in fractions.items():
        if f > 0 and counts[k] == 0:
            donor = max(counts, key=counts.get)
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    return counts


def check_split_sizes(where: str, n: int, split: Mapping[str, float], fixed_test: int | None = None) -> dict[str, int]:
    """The sizes :func:`split_indices` will cut from ``n`` samples; refuse a split left empty.

    ``fixed_test`` is the size of a test set the format fixes (``lucchi_em``: its testing stack),
    which the train and val fractions do not divide. The error names ``where`` (the data set),
    its size and the split, before any sample is read.
    """
    fractions = check_split(split)
    if fixed_test is None:
        counts = split_counts(n, fractions)
    else:
        train_val = fractions["train"] + fractions["val"]
        ratio = {k: fractions[k] / train_val if train_val > 0 else 0.0 for k in ("train", "val")}
        counts = {**split_counts(n - fixed_test, ratio), "test": fixed_test}
    empty = [k for k in SPLITS if counts[k] == 0]
    if empty:
        sizes = ", ".join(f"{k} {counts[k]}" for k in SPLITS)
        raise ValueError(
            f"{where}: split {fractions} of {n} samples leaves {' and '.join(empty)} empty ({sizes}); "
            "every split needs a sample: give each a positive fraction or use more samples"
        )
    return counts


def check_planned_split(name: str, entry: Mapping, split: Mapping[str, float]) -> None:
    """The workflow's check before any job: refuse a split that leaves a data set's split empty.

    A generated data set's size is known from its entry; for the others only the fractions can
    be checked now (a zero fraction always empties its split, except lucchi_em's test split,
    which is its testing stack), and :func:`~bractivate.data.preprocess.preprocess` checks the
    size once the files are read.
    """
    entry = validate_entry(name, entry)
    fixed = layout_of(entry) == "lucchi_em"
    if entry["source"] == "synthetic":
        n = entry["synthetic"]["n"]
        check_split_sizes(f"datasets.{name}", n, split, n - (n + 1) // 2 if fixed else None)
        return
    fractions = check_split(split)
    zero = [k for k in SPLITS if fractions[k] == 0 and not (fixed and k == "test")]
    if zero:
        raise ValueError(f"datasets.{name}: split {fractions} leaves {' and '.join(zero)} empty; "
                         "every split needs a positive fraction")


def split_indices(
    names: Sequence[str], fractions: Mapping[str, float], seed: int, test_names=None
) -> dict[str, np.ndarray]:
    """Seeded split of ``range(len(names))`` into train/val/test, sorted int64 indices (docs/data.md).

    With ``test_names`` (``lucchi_em``: the testing stack) those samples are exactly the test
    split and the rest is divided by the train:val ratio; the test fraction is then unused.
    """
    fractions = check_split(fractions)
    rng = np.random.default_rng(seed)
    if test_names is None:
        pool, test = np.arange(len(names)), np.array([], np.int64)
        counts = split_counts(len(names), fractions)
    else:
        is_test = np.array([n in test_names for n in names], bool)
        pool, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        train_val = fractions["train"] + fractions["val"]
        if train_val <= 0:
            raise ValueError(f"split: train + val must be positive to divide the training stack, got {fractions}")
        counts = split_counts(len(pool), {"train": fractions["train"] / train_val, "val": fractions["val"] / train_val})
        counts["test"] = 0
    order = rng.permutation(pool)
    train = order[: counts["train"]]
    val = order[counts["train"]: counts["train"] + counts["val"]]
    test = np.concatenate([test, order[counts["train"] + counts["val"]:]])
    return {k: np.sort(v).astype(np.int64) for k, v in (("train", train), ("val", val), ("test", test))}
