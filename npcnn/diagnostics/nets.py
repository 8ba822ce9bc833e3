"""The small networks the experiments measure: deep MLPs with a chosen activation, initializer,
residual connections and batch normalization.

``deep_mlp(depth=20, activation="sigmoid")`` has ``depth`` weight layers, counted as ResNet-20
counts them: ``depth - 1`` hidden blocks ``Linear(width, width) -> [BatchNorm1d] -> activation``
and a ``Linear(width, out_features)`` head. With ``residual=True`` each hidden block whose input
and output widths match becomes ``Residual(block)``: ``x + block(x)``, and nothing else changes.

Initializers (``init=``), applied to every Linear weight; biases are set to zero except for
"default", which keeps PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias:

    ========  ==================================  =========================================
    zeros     W = 0                               every unit of a layer computes the same thing
    uniform   W ~ U(-1, 1)                        variance 1/3 whatever the width: too large
    normal    W ~ N(0, 1)                         "standard normal": far too large
    small     W ~ N(0, 0.01^2)  (std 0.01)        far too small: activations shrink to 0
    xavier    W ~ U(+-sqrt(6 / (fan_in+fan_out)))  Glorot & Bengio (2010), for tanh
    he        W ~ N(0, 2 / fan_in)                He et al. (2015), for ReLU
    default   PyTorch's Linear default            U(+-1/sqrt(fan_in)), bias likewise
    ========  ==================================  =========================================

``scale`` multiplies every weight after initialization (``init="he", scale=2`` is "too large").
"""

from collections import OrderedDict

from .. import nn
from ..nn import init as nn_init
from ..nn.composition import Residual
from ..nn.norm import BatchNorm1d

INITS = ("zeros", "uniform", "normal", "small", "xavier", "he", "default")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "linear": nn.Identity}


def init_linear_(layer, scheme, scale=1.0):
    """Initialize one Linear layer's weight (and zero its bias) with a scheme from ``INITS``.

    ``scheme``: one of ``INITS`` (table in the module docstring; "default" also redraws the
    bias); ``scale``: multiplies the weight afterwards. Returns ``layer``, changed in place.
    """
    w, b = layer.weight, layer.bias
    if scheme == "default":
        nn_init.default_weight_and_bias_(w, b)
    elif scheme == "zeros":
        nn_init.zeros_(w)
    elif scheme == "uniform":
        nn_init.uniform_(w, -1.0, 1.0)
    elif scheme == "normal":
        nn_init.normal_(w, 0.0, 1.0)
    elif scheme == "small":
        nn_init.normal_(w, 0.0, 0.01)
    elif scheme == "xavier":
        nn_init.xavier_uniform_(w)
    elif scheme == "he":
        nn_init.kaiming_normal_(w, nonlinearity="relu")
    else:
        raise ValueError(f"unknown init {scheme!r}; expected one of {INITS}")
    if scheme != "default" and b is not None:
        nn_init.zeros_(b)
    if scale != 1.0:
        w.data[...] *= float(scale)
    return layer


def init_weights_(model, scheme, scale=1.0):
    """Apply :func:`init_linear_` to every Linear layer of ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            init_linear_(module, scheme, scale)
    return model


def deep_mlp(depth, width=32, activation="relu", init="default", in_features=None, out_features=10,
             residual=False, batchnorm=False, scale=1.0):
    """A ``depth``-weight-layer MLP (see the module docstring); returns a Sequential.

    Args:
        depth (int, >= 2): weight layers: depth - 1 hidden blocks and the head.
        width (int, default 32): units of every hidden layer.
        activation (str, default "relu"): a key of ``ACTIVATIONS`` ("sigmoid", "tanh", "relu",
            "linear"), after every hidden layer (not after the head).
        init (str, default "default"): a scheme of ``INITS`` for every Linear weight.
        in_features (int, default None): input size; None: ``width``.
        out_features (int, default 10): outputs of the head.
        residual (bool, default False): hidden blocks of matching widths become x + block(x).
        batchnorm (bool, default False): a BatchNorm1d between each hidden Linear and its
            activation.
        scale (float, default 1.0): multiplies every weight after ``init``.
    """
    if depth < 2:
        raise ValueError(f"deep_mlp: depth counts weight layers and must be at least 2, got {depth}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"deep_mlp: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    in_features = width if in_features is None else in_features
    layers = OrderedDict()
    for i in range(depth - 1):
        fan_in = in_features if i == 0 else width
        parts = [nn.Linear(fan_in, width)]
        if batchnorm:
            parts.append(BatchNorm1d(width))
        parts.append(ACTIVATIONS[activation]())
        block = nn.Sequential(*parts)
        layers[f"block{i + 1}"] = Residual(block) if residual and fan_in == width else block
    layers["head"] = nn.Linear(width, out_features)
    model = nn.Sequential(layers)
    return init_weights_(model, init, scale)
