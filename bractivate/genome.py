"""The genome: a UNet of ``depth`` encoder blocks, a bottleneck, mirrored decoder blocks, and
dendritic skip connections between them (docs/method.md#genome).

A genome is a plain value. It validates itself on construction, round-trips through canonical
JSON and has a stable hash of that canonical form, so the same architecture is recognised
however it was reached. It knows nothing of Keras: :mod:`bractivate.model` builds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from bractivate.schema import schema_node

OPS = ("concat", "add")
# Bounds of a genome read from a file or drawn by a search: the schema's maxima of the search's
# depth_range and filter_range (docs/method.md searches depths up to 10 and base filters 8-32).
# Widths grow as 1.5^depth: at depth 16 the bottleneck of an 8-filter genome has 5 255 filters
# and the UNet ~1.4 G parameters; 512 base filters give a depth-2 UNet of 59 M. Larger values are
# typing errors, refused before anything is built.
_RANGES = schema_node("config.schema.yaml", "$defs", "search_settings", "properties")
MAX_DEPTH = int(_RANGES["depth_range"]["items"]["maximum"])
MAX_FILTERS = int(_RANGES["filter_range"]["items"]["maximum"])


# A best_genome.json of the largest genome (496 edges) with its activities is ~60 kB; a file
# a hundred times that size is not a genome, and is refused before it is parsed.
MAX_GENOME_BYTES = 8 << 20


def max_edges(depth: int) -> int:
    """Most dendrites a genome of ``depth`` can hold: one per forward pair of blocks not joined by the main path."""
    blocks = 2 * depth + 1
    return blocks * (blocks - 1) // 2 - (blocks - 1)


def short(value, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters: a bad value in a message, not the whole of it."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 1]}…"


def block_names(depth: int) -> list[str]:
    """Blocks in topological order: ``enc0 … enc{D-1}, mid, dec{D-1} … dec0``."""
    return [f"enc{i}" for i in range(depth)] + ["mid"] + [f"dec{i}" for i in reversed(range(depth))]


def predecessor(block: str, depth: int) -> str | None:
    """The block that feeds ``block`` through the main path (``None`` for ``enc0``)."""
    names = block_names(depth)
    position = names.index(block)
    return names[position - 1] if position > 0 else None


def block_widths(depth: int, filters: int) -> dict[str, int]:
    """Filters per block: encoder i has round(n · 1.5^i); the bottleneck continues the series;
    decoder i mirrors encoder i (docs/method.md#genome)."""
    widths = {f"enc{i}": max(1, round(filters * 1.5**i)) for i in range(depth)}
    widths["mid"] = max(1, round(filters * 1.5**depth))
    widths.update({f"dec{i}": widths[f"enc{i}"] for i in range(depth)})
    return widths


@dataclass(frozen=True, order=True)
class Edge:
    """A dendritic skip connection from an earlier block ``src`` into block ``dst``."""

    src: str
    dst: str
    op: str

    def to_dict(self) -> dict:
        return {"src": self.src, "dst": self.dst, "op": self.op}


@dataclass(frozen=True)
class Genome:
    """Depth, base filters and dendritic edges of one architecture (docs/method.md#genome).

    Edges are kept in canonical order (by receiving block, then source block, in topological
    order); that order is also the order in which a block merges its incoming tensors.
    """

    depth: int
    filters: int
    edges: tuple[Edge, ...] = ()

    def __post_init__(self) -> None:
        for key in ("depth", "filters"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"genome {key} must be an integer, got {short(value)}")
            if value < 1:
                raise ValueError(f"genome {key} must be >= 1, got {value}")
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "filters", int(self.filters))
        edges = tuple(e if isinstance(e, Edge) else _edge_from_any(e) for e in self.edges)
        order = {name: i for i, name in enumerate(self.blocks)}
        seen: set[tuple[str, str]] = set()
        for edge in edges:
            for end in (edge.src, edge.dst):
                if end not in order:
                    raise ValueError(
                        f"edge {short(edge.src, 30)}->{short(edge.dst, 30)}: unknown block {short(end)} "
                        f"(depth {self.depth} has blocks {', '.join(self.blocks)})"
                    )
            if edge.op not in OPS:
                raise ValueError(f"edge {edge.src}->{edge.dst}: op {short(edge.op)} not in {OPS}")
            if order[edge.src] >= order[edge.dst]:
                kind = "to itself" if edge.src == edge.dst else "backwards"
                raise ValueError(f"edge {edge.src}->{edge.dst} goes {kind}; edges must go forwards")
            if edge.src == predecessor(edge.dst, self.depth):
                raise ValueError(
                    f"edge {edge.src}->{edge.dst}: {edge.src} already feeds {edge.dst} "
                    "through the main path"
                )
            if (edge.src, edge.dst) in seen:
                raise ValueError(f"duplicate edge {edge.src}->{edge.dst}")
            seen.add((edge.src, edge.dst))
        edges = tuple(sorted(edges, key=lambda e: (order[e.dst], order[e.src])))
        object.__setattr__(self, "edges", edges)

    @cached_property
    def blocks(self) -> list[str]:
        return block_names(self.depth)

    @cached_property
    def widths(self) -> dict[str, int]:
        return block_widths(self.depth, self.filters)

    def incoming(self, block: str) -> list[Edge]:
        """Dendritic edges into ``block`` in merge order."""
        return [e for e in self.edges if e.dst == block]

    def eligible_sources(self, block: str) -> list[str]:
        """Earlier blocks that may still grow a new edge into ``block``."""
        position = self.blocks.index(block)
        taken = {e.src for e in self.incoming(block)} | {predecessor(block, self.depth)}
        return [b for b in self.blocks[:position] if b not in taken]

    def with_edges(self, edges) -> "Genome":
        return Genome(self.depth, self.filters, tuple(edges))

    def to_dict(self) -> dict:
        return {"depth": self.depth, "filters": self.filters, "edges": [e.to_dict() for e in self.edges]}

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON: sorted keys, canonical edge order."""
        separators = (",", ":") if indent is None else None
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, separators=separators)

    @cached_property
    def hash(self) -> str:
        """Stable 16-hex-digit SHA-256 prefix of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict, where: str = "genome") -> "Genome":
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object with depth, filters, edges")
        unknown = set(data) - {"depth", "filters", "edges"}
        missing = {"depth", "filters"} - set(data)
        if unknown or missing:
            raise ValueError(
                f"{where}: keys must be depth, filters, edges"
                + (f"; unknown {sorted(unknown)}" if unknown else "")
                + (f"; missing {sorted(missing)}" if missing else "")
            )
        for key, most in (("depth", MAX_DEPTH), ("filters", MAX_FILTERS)):
            value = data[key]
            if isinstance(value, int) and not isinstance(value, bool) and value > most:
                raise ValueError(f"{where}: {key} {value} is more than {most}, the largest a genome may have")
        if not isinstance(data.get("edges", []), list):
            raise ValueError(f"{where}: edges must be a list, got {type(data['edges']).__name__}")
        depth = data["depth"] if isinstance(data["depth"], int) and data["depth"] > 0 else MAX_DEPTH
        if len(data.get("edges", [])) > max_edges(depth):
            raise ValueError(f"{where}: {len(data['edges'])} edges; a genome of depth {depth} has at most "
                             f"{max_edges(depth)}")
        try:
            return cls(data["depth"], data["filters"], tuple(data.get("edges", [])))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err

    @classmethod
    def from_json(cls, text: str, where: str = "genome") -> "Genome":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err})") from err
        except RecursionError as err:
            raise ValueError(f"{where}: JSON nested too deeply to be a genome") from err
        return cls.from_dict(data, where)

    @classmethod
    def load(cls, path: str | Path) -> "Genome":
        """Read a genome JSON file; a file that also holds a search result keeps it under ``genome``."""
        from bractivate.io import read_json

        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: genome file not found")
        size = Path(path).stat().st_size
        if size > MAX_GENOME_BYTES:
            raise ValueError(f"{path}: {size} bytes is more than a genome file holds (at most {MAX_GENOME_BYTES}); "
                             "expected a genome JSON or best_genome.json")
        data = read_json(path)
        return cls.from_dict(data.get("genome", data) if isinstance(data, dict) else data, str(path))


def _edge_from_any(item) -> Edge:
    if isinstance(item, dict):
        unknown = set(item) - {"src", "dst", "op"}
        if unknown or not {"src", "dst", "op"} <= set(item):
            raise ValueError(f"edge {short(item)}: expected keys src, dst, op")
        return Edge(str(item["src"]), str(item["dst"]), str(item["op"]))
    if isinstance(item, (list, tuple)) and len(item) == 3:
        return Edge(*(str(x) for x in item))
    raise ValueError(f"edge {short(item)}: expected {{src, dst, op}} or [src, dst, op]")


def unet_skip_edges(depth: int) -> list[Edge]:
    """The same-scale UNet skips ``enc_i -> dec_i`` (concat)."""
    return [Edge(f"enc{i}", f"dec{i}", "concat") for i in range(depth)]


def random_genome(
    rng: np.random.Generator,
    depth_range: tuple[int, int] = (2, 5),
    filter_range: tuple[int, int] = (8, 32),
    max_in_edges: int = 2,
    unet_skips: bool = True,
) -> Genome:
    """Sample a genome: depth and filters uniform in their inclusive ranges, every block given
    0..``max_in_edges`` random dendrites (on top of the UNet skips when ``unet_skips``)."""
    lo, hi = depth_range
    if not 1 <= lo <= hi:
        raise ValueError(f"depth_range must satisfy 1 <= low <= high, got {list(depth_range)}")
    flo, fhi = filter_range
    if not 1 <= flo <= fhi:
        raise ValueError(f"filter_range must satisfy 1 <= low <= high, got {list(filter_range)}")
    depth = int(rng.integers(lo, hi + 1))
    genome = Genome(depth, int(rng.integers(flo, fhi + 1)), tuple(unet_skip_edges(depth)) if unet_skips else ())
    edges = list(genome.edges)
    for block in genome.blocks:
        sources = genome.with_edges(edges).eligible_sources(block)
        count = min(int(rng.integers(0, max_in_edges + 1)), len(sources))
        for src in rng.choice(sources, size=count, replace=False) if count else []:
            edges.append(Edge(str(src), block, str(rng.choice(OPS))))
    return genome.with_edges(edges)
