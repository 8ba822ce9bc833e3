"""Transfer learning study: MNIST digits -> Fashion-MNIST with few labels.

    NPCNN_DATA=/path/to/data python examples/transfer_learning.py --quick   # a few minutes on 2 cores
    python examples/transfer_learning.py                                    # the full study (long)

A LeNet-5 (the layers of ``npcnn.models.LeNet5`` with ReLU and max-pooling, which pretrain
much faster than tanh and average pooling) is pretrained on MNIST, then Fashion-MNIST is learned
from n labelled images with three strategies:

  scratch        a fresh LeNet-5 trained on the n images;
  features+soft  the pretrained net as a fixed feature extractor (its 84-d F6 layer) with a new
                 softmax classifier;  features+svm: the same features, a one-vs-rest linear SVM;
  finetune       a new 10-way head; phase 1 trains the head with the body frozen, phase 2
                 unfreezes everything at a lower learning rate (body 3e-4, head 1e-3, against
                 1e-3 from scratch);

each with augmentation (random affine: +-10 degrees, +-2 px shifts, scale 0.9-1.1) off and on
(for the fixed extractor "on" adds two augmented copies of each image to the feature set).
Then the layer-transferability experiment (Yosinski et al. 2014): copy the first k trained
layers (k = 0..4 of c1, c3, c5, f6; k = 0 is training from scratch), re-initialize the rest,
and train on the target with the copied layers frozen or fine-tuned.

Writes the accuracy table (markdown and JSON) and two plots to --out.
"""

import argparse
import copy
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn
from npcnn import nn, transfer
from npcnn.data import DataLoader, DatasetNotFoundError, fashion_mnist, mnist
from npcnn.data import transforms as T

BODY = ["c1", "c3", "c5", "f6"]  # LeNet-5's layers with weights before the output layer


def train(model, images, labels, steps, lr, batch_size, augment, seed, params=None):
    """``steps`` Adam steps on random mini-batches of (images, labels), optionally augmented."""
    rng = np.random.default_rng(seed)
    aug = T.RandomAffine(10, translate=(0.07, 0.07), scale=(0.9, 1.1), rng=rng) if augment else None
    params = params if params is not None else transfer.trainable_parameters(model)
    optimizer = npcnn.optim.Adam(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = rng.choice(len(images), size=min(batch_size, len(images)), replace=False)
        x = images[idx] if aug is None else aug(images[idx])
        npcnn.train.train_step(model, loss_fn, optimizer, (x, labels[idx]))
    return model


def accuracy(model, test):
    return npcnn.train.evaluate(model, DataLoader(test, batch_size=500))["accuracy"]


def fresh_lenet(seed):
    """LeNet-5 for 28 x 28 digits, ReLU and max-pooling, named like npcnn.models.LeNet5."""
    npcnn.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, kernel_size=5, padding=2)), ("relu1", nn.ReLU()), ("s2", nn.MaxPool2d(2)),
        ("c3", nn.Conv2d(6, 16, kernel_size=5)), ("relu3", nn.ReLU()), ("s4", nn.MaxPool2d(2)),
        ("c5", nn.Conv2d(16, 120, kernel_size=5)), ("relu5", nn.ReLU()), ("flatten", nn.Flatten(1)),
        ("f6", nn.Linear(120, 84)), ("relu6", nn.ReLU()), ("output", nn.Linear(84, 10)),
    ]))


def softmax_classifier(feats, labels, test_feats, test_labels, steps=300):
    """A new linear softmax layer on fixed features, full-batch Adam on standardized features."""
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    head = nn.Linear(feats.shape[1], 10)
    optimizer = npcnn.optim.Adam(head.parameters(), lr=0.05, weight_decay=1e-4)
    x = ((feats - mean) / std).astype(np.float32)
    for _ in range(steps):
        npcnn.train.train_step(head, nn.CrossEntropyLoss(), optimizer, (x, labels))
    with npcnn.no_grad():
        pred = npcnn.to_numpy(head(npcnn.backend.asarray(((test_feats - mean) / std).astype(np.float32)))).argmax(1)
    return float((pred == test_labels).mean())


def run_strategies(pretrained, train_set, test, n, augment, cfg, seed):
    """The accuracies of the four classifiers for one target size and augmentation setting."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train_set[0]), n, replace=False)
    images, labels = train_set[0][idx], train_set[1][idx]
    steps = cfg["steps"](n)
    results = {}

    scratch = train(fresh_lenet(seed), images, labels, steps, 1e-3, cfg["batch"], augment, seed)
    results["scratch"] = accuracy(scratch, test)

    feat_images, feat_labels = images, labels
    if augment:  # two augmented copies of every image join the feature set
        aug = T.RandomAffine(10, translate=(0.07, 0.07), scale=(0.9, 1.1), rng=rng)
        feat_images = np.concatenate([images, aug(images), aug(images)])
        feat_labels = np.concatenate([labels] * 3)
    feats, feat_labels = transfer.extract_features(pretrained, DataLoader((feat_images, feat_labels), batch_size=500))
    test_feats, test_labels = transfer.extract_features(pretrained, DataLoader(test, batch_size=500))
    results["features+softmax"] = softmax_classifier(feats, feat_labels, test_feats, test_labels)
    results["features+svm"] = transfer.LinearSVM(lam=1e-3, epochs=300).fit(feats, feat_labels, 10).score(
        test_feats, test_labels)

    model = copy.deepcopy(pretrained)
    npcnn.manual_seed(seed)
    transfer.replace_head(model, 10)
    transfer.freeze(model, up_to="relu6")                       # phase 1: the head only
    train(model, images, labels, steps // 2, 1e-3, cfg["batch"], augment, seed)
    transfer.unfreeze(model)                                     # phase 2: everything, gently
    groups = transfer.param_groups(model, {"output": 1e-3}, default_lr=3e-4)
    train(model, images, labels, steps - steps // 2, 3e-4, cfg["batch"], augment, seed + 1, params=groups)
    results["finetune"] = accuracy(model, test)
    return results


def transferability(pretrained, train_set, test, n, cfg, seed):
    """{mode: [accuracy for k = 0..len(BODY)]}: first k layers copied, frozen or fine-tuned."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train_set[0]), n, replace=False)
    images, labels = train_set[0][idx], train_set[1][idx]
    steps = cfg["steps"](n)
    curves = {"frozen": [], "fine-tuned": []}
    for mode in curves:
        for k in range(len(BODY) + 1):
            model = fresh_lenet(seed)
            copied = {key: v for key, v in pretrained.state_dict().items() if key.split(".")[0] in BODY[:k]}
            model.load_state_dict(copied, strict=False)
            if k and mode == "frozen":
                transfer.freeze(model, up_to=BODY[k - 1])
            train(model, images, labels, steps, 1e-3, cfg["batch"], False, seed)
            curves[mode].append(accuracy(model, test))
            print(f"  transferability {mode:10s} k={k}: {curves[mode][-1]:.3f}", flush=True)
    return curves


def plot(table, sizes, curves, out):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    for a, augment in enumerate((False, True)):
        ax = fig.add_subplot(1, 2, a + 1)
        for name in next(iter(table.values())):
            ax.plot(sizes, [table[f"{n}/{augment}"][name] for n in sizes], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("labelled target images")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Fashion-MNIST, augmentation {'on' if augment else 'off'}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(os.path.join(out, "transfer_strategies.png"), dpi=80, bbox_inches="tight")
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for mode, accs in curves.items():
        ax.plot(range(len(accs)), accs, marker="o", label=mode)
    ax.set_xticks(range(len(BODY) + 1), ["0"] + [f"{k}\n({BODY[k - 1]})" for k in range(1, len(BODY) + 1)])
    ax.set_xlabel("layers transferred from MNIST (k)")
    ax.set_ylabel("Fashion-MNIST test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(os.path.join(out, "transferability.png"), dpi=80, bbox_inches="tight")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings that finish in a few minutes")
    parser.add_argument("--data", default=None, help="folder with mnist/ and fashion-mnist/ (else NPCNN_DATA)")
    parser.add_argument("--out", default=os.path.join("runs", "transfer"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        cfg = dict(pretrain=8000, pretrain_epochs=1, sizes=[100, 1000, 10000], test=1000, transfer_n=100, batch=32,
                   steps=lambda n: max(100, n // 16))  # 10,000 labels: 625 steps = 2 passes
    else:
        cfg = dict(pretrain=60000, pretrain_epochs=3, sizes=[100, 1000, 10000], test=10000, transfer_n=1000,
                   batch=64, steps=lambda n: max(300, 10 * n // 64))
    os.makedirs(args.out, exist_ok=True)
    start = time.time()

    try:
        digits = mnist(root=args.data, train=True, normalize=True)
        digits_test = mnist(root=args.data, train=False, normalize=True)
        target = fashion_mnist(root=args.data, train=True, normalize=True)
        target_test = fashion_mnist(root=args.data, train=False, normalize=True)
    except DatasetNotFoundError as err:
        raise SystemExit(f"transfer_learning.py: {err}") from None
    source = (digits.images[:cfg["pretrain"]], digits.labels[:cfg["pretrain"]])
    test = (target_test.images[:cfg["test"]], target_test.labels[:cfg["test"]])
    train_set = (target.images, target.labels)

    pretrained = fresh_lenet(args.seed)
    history = npcnn.train.fit(pretrained, nn.CrossEntropyLoss(), npcnn.optim.Adam(pretrained.parameters(), lr=2e-3),
                              DataLoader(source, batch_size=64, shuffle=True, seed=args.seed),
                              epochs=cfg["pretrain_epochs"], verbose=2)
    print(f"pretrained on {cfg['pretrain']} MNIST digits: loss {history['loss'][-1]:.3f}, "
          f"MNIST test accuracy {accuracy(pretrained, (digits_test.images[:2000], digits_test.labels[:2000])):.3f}")

    table = {}
    for n in cfg["sizes"]:
        for augment in (False, True):
            table[f"{n}/{augment}"] = run_strategies(pretrained, train_set, test, n, augment, cfg, args.seed)
            row = "  ".join(f"{k} {v:.3f}" for k, v in table[f"{n}/{augment}"].items())
            print(f"n={n:5d} aug={'on ' if augment else 'off'}: {row}  [{time.time() - start:.0f} s]", flush=True)
    curves = transferability(pretrained, train_set, test, cfg["transfer_n"], cfg, args.seed)

    names = list(next(iter(table.values())))
    lines = ["| labels | augmentation | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key, row in table.items():
        n, augment = key.split("/")
        lines.append(f"| {n} | {'on' if augment == 'True' else 'off'} | " + " | ".join(f"{row[k]:.3f}" for k in names)
                     + " |")
    lines += ["", f"Layer transferability (n = {cfg['transfer_n']}): accuracy for k = 0..{len(BODY)} layers copied",
              "", "| k | " + " | ".join(str(k) for k in range(len(BODY) + 1)) + " |",
              "|---|" + "---|" * (len(BODY) + 1)]
    for mode, accs in curves.items():
        lines.append(f"| {mode} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "transfer_table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "transfer_results.json"), "w") as f:
        json.dump({"settings": {k: v for k, v in cfg.items() if k != "steps"}, "steps_per_run": {
            n: cfg["steps"](n) for n in cfg["sizes"]}, "strategies": table, "transferability": curves}, f, indent=1)
    try:
        plot(table, cfg["sizes"], curves, args.out)
    except ImportError:
        print("matplotlib is not installed: plots skipped")
    print(f"done in {time.time() - start:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
