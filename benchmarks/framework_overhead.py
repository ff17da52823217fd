"""Framework overhead: training steps of a genome-built Keras model on the PyTorch backend
against the same network written as plain PyTorch modules (goal: ratio <= 1.2 on the CPU).

    KERAS_BACKEND=torch python benchmarks/framework_overhead.py [--sizes 64,128] [--images 64]

Three ways to train the same genome (a plain UNet, depth 2, 8 filters by default), all in one
process on the same data: ``keras`` is ``model.fit`` (execution ``auto``, what ``fit`` does
today), ``torch_exec`` is execution ``torch`` (bractivate.torch_exec: the Keras model's
variables driven by torch calls and the compiled Keras Adam), ``plain`` is ``torch.nn`` modules
with ``torch.optim.Adam``. After one warm-up epoch each, epochs alternate between the three
(interleaving makes the ratios robust to other load on the machine; the absolute times are
not) and the median epoch time of each is used. Prints one JSON line per size, then the worst
``torch_exec`` / ``plain`` ratio over the sizes on the last line. ``--profile`` also prints, per
size, where one epoch of the Keras steps spends its time (``torch.profiler``, to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from bractivate.genome import Genome, block_widths, unet_skip_edges
from bractivate.model import build_model, count_params
from bractivate.torch_exec import TorchProgram, train_steps
from common import machine, noise_arrays  # noqa: E402


class PlainUNet(nn.Module):
    """The genome's plain UNet as one would write it in PyTorch: NCHW, torch.nn layers, the
    same batch-norm epsilon and momentum as Keras's defaults."""

    def __init__(self, depth: int, filters: int):
        super().__init__()
        widths = block_widths(depth, filters)

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU())

        self.depth = depth
        self.enc = nn.ModuleList(block(1 if i == 0 else widths[f"enc{i - 1}"], widths[f"enc{i}"]) for i in range(depth))
        self.mid = block(widths[f"enc{depth - 1}"], widths["mid"])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths["mid"] if i == depth - 1 else widths[f"dec{i + 1}"], widths[f"dec{i}"], 2,
                               stride=2)
            for i in range(depth))
        self.dec = nn.ModuleList(block(widths[f"dec{i}"] + widths[f"enc{i}"], widths[f"dec{i}"]) for i in range(depth))
        self.head = nn.Conv2d(widths["dec0"], 1, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = self.mid(nn.functional.max_pool2d(x, 2))
        for i in reversed(range(self.depth)):
            x = self.dec[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return torch.sigmoid(self.head(x))


def print_profile(epoch, title: str, rows: int = 15) -> None:
    """Run ``epoch`` once under ``torch.profiler`` and print its ops by their own CPU time to stderr."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        epoch()
    print(f"== {title}\n{profile.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows)}",
          file=sys.stderr)


def one_size(size: int, args) -> dict:
    x, y = noise_arrays(args.images, size)
    keras.utils.set_random_seed(0)
    genome = Genome(args.depth, args.filters, tuple(unet_skip_edges(args.depth)))
    keras_model, exec_model = build_model(genome, (size, size, 1)), build_model(genome, (size, size, 1))
    for model in (keras_model, exec_model):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    plain = PlainUNet(args.depth, args.filters)
    params = sum(p.numel() for p in plain.parameters())
    assert params == count_params(keras_model), (params, count_params(keras_model))
    plain_opt = torch.optim.Adam(plain.parameters(), 1e-3, eps=1e-7, foreach=True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xc, yc = xt.permute(0, 3, 1, 2).contiguous(), yt.permute(0, 3, 1, 2).contiguous()
    program = TorchProgram(exec_model)

    def keras_epoch():
        keras_model.fit(x, y, batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0)

    def exec_epoch():
        float(train_steps(program, xt, yt, torch.randperm(len(xt)), args.batch_size))

    def plain_epoch():
        plain.train()
        order = torch.randperm(len(xc))
        for start in range(0, len(order), args.batch_size):
            index = order[start:start + args.batch_size]
            loss = nn.functional.binary_cross_entropy(plain(xc[index]).clamp(1e-7, 1 - 1e-7), yc[index])
            plain_opt.zero_grad(set_to_none=True)
            loss.backward()
            plain_opt.step()

    runs = {"keras": keras_epoch, "torch_exec": exec_epoch, "plain": plain_epoch}
    for run in runs.values():
        run()  # warm-up: first-call allocations, optimizer state
    if args.profile:
        print_profile(keras_epoch, f"one epoch of Keras steps at {size}x{size}")
    seconds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    med = {name: float(np.median(s)) for name, s in seconds.items()}
    return {"benchmark": "framework_overhead", "size": size, "depth": args.depth, "filters": args.filters,
            "params": params, "images": args.images, "batch_size": args.batch_size, "rounds": args.rounds,
            "threads": torch.get_num_threads(), "machine": machine(),
            **{f"seconds_per_epoch_{k}": round(v, 4) for k, v in med.items()},
            "ratio_keras": round(med["keras"] / med["plain"], 3),
            "ratio_torch_exec": round(med["torch_exec"] / med["plain"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of one Keras epoch")
    args = parser.parse_args()
    if keras.config.backend() != "torch":
        raise SystemExit(f"set KERAS_BACKEND=torch (got {keras.config.backend()!r})")
    rows = [one_size(int(s), args) for s in args.sizes.split(",")]
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"ratio": max(r["ratio_torch_exec"] for r in rows),
                      "ratio_keras": max(r["ratio_keras"] for r in rows)}))


if __name__ == "__main__":
    main()
