"""Multilayer perceptron: Linear layers with an activation between them.

``mlp([2, 3, 3, 1], "tanh")`` is the 2-3-3-1 net: Linear(2, 3) - Tanh - Linear(3, 3) - Tanh -
Linear(3, 1), with sum over layers of (inputs + 1) * outputs = 9 + 12 + 4 = 25 parameters.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU,
               "elu": nn.ELU, "gelu": nn.GELU}


def mlp(sizes: Sequence[int], activation: str = "relu", output_activation: Optional[str] = None) -> nn.Module:
    """Sequential of Linear(sizes[i], sizes[i + 1]) with ``activation`` after each but the last.

    ``activation`` / ``output_activation``: a name from ACTIVATIONS or a Module class (or None).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"mlp: sizes needs at least an input and an output size, got {sizes}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        act = output_activation if last else activation
        if act is not None:
            layers.append(_activation(act))
    return nn.Sequential(*layers)


def _activation(act):
    if isinstance(act, str):
        if act not in ACTIVATIONS:
            raise ValueError(f"mlp: unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
        return ACTIVATIONS[act]()
    return act()
