"""Reusable blocks built from other layers: SqueezeExcitation."""

from __future__ import annotations

from ..functional.pooling import global_avg_pool2d_backward, global_avg_pool2d_forward
from .activation import ReLU, Sigmoid
from .linear import Linear
from .module import Module
from .validation import check_float, check_int, check_ndim, check_size


class SqueezeExcitation(Module):
    """Squeeze-and-Excitation (Hu et al., 2018): re-weight the channels of x by a learned gate.

    Shapes: x (N, C, H, W) -> out (N, C, H, W); fc1: Linear(C, C // reduction),
    fc2: Linear(C // reduction, C) (at least one hidden unit).

        z = mean_{h,w} x            (N, C)     squeeze
        s = sigmoid(fc2(relu(fc1(z))))          excitation, one gate in (0, 1) per channel
        out = x * s[:, :, None, None]           scale

    Gradient: x feeds both the product and the squeeze, so
        dL/dx = dout * s  +  (1 / (H W)) * dL/dz          (broadcast over h, w)
    with dL/ds = sum_{h,w} dout * x back through sigmoid, fc2, relu, fc1 to dL/dz.
    (torchvision's version uses 1x1 convolutions for fc1/fc2, the same maps on (N, C, 1, 1).)
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channels = check_int("SqueezeExcitation", "channels", channels)
        self.reduction = check_int("SqueezeExcitation", "reduction", reduction)
        hidden = max(1, self.channels // self.reduction)
        self.fc1 = Linear(self.channels, hidden)
        self.activation = ReLU()
        self.fc2 = Linear(hidden, self.channels)
        self.scale_activation = Sigmoid()

    def forward(self, x):
        check_ndim("SqueezeExcitation", x, (4,), "(N, C, H, W)")
        check_size("SqueezeExcitation", x, 1, self.channels, "channels (dimension 1)")
        check_float("SqueezeExcitation", x, self.fc1.weight.dtype)
        pooled, pool_cache = global_avg_pool2d_forward(x)
        gate = self.scale_activation(self.fc2(self.activation(self.fc1(pooled[:, :, 0, 0]))))
        scale = gate[:, :, None, None]
        self.save_for_backward((x, scale, pool_cache))
        return x * scale

    def backward(self, dout):
        x, scale, pool_cache = self.pop_saved()
        dx_direct = dout * scale  # the product's path: d(x * s)/dx = s
        dgate = (dout * x).sum(axis=(2, 3))  # d(x * s)/ds, summed over the plane s scales
        dpooled = self.fc1.backward(self.activation.backward(self.fc2.backward(self.scale_activation.backward(dgate))))
        dx_squeeze = global_avg_pool2d_backward(dpooled[:, :, None, None], pool_cache)
        return dx_direct + dx_squeeze  # x feeds both paths: their gradients add

    def extra_repr(self):
        return f"channels={self.channels}, reduction={self.reduction}"
