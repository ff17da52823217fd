"""The ``bractivate`` command: the same functions the workflow's scripts call.

    bractivate search DATA.h5 OUTDIR [--settings FILE.yaml] [--set key=value ...]
    bractivate show GENOME.json [--input-size 128]
    bractivate preprocess --format FORMAT INPUT_DIR OUTPUT.h5 [--overwrite]
    bractivate predict MODEL.keras INPUT_DIR OUTPUT_DIR [--overwrite]

A bad argument or input file ends in one line naming it and what was expected (exit status 2); an
internal error in one line naming the file that holds its traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path


def _settings(path: str | None, overrides: list[str]):
    """Search settings from a YAML file and ``--set key=value`` items, each value type-checked."""
    from bractivate.config import load_yaml, read_yaml
    from bractivate.evaluation import SearchSettings

    data = {}
    if path:
        data = read_yaml(path, "settings file") or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of search settings")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value")
        data[key] = load_yaml(value, f"--set {key}")
    return SearchSettings.from_dict(data)


def search_command(args) -> int:
    from bractivate.io import load_dataset
    from bractivate.pipeline import check_search_outputs, run_search_job
    from bractivate.runtime import output_folder_lock
    from bractivate.search import read_state

    settings = _settings(args.settings, args.set)
    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; expected the output folder")
    state = Path(args.state) if args.state else out / "search_state.json"
    # Every file is checked for its kind before the data set is read (docs/reliability.md).
    check_search_outputs(out / "best_genome.json", out / "history.tsv", state)
    if state.exists() or state.is_symlink():
        read_state(state)
    data = load_dataset(args.data)
    # One writer per folder, and per state elsewhere: two searches would interleave their states.
    with output_folder_lock(out, "bractivate search"), contextlib.ExitStack() as stack:
        if state.parent.resolve() != out.resolve():
            stack.enter_context(output_folder_lock(state.parent, "bractivate search", f".{state.name}.lock"))
        run_search_job(data, settings, out / "best_genome.json", out / "history.tsv", state)
    return 0


def show_command(args) -> int:
    from bractivate.genome import Genome
    from bractivate.pipeline import describe_genome

    from bractivate.data.preprocess import check_image_size

    size = check_image_size(args.input_size, "--input-size")
    print(describe_genome(Genome.load(args.genome), (size, size, 1)))
    return 0


def preprocess_command(args) -> int:
    from bractivate.data import preprocess_cli

    preprocess_cli(args.format, args.input_dir, args.output, image_size=args.image_size,
                   seed=args.seed, split=args.split, overwrite=args.overwrite)
    return 0


def predict_command(args) -> int:
    from bractivate.predict import predict_folder

    written = predict_folder(args.model, args.input_dir, args.output_dir, threshold=args.threshold,
                             overwrite=args.overwrite)
    print(f"wrote {len(written)} masks to {args.output_dir}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (docs/reliability.md), not a usage block and an error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


def parser() -> argparse.ArgumentParser:
    main = _Parser(prog="bractivate", description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("search", help="run or resume a search on a preprocessed HDF5 data set")
    p.add_argument("data", help="preprocessed HDF5 file")
    p.add_argument("outdir", help="folder for best_genome.json and history.tsv")
    p.add_argument("--settings", help="YAML file of search settings (the config's `search` keys)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one search setting, e.g. --set evaluations=6")
    p.add_argument("--state", help="resumable state file (default OUTDIR/search_state.json)")
    p.set_defaults(func=search_command)

    p = sub.add_parser("show", help="print a genome as a table of blocks")
    p.add_argument("genome", help="genome JSON (best_genome.json works too)")
    p.add_argument("--input-size", type=int, default=128)
    p.set_defaults(func=show_command)

    p = sub.add_parser("preprocess", help="read a raw data set folder and write the 128x128 HDF5")
    p.add_argument("--format", required=True, help="montgomery, lucchi_em, dsb2018 or pairs")
    p.add_argument("input_dir")
    p.add_argument("output")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", type=float, nargs=3, default=[0.7, 0.1, 0.2], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=preprocess_command)

    p = sub.add_parser("predict", help="segment a folder of images with a trained model")
    p.add_argument("model", help="model.keras from train_best")
    p.add_argument("input_dir")
    p.add_argument("output_dir")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--overwrite", action="store_true", help="replace masks already in OUTPUT_DIR")
    p.set_defaults(func=predict_command)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command; any error ends in one line on stderr (docs/reliability.md).

    An error the user can fix (:data:`bractivate.errors.USER_ERRORS`) exits with status 2; any
    other is a bug: its traceback goes to a log file that the line names, status 1.
    """
    from bractivate.errors import internal_error_line, is_user_error, log_traceback, one_line

    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument already said in one line
        return int(done.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"bractivate {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error ends in one line (docs/reliability.md)
        if is_user_error(err):
            print(f"bractivate {args.command}: error: {one_line(err)}", file=sys.stderr)
            return 2
        where = log_traceback(err, f"bractivate-{args.command}")
        print(f"bractivate {args.command}: {internal_error_line(err, where)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
