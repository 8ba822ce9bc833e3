"""``python -m npcnn``: train, summary, gradcheck.

    python -m npcnn train --model lenet5 --dataset mnist          # LeNet-5 on MNIST, ~99%
    python -m npcnn train --model resnet20 --dataset fashion-mnist --augment --epochs 30
    python -m npcnn summary resnet50                               # per-layer table
    python -m npcnn gradcheck --all                                # every layer and block
"""

import argparse
import os
import sys
import time

import numpy as np

# Standardization constants (per-channel mean and std of the training set in [0, 1]).
_DATASET_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

# ----------------------------------------------------------------------------- train


def load_dataset(name, root=None):
    """(train, test) ImageDatasets of uint8 images for ``name``."""
    from . import data

    loaders = {"mnist": data.mnist, "fashion-mnist": data.fashion_mnist, "cifar10": data.cifar10}
    if name not in loaders:
        raise SystemExit(f"unknown dataset {name!r}; choose from {sorted(loaders)}")
    return loaders[name](root=root, train=True), loaders[name](root=root, train=False)


def build_transforms(dataset, augment, image_size, crop_padding=None):
    """(train, test) per-batch transforms: optional augmentation — a random crop with zero padding
    (``crop_padding``, default image_size // 8, at least 2) and, except for digits, a horizontal
    flip — then standardization with the dataset's statistics."""
    from .data import transforms as T

    mean, std = _DATASET_STATS[dataset]
    normalize = T.Normalize(mean, std)
    steps = []
    if augment:
        padding = max(2, image_size // 8) if crop_padding is None else crop_padding
        steps.append(T.RandomCrop(image_size, padding=padding))
        if dataset != "mnist":  # a mirrored shirt or truck keeps its class; a mirrored digit may not
            steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [normalize]), normalize


def pad_to(images, size):
    """Zero-pad uint8 images (N, C, H, W) symmetrically to ``size`` x ``size`` (28 -> 32 for LeNet-5)."""
    pad = (size - images.shape[-1]) // 2
    if pad <= 0:
        return images
    return np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def make_loaders(train_set, test_set, dataset, batch_size=128, seed=0, augment=False, image_size=None,
                 crop_padding=None, subset=0, test_subset=0, test_batch_size=500):
    """(train, test) DataLoaders over uint8 images kept in memory, converted to float and
    standardized per batch; the train loader shuffles (and augments). Images are zero-padded to
    ``image_size``; ``subset`` / ``test_subset`` keep the first N training / test images."""
    from .data import DataLoader

    size = image_size or train_set.images.shape[-1]
    train = (pad_to(train_set.images, size), train_set.labels)
    test = (pad_to(test_set.images, size), test_set.labels)
    if subset:
        train = tuple(a[:subset] for a in train)
    if test_subset:
        test = tuple(a[:test_subset] for a in test)
    train_tf, test_tf = build_transforms(dataset, augment, size, crop_padding)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed, transform=train_tf,
                              to_float=True)
    test_loader = DataLoader(test, batch_size=test_batch_size, transform=test_tf, to_float=True)
    return train_loader, test_loader


def make_optimizer(name, params, lr, weight_decay):
    from . import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise SystemExit(f"unknown optimizer {name!r}; choose sgd, adam or adamw")


def cmd_train(args):
    import npcnn
    from . import models, nn
    from .optim import lr_scheduler
    from .train import ModelCheckpoint, Trainer, evaluate, save_run

    npcnn.manual_seed(args.seed)
    train_set, test_set = load_dataset(args.dataset, args.data_root)
    size = max(models.input_shape(args.model)[-1], train_set.images.shape[-1])  # LeNet-5: 28 -> 32
    train_loader, test_loader = make_loaders(train_set, test_set, args.dataset, args.batch_size, args.seed,
                                             augment=args.augment, image_size=size, subset=args.subset)
    channels = train_set.images.shape[1]

    kwargs = {"num_classes": len(train_set.classes)}
    if args.model != "lenet5":
        kwargs["in_channels"] = channels
    model = models.get_model(args.model, **kwargs)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    steps = args.epochs * len(train_loader)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)

    is_root = True
    if args.distributed:  # every rank runs this same script under mpirun; rank 0 alone writes
        from . import distributed

        setup = distributed.setup_training(model, optimizer, train_loader, sync_batchnorm=args.sync_bn,
                                           split_batch=True)
        model, optimizer, train_loader, is_root = setup.model, setup.optimizer, setup.loader, setup.is_main
    os.makedirs(args.out, exist_ok=True)
    callbacks = [ModelCheckpoint(args.out)] if is_root else []  # best.npz and last.npz
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=scheduler, scheduler_interval="batch",
                      callbacks=callbacks, verbose=args.verbose if is_root else 0)
    start = time.perf_counter()
    history = trainer.fit(train_loader, args.epochs, val_loader=test_loader, resume_from=args.resume)
    seconds = time.perf_counter() - start
    result = evaluate(model, test_loader, metrics=("accuracy",))
    if is_root:
        save_run(args.out, model, history, {"model": args.model, "dataset": args.dataset, "epochs": args.epochs,
                                            "test_accuracy": result["accuracy"], "train_seconds": round(seconds, 1)})
        print(f"test accuracy {100 * result['accuracy']:.2f}% after {args.epochs} epochs ({seconds:.0f} s); "
              f"model, history and curves in {args.out}/")
    return result


# ----------------------------------------------------------------------------- summary and gradcheck


def cmd_summary(args):
    from . import models

    model = models.get_model(args.model)
    shape = tuple(args.input_shape) if args.input_shape else models.input_shape(args.model)
    models.summary(model, shape)


def cmd_gradcheck(args):
    from . import diagnostics

    if not args.all and not args.layers:
        raise SystemExit("name layers to check (e.g. `gradcheck Conv2d BatchNorm`) or pass --all")
    table = diagnostics.gradcheck_all(names=None if args.all else args.layers, verbose=True)
    failed = [row for row in table.rows if not row["ok"]]
    print(f"\n{len(table.rows) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise SystemExit(1)
    return table


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m npcnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on a dataset")
    train.add_argument("--model", default="lenet5")
    train.add_argument("--dataset", default="mnist", choices=sorted(_DATASET_STATS))
    train.add_argument("--data-root", default=None, help="folder with the dataset files (else NPCNN_DATA, cache)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--optimizer", default="adam", choices=["sgd", "adam", "adamw"])
    train.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--augment", action="store_true", help="random crops (and flips for CIFAR-10)")
    train.add_argument("--subset", type=int, default=0, help="train on the first N images only")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. runs/train/last.npz)")
    train.add_argument("--out", default="runs/train")
    train.add_argument("--verbose", type=int, default=1)
    train.add_argument("--distributed", action="store_true", help="data-parallel over MPI ranks (mpirun)")
    train.add_argument("--sync-bn", action="store_true", help="with --distributed: synchronized BatchNorm")
    train.set_defaults(func=cmd_train)

    summary = sub.add_parser("summary", help="print a model's layer table")
    summary.add_argument("model")
    summary.add_argument("--input-shape", type=int, nargs="+", default=None)
    summary.set_defaults(func=cmd_summary)

    gradcheck = sub.add_parser("gradcheck", help="gradient-check layers and blocks")
    gradcheck.add_argument("--all", action="store_true")
    gradcheck.add_argument("layers", nargs="*")
    gradcheck.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
