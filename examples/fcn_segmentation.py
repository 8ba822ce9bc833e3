"""Semantic segmentation with a small FCN-8s (Long et al., 2015) on synthetic shapes.

Each 64x64 image holds one shape (circle, square, triangle or cross); the target gives every
pixel its class: 0 for background, 1-4 for the shape's kind. ``fcn_tiny`` scores every pixel
(N, 5, 64, 64) from features at 1/8, 1/16 and 1/32 resolution fused by its skip connections, and
is trained with per-pixel cross-entropy and Adam in a loop written out by hand.

    python examples/fcn_segmentation.py                 # a few minutes on 2 cores
    python examples/fcn_segmentation.py --epochs 2 --train 128 --out /tmp/masks.png

Prints the loss, pixel accuracy and mean IoU, and saves a picture: image, true mask, predicted mask.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn  # noqa: E402
from npcnn import models, nn  # noqa: E402
from npcnn.data import SHAPE_CLASSES, shapes  # noqa: E402
from npcnn.optim import Adam  # noqa: E402


def mean_iou(pred, target, num_classes):
    """Mean over classes present in target or pred of |pred ∩ target| / |pred ∪ target|."""
    ious = []
    for c in range(num_classes):
        union = np.logical_or(pred == c, target == c).sum()
        if union:
            ious.append(np.logical_and(pred == c, target == c).sum() / union)
    return float(np.mean(ious))


def predict(model, images, batch_size=32):
    model.eval()
    with npcnn.no_grad():
        scores = np.concatenate([npcnn.to_numpy(model(npcnn.backend.asarray(images[i:i + batch_size])))
                                 for i in range(0, len(images), batch_size)])
    model.train()
    return scores.argmax(axis=1)


def train(model, images, masks, epochs, batch_size, lr, seed=0):
    loss_fn = nn.CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order, losses = order_rng.permutation(len(images)), []
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            x, y = npcnn.backend.asarray(images[batch]), npcnn.backend.asarray(masks[batch])  # to the GPU under CuPy
            losses.append(float(loss_fn(model(x), y)))  # mean over all pixels
            model.backward(loss_fn.backward())
            optimizer.step()
        print(f"epoch {epoch + 1:2d}  loss {np.mean(losses):.4f}")


def save_picture(path, images, masks, predicted, num_classes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5))
    for k in range(n):
        for row, (picture, cmap) in enumerate([(images[k, 0], "gray"), (masks[k], "tab10"), (predicted[k], "tab10")]):
            ax = axes[row, k]
            ax.imshow(picture, cmap=cmap, vmin=0, vmax=1 if row == 0 else 9, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, k].set_title(SHAPE_CLASSES[int(masks[k].max()) - 1] if masks[k].any() else "-", fontsize=8)
    for row, label in enumerate(["image", "true mask", "FCN-8s"]):
        axes[row, 0].set_ylabel(label)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=512, help="training images")
    parser.add_argument("--test", type=int, default=128, help="held-out images")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--width", type=int, default=8, help="channels of the first stage")
    parser.add_argument("--out", default="fcn_segmentation.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    npcnn.manual_seed(args.seed)
    num_classes = len(SHAPE_CLASSES) + 1  # background + one per shape
    x_train, _, m_train = shapes(args.train, size=64, seed=args.seed, return_masks=True)
    x_test, _, m_test = shapes(args.test, size=64, seed=args.seed + 1, return_masks=True)
    model = models.fcn_tiny(num_classes=num_classes, in_channels=1, width=args.width)
    print(f"fcn_tiny: {model.num_parameters():,} parameters, {len(x_train)} training images")

    train(model, x_train, m_train, args.epochs, args.batch_size, args.lr, seed=args.seed)

    predicted = predict(model, x_test)
    background_only = float((m_test == 0).mean())
    print(f"held-out pixel accuracy {float((predicted == m_test).mean()):.3f} "
          f"(all-background baseline {background_only:.3f}), mean IoU {mean_iou(predicted, m_test, num_classes):.3f}")
    try:
        save_picture(args.out, x_test[:8], m_test[:8], predicted[:8], num_classes)
    except ImportError:
        print(f"(matplotlib is not installed: no {args.out}; pip install npcnn[plot])")
    else:
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
