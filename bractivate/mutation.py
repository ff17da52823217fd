"""Dendritic-branching mutation (docs/method.md#mutation, paper Fig. 2) and the random-search control."""

from __future__ import annotations

import numpy as np

from bractivate.genome import OPS, Edge, Genome


class NoEligibleBlock(ValueError):
    """Every block already receives an edge from every earlier block it may connect to."""


def most_active_block(genome: Genome, activity: dict[str, float]) -> str:
    """b*: the most active block that can still grow a dendrite (ties go to the earlier block)."""
    candidates = [b for b in genome.blocks if genome.eligible_sources(b)]
    if not candidates:
        raise NoEligibleBlock(f"genome {genome.hash}: no block can take a new edge")
    missing = [b for b in candidates if b not in activity]
    if missing:
        raise ValueError(f"activity has no value for block(s) {missing}")
    return max(candidates, key=lambda b: (activity[b], -genome.blocks.index(b)))


def dendritic_mutation(
    genome: Genome, activity: dict[str, float], rng: np.random.Generator, max_new_edges: int = 2
) -> Genome:
    """A child of ``genome``: k ∈ [1, max_new_edges] new edges into the most active block b*
    from earlier blocks not yet connected to it, then every incoming op of b* redrawn."""
    if max_new_edges < 1:
        raise ValueError(f"max_new_edges must be >= 1, got {max_new_edges}")
    target = most_active_block(genome, activity)
    sources = genome.eligible_sources(target)
    k = int(rng.integers(1, min(max_new_edges, len(sources)) + 1))
    new_sources = [str(s) for s in rng.choice(sources, size=k, replace=False)]
    kept = [e for e in genome.edges if e.dst != target]
    incoming = [e.src for e in genome.incoming(target)] + new_sources
    redrawn = [Edge(src, target, str(rng.choice(OPS))) for src in incoming]
    return genome.with_edges(kept + redrawn)
