"""LeNet-5 (LeCun et al., "Gradient-Based Learning Applied to Document Recognition", 1998; Fig. 2).

    input 32x32 -> C1: 6 maps 5x5 conv (28x28) -> S2: 2x2 subsampling (14x14)
                -> C3: 16 maps 5x5 conv (10x10) -> S4: 2x2 subsampling (5x5)
                -> C5: 120 maps 5x5 conv (1x1) -> F6: 84 units -> output: 10 units

The common modern reading: tanh activations, average-pool subsampling, C3 connected to all of
S2's maps (the paper's sparse table and RBF output are dropped): 61,706 parameters.
MNIST's 28x28 digits go in with ``padding=2`` on C1, which gives the paper's 32x32 field.
"""

from __future__ import annotations

from collections import OrderedDict

from .. import nn


class LeNet5(nn.Sequential):
    """Children named after the paper's layers: c1, s2, c3, s4, c5, f6, output.

    Shapes: x (N, in_channels, 32, 32) (or 28x28 with ``padding=2``) -> logits (N, num_classes).
    Arguments as :func:`lenet5`.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, padding: int = 0) -> None:
        super().__init__(OrderedDict([
            ("c1", nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding)), ("tanh1", nn.Tanh()),
            ("s2", nn.AvgPool2d(kernel_size=2, stride=2)),
            ("c3", nn.Conv2d(6, 16, kernel_size=5)), ("tanh3", nn.Tanh()),
            ("s4", nn.AvgPool2d(kernel_size=2, stride=2)),
            ("c5", nn.Conv2d(16, 120, kernel_size=5)), ("tanh5", nn.Tanh()),
            ("flatten", nn.Flatten(1)),
            ("f6", nn.Linear(120, 84)), ("tanh6", nn.Tanh()),
            ("output", nn.Linear(84, num_classes)),
        ]))


def lenet5(num_classes: int = 10, in_channels: int = 1, padding: int = 0) -> nn.Module:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
    Recognition", 1998) for 32x32 inputs, or 28x28 ones with ``padding=2``.

    Stages: c1 conv 5x5 (6, 28x28) - tanh - s2 avg pool 2x2 (14x14) - c3 conv 5x5 (16, 10x10) -
    tanh - s4 avg pool 2x2 (5x5) - c5 conv 5x5 (120, 1x1) - tanh - f6 fc 84 - tanh - output fc.
    Native input 1x32x32: 61,706 parameters, 416,520 multiply-adds.
    Per layer: c1 156, c3 2,416, c5 48,120, f6 10,164, output 850 (the lecture's table).
    Deviations (the common modern reading): C3 sees all six S2 maps (the paper's sparse Table 1
    gives it 1,516 parameters); S2 and S4 are plain average pools (the paper's have a trainable
    coefficient and bias per map, 12 and 32 parameters, and a sigmoid); tanh, not the paper's
    1.7159 tanh(2a/3); a Linear output layer instead of the paper's Euclidean RBF units.
    The paper quotes about 60,000 trainable parameters.

    Args:
        num_classes (int, default 10): outputs of the last layer (the counts are for 10; each
            class adds 84 + 1 parameters).
        in_channels (int, default 1): input channels.
        padding (int, default 0): zero padding of c1; 2 gives MNIST's 28x28 digits the paper's
            32x32 field (the counts do not change).
    """
    return LeNet5(num_classes, in_channels, padding)
