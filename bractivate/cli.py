"""The ``bractivate`` command: the same functions the workflow's scripts call.

    bractivate search DATA.h5 OUTDIR [--settings FILE.yaml] [--set key=value ...]
    bractivate train GENOME.json DATA.h5 OUTDIR [--settings FILE.yaml] [--set key=value ...] [--overwrite]
    bractivate show GENOME.json [--input-size 128]
    bractivate preprocess --format FORMAT INPUT_DIR OUTPUT.h5 [--overwrite]
    bractivate predict MODEL.keras INPUT_DIR OUTPUT_DIR [--overwrite]
    bractivate export MODEL.keras OUTDIR [--data DATA.h5] [--genome GENOME.json] [--overwrite]

Every command caps its CPU threads as a workflow job does (``--threads N``; default half the
cores, at most 4) and runs Keras on PyTorch, as the workflow's training jobs do, unless
KERAS_BACKEND names another backend. A bad argument or input file ends in one line naming it
and what was expected (exit status 2); an internal error in one line naming the file that
holds its traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path


TRAIN_OUTPUTS = ("model.keras", "metrics.json", "history.tsv")


def _settings(path: str | None, overrides: list[str], kind: str = "search"):
    """Search (or ``kind="train"``: full training) settings from a YAML file and
    ``--set key=value`` items, each value type-checked."""
    from bractivate.config import load_yaml, read_yaml
    from bractivate.evaluation import SearchSettings
    from bractivate.pipeline import TrainSettings

    data = {}
    if path:
        data = read_yaml(path, "settings file") or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of {kind} settings")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value")
        data[key] = load_yaml(value, f"--set {key}")
    return (TrainSettings if kind == "train" else SearchSettings).from_dict(data)


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


def train_command(args) -> int:
    from bractivate.genome import Genome
    from bractivate.io import load_dataset, read_json
    from bractivate.pipeline import search_provenance, train_best_job

    settings = _settings(args.settings, args.set, "train")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed: expected an integer >= 0, got {args.seed}")
    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; expected the output folder")
    existing = [out / name for name in TRAIN_OUTPUTS if (out / name).exists()]
    if existing and not args.overwrite:  # no half-trained model to resume: training writes at its end
        raise ValueError(f"{existing[0]}: exists (a model was already trained into {out}); "
                         "pass --overwrite to train again or choose another folder")
    genome = Genome.load(args.genome)  # a bad genome fails before the data set is read
    best = read_json(args.genome)
    # The workflow trains with the search's seed (config seed + trial): so does the command.
    searched = (best.get("settings") if isinstance(best, dict) else None) or {}
    seed = args.seed if args.seed is not None else int(searched.get("seed", 0))
    data = load_dataset(args.data)
    provenance = {**search_provenance(best), "genome_file": args.genome, "data_file": args.data}  # for export
    metrics = train_best_job(args.genome, data, settings, seed=seed, model_path=out / "model.keras",
                             metrics_path=out / "metrics.json", history_path=out / "history.tsv",
                             provenance=provenance)
    print(f"genome {genome.hash}: test Dice {metrics['test_dice']:.4f}, {metrics['params']:,} parameters, "
          f"{metrics['epochs']} epochs; wrote {out / 'model.keras'}")
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


def export_command(args) -> int:
    from bractivate.export import export_model

    checks = export_model(args.model, args.outdir, data_path=args.data, genome_path=args.genome,
                          overwrite=args.overwrite)
    print(f"wrote {Path(args.outdir) / 'model.onnx'} (onnxruntime within {checks['onnx_max_abs_diff']:.2g} of Keras "
          f"on {checks['test_images']} test images) and the bioimage.io package "
          f"{Path(args.outdir) / checks['package']} (bioimageio test: {checks['bioimageio_test']})")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (docs/reliability.md), not a usage block and an error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


def parser() -> argparse.ArgumentParser:
    main = _Parser(prog="bractivate", description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (default: half the cores, at most 4)")

    p = sub.add_parser("search", parents=[common], help="run or resume a search on a preprocessed HDF5 data set")
    p.add_argument("data", help="preprocessed HDF5 file")
    p.add_argument("outdir", help="folder for best_genome.json and history.tsv")
    p.add_argument("--settings", help="YAML file of search settings (the config's `search` keys)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one search setting, e.g. --set evaluations=6")
    p.add_argument("--state", help="resumable state file (default OUTDIR/search_state.json)")
    p.set_defaults(func=search_command)

    p = sub.add_parser("train", parents=[common],
                       help="train a genome in full (the workflow's train_best) and score it on the test split")
    p.add_argument("genome", help="best_genome.json from a search, or a genome JSON")
    p.add_argument("data", help="preprocessed HDF5 file")
    p.add_argument("outdir", help="folder for model.keras, metrics.json and history.tsv")
    p.add_argument("--settings", help="YAML file of training settings (the config's `train` keys)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one training setting, e.g. --set epochs=50")
    p.add_argument("--seed", type=int, help="training seed (default: the search's seed, as in the workflow)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in OUTDIR")
    p.set_defaults(func=train_command)

    p = sub.add_parser("show", parents=[common], help="print a genome as a table of blocks")
    p.add_argument("genome", help="genome JSON (best_genome.json works too)")
    p.add_argument("--input-size", type=int, default=128)
    p.set_defaults(func=show_command)

    p = sub.add_parser("preprocess", parents=[common], help="read a raw data set folder and write the 128x128 HDF5")
    p.add_argument("--format", required=True, help="montgomery, lucchi_em, dsb2018 or pairs")
    p.add_argument("input_dir")
    p.add_argument("output")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", type=float, nargs=3, default=[0.7, 0.1, 0.2], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(func=preprocess_command)

    p = sub.add_parser("predict", parents=[common], help="segment a folder of images with a trained model")
    p.add_argument("model", help="model.keras from train_best")
    p.add_argument("input_dir")
    p.add_argument("output_dir")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--overwrite", action="store_true", help="replace masks already in OUTPUT_DIR")
    p.set_defaults(func=predict_command)

    p = sub.add_parser("export", parents=[common],
                       help="write a trained model as ONNX and as a bioimage.io model package, both checked")
    p.add_argument("model", help="model.keras from train_best or bractivate train")
    p.add_argument("outdir", help="new folder for model.onnx, the package and its zip")
    p.add_argument("--data", help="the data set it was trained on (default: the one its metrics.json names)")
    p.add_argument("--genome", help="its genome, for the package's README (default: the one its metrics.json names)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTDIR if it exists")
    p.set_defaults(func=export_command)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command; any error ends in one line on stderr (docs/reliability.md).

    An error the user can fix (:data:`bractivate.errors.USER_ERRORS`) exits with status 2; any
    other is a bug: its traceback goes to a log file that the line names, status 1.
    """
    from bractivate.errors import internal_error_line, is_user_error, log_traceback, one_line
    from bractivate.runtime import setup_command

    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad argument already said in one line
        return int(done.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        setup_command(args.threads)
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
