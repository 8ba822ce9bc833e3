"""npcnn's command line: train a model, print its layer table, gradient-check the layers.

examples:
  npcnn train --model lenet5 --dataset mnist          # LeNet-5 on MNIST, ~99% test accuracy
  npcnn train --model resnet20 --dataset fashion-mnist --augment --epochs 30
  npcnn summary resnet50 --depth 2                     # per-layer table, blocks to depth 2
  npcnn gradcheck --all                                # every layer and block

(python -m npcnn ... is the same program.) Training holds a validation split out of the
training set (--val-size); checkpoints choose best.npz by it, and the test set is evaluated once,
at the end. A user error (a bad flag, missing data, an unreadable checkpoint, training that
diverged) is a short message on stderr and a non-zero exit status: 2 for usage errors, 1 otherwise.
"""

import argparse
import math
import os
import sys
import time
from typing import Optional, Sequence

PROG = "npcnn"
# models that score every pixel: `npcnn train` trains classifiers (examples/fcn_segmentation.py trains these)
SEGMENTATION_MODELS = ("fcn8s", "fcn_tiny")


class CLIError(Exception):
    """A user error the CLI reports as one message (no traceback) and exit status 1."""


# ----------------------------------------------------------------------------- argument types


def _number(kind, low, inclusive, text):
    """An argparse type: ``kind(text)`` that is finite and > low (>= low when ``inclusive``)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    if value < low or (value == low and not inclusive):
        raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {low}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(int, 1, True, text)


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(int, 0, True, text)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(float, 0.0, False, text)


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(float, 0.0, True, text)


# ----------------------------------------------------------------------------- train


def cmd_train(args):
    """Train ``args.model`` on ``args.dataset``; write the model, checkpoints and curves to ``args.out``.

    Returns the test-set metrics. Raises :class:`CLIError` for missing data, an unusable
    ``--resume`` file or a run whose loss or weights went non-finite (nothing is saved then).
    """
    import npcnn
    from . import models, nn
    from .data import DatasetNotFoundError
    from .optim import lr_scheduler
    from .train import ModelCheckpoint, TerminateOnNaN, Trainer, evaluate, recipes, save_run

    npcnn.manual_seed(args.seed)
    try:
        train_set, test_set = recipes.load_dataset(args.dataset, args.data_root, download=not args.no_download)
    except (DatasetNotFoundError, ValueError, OSError) as err:  # missing, or a corrupt file the reader named
        raise CLIError(str(err)) from None
    if args.val_size >= len(train_set):
        raise CLIError(f"--val-size {args.val_size} leaves no training images ({args.dataset} has "
                       f"{len(train_set)}); choose a smaller --val-size")
    size = max(models.input_shape(args.model)[-1], train_set.images.shape[-1])  # LeNet-5: 28 -> 32
    loaders = recipes.make_loaders(train_set, test_set, args.dataset, args.batch_size, args.seed,
                                   augment=args.augment, image_size=size, subset=args.subset, val_size=args.val_size)
    train_loader = loaders.train

    kwargs = {"num_classes": len(train_set.classes)}
    if args.model != "lenet5":
        kwargs["in_channels"] = train_set.images.shape[1]
    model = models.get_model(args.model, **kwargs)
    optimizer = recipes.make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(train_loader))

    is_root = True
    if args.distributed:  # every rank runs this same script under mpirun; rank 0 alone writes
        from . import distributed

        try:
            setup = distributed.setup_training(model, optimizer, train_loader, sync_batchnorm=args.sync_bn,
                                               split_batch=True)
        except ValueError as err:  # e.g. a --batch-size the number of ranks does not divide
            raise CLIError(f"--distributed: {err}") from None
        model, optimizer, train_loader, is_root = setup.model, setup.optimizer, setup.loader, setup.is_main
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise CLIError(f"--out {args.out}: cannot create the output folder ({err.strerror or err})") from None
    monitor = "val_loss" if loaders.val is not None else "loss"
    callbacks = [TerminateOnNaN()]  # before the checkpoint: a diverged epoch never overwrites one
    if is_root:
        callbacks.append(ModelCheckpoint(args.out, monitor=monitor))  # best.npz (by validation) and last.npz
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=scheduler, scheduler_interval="batch",
                      callbacks=callbacks, verbose=args.verbose if is_root else 0)
    start = time.perf_counter()
    history = _fit(trainer, train_loader, args, loaders.val)
    seconds = time.perf_counter() - start
    if not recipes.all_finite(model):
        raise CLIError("training diverged: the model's weights are not finite (NaN or inf); nothing was saved. "
                       "Try a smaller --lr.")
    result = evaluate(model, loaders.test, metrics=("accuracy",))  # the test set, touched once
    if is_root:
        summary = {"model": args.model, "dataset": args.dataset, "epochs": args.epochs, "val_size": args.val_size,
                   "test_accuracy": result["accuracy"], "train_seconds": round(seconds, 1)}
        if loaders.val is not None and history.history.get("val_accuracy"):
            summary["val_accuracy"] = history.history["val_accuracy"][-1]
        save_run(args.out, model, history, summary)
        print(f"test accuracy {100 * result['accuracy']:.2f}% after {args.epochs} epochs ({seconds:.0f} s); "
              f"model, history and curves in {args.out}/")
    return result


def _fit(trainer, train_loader, args, val_loader):
    """``trainer.fit`` with the errors a user can cause turned into :class:`CLIError`."""
    from .serialization import FileFormatError

    if args.resume is not None and not os.path.isfile(args.resume):
        raise CLIError(f"--resume {args.resume}: no such file")
    try:
        return trainer.fit(train_loader, args.epochs, val_loader=val_loader, resume_from=args.resume)
    except FileFormatError as err:
        raise CLIError(f"--resume: {err}") from None
    except FloatingPointError as err:  # the loss or the gradients went NaN or inf
        raise CLIError(f"training diverged: {err}. Nothing was saved over the checkpoints; try a smaller --lr "
                       "(or --resume from the last good checkpoint).") from None
    except (KeyError, ValueError) as err:
        if args.resume is None:
            raise
        raise CLIError(f"--resume {args.resume}: this checkpoint does not fit the run "
                       f"(--model {args.model}, --optimizer {args.optimizer}): {_brief(str(err))}") from None


def _brief(text, limit=300):
    """``text`` cut to about ``limit`` characters (a list of 100 missing keys says no more than 10)."""
    return text if len(text) <= limit else text[:limit].rstrip() + " ..."


# ----------------------------------------------------------------------------- summary and gradcheck


def cmd_summary(args):
    """Print the layer table of ``args.model`` for a batch of ``args.batch_size`` and return the profile."""
    from . import models

    model = models.get_model(args.model)
    shape = tuple(args.input_shape) if args.input_shape else models.input_shape(args.model)
    try:
        return models.summary(model, shape, batch_size=args.batch_size, depth=args.depth)
    except ValueError as err:  # the layer that cannot take this shape says why
        raise CLIError(f"{args.model} cannot take --input-shape {' '.join(map(str, shape))}: {err}") from None


def cmd_gradcheck(args):
    """Gradient-check the named layers (or all); exit status 1 when any fails or a name matches nothing."""
    from . import diagnostics

    if not args.all and not args.layers:
        raise CLIError("name layers to check (e.g. `npcnn gradcheck Conv2d BatchNorm`) or pass --all")
    names = None if args.all else args.layers
    if names:
        known = [case.name for case in getattr(diagnostics, "GRADCHECK_CASES", [])]
        unknown = [n for n in names if known and not any(n.lower() in k.lower() for k in known)]
        if unknown:
            raise CLIError(f"no gradient-check case matches {', '.join(map(repr, unknown))}; "
                           f"the cases are: {', '.join(known)}")
    table = diagnostics.gradcheck_all(names=names, verbose=True)
    if not table.rows:
        raise CLIError(f"no gradient-check case matches {' '.join(names or [])}")
    failed = [row for row in table.rows if not row["ok"]]
    print(f"\n{len(table.rows) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise CLIError(f"{len(failed)} gradient check(s) failed: "
                       + ", ".join(f"{row['case']} ({row['dtype']})" for row in failed))
    return table


# ----------------------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """argparse with a two-line usage error: the message, then where the options are listed."""

    def error(self, message):
        """Print ``<prog>: error: <message>`` and a pointer to ``--help`` on stderr; exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n(see `{self.prog} --help` for the options)\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and adds "(default: ...)" to every flag that has one
    (not to switches, whose default is off, nor to options that are unset by default)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if not unset and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser of ``npcnn`` (``prog`` is the name its usage line shows)."""
    from . import __version__, models
    from .train.recipes import DATASETS, DEFAULT_VAL_SIZE, OPTIMIZERS

    parser = _Parser(prog=prog, description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,summary,gradcheck}")
    model_names = models.list_models()
    classifiers = [name for name in model_names if name not in SEGMENTATION_MODELS]

    train = sub.add_parser("train", help="train a model on a dataset", formatter_class=_HelpFormatter,
                           description="Train a model; writes model.npz, best.npz, last.npz, history.json, "
                                       "result.json and curves.png to --out.")
    train.add_argument("--model", default="lenet5", choices=classifiers, metavar="NAME",
                       help=f"the classifier: {', '.join(classifiers)}")
    train.add_argument("--dataset", default="mnist", choices=DATASETS, help="the data set")
    train.add_argument("--data-root", default=None, metavar="DIR",
                       help="folder with the dataset files (else NPCNN_DATA, then ~/.cache/npcnn)")
    train.add_argument("--no-download", action="store_true", help="fail instead of downloading missing data")
    train.add_argument("--epochs", type=positive_int, default=10, help="passes over the training set")
    train.add_argument("--batch-size", type=positive_int, default=128, help="images per training step")
    train.add_argument("--val-size", type=count, default=DEFAULT_VAL_SIZE, metavar="N",
                       help="training images held out for validation (seeded; 0: none, best.npz then by loss)")
    train.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="sgd is Nesterov, momentum 0.9")
    train.add_argument("--lr", type=positive_float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    train.add_argument("--weight-decay", type=nonnegative_float, default=0.0, help="L2 penalty (decoupled for adamw)")
    train.add_argument("--augment", action="store_true", help="random crops (and flips, except for digits)")
    train.add_argument("--subset", type=count, default=0, metavar="N",
                       help="train on the first N images (after the validation split; 0: all)")
    train.add_argument("--seed", type=count, default=0, help="seed of the weights, the split and the shuffling")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT",
                       help="checkpoint to resume from, e.g. runs/train/last.npz")
    train.add_argument("--out", default="runs/train", metavar="DIR", help="folder for the outputs")
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                       help="0 silent, 1 progress bar, 2 one line per epoch")
    train.add_argument("--distributed", action="store_true", help="data-parallel over MPI ranks (run under mpirun)")
    train.add_argument("--sync-bn", action="store_true", help="with --distributed: synchronized BatchNorm")
    train.set_defaults(func=cmd_train)

    summary = sub.add_parser("summary", help="print a model's layer table", formatter_class=_HelpFormatter,
                             description="Per-layer output shapes, parameters and multiply-accumulates.")
    summary.add_argument("model", choices=model_names, metavar="MODEL", help=f"one of {', '.join(model_names)}")
    summary.add_argument("--input-shape", type=positive_int, nargs="+", default=None, metavar="SIZE",
                         help="input without the batch dimension (default: the model's own, e.g. 1 32 32 for lenet5)")
    summary.add_argument("--batch-size", type=positive_int, default=1, help="the batch dimension shown")
    summary.add_argument("--depth", type=count, default=3,
                         help="nesting depth of the rows: 1 shows the top-level blocks only")
    summary.set_defaults(func=cmd_summary)

    gradcheck = sub.add_parser("gradcheck", help="gradient-check layers and blocks", formatter_class=_HelpFormatter,
                               description="Central-difference gradient checks in float64 and float32.")
    gradcheck.add_argument("--all", action="store_true", help="check every registered case")
    gradcheck.add_argument("layers", nargs="*", metavar="NAME",
                           help="case names (case-insensitive substrings, e.g. Conv2d BatchNorm)")
    gradcheck.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Usage errors exit with status 2 (argparse); other user errors print ``npcnn: error: ...``
    on stderr and return 1, without a traceback.
    """
    args = build_parser(prog).parse_args(argv)
    try:
        args.func(args)
    except CLIError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `npcnn summary resnet50 | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
