"""The same nets and steps in npcnn, PyTorch, DeZero and Chainer, for ``fair_bench.py``.

Each ``build_<framework>(work, state, x, y, ...)`` imports only its own framework (it runs in a
process of its own, started by ``fair_bench.py``), builds the work from the weights ``state``
(a dict of NumPy arrays under PyTorch's state_dict keys, written once by the driver from a
seeded npcnn model, so every framework starts from the same numbers) and returns a function
``step() -> dict of NumPy arrays`` doing one timed unit of work:

* ``lenet5``: LeNet-5 with ReLU and max pooling on 28x28 inputs (c1 has padding 2), one
  training step: forward, mean cross-entropy, backward (npcnn, like PyTorch, skips the
  gradient of the input batch), SGD(lr 0.01, momentum 0.9) update;
* ``resnet<depth>``: the CIFAR ResNet (option A shortcuts, He et al. 2015 section 4.2), the same
  training step;
* ``conv3x3``: one 3x3 convolution (padding 1, bias) forward and backward (dx, dW, db) for a
  given output gradient.

The arrays a step returns (logits and loss of a training step; out, dx, dW, db of the
convolution) are what the driver compares between frameworks before it trusts any timing.
"""

import numpy as np

LR, MOMENTUM = 0.01, 0.9

_built = set()  # the frameworks whose step this process has built: at most one


def _own_process(framework):
    """Refuse a second framework in one process: their thread pools (NumPy's OpenBLAS,
    PyTorch's OpenMP) would fight over the cores and both timings would be wrong (PyTorch ran
    at a third of its speed that way). ``fair_bench.py`` starts one process per framework."""
    _built.add(framework)
    if len(_built) > 1:
        raise RuntimeError(f"frameworks.build_{framework}: this process already built "
                           f"{sorted(_built - {framework})}; time each framework in a process of its own "
                           "(benchmarks/fair_bench.py does)")


def resnet_depth(work):
    """``"resnet20"`` -> 20; None for a work that is not a CIFAR ResNet."""
    return int(work[len("resnet"):]) if work.startswith("resnet") else None


def resnet_layout(depth, width=16):
    """[(stage, block, in_planes, planes, stride)] of the CIFAR ResNet of ``depth``."""
    n, inplanes, blocks = (depth - 2) // 6, width, []
    for stage, (planes, stride) in enumerate(((width, 1), (2 * width, 2), (4 * width, 2)), start=1):
        for i in range(n):
            blocks.append((stage, i, inplanes, planes, stride if i == 0 else 1))
            inplanes = planes
    return blocks


# ----------------------------------------------------------------------------- npcnn


def lenet5_relu(nn):
    """LeNet-5 with ReLU and max pooling for 28x28 inputs (c1 padding 2), built from ``nn``:
    ``npcnn.nn`` or ``torch.nn`` (the same class names and arguments, so the same state_dict)."""
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, 5, padding=2)), ("relu1", nn.ReLU()), ("s2", nn.MaxPool2d(2, 2)),
        ("c3", nn.Conv2d(6, 16, 5)), ("relu3", nn.ReLU()), ("s4", nn.MaxPool2d(2, 2)),
        ("c5", nn.Conv2d(16, 120, 5)), ("relu5", nn.ReLU()), ("flatten", nn.Flatten(1)),
        ("f6", nn.Linear(120, 84)), ("relu6", nn.ReLU()), ("output", nn.Linear(84, 10)),
    ]))


def npcnn_model(work):
    """A freshly initialized npcnn model for ``work`` (the driver saves its weights for all)."""
    from npcnn import models, nn

    if work == "lenet5":
        return lenet5_relu(nn)
    return models.CifarResNet(resnet_depth(work))


def npcnn_conv_state(seed=0):
    """Weights of the conv3x3 work: 64 -> 64 channels, 3x3, with bias."""
    rng = np.random.default_rng(seed)
    return {"weight": (rng.standard_normal((64, 64, 3, 3)) / 24.0).astype(np.float32),
            "bias": rng.standard_normal(64).astype(np.float32)}


def npcnn_set_algo(model, algo):
    """Set ``algo`` on every ``nn.Conv2d`` of ``model`` that can run it; returns how many.

    "winograd" goes only to the 3x3 stride-1 dilation-1 zero-padded ones
    (``functional.winograd.winograd_applicable``), any other algorithm ("im2col", "fft",
    "direct", "auto") to every Conv2d. npcnn's default, "auto", runs im2col for every 3x3
    convolution (FFT only for 7x7 and larger); forcing "winograd" shows the other algorithm.
    """
    from npcnn import nn
    from npcnn.functional.winograd import winograd_applicable

    count = 0
    for m in model.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        if algo == "winograd" and not (winograd_applicable(m.weight.shape, m.stride, m.dilation)
                                       and m.padding_mode == "zeros"):
            continue
        m.algo = algo
        count += 1
    return count


def build_npcnn(work, state, x, y, algo=None):
    """npcnn's step. ``algo``: None, the library's default (``Conv2d(algo="auto")``: im2col
    for these nets); a string: that algorithm on every Conv2d that can run it (:func:`npcnn_set_algo`).

    The training step runs the backward under ``nn.no_input_grad()``, as npcnn's training
    loops do: the first layer then skips the gradient of the input batch, which PyTorch never
    computes either (the input does not require a gradient), so both do the same work. The
    conv3x3 step does return dx (it is one of the outputs compared and timed)."""
    _own_process("npcnn")
    import npcnn
    from npcnn import nn

    if work == "conv3x3":
        dout = conv_dout(x)
        layer = nn.Conv2d(64, 64, 3, padding=1, algo=algo or "auto")
        layer.load_state_dict(state)

        def step():
            out = layer(x)
            dx = layer.backward(dout)
            grads = {"dw": layer.weight.grad.copy(), "db": layer.bias.grad.copy()}
            layer.zero_grad()
            return {"out": out[:4], "dx": dx[:4], **grads}

        return step
    model = npcnn_model(work)
    model.load_state_dict(state)
    model.train()
    if algo is not None:
        npcnn_set_algo(model, algo)
    optimizer = npcnn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        logits = model(x)
        loss = loss_fn(logits, y)
        with nn.no_input_grad():  # the input batch's gradient is not needed (nor computed by PyTorch)
            model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()
        return {"logits": logits, "loss": np.float64(float(loss))}

    return step


def conv_dout(x):
    """The output gradient of the conv3x3 work (seeded, the same in every process)."""
    return np.random.default_rng(1).standard_normal((x.shape[0], 64) + x.shape[2:]).astype(np.float32)


# ----------------------------------------------------------------------------- PyTorch


def build_torch(work, state, x, y, threads=None):
    """PyTorch's step (CPU), with the same weights; ``threads``: torch.set_num_threads."""
    _own_process("torch")
    import torch
    from torch import nn as tnn

    if threads:
        torch.set_num_threads(threads)
    if work == "conv3x3":
        gx = torch.tensor(x, requires_grad=True)
        gw, gb = (torch.tensor(state[k], requires_grad=True) for k in ("weight", "bias"))
        dout = torch.from_numpy(conv_dout(x))

        def step():
            out = torch.nn.functional.conv2d(gx, gw, gb, 1, 1)
            out.backward(dout)
            result = {"out": out[:4].detach().numpy(), "dx": gx.grad[:4].numpy().copy(),
                      "dw": gw.grad.numpy().copy(), "db": gb.grad.numpy().copy()}
            gx.grad = gw.grad = gb.grad = None
            return result

        return step
    model = lenet5_relu(tnn) if work == "lenet5" else torch_resnet(resnet_depth(work))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = tnn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        logits = model(tx)
        loss = loss_fn(logits, ty)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return {"logits": logits.detach().numpy(), "loss": np.float64(loss.item())}

    return step


def torch_resnet(depth):
    """The PyTorch twin of npcnn's ``CifarResNet(depth)`` (same state_dict keys)."""
    from collections import OrderedDict

    import torch
    from torch import nn as tnn

    class ShortcutA(tnn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.stride, self.front = stride, (planes - inplanes) // 2
            self.back = planes - inplanes - self.front

        def forward(self, x):
            sub = x[:, :, ::self.stride, ::self.stride]
            return torch.nn.functional.pad(sub, (0, 0, 0, 0, self.front, self.back))

    class BasicBlock(tnn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.shortcut = ShortcutA(inplanes, planes, stride) if stride != 1 or inplanes != planes else None

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))

    stages = [[] for _ in range(3)]
    for stage, _, inplanes, planes, stride in resnet_layout(depth):
        stages[stage - 1].append(BasicBlock(inplanes, planes, stride))
    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(3, 16, 3, 1, 1, bias=False)), ("bn1", tnn.BatchNorm2d(16)), ("relu", tnn.ReLU()),
        ("layer1", tnn.Sequential(*stages[0])), ("layer2", tnn.Sequential(*stages[1])),
        ("layer3", tnn.Sequential(*stages[2])),
        ("avgpool", tnn.AdaptiveAvgPool2d(1)), ("flatten", tnn.Flatten(1)), ("fc", tnn.Linear(64, 10)),
    ]))


# ----------------------------------------------------------------------------- DeZero


def build_dezero(work, state, x, y):
    """DeZero's step (``pip install dezero``; NumPy im2col), with the same weights.

    DeZero's BatchNorm has eps 2e-5 (PyTorch's and npcnn's: 1e-5) and no way to change it.
    DeZero 0.0.13 still names ``np.int`` (removed in NumPy 2.0) as a default argument: the alias
    is put back in this process so that it runs on the same NumPy (and OpenBLAS) as npcnn.
    """
    _own_process("dezero")
    if not hasattr(np, "int"):
        np.int = int
    import dezero
    import dezero.functions as F
    from dezero import optimizers

    if work == "conv3x3":
        dout = conv_dout(x)
        gx, gw, gb = (dezero.Variable(a) for a in (x, state["weight"], state["bias"]))

        def step():
            out = F.conv2d(gx, gw, gb, 1, 1)
            out.grad = dezero.Variable(dout)
            out.backward()
            result = {"out": out.data[:4], "dx": gx.grad.data[:4], "dw": gw.grad.data, "db": gb.grad.data}
            for v in (gx, gw, gb):
                v.cleargrad()
            return result

        return step
    model = dezero_lenet5(state) if work == "lenet5" else dezero_resnet(resnet_depth(work), state)
    optimizer = optimizers.MomentumSGD(lr=LR, momentum=MOMENTUM).setup(model)

    def step():
        logits = model(x)
        loss = F.softmax_cross_entropy(logits, y)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        return {"logits": logits.data, "loss": np.float64(float(loss.data))}

    return step


def _dezero_conv(state, key, stride, pad):
    from dezero import layers as L

    w = state[key + ".weight"]
    bias = state.get(key + ".bias")
    layer = L.Conv2d(w.shape[0], w.shape[2], stride, pad, nobias=bias is None, in_channels=w.shape[1])
    layer.W.data = w.copy()
    if bias is not None:
        layer.b.data = bias.copy()
    return layer


def _dezero_linear(state, key):
    from dezero import layers as L

    w = state[key + ".weight"]
    layer = L.Linear(w.shape[0], in_size=w.shape[1])
    layer.W.data, layer.b.data = np.ascontiguousarray(w.T), state[key + ".bias"].copy()  # DeZero: x @ W
    return layer


def _dezero_bn(state, key):
    from dezero import layers as L

    layer = L.BatchNorm()
    layer.gamma.data, layer.beta.data = state[key + ".weight"].copy(), state[key + ".bias"].copy()
    layer.avg_mean.data, layer.avg_var.data = state[key + ".running_mean"].copy(), state[key + ".running_var"].copy()
    return layer


def dezero_lenet5(state):
    """DeZero's LeNet-5 twin (ReLU, max pooling)."""
    import dezero
    import dezero.functions as F

    class LeNet5(dezero.Model):
        def __init__(self):
            super().__init__()
            self.c1, self.c3 = _dezero_conv(state, "c1", 1, 2), _dezero_conv(state, "c3", 1, 0)
            self.c5 = _dezero_conv(state, "c5", 1, 0)
            self.f6, self.out = _dezero_linear(state, "f6"), _dezero_linear(state, "output")

        def forward(self, x):
            h = F.pooling(F.relu(self.c1(x)), 2, 2)
            h = F.pooling(F.relu(self.c3(h)), 2, 2)
            h = F.flatten(F.relu(self.c5(h)))
            return self.out(F.relu(self.f6(h)))

    return LeNet5()


def dezero_resnet(depth, state):
    """DeZero's CIFAR ResNet twin (option A shortcuts by a small channel-padding Function)."""
    import dezero
    import dezero.functions as F

    class PadChannels(dezero.Function):
        def __init__(self, front, back):
            self.front, self.back = front, back

        def forward(self, x):
            return np.pad(x, ((0, 0), (self.front, self.back), (0, 0), (0, 0)))

        def backward(self, gy):
            return gy[:, self.front:gy.shape[1] - self.back]

    class Block(dezero.Layer):
        def __init__(self, key, inplanes, planes, stride):
            super().__init__()
            self.conv1, self.bn1 = _dezero_conv(state, key + ".conv1", stride, 1), _dezero_bn(state, key + ".bn1")
            self.conv2, self.bn2 = _dezero_conv(state, key + ".conv2", 1, 1), _dezero_bn(state, key + ".bn2")
            self.stride, self.front = stride, (planes - inplanes) // 2
            self.back = planes - inplanes - self.front
            self.shortcut = stride != 1 or inplanes != planes

        def forward(self, x):
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            if self.shortcut:
                x = PadChannels(self.front, self.back)(x[:, :, ::self.stride, ::self.stride])
            return F.relu(h + x)

    class ResNet(dezero.Model):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = _dezero_conv(state, "conv1", 1, 1), _dezero_bn(state, "bn1")
            self.names = []
            for stage, i, inplanes, planes, stride in resnet_layout(depth):
                name = f"block{stage}_{i}"
                setattr(self, name, Block(f"layer{stage}.{i}", inplanes, planes, stride))
                self.names.append(name)
            self.fc = _dezero_linear(state, "fc")

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            for name in self.names:
                h = getattr(self, name)(h)
            n, c, height, width = h.shape
            h = F.sum(F.reshape(h, (n, c, height * width)), axis=2) / float(height * width)
            return self.fc(h)

    return ResNet()


# ----------------------------------------------------------------------------- Chainer


def build_chainer(work, state, x, y):
    """Chainer 7.8.1's step (NumPy backend, default configuration), with the same weights."""
    _own_process("chainer")
    import chainer
    import chainer.functions as F

    if work == "conv3x3":
        dout = conv_dout(x)
        gx, gw, gb = (chainer.Variable(a.copy()) for a in (x, state["weight"], state["bias"]))

        def step():
            out = F.convolution_2d(gx, gw, gb, 1, 1)
            out.grad = dout
            out.backward()
            result = {"out": out.array[:4], "dx": gx.grad[:4].copy(), "dw": gw.grad.copy(), "db": gb.grad.copy()}
            for v in (gx, gw, gb):
                v.cleargrad()
            return result

        return step
    model = chainer_lenet5(state) if work == "lenet5" else chainer_resnet(resnet_depth(work), state)
    optimizer = chainer.optimizers.MomentumSGD(lr=LR, momentum=MOMENTUM)
    optimizer.setup(model)
    ty = y.astype(np.int32)

    def step():
        logits = model(x)
        loss = F.softmax_cross_entropy(logits, ty)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        return {"logits": logits.array, "loss": np.float64(float(loss.array))}

    return step


def _chainer_conv(state, key, stride, pad):
    import chainer.links as L

    w = state[key + ".weight"]
    bias = state.get(key + ".bias")
    layer = L.Convolution2D(w.shape[1], w.shape[0], w.shape[2], stride, pad, nobias=bias is None)
    layer.W.array[...] = w
    if bias is not None:
        layer.b.array[...] = bias
    return layer


def _chainer_linear(state, key):
    import chainer.links as L

    w = state[key + ".weight"]
    layer = L.Linear(w.shape[1], w.shape[0])
    layer.W.array[...], layer.b.array[...] = w, state[key + ".bias"]
    return layer


def _chainer_bn(state, key):
    import chainer.links as L

    layer = L.BatchNormalization(state[key + ".weight"].shape[0], eps=1e-5)
    layer.gamma.array[...], layer.beta.array[...] = state[key + ".weight"], state[key + ".bias"]
    layer.avg_mean[...], layer.avg_var[...] = state[key + ".running_mean"], state[key + ".running_var"]
    return layer


def chainer_lenet5(state):
    """Chainer's LeNet-5 twin (ReLU, max pooling)."""
    import chainer
    import chainer.functions as F

    class LeNet5(chainer.Chain):
        def __init__(self):
            super().__init__()
            with self.init_scope():
                self.c1, self.c3 = _chainer_conv(state, "c1", 1, 2), _chainer_conv(state, "c3", 1, 0)
                self.c5 = _chainer_conv(state, "c5", 1, 0)
                self.f6, self.out = _chainer_linear(state, "f6"), _chainer_linear(state, "output")

        def forward(self, x):
            h = F.max_pooling_2d(F.relu(self.c1(x)), 2, 2, cover_all=False)
            h = F.max_pooling_2d(F.relu(self.c3(h)), 2, 2, cover_all=False)
            h = F.reshape(F.relu(self.c5(h)), (x.shape[0], -1))
            return self.out(F.relu(self.f6(h)))

    return LeNet5()


def chainer_resnet(depth, state):
    """Chainer's CIFAR ResNet twin (option A shortcuts: subsample and F.pad the channels)."""
    import chainer
    import chainer.functions as F

    class Block(chainer.Chain):
        def __init__(self, key, inplanes, planes, stride):
            super().__init__()
            with self.init_scope():
                self.conv1, self.bn1 = _chainer_conv(state, key + ".conv1", stride, 1), _chainer_bn(state, key + ".bn1")
                self.conv2, self.bn2 = _chainer_conv(state, key + ".conv2", 1, 1), _chainer_bn(state, key + ".bn2")
            self.stride, self.front = stride, (planes - inplanes) // 2
            self.back = planes - inplanes - self.front
            self.shortcut = stride != 1 or inplanes != planes

        def forward(self, x):
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            if self.shortcut:
                sub = x[:, :, ::self.stride, ::self.stride]
                x = F.pad(sub, ((0, 0), (self.front, self.back), (0, 0), (0, 0)), "constant")
            return F.relu(h + x)

    class ResNet(chainer.Chain):
        def __init__(self):
            super().__init__()
            with self.init_scope():
                self.conv1, self.bn1 = _chainer_conv(state, "conv1", 1, 1), _chainer_bn(state, "bn1")
                self.blocks = chainer.ChainList(*[Block(f"layer{stage}.{i}", inplanes, planes, stride)
                                                  for stage, i, inplanes, planes, stride in resnet_layout(depth)])
                self.fc = _chainer_linear(state, "fc")

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            for block in self.blocks:
                h = block(h)
            return self.fc(F.mean(h, axis=(2, 3)))

    return ResNet()


BUILDERS = {"npcnn": build_npcnn, "torch": build_torch, "dezero": build_dezero, "chainer": build_chainer}
