"""A helper shared by the model files."""

from __future__ import annotations

from typing import Any


def backward_chain(dout: Any, *layers: Any) -> Any:
    """Backward through ``layers`` listed in forward order (so the call reads like the forward):
    ``backward_chain(d, conv1, bn1, relu1)`` is relu1.backward, then bn1's, then conv1's."""
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout
