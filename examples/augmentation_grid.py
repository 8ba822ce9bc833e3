"""Save a PNG grid of augmented images: one row per image, one column per transform.

    python examples/augmentation_grid.py                      # MNIST if found, else synthetic shapes
    python examples/augmentation_grid.py --dataset shapes --out runs/shapes_aug.png

Needs matplotlib (``pip install matplotlib``); it is imported only here, never by npcnn.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn
from npcnn.data import DatasetNotFoundError, cifar10, fashion_mnist, mnist, shapes
from npcnn.data import transforms as T


def load_images(name, n, seed):
    """``n`` float images (n, C, H, W) in [0, 1] and a title, falling back to synthetic shapes."""
    loaders = {"mnist": mnist, "fashion": fashion_mnist, "cifar10": cifar10}
    if name in loaders:
        try:
            ds = loaders[name](train=False, normalize=True, download=False)
            idx = np.random.default_rng(seed).choice(len(ds), n, replace=False)
            return ds.images[idx], name
        except DatasetNotFoundError as err:
            print(f"{name} not available ({str(err).splitlines()[0]}); using synthetic shapes")
    images, _ = shapes(n, size=32, seed=seed, noise=0.03)
    return images, "shapes"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion", "cifar10", "shapes"])
    parser.add_argument("--n", type=int, default=6, help="number of images (rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "augmentation_grid.png"))
    args = parser.parse_args(argv)

    import matplotlib  # lazily: npcnn itself never needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    npcnn.manual_seed(args.seed)
    x, title = load_images(args.dataset, args.n, args.seed)
    h, w = x.shape[2:]
    g = np.random.default_rng(args.seed)
    columns = {
        "original": lambda a: a,
        "h-flip": T.RandomHorizontalFlip(p=1.0),
        "crop, pad 4": T.RandomCrop((h, w), padding=4, rng=g),
        "resized crop": T.RandomResizedCrop((h, w), scale=(0.4, 1.0), rng=g),
        "rotation 30": T.RandomRotation(30, rng=g),
        "affine": T.RandomAffine(10, translate=(0.15, 0.15), scale=(0.8, 1.2), rng=g),
        "color jitter": T.ColorJitter(0.5, 0.5, 0.5, rng=g),
        "erasing": T.RandomErasing(p=1.0, value=0.5, rng=g),
    }
    fig, axes = plt.subplots(args.n, len(columns), figsize=(1.3 * len(columns), 1.3 * args.n), squeeze=False)
    for j, (name, transform) in enumerate(columns.items()):
        out = transform(x)
        for i in range(args.n):
            img = out[i].transpose(1, 2, 0)
            ax = axes[i, j]
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(f"npcnn.data.transforms on {title}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
