"""Model profile: parameters (trainable, frozen), buffers, output shapes and multiply-accumulates.

One forward pass on a zero batch (``batch_size`` x ``input_shape``, eval mode, no backward
caches) records, for every layer that does work, its output shape and its multiply-accumulates
(MACs), and for every block (a module with children) the shape of its output:

    Conv1d/Conv2d      out elements * (in_channels / groups) * kernel area   (= prod of weight.shape[1:])
    ConvTranspose2d    in elements * (out_channels / groups) * kernel area   (each input scatters a kernel)
    Linear             out elements * in_features

Biases, normalization, activations and pooling are counted as 0 MACs (they are a few operations
per element, negligible next to the convolutions), the convention of torchvision's "GFLOPS"
column (e.g. 4.09 for resnet50, which is really GMACs). A FLOP count is about 2 * MACs.

The printed table follows torchinfo: output shapes with the batch dimension, blocks nested to
``depth`` levels (a block at the last level shows the parameters and MACs of everything inside
it), totals with a unit (K, M, G) that keeps three significant digits.
"""

import sys
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, TextIO

from .. import backend
from ..grad_mode import no_grad
from .utils import eval_mode, model_dtype


@dataclass
class LayerProfile:
    """One call of a layer: its dotted ``name``, ``type``, ``output_shape`` (without the batch
    dimension), its own ``params`` and its ``macs`` for the profiled batch."""

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int


@dataclass
class Profile:
    """``rows`` (one LayerProfile per call of a working layer, in call order) and the model's totals.

    ``blocks`` maps each called module's name to ``(type, output_shape, params)`` (its last
    call; params of everything inside it), used to print blocks at ``depth``.
    """

    rows: list = field(default_factory=list)
    input_shape: tuple = ()
    params: int = 0
    trainable: int = 0
    buffers: int = 0
    batch_size: int = 1
    depth: Optional[int] = None
    blocks: dict = field(default_factory=dict)
    order: list = field(default_factory=list)

    @property
    def frozen(self):
        """Parameters that do not train (``requires_grad`` False)."""
        return self.params - self.trainable

    @property
    def macs(self):
        """Multiply-accumulates of one forward pass of the profiled batch."""
        return sum(row.macs for row in self.rows)

    def __getitem__(self, name):
        """The first row of the layer named ``name`` (e.g. "layer1.0.conv1")."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"profile: no layer named {name!r}")

    def table_rows(self, depth=None):
        """(indented name, type, output shape, params, MACs) strings of the rows shown at ``depth``
        (None: every level; 1: the top-level layers and blocks only)."""
        depth = self.depth if depth is None else depth
        out = []
        for name in self.order:
            level = name.count(".") + 1
            if depth is not None and level > depth:
                continue
            kind, shape, params = self.blocks[name]
            calls = [row for row in self.rows if row.name == name]
            inside = [row for row in self.rows if row.name.startswith(name + ".")]
            indent = "  " * (level - 1)
            if not inside:  # a working layer: one line per call
                for row in calls:
                    out.append((indent + name, row.type, self._shape(row.output_shape), f"{row.params:,}",
                                f"{row.macs:,}"))
            elif depth is not None and level == depth:  # a block at the last level: its totals
                macs = sum(row.macs for row in calls + inside)
                out.append((indent + name, kind, self._shape(shape), f"{params:,}", f"{macs:,}"))
            else:  # an expanded block: its children follow
                own = sum(row.params for row in calls)
                out.append((indent + name, kind, self._shape(shape), f"{own:,}" if own else "--", "--"))
        return out

    def _shape(self, shape):
        return "--" if shape is None else str([self.batch_size, *shape])

    def __str__(self):
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        table = [header] + self.table_rows()
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        rule = "-" * (sum(widths) + 8)
        lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
        for row in table[1:]:
            lines.append("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                                    row[3].rjust(widths[3]), row[4].rjust(widths[4])]))
        batch = f"a batch of {self.batch_size}" if self.batch_size != 1 else "one input"
        lines += [rule,
                  f"Input shape: {[self.batch_size, *self.input_shape]}",
                  f"Total params: {self.params:,}  (trainable {self.trainable:,}, frozen {self.frozen:,})",
                  f"Buffer elements: {self.buffers:,}",
                  f"Multiply-accumulates: {self.macs:,}  ({format_count(self.macs)}, {batch})",
                  rule]
        return "\n".join(lines)


def format_count(n: int) -> str:
    """``n`` with a unit that keeps three significant digits: 416,520 -> "417 K",
    15,470,264,320 -> "15.5 G", 850 -> "850"."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{n}"


def layer_macs(module, inputs, output):
    """Multiply-accumulates of one call of ``module`` (0 for layers without a weight matrix)."""
    kind = type(module).__name__
    weight = getattr(module, "weight", None)
    if weight is None or not hasattr(output, "size"):
        return 0
    per_element = 1
    for size in weight.shape[1:]:
        per_element *= int(size)
    if kind in ("Conv1d", "Conv2d", "Linear"):
        return int(output.size) * per_element
    if kind == "ConvTranspose2d":
        return int(inputs[0].size) * per_element
    return 0


def _is_working(module):
    """Modules that do the work: leaves, plus any module holding its own parameters."""
    return any(p is not None for p in module._parameters.values()) or not list(module.children())


def profile(model: Any, input_shape: Sequence[int], batch_size: int = 1, depth: Optional[int] = None) -> Profile:
    """Parameters, buffers, output shapes and multiply-adds of ``model`` at one input shape.

    One forward pass of a zero batch of shape (batch_size, *input_shape) in the model's dtype, in
    eval mode and under no_grad (no backward caches, BatchNorm's running statistics untouched,
    every module's mode restored afterwards), with a forward hook on every layer that does work:
    the leaves, plus any module holding parameters of its own.

    Multiply-adds (MACs) per call, the convention of torchvision's "GFLOPS" column:

        Conv1d/Conv2d      out elements * (in_channels / groups) * kernel area
        ConvTranspose2d    in elements * (out_channels / groups) * kernel area
        Linear             out elements * in_features
        everything else    0 (biases, normalization, activations, pooling, additions)

    A FLOP count is about 2 * MACs.

    Args:
        model (Module): the network; its parameters and buffers are not changed.
        input_shape (tuple of ints): one input without the batch dimension, e.g. (3, 224, 224)
            (``models.input_shape(name)`` is each zoo model's native one). The MACs grow with
            the spatial size; the parameter counts do not.
        batch_size (int, default 1): the batch of the profiled pass; MACs and the printed output
            shapes are those of the whole batch.
        depth (int or None, default None): how deep nested blocks are shown when the Profile is
            printed (0: the model alone, 1: its children, ...; None: every level, as torchinfo).

    Returns:
        Profile: ``rows`` (one LayerProfile per call, in call order: a layer called twice has
        two rows), ``params``, ``trainable``, ``frozen``, ``buffers`` (elements of running
        statistics and counters) and ``macs`` (the sum of the rows); ``profile[name]`` is the
        first row of the layer ``name``; ``str(profile)`` is the table :func:`summary` prints.

    Example::

        >>> models.profile(models.lenet5(), (1, 32, 32)).macs
        416520
    """
    input_shape = tuple(int(s) for s in input_shape)
    if int(batch_size) < 1:
        raise ValueError(f"profile: batch_size must be >= 1, got {batch_size}")
    if depth is not None and int(depth) < 0:
        raise ValueError(f"profile: depth must be >= 0 (or None for every level), got {depth}")
    result = Profile(input_shape=input_shape,
                     params=model.num_parameters(),
                     trainable=model.num_parameters(trainable_only=True),
                     buffers=sum(int(b.size) for b in model.buffers()),
                     batch_size=int(batch_size), depth=None if depth is None else int(depth))

    def recorder(name, working):
        def hook(module, inputs, output):
            shape = tuple(output.shape[1:]) if hasattr(output, "shape") else None
            if name not in result.blocks:
                result.order.append(name)
            params = sum(int(p.size) for p in module.parameters())
            result.blocks[name] = (type(module).__name__, shape, params)
            if working:
                own = sum(int(p.size) for p in module._parameters.values() if p is not None)
                result.rows.append(LayerProfile(name, type(module).__name__, shape, own,
                                                layer_macs(module, inputs, output)))

        return hook

    named = [(name or type(module).__name__, module) for name, module in model.named_modules()]
    handles = [module.register_forward_hook(recorder(name, _is_working(module)))
               for i, (name, module) in enumerate(named) if i > 0 or _is_working(module)]
    x = backend.xp().zeros((int(batch_size), *input_shape), dtype=model_dtype(model))
    try:
        with eval_mode(model), no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    # rows in pre-order of the module tree (a block before what it holds), as torchinfo prints them
    position = {name: i for i, (name, _) in enumerate(named)}
    result.order.sort(key=lambda name: position.get(name, len(position)))
    return result


def summary(model: Any, input_shape: Sequence[int], file: Optional[TextIO] = None, batch_size: int = 1,
            depth: Optional[int] = None) -> Profile:
    """Print the profile table (layers, output shapes, parameters, MACs) and return the Profile.

    ``input_shape`` leaves out the batch dimension; ``batch_size`` is the batch the shapes and
    MACs are given for; ``depth`` the nesting of blocks shown (None: every level, 1: top level).
    """
    result = profile(model, input_shape, batch_size=batch_size, depth=depth)
    print(str(result), file=file or sys.stdout)
    return result
