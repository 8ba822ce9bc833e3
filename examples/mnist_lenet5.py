"""LeNet-5 on MNIST, the classic first CNN, trained with npcnn's hand-written backward passes.

    python examples/mnist_lenet5.py                  # 10 epochs; see the README for the measured figure
    python examples/mnist_lenet5.py --epochs 2       # a quick look

It finds MNIST through ``--data-root``, ``NPCNN_DATA`` or ``~/.cache/npcnn`` (downloading it there,
checksummed, when it is missing), prints a progress bar per epoch, reports the test accuracy, and
writes the model (``model.npz``), its checkpoints, the history and the training curves to ``--out``.
The same run: ``python -m npcnn train --model lenet5 --dataset mnist``.
"""

import argparse
import time

import npcnn
from npcnn import models, nn, optim
from npcnn.cli import make_loaders
from npcnn.data import mnist
from npcnn.train import ModelCheckpoint, Trainer, evaluate, save_run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--subset", type=int, default=0, help="train on the first N digits only")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="runs/mnist_lenet5")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    npcnn.manual_seed(args.seed)

    # 1. Data: 60,000 training and 10,000 test digits, uint8 (N, 1, 28, 28), zero-padded to the
    #    32 x 32 field LeNet-5 was designed for; converted to float and standardized per batch.
    train_set, test_set = mnist(root=args.data_root, train=True), mnist(root=args.data_root, train=False)
    train_loader, test_loader = make_loaders(train_set, test_set, "mnist", args.batch_size, args.seed, image_size=32,
                                             subset=args.subset, test_batch_size=1000)

    # 2. The network (61,706 parameters), its loss, optimizer and learning-rate schedule.
    model = models.lenet5()
    model.summary((1, 32, 32))
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * len(train_loader))

    # 3. Training: each batch is forward -> loss -> backward -> step (see Trainer.train_step).
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=schedule, scheduler_interval="batch",
                      callbacks=[ModelCheckpoint(args.out)])
    start = time.perf_counter()
    history = trainer.fit(train_loader, args.epochs, val_loader=test_loader)
    seconds = time.perf_counter() - start

    # 4. Results: test accuracy, the saved model, the curves.
    accuracy = evaluate(model, test_loader)["accuracy"]
    print(f"LeNet-5 test accuracy: {100 * accuracy:.2f}% after {args.epochs} epochs in {seconds:.0f} s")
    save_run(args.out, model, history, {"model": "lenet5", "test_accuracy": accuracy, "epochs": args.epochs,
                                        "train_seconds": round(seconds, 1)})
    print(f"model, checkpoints, history and curves written to {args.out}/")
    return accuracy


if __name__ == "__main__":
    main()
