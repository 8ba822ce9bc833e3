"""Look inside a LeNet-5 trained on MNIST: every npcnn.viz picture, written as PNGs.

    NPCNN_DATA=/path/to/data python examples/visualize_mnist.py           # ~1-2 minutes on 2 cores
    python examples/visualize_mnist.py --full                             # 5 epochs on all 60k digits
    python examples/visualize_mnist.py --weights lenet.safetensors        # reuse (or save) the weights

The default run trains 1 epoch on 10,000 digits (about 94% test accuracy, ~50 s). The network is
LeNet-5 with ReLU and max-pooling in place of tanh and average pooling (guided backpropagation
needs ReLUs); its layers have the names of ``npcnn.models.LeNet5`` (c1, s2, c3, s4, c5, f6,
output), so its state_dict has the same keys.
"""

import argparse
import importlib.util
import os
import sys
import time
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import npcnn
from npcnn import nn, viz
from npcnn.data import DataLoader, DatasetNotFoundError, mnist


def lenet5_relu(num_classes=10):
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, kernel_size=5, padding=2)), ("relu1", nn.ReLU()), ("s2", nn.MaxPool2d(2)),
        ("c3", nn.Conv2d(6, 16, kernel_size=5)), ("relu3", nn.ReLU()), ("s4", nn.MaxPool2d(2)),
        ("c5", nn.Conv2d(16, 120, kernel_size=5)), ("relu5", nn.ReLU()), ("flatten", nn.Flatten(1)),
        ("f6", nn.Linear(120, 84)), ("relu6", nn.ReLU()), ("output", nn.Linear(84, num_classes)),
    ]))


def train_or_load(model, train, test, args):
    """Returns the History of training (None when the weights were loaded)."""
    if args.weights and os.path.exists(args.weights):
        model.load_state_dict(npcnn.load(args.weights))
        print(f"loaded {args.weights}")
        return None
    n, epochs = (len(train), 5) if args.full else (10000, 1)
    loader = DataLoader((train.images[:n], train.labels[:n]), batch_size=32, shuffle=True, seed=args.seed)
    val = DataLoader((test.images[:2000], test.labels[:2000]), batch_size=500)
    optimizer = npcnn.optim.Adam(model.parameters(), lr=2e-3)
    history = npcnn.train.fit(model, nn.CrossEntropyLoss(), optimizer, loader, epochs=epochs, val_loader=val,
                              verbose=2)
    if args.weights:
        npcnn.save(model, args.weights)
        print(f"saved {args.weights}")
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="train 5 epochs on all 60,000 digits")
    parser.add_argument("--weights", default=None, help="load these weights if the file exists, else save there")
    parser.add_argument("--data", default=None, help="folder holding mnist/ (else NPCNN_DATA)")
    parser.add_argument("--out", default=os.path.join("runs", "viz"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("visualize_mnist.py draws pictures and needs matplotlib: pip install npcnn[plot]")
    start = time.time()
    out = lambda name: os.path.join(args.out, name)  # noqa: E731

    npcnn.manual_seed(args.seed)
    try:
        train = mnist(root=args.data, train=True, normalize=True)
        test = mnist(root=args.data, train=False, normalize=True)
    except DatasetNotFoundError as err:
        raise SystemExit(f"visualize_mnist.py: {err}") from None
    model = lenet5_relu()
    history = train_or_load(model, train, test, args)
    model.eval()

    # ---- confusion matrix, mistakes, training curves
    x_test, y_test = test.images[:2000], test.labels[:2000]
    with npcnn.no_grad():
        pred = np.concatenate([npcnn.to_numpy(model(npcnn.backend.asarray(x_test[i:i + 500]))).argmax(1)
                               for i in range(0, 2000, 500)])
    print(f"test accuracy on 2000 digits: {(pred == y_test).mean():.4f}")
    viz.plot_confusion_matrix((pred, y_test), out("confusion_matrix.png"), classes=test.classes)
    viz.plot_misclassified(x_test, pred, y_test, out("misclassified.png"), k=16)
    if history is not None:
        viz.plot_history(history, out("history.png"))

    # ---- fixed kernels, learned filters, feature maps
    digit = x_test[0]
    viz.plot_kernels(digit, out("kernels.png"))
    viz.plot_filters(model, out("filters_c1.png"), nrow=6, scale=12)
    viz.plot_feature_maps(model, digit, "relu1", out("feature_maps_c1.png"), nrow=6)
    viz.plot_feature_maps(model, digit, "relu3", out("feature_maps_c3.png"), nrow=8)

    # ---- what excites c3's units (each patch cut at the unit's 14 x 14 receptive field)
    rf = viz.receptive_field(model, "relu3")
    print(f"receptive field of c3: {rf.size}, jump {rf.jump}")
    viz.plot_max_activating_patches(model, x_test, "relu3", channels=range(6), path=out("max_patches_c3.png"), k=8)

    # ---- attribution: saliency, guided backprop, Grad-CAM, occlusion
    idx = np.arange(8)
    x, y = x_test[idx], y_test[idx]
    occlusion = np.stack([viz.occlusion_pixel_map(viz.occlusion_map(model, x[i], int(y[i]), size=6, stride=2,
                                                                       value=0.5), x[i].shape, size=6, stride=2)
                          for i in range(len(x))])
    maps = OrderedDict([
        ("saliency", viz.saliency_map(model, x, y)),
        ("guided backprop", np.abs(npcnn.to_numpy(viz.guided_backprop(model, x, y))).max(axis=1)),
        ("Grad-CAM (c3)", viz.grad_cam(model, x, y, layer="relu3")),
        ("occlusion", np.maximum(occlusion, 0)),
    ])
    viz.plot_heatmaps(x, maps, out("attribution.png"), titles=[f"label {int(c)}" for c in y])

    # ---- images made by gradient ascent
    models = viz.class_model(model, list(range(10)), (1, 28, 28), steps=150, lr=0.05, l2=1e-3, jitter=2,
                             blur_sigma=0.5, blur_every=4, clip=(0.0, 1.0))
    viz.plot_images(list(npcnn.to_numpy(models)), out("class_models.png"), titles=[str(c) for c in range(10)],
                    ncols=10)
    dreams = viz.deep_dream(model, x[:4], "relu3", steps=20, lr=0.02, jitter=1, clip=(0.0, 1.0))
    viz.plot_images(list(x[:4]) + list(npcnn.to_numpy(dreams)), out("deep_dream.png"),
                    titles=["input"] * 4 + ["DeepDream c3"] * 4, ncols=4)

    # ---- nearest neighbours: pixel space vs the last hidden layer (f6)
    viz.plot_neighbors(test.images[2000:2004], x_test, out("neighbors.png"), k=6, model=model,
                       title="nearest neighbours: pixels (odd rows) vs F6 features (even rows)")

    print(f"wrote {len(os.listdir(args.out))} PNGs to {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
