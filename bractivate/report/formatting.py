"""How the report writes numbers and names: display names of the models, the mark of a
missing value, scientific notation and mean ± std cells.

Spread is the sample standard deviation over trials (``ddof=1``). With a single trial it is
undefined: the cell shows ``± –``.
"""

from __future__ import annotations

import math

import numpy as np

from bractivate.outputs import BRACTIVATE, CONTROL

MODEL_NAMES = {
    BRACTIVATE: "Bractivate",
    CONTROL: "Random search",
    "unet": "UNet",
    "unetpp": "UNet++",
    "wideunet": "Wide UNet",
    "attunet": "Attention UNet",
    "r2unet": "R2-UNet",
    "nasunet": "NAS-UNet",
}
MISSING = "–"


def fmt_sci(value: float) -> str:
    """``123456 -> '1.2e5'``: one decimal, no exponent sign or padding."""
    if value is None or not np.isfinite(value):
        return MISSING
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_mean_std(mean: float, std: float, decimals: int = 3) -> str:
    """``'0.912 ± 0.004'``; ``'0.912 ± –'`` when the spread is undefined (one trial)."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    spread = f"{std:.{decimals}f}" if std is not None and np.isfinite(std) else MISSING
    return f"{mean:.{decimals}f} ± {spread}"


def auto_decimals(value: float) -> int:
    """Two decimals, more for values below 1 so that short searches do not read as 0.00 h."""
    if not np.isfinite(value) or value <= 0 or value >= 1:
        return 2
    return min(6, 2 - math.floor(math.log10(value)))

