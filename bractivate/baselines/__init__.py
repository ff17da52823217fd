"""Baseline models of the paper's Table 2 (paper §4.8): UNet, Attention UNet and R2-UNet from
keras-unet-collection, UNet++ wired from that library's blocks, Wide UNet, and our Keras port of
NAS-UNet (docs/baselines.md)."""

from bractivate.baselines.collection import (
    BASELINES,
    FILTERS,
    PAPER_PARAMS,
    build_baseline,
    count_params,
    nas_unet_depth,
    scale_filters,
    wide_unet_factor,
)
from bractivate.baselines.nasunet import NAS_UNET_V3, Genotype, nas_unet

__all__ = [
    "BASELINES",
    "FILTERS",
    "Genotype",
    "NAS_UNET_V3",
    "PAPER_PARAMS",
    "build_baseline",
    "count_params",
    "nas_unet",
    "nas_unet_depth",
    "scale_filters",
    "wide_unet_factor",
]
