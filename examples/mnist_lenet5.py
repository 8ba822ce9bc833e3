"""LeNet-5 on MNIST, the classic first CNN, trained with npcnn's hand-written backward passes.

    python examples/mnist_lenet5.py                  # 10 epochs; see the README for the measured figure
    python examples/mnist_lenet5.py --epochs 2       # a quick look

It finds MNIST through ``--data-root``, ``NPCNN_DATA`` or ``~/.cache/npcnn`` (downloading it there,
checksummed, when it is missing; ``--no-download`` to fail instead, with a message saying where it
looked). It holds 5,000 of the 60,000 training digits out as a validation set (``--val-size``,
seeded), prints a progress bar per epoch with the validation loss and accuracy, keeps the
checkpoint with the best validation loss (``best.npz``), and touches the test set once, at the end,
for the accuracy it reports. It writes the model (``model.npz``), its checkpoints, the history and
the training curves to ``--out``. The same run: ``npcnn train --model lenet5 --dataset mnist``.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn
from npcnn import models, nn, optim
from npcnn.data import DatasetNotFoundError
from npcnn.train import ModelCheckpoint, Trainer, evaluate, recipes, save_run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--subset", type=int, default=0, help="train on the first N digits only")
    parser.add_argument("--val-size", type=int, default=recipes.DEFAULT_VAL_SIZE,
                        help="training digits held out for validation (seeded)")
    parser.add_argument("--data-root", default=None, help="folder with the MNIST files (else NPCNN_DATA, cache)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading MNIST")
    parser.add_argument("--out", default="runs/mnist_lenet5")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    npcnn.manual_seed(args.seed)

    # 1. Data: 60,000 training and 10,000 test digits, uint8 (N, 1, 28, 28), zero-padded to the
    #    32 x 32 field LeNet-5 was designed for; converted to float and standardized per batch.
    #    5,000 training digits are held out to validate on; the test set waits for the end.
    try:
        train_set, test_set = recipes.load_dataset("mnist", args.data_root, download=not args.no_download)
    except (DatasetNotFoundError, ValueError) as err:  # missing, or a corrupt file the reader names
        raise SystemExit(f"mnist_lenet5.py: {err}") from None
    loaders = recipes.make_loaders(train_set, test_set, "mnist", args.batch_size, args.seed, image_size=32,
                                   subset=args.subset, test_batch_size=1000, val_size=args.val_size)
    train_loader = loaders.train

    # 2. The network (61,706 parameters), its loss, optimizer and learning-rate schedule.
    model = models.lenet5()
    model.summary((1, 32, 32))
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(train_loader))

    # 3. Training: each batch is forward -> loss -> backward -> step (see Trainer.train_step).
    #    best.npz is the checkpoint of the epoch with the lowest validation loss.
    monitor = "val_loss" if loaders.val is not None else "loss"
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=schedule, scheduler_interval="batch",
                      callbacks=[ModelCheckpoint(args.out, monitor=monitor)])
    start = time.perf_counter()
    history = trainer.fit(train_loader, args.epochs, val_loader=loaders.val)
    seconds = time.perf_counter() - start

    # 4. Results: the test accuracy (the test set's only use), the saved model, the curves.
    accuracy = evaluate(model, loaders.test)["accuracy"]
    print(f"LeNet-5 test accuracy: {100 * accuracy:.2f}% after {args.epochs} epochs in {seconds:.0f} s")
    save_run(args.out, model, history, {"model": "lenet5", "test_accuracy": accuracy, "epochs": args.epochs,
                                        "val_size": args.val_size, "train_seconds": round(seconds, 1)})
    print(f"model, checkpoints, history and curves written to {args.out}/")
    return accuracy


if __name__ == "__main__":
    main()
