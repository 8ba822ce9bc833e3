"""ResNet-20 (He et al. 2015, section 4.2) on CIFAR-10, with the standard recipe.

    NPCNN_DATA=/path/to/data python examples/cifar10_resnet.py               # 30 epochs (long on a CPU)
    python examples/cifar10_resnet.py --epochs 164 --schedule step           # the paper's 64k iterations
    python examples/cifar10_resnet.py --epochs 1 --subset 2000               # a quick check
    python examples/cifar10_resnet.py --resume runs/cifar10_resnet/last.npz  # continue a run

The data: ``npcnn.data.cifar10()`` reads ``cifar-10-batches-py/`` (or the binary version, or
``cifar-10-python.tar.gz``) from ``--data-root``, the folders in ``NPCNN_DATA`` or
``~/.cache/npcnn``, and downloads the archive (163 MB) there when it is nowhere to be found.

The recipe: SGD with Nesterov momentum 0.9, batch 128, peak learning rate 0.1 after a linear
warm-up over the first epoch, weight decay 5e-4 (the paper used 1e-4 over 164 epochs; more
decay suits shorter runs), random 32x32 crops of the image zero-padded by 4 and random
horizontal flips, per-channel standardization. ``--schedule cosine`` (default) anneals the rate
to 0 per batch; ``--schedule step`` divides it by 10 at 50% and 75% of the epochs (the paper's
32k and 48k of 64k iterations).

Reference figure: the paper's ResNet-20 reaches 91.25% test accuracy (8.75% error); this example
has not been run to completion on the 2-core development machine, which has no CIFAR-10 copy
(see ``benchmarks/train_bench.py`` for the images per second it would train at).

5,000 training images are held out (seeded, ``--val-size``) to validate on each epoch and to pick
``best.npz``; the test set is evaluated once, at the end.

Writes ``best.npz`` / ``last.npz`` checkpoints (resumable), ``model.npz`` (npcnn.save),
``history.json``, ``result.json`` and ``curves.png`` (with matplotlib) to ``--out``.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn
from npcnn import models, nn
from npcnn.data import DatasetNotFoundError, cifar10
from npcnn.optim import lr_scheduler
from npcnn.train import ModelCheckpoint, Trainer, evaluate, save_run
from npcnn.train.recipes import make_loaders, make_optimizer

HOW_TO_GET_CIFAR = (
    "CIFAR-10 was not found. Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
    "(163 MB), unpack it (or leave the .tar.gz) into a folder DIR, and run with NPCNN_DATA=DIR or "
    "--data-root DIR; without --no-download the archive is fetched into ~/.cache/npcnn when online."
)


def load_cifar10(root=None, download=True):
    """(train, test) ImageDatasets, or SystemExit with instructions when the files are absent."""
    try:
        return cifar10(root=root, train=True, download=download), cifar10(root=root, train=False, download=download)
    except DatasetNotFoundError as err:
        raise SystemExit(f"{HOW_TO_GET_CIFAR}\n\n({err})") from None


def make_scheduler(optimizer, schedule, epochs, steps_per_epoch):
    """Per-batch schedule: one epoch of linear warm-up (from lr/10), then cosine or step decay."""
    warmup = min(steps_per_epoch, max(epochs - 1, 0) * steps_per_epoch)
    rest = max(epochs * steps_per_epoch - warmup, 1)
    if schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest)
    elif schedule == "step":
        milestones = [int(0.5 * epochs * steps_per_epoch) - warmup, int(0.75 * epochs * steps_per_epoch) - warmup]
        main = lr_scheduler.MultiStepLR(optimizer, milestones=[max(m, 1) for m in milestones], gamma=0.1)
    else:
        raise SystemExit(f"unknown schedule {schedule!r}; choose cosine or step")
    return lr_scheduler.LinearWarmup(main, warmup, start_factor=0.1) if warmup else main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--subset", type=int, default=0, help="use only the first N train and N test images")
    parser.add_argument("--val-size", type=int, default=5000,
                        help="training images held out for validation and best.npz (seeded; 0: none)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "step"])
    parser.add_argument("--depth", type=int, default=20, choices=[20, 32, 44, 56, 110])
    parser.add_argument("--data-root", default=None, help="folder with the CIFAR-10 files (else NPCNN_DATA, cache)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading CIFAR-10")
    parser.add_argument("--resume", default=None, help="checkpoint to continue from (e.g. OUT/last.npz)")
    parser.add_argument("--out", default="runs/cifar10_resnet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    npcnn.manual_seed(args.seed)
    train_set, test_set = load_cifar10(args.data_root, download=not args.no_download)
    # random crop (zero padding 4) + horizontal flip, standardized with CIFAR-10's channel statistics
    if not 0 <= args.val_size < len(train_set):
        raise SystemExit(f"cifar10_resnet.py: --val-size must be in [0, {len(train_set) - 1}], got {args.val_size}")
    train_loader, val_loader, test_loader = make_loaders(train_set, test_set, "cifar10", args.batch_size, args.seed,
                                                         augment=True, crop_padding=4, subset=args.subset,
                                                         test_subset=args.subset, val_size=args.val_size)
    model = models.get_model(f"resnet{args.depth}", num_classes=len(train_set.classes))
    optimizer = make_optimizer("sgd", model.parameters(), args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args.schedule, args.epochs, len(train_loader))
    os.makedirs(args.out, exist_ok=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=scheduler, scheduler_interval="batch",
                      callbacks=[ModelCheckpoint(args.out, monitor="val_loss" if val_loader else "loss")],
                      verbose=args.verbose)

    start = time.perf_counter()
    history = trainer.fit(train_loader, args.epochs, val_loader=val_loader, resume_from=args.resume)
    seconds = time.perf_counter() - start
    accuracy = evaluate(model, test_loader)["accuracy"]  # the test set, touched once

    result = {"model": f"resnet{args.depth}", "test_accuracy": accuracy, "train_seconds": round(seconds, 1),
              "epochs": args.epochs, "train_images": len(train_loader.dataset)}
    save_run(args.out, model, history, result)
    print(f"ResNet-{args.depth}: test accuracy {100 * accuracy:.2f}% after {args.epochs} epochs "
          f"({seconds:.0f} s); checkpoints, model and curves in {args.out}/")
    return result


if __name__ == "__main__":
    main()
