"""Max pooling across channels: MaxPoolChannels (the maxout / cross-channel pooling unit)."""

from ..functional.channel_pool import channel_pool_output_size, max_pool_channels_backward, max_pool_channels_forward
from .module import Module
from .validation import check_float, check_ndim


class MaxPoolChannels(Module):
    """out[n, o, ...] = max_{j < kernel_size} x[n, o*stride + j, ...]: max pooling along the channel axis.

    Shapes: x (N, C, *) (e.g. (N, C, H, W) or (N, C, L) or (N, C)) -> out (N, C_out, *) with
    C_out = floor((C - kernel_size) / stride) + 1; ``stride`` defaults to ``kernel_size`` (windows
    that tile the channels: a maxout unit, so C must then be a multiple of kernel_size or the
    trailing channels are dropped, as a pooling window past the end is dropped).

    Gradient: dL/dx[n, c, ...] = sum over the windows o whose arg-max (first one on ties) is
    channel c of dout[n, o, ...]; every other channel gets 0.

    PyTorch has no such layer; the same function is
    ``F.max_pool3d(x.unsqueeze(1), (kernel_size, 1, 1), (stride, 1, 1)).squeeze(1)`` on 4-D input.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        if int(kernel_size) < 1 or (stride is not None and int(stride) < 1):
            raise ValueError(f"MaxPoolChannels: kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)

    def forward(self, x):
        check_ndim("MaxPoolChannels", x, (2, 3, 4, 5), "(N, C, *)")
        check_float("MaxPoolChannels", x)
        if channel_pool_output_size(x.shape[1], self.kernel_size, self.stride) < 1:
            raise ValueError(f"MaxPoolChannels: input has {x.shape[1]} channels, fewer than the window of "
                             f"{self.kernel_size} channels")
        out, cache = max_pool_channels_forward(x, self.kernel_size, self.stride)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return max_pool_channels_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
