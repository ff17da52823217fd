"""The benchmark scripts as a suite: statically, each uses only the package's public
names, says how it is run, and every script docs/benchmarks.md names exists; and the one
diagnosis among them, dead_blocks.py, finds a dead block."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def private_names(tree: ast.AST) -> list[str]:
    """The underscore names a module takes from ``bractivate``: imported (``from bractivate.x
    import _y``, ``import bractivate._x``) or reached as attributes (``bractivate.x._y``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bractivate":
            parts = node.module.split(".") + [alias.name for alias in node.names]
            found += [p for p in parts if p.startswith("_") and p != "__future__"]
        elif isinstance(node, ast.Import):
            found += [p for alias in node.names if alias.name.split(".")[0] == "bractivate"
                      for p in alias.name.split(".") if p.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id == "bractivate":
                found.append(".".join(["bractivate", *reversed(chain)]))
    return found


def test_the_private_name_finder_finds_each_form():
    code = "from bractivate.train import _mean_bce, fit\nimport bractivate._x\nbractivate.model._size(1)\n"
    assert private_names(ast.parse(code)) == ["_mean_bce", "_x", "bractivate.model._size"]
    assert private_names(ast.parse("from bractivate.train import fit\nfrom keras.src import _x")) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_uses_public_names_of_the_package(script):
    assert private_names(ast.parse(script.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name != "common.py"], ids=lambda p: p.name)
def test_a_benchmark_says_how_it_is_run(script):
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    assert f"benchmarks/{script.name}" in doc, f"{script.name}: its docstring shows no command"


def test_every_script_the_benchmarks_page_names_exists():
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    named = set(re.findall(r"benchmarks/([\w.-]+\.(?:py|sh))", text))
    assert {"builder_overhead.py", "tf_iterator_teardown.py"} <= named
    assert sorted(n for n in named if not (ROOT / "benchmarks" / n).is_file()) == []


def test_dead_blocks_names_a_block_whose_every_channel_is_zero():
    """benchmarks/dead_blocks.py, the diagnosis of a collapsed model, on a tiny genome model
    whose last block is killed by a large negative batch-norm offset."""
    import importlib.util
    import sys

    import keras
    import numpy as np

    from bractivate.genome import Genome, unet_skip_edges
    from bractivate.model import build_model

    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("dead_blocks", ROOT / "benchmarks" / "dead_blocks.py")
    dead_blocks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dead_blocks)

    keras.utils.set_random_seed(0)
    model = build_model(Genome(1, 2, tuple(unet_skip_edges(1))), (16, 16, 1))
    x = np.random.default_rng(0).random((4, 16, 16, 1), dtype=np.float32)
    assert dead_blocks.block_outputs(model) == ["enc0_relu2", "mid_relu2", "dec0_relu2"]
    healthy = dead_blocks.alive(model, x, training=True)
    assert set(healthy) == {"enc0", "mid", "dec0"} and min(healthy.values()) > 0.1
    bn = model.get_layer("dec0_bn2")
    bn.beta.assign(np.full(bn.beta.shape, -100.0, dtype="float32"))
    for training in (True, False):
        shares = dead_blocks.alive(model, x, training=training)
        assert shares["dec0"] == 0.0 and shares["enc0"] > 0.1, shares
