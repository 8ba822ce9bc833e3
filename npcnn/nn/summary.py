"""Model profile: parameters (trainable, frozen), buffers, output shapes and multiply-accumulates.

One forward pass at ``input_shape`` (batch 1, eval mode, no backward caches) records, for every
layer that does work, its output shape and its multiply-accumulates (MACs):

    Conv1d/Conv2d      out elements * (in_channels / groups) * kernel area   (= prod of weight.shape[1:])
    ConvTranspose2d    in elements * (out_channels / groups) * kernel area   (each input scatters a kernel)
    Linear             out elements * in_features

Biases, normalization, activations and pooling are counted as 0 MACs (they are a few operations
per element, negligible next to the convolutions), the convention of torchvision's "GFLOPS"
column (e.g. 4.09 for resnet50, which is really GMACs). A FLOP count is about 2 * MACs.
"""

import sys
from dataclasses import dataclass, field

from .. import backend
from ..grad_mode import no_grad


@dataclass
class LayerProfile:
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int


@dataclass
class Profile:
    """``rows`` (one LayerProfile per call, in call order) and the model's totals."""

    rows: list = field(default_factory=list)
    input_shape: tuple = ()
    params: int = 0
    trainable: int = 0
    buffers: int = 0

    @property
    def frozen(self):
        return self.params - self.trainable

    @property
    def macs(self):
        return sum(row.macs for row in self.rows)

    def __getitem__(self, name):
        """The first row of the layer named ``name`` (e.g. "layer1.0.conv1")."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"profile: no layer named {name!r}")

    def __str__(self):
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        table = [header] + [(r.name, r.type, str(r.output_shape), f"{r.params:,}", f"{r.macs:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        rule = "-" * (sum(widths) + 8)
        lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
        for row in table[1:]:
            lines.append("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                                    row[3].rjust(widths[3]), row[4].rjust(widths[4])]))
        lines += [rule,
                  f"Input shape: {self.input_shape}",
                  f"Total params: {self.params:,}  (trainable {self.trainable:,}, frozen {self.frozen:,})",
                  f"Buffer elements: {self.buffers:,}",
                  f"Multiply-accumulates: {self.macs:,}  ({self.macs / 1e9:.2f} G)",
                  rule]
        return "\n".join(lines)


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
    if kind in ("ConvTranspose1d", "ConvTranspose2d"):
        return int(inputs[0].size) * per_element
    return 0


def _working_layers(model):
    """Modules that do the work: leaves, plus any module holding its own parameters."""
    for name, module in model.named_modules():
        own = any(p is not None for p in module._parameters.values())
        if own or not list(module.children()):
            yield name or type(module).__name__, module


def profile(model, input_shape):
    """Profile ``model`` on one input of ``input_shape`` (without the batch dimension)."""
    input_shape = tuple(int(s) for s in input_shape)
    result = Profile(input_shape=input_shape,
                     params=model.num_parameters(),
                     trainable=model.num_parameters(trainable_only=True),
                     buffers=sum(int(b.size) for b in model.buffers()))

    def recorder(name):
        def hook(module, inputs, output):
            own = sum(int(p.size) for p in module._parameters.values() if p is not None)
            shape = tuple(output.shape[1:]) if hasattr(output, "shape") else None
            result.rows.append(LayerProfile(name, type(module).__name__, shape, own,
                                            layer_macs(module, inputs, output)))

        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in _working_layers(model)]
    x = backend.xp().zeros((1, *input_shape), dtype=model_dtype(model))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return result


def model_dtype(model):
    """The dtype of the model's first parameter (the default dtype for a model without any)."""
    for param in model.parameters():
        return param.dtype
    return backend.get_default_dtype()


def summary(model, input_shape, file=None):
    """Print the profile table (layers, output shapes, parameters, MACs) and return the Profile."""
    result = profile(model, input_shape)
    print(str(result), file=file or sys.stdout)
    return result
