"""The twelve-idiom port: twelve small PyTorch programs, each beside its npcnn port.

Each test holds two functions written the way a user would write them, line for line: the
PyTorch program (``*_torch``) and its npcnn port (``*_npcnn``). The one intended difference is the
explicit backward pass: ``loss.backward()`` becomes ``model.backward(loss_fn.backward())``.
Everything else (class names, arguments, ``state_dict`` keys, ``apply``, ``zero_grad``, ``to``,
schedules, ``no_grad``, ``item``, ``print(model)``) is PyTorch's.

When PyTorch is installed the two programs start from the same weights (exchanged through
``state_dict``: PyTorch -> npcnn, and back after training) and must agree on every loss, every
gradient and the final weights: 1e-6 in float32 (relative, a few steps of accumulated rounding),
1e-10 in float64. Without PyTorch the npcnn halves still run (they must not raise) and the
comparisons are skipped with the reason.
"""

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import npcnn
from npcnn import nn, optim
from npcnn.data import DataLoader, Dataset, Subset, random_split

TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _torch():
    """PyTorch, or None (the npcnn halves run either way)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    return torch


def _weights_torch_to_npcnn(tmodel, model):
    """``model.load_state_dict`` of PyTorch's state_dict as NumPy arrays (strict)."""
    model.load_state_dict({k: v.detach().cpu().numpy() for k, v in tmodel.state_dict().items()})


def _weights_npcnn_to_torch(torch, model, tmodel):
    tmodel.load_state_dict({k: torch.from_numpy(np.array(npcnn.to_numpy(v))) for k, v in model.state_dict().items()})


def _assert_same_state(torch, tmodel, model, dtype=np.float32):
    """Same keys in the same order, same values (buffers included)."""
    theirs = tmodel.state_dict()
    ours = model.state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        np.testing.assert_allclose(npcnn.to_numpy(ours[key]), theirs[key].detach().numpy(), err_msg=key, **TOL[dtype])


def _assert_same_grads(tmodel, model, dtype=np.float32):
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        t = theirs[name]
        if t.grad is None:
            assert p.grad is None, name
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), err_msg=name, **TOL[dtype])


def _start_from_torch_weights(torch, tmodel, model, dtype=np.float32):
    """Weights go PyTorch -> npcnn (tests 1 and 2 also send them back, npcnn -> PyTorch)."""
    _weights_torch_to_npcnn(tmodel, model)
    _assert_same_state(torch, tmodel, model, dtype)


def _data(shape, n_classes, n=8, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(dtype), rng.integers(0, n_classes, n)


# ---------------------------------------------------------------------------------------------
# 1. An MLP trained with SGD + momentum (+ weight decay, nesterov); ``loss.item()``
# ---------------------------------------------------------------------------------------------

def mlp_torch(torch, model, x, y, steps=4):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def mlp_npcnn(model, x, y, steps=4):
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())  # the one difference: loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_01_mlp_sgd_momentum():
    x, y = _data((20,), 5)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 5))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(20, 32), t.ReLU(), t.Linear(32, 16), t.Tanh(), t.Linear(16, 5))
        _start_from_torch_weights(torch, tmodel, model)
    losses = mlp_npcnn(model, x, y)
    assert all(isinstance(v, float) for v in losses) and losses[-1] < losses[0]
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    np.testing.assert_allclose(losses, mlp_torch(torch, tmodel, x, y), **TOL[np.float32])
    _assert_same_state(torch, tmodel, model)
    fresh = t.Sequential(t.Linear(20, 32), t.ReLU(), t.Linear(32, 16), t.Tanh(), t.Linear(16, 5))
    _weights_npcnn_to_torch(torch, model, fresh)
    _assert_same_state(torch, fresh, model)


# ---------------------------------------------------------------------------------------------
# 2. A CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout, Linear) trained with Adam
# ---------------------------------------------------------------------------------------------

def cnn_npcnn_model():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 2 * 2, 10),
    )


def cnn_torch_model(torch):
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 6, 3, padding=1), t.BatchNorm2d(6), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(6, 8, 3, stride=2, bias=False), t.BatchNorm2d(8), t.ReLU(),
        t.Flatten(), t.Dropout(0.5), t.Linear(8 * 2 * 2, 10),
    )


def cnn_torch(torch, model, x, y, steps=3):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    model[8].eval()  # dropout off: the two libraries draw different random masks
    losses, grads = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        grads.append({n: p.grad.numpy().copy() for n, p in model.named_parameters()})
        optimizer.step()
        losses.append(loss.item())
    return losses, grads


def cnn_npcnn(model, x, y, steps=3):
    optimizer = optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    model[8].eval()  # dropout off: the two libraries draw different random masks
    losses, grads = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        grads.append({n: p.grad.copy() for n, p in model.named_parameters()})
        optimizer.step()
        losses.append(loss.item())
    return losses, grads


def test_02_cnn_adam():
    x, y = _data((1, 10, 10), 10)
    model = cnn_npcnn_model()
    torch = _torch()
    if torch is not None:
        tmodel = cnn_torch_model(torch)
        _start_from_torch_weights(torch, tmodel, model)
    losses, grads = cnn_npcnn(model, x, y)
    assert losses[-1] < losses[0]
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    t_losses, t_grads = cnn_torch(torch, tmodel, x, y)
    np.testing.assert_allclose(losses, t_losses, **TOL[np.float32])
    for ours, theirs in zip(grads, t_grads):
        for name in theirs:
            np.testing.assert_allclose(ours[name], theirs[name], err_msg=name, rtol=1e-5, atol=1e-6)
    _assert_same_state(torch, tmodel, model)  # running statistics and num_batches_tracked too
    fresh = cnn_torch_model(torch)
    _weights_npcnn_to_torch(torch, model, fresh)
    _assert_same_state(torch, fresh, model)


# ---------------------------------------------------------------------------------------------
# 3. Custom initialisation with ``model.apply(fn)``
# ---------------------------------------------------------------------------------------------

def init_torch(torch, model):
    def init_weights(m):
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            with torch.no_grad():
                m.weight.copy_(torch.linspace(-0.5, 0.5, m.weight.numel()).reshape(m.weight.shape))
            torch.nn.init.constant_(m.bias, 0.01)
        elif isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)

    return model.apply(init_weights)


def init_npcnn(model):
    def init_weights(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.weight.data[...] = np.linspace(-0.5, 0.5, m.weight.numel()).reshape(m.weight.shape)
            nn.init.constant_(m.bias, 0.01)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    return model.apply(init_weights)


def _init_net_npcnn():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


def test_03_custom_init_with_apply():
    model = _init_net_npcnn()
    assert init_npcnn(model) is model  # apply returns the module, as in PyTorch
    assert model[0].weight.dtype == np.float32
    assert float(model[4].bias.data[0]) == pytest.approx(0.01)
    torch = torch_or_skip()
    t = torch.nn
    tmodel = init_torch(torch, t.Sequential(t.Conv2d(2, 3, 3), t.BatchNorm2d(3), t.ReLU(), t.Flatten(),
                                            t.Linear(3 * 4 * 4, 4)))
    _assert_same_state(torch, tmodel, model)  # no exchange: both initialised themselves
    x, _ = _data((2, 6, 6), 4)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# 4. ``zero_grad(set_to_none=True)``, ``model.to("cpu")``, ``.cpu()``, float64 via ``.to(dtype)``
# ---------------------------------------------------------------------------------------------

def float64_torch(torch, model, x, y, steps=3):
    model = model.to("cpu").cpu().to(torch.float64)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.5)
    loss_fn = torch.nn.MSELoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        assert all(p.grad is None for p in model.parameters())
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def float64_npcnn(model, x, y, steps=3):
    model = model.to("cpu").cpu().to(np.float64)
    optimizer = optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.5)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        assert all(p.grad is None for p in model.parameters())
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def test_04_zero_grad_to_cpu_and_float64():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    model = nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.LayerNorm(7), nn.Linear(7, 3))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(5, 7), t.GELU(), t.LayerNorm(7), t.Linear(7, 3))
        _weights_torch_to_npcnn(tmodel, model)
    model, losses = float64_npcnn(model, x, y)
    assert model[0].weight.dtype == np.float64 and model[0].weight.grad.dtype == np.float64
    model.zero_grad()  # PyTorch's default is set_to_none=True too
    assert all(p.grad is None for p in model.parameters())
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    tmodel, t_losses = float64_torch(torch, tmodel, x, y)
    np.testing.assert_allclose(losses, t_losses, **TOL[np.float64])
    _assert_same_state(torch, tmodel, model, np.float64)


# ---------------------------------------------------------------------------------------------
# 5. ``ReLU(inplace=True)`` and ``CrossEntropyLoss(weight=, ignore_index=, label_smoothing=)``
# ---------------------------------------------------------------------------------------------

def weighted_ce_torch(torch, model, x, y, class_weight):
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(class_weight), ignore_index=-1, label_smoothing=0.1)
    loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    return loss.item()


def weighted_ce_npcnn(model, x, y, class_weight):
    loss_fn = nn.CrossEntropyLoss(weight=class_weight, ignore_index=-1, label_smoothing=0.1)
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    return loss.item()


def test_05_inplace_relu_and_weighted_cross_entropy():
    x, y = _data((6,), 4, n=10)
    y[[1, 4]] = -1  # two ignored targets
    class_weight = np.array([1.0, 2.0, 0.5, 1.5], dtype=np.float32)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 4), nn.ReLU6(inplace=True))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(6, 8), t.ReLU(inplace=True), t.Linear(8, 4), t.ReLU6(inplace=True))
        _start_from_torch_weights(torch, tmodel, model)
    loss = weighted_ce_npcnn(model, x, y, class_weight)
    assert math.isfinite(loss)
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    np.testing.assert_allclose(loss, weighted_ce_torch(torch, tmodel, x, y, class_weight), **TOL[np.float32])
    _assert_same_grads(tmodel, model)


# ---------------------------------------------------------------------------------------------
# 6. ModuleDict, ParameterList, Upsample, Unflatten, SiLU, Hardswish in a user-defined Module
# ---------------------------------------------------------------------------------------------

def _make_heads_torch(torch):
    t = torch.nn

    class Heads(t.Module):
        def __init__(self):
            super().__init__()
            self.body = t.Sequential(t.Linear(12, 16), t.SiLU(), t.Unflatten(1, (1, 4, 4)),
                                     t.Upsample(scale_factor=2, mode="nearest"), t.Hardswish(), t.Flatten())
            self.heads = t.ModuleDict({"a": t.Linear(64, 3), "b": t.Linear(64, 3)})
            self.mix = t.ParameterList([t.Parameter(torch.full((3,), 0.5)), t.Parameter(torch.full((3,), 2.0))])

        def forward(self, x):
            h = self.body(x)
            return self.heads["a"](h) * self.mix[0] + self.heads["b"](h) * self.mix[1]

    return Heads()


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 16), nn.SiLU(), nn.Unflatten(1, (1, 4, 4)),
                                  nn.Upsample(scale_factor=2, mode="nearest"), nn.Hardswish(), nn.Flatten())
        self.heads = nn.ModuleDict({"a": nn.Linear(64, 3), "b": nn.Linear(64, 3)})
        self.mix = nn.ParameterList([nn.Parameter(np.full((3,), 0.5, np.float32)),
                                     nn.Parameter(np.full((3,), 2.0, np.float32))])

    def forward(self, x):
        h = self.body(x)
        a, b = self.heads["a"](h), self.heads["b"](h)
        self.save_for_backward((a, b))
        return a * self.mix[0].data + b * self.mix[1].data

    def backward(self, dout):  # what autograd writes for PyTorch users
        a, b = self.pop_saved()
        self.mix[0].accumulate_grad((dout * a).sum(axis=0))
        self.mix[1].accumulate_grad((dout * b).sum(axis=0))
        db = self.heads["b"].backward(dout * self.mix[1].data)  # newest call first
        da = self.heads["a"].backward(dout * self.mix[0].data)
        return self.body.backward(da + db)


def test_06_new_containers_and_layers():
    x, y = _data((12,), 3, n=5)
    model = Heads()
    assert [n for n, _ in model.named_parameters()][-2:] == ["mix.0", "mix.1"]
    torch = _torch()
    if torch is not None:
        tmodel = _make_heads_torch(torch)
        _start_from_torch_weights(torch, tmodel, model)
    losses = mlp_npcnn(model, x, y, steps=3)
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    assert repr(model) == _numpy_dtype_names(repr(tmodel))
    np.testing.assert_allclose(losses, mlp_torch(torch, tmodel, x, y, steps=3), **TOL[np.float32])
    _assert_same_state(torch, tmodel, model)


# ---------------------------------------------------------------------------------------------
# 7. A map-style Dataset, random_split, DataLoader(num_workers=...)
# ---------------------------------------------------------------------------------------------

class Squares(Dataset):
    """A map-style dataset the PyTorch way: __len__ and __getitem__ returning (x, y)."""

    def __init__(self, n):
        rng = np.random.default_rng(7)
        self.x = rng.standard_normal((n, 4)).astype(np.float32)
        self.y = (self.x ** 2).sum(axis=1, keepdims=True).astype(np.float32)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def loader_torch(torch, model, train_indices):
    dataset = torch.utils.data.Subset(_torch_squares(torch, 40), train_indices)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False, num_workers=0, drop_last=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = torch.nn.MSELoss()
    losses = []
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def loader_npcnn(model, train_indices):
    dataset = Subset(Squares(40), train_indices)
    loader = DataLoader(dataset, batch_size=8, shuffle=False, num_workers=2, drop_last=False)
    optimizer = optim.SGD(model.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()
    losses = []
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        model.backward(loss_fn.backward())
        optimizer.step()
        losses.append(loss.item())
    return losses


def _torch_squares(torch, n):
    class TorchSquares(torch.utils.data.Dataset):
        def __init__(self, n):
            self.x, self.y = Squares(n).x, Squares(n).y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return torch.from_numpy(self.x[i]), torch.from_numpy(self.y[i])

    return TorchSquares(n)


def test_07_dataset_random_split_and_loader():
    train, val = random_split(Squares(40), [0.75, 0.25], generator=np.random.default_rng(0))
    assert (len(train), len(val)) == (30, 10)
    assert sorted(list(train.indices) + list(val.indices)) == list(range(40))
    xb, yb = next(iter(DataLoader(val, batch_size=4, shuffle=True, num_workers=4)))
    assert xb.shape == (4, 4) and yb.shape == (4, 1) and xb.dtype == np.float32
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(4, 8), t.ReLU(), t.Linear(8, 1))
        _start_from_torch_weights(torch, tmodel, model)
        t_train, _ = torch.utils.data.random_split(range(40), [0.75, 0.25])
        assert len(t_train) == len(train)  # same fractions -> same lengths (the shuffles differ)
    # the same indices on both sides (the two libraries' split RNGs differ)
    losses = loader_npcnn(model, list(train.indices))
    assert len(losses) == 4  # 30 samples in batches of 8, the last one partial
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    np.testing.assert_allclose(losses, loader_torch(torch, tmodel, list(train.indices)), **TOL[np.float32])
    _assert_same_state(torch, tmodel, model)


# ---------------------------------------------------------------------------------------------
# 8. Learning-rate schedules: StepLR and CosineAnnealingLR, stepped once per epoch
# ---------------------------------------------------------------------------------------------

def schedule_torch(torch, model, x, y, kind, epochs=6):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    if kind == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    lrs, losses = [], []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        losses.append(loss.item())
    return lrs, losses


def schedule_npcnn(model, x, y, kind, epochs=6):
    optimizer = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    if kind == "step":
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    else:
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    lrs, losses = [], []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        losses.append(loss.item())
    return lrs, losses


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_08_lr_schedules(kind):
    x, y = _data((5,), 3)
    model = nn.Sequential(nn.Linear(5, 6), nn.ELU(), nn.Linear(6, 3))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(5, 6), t.ELU(), t.Linear(6, 3))
        _start_from_torch_weights(torch, tmodel, model)
    lrs, losses = schedule_npcnn(model, x, y, kind)
    assert lrs[-1] < 0.2
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    t_lrs, t_losses = schedule_torch(torch, tmodel, x, y, kind)
    np.testing.assert_allclose(lrs, t_lrs, rtol=1e-12)
    np.testing.assert_allclose(losses, t_losses, **TOL[np.float32])
    _assert_same_state(torch, tmodel, model)


# ---------------------------------------------------------------------------------------------
# 9. Evaluation: ``model.eval()`` under ``torch.no_grad()`` / ``npcnn.no_grad()``
# ---------------------------------------------------------------------------------------------

def evaluate_torch(torch, model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        out = model(torch.from_numpy(x))
        correct += (out.argmax(dim=1) == torch.from_numpy(y)).sum().item()
    model.train()
    return out.numpy(), correct / len(y)


def evaluate_npcnn(model, x, y):
    model.eval()
    correct = 0
    with npcnn.no_grad():
        out = model(x)
        correct += (out.argmax(axis=1) == y).sum().item()
    model.train()
    return out, correct / len(y)


def test_09_no_grad_evaluation_after_training():
    x, y = _data((1, 10, 10), 10, n=12)
    model = cnn_npcnn_model()
    torch = _torch()
    if torch is not None:
        tmodel = cnn_torch_model(torch)
        _start_from_torch_weights(torch, tmodel, model)
    cnn_npcnn(model, x, y, steps=2)  # moves the batch-norm running statistics
    out, accuracy = evaluate_npcnn(model, x, y)
    assert model.training and 0.0 <= accuracy <= 1.0
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    cnn_torch(torch, tmodel, x, y, steps=2)
    t_out, t_accuracy = evaluate_torch(torch, tmodel, x, y)
    np.testing.assert_allclose(out, t_out, rtol=1e-5, atol=1e-5)
    assert accuracy == t_accuracy


# ---------------------------------------------------------------------------------------------
# 10. Saving and loading a state_dict: npcnn.save / npcnn.load beside torch.save / torch.load
# ---------------------------------------------------------------------------------------------

def save_load_torch(torch, model, path):
    torch.save(model.state_dict(), path)
    restored = cnn_torch_model(torch)
    restored.load_state_dict(torch.load(path, weights_only=True))
    return restored


def save_load_npcnn(model, path):
    npcnn.save(model.state_dict(), path)
    restored = cnn_npcnn_model()
    restored.load_state_dict(npcnn.load(path))
    return restored


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_10_save_and_load_state_dict(tmp_path, suffix):
    x, y = _data((1, 10, 10), 10)
    model = cnn_npcnn_model()
    cnn_npcnn(model, x, y, steps=1)
    restored = save_load_npcnn(model, tmp_path / f"model{suffix}")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[key], value, err_msg=key)
    torch = torch_or_skip()
    tmodel = cnn_torch_model(torch)
    _weights_npcnn_to_torch(torch, model, tmodel)
    t_restored = save_load_torch(torch, tmodel, tmp_path / "model.pt")
    _assert_same_state(torch, t_restored, restored)
    if suffix == ".safetensors":  # a file PyTorch's safetensors writes loads into npcnn
        safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
        safetensors_torch.save_file(t_restored.state_dict(), str(tmp_path / "torch.safetensors"))
        again = cnn_npcnn_model()
        again.load_state_dict(npcnn.load(tmp_path / "torch.safetensors"))
        _assert_same_state(torch, t_restored, again)


# ---------------------------------------------------------------------------------------------
# 11. Gradient clipping with clip_grad_norm_ (and clip_grad_value_)
# ---------------------------------------------------------------------------------------------

def clip_torch(torch, model, x, y):
    loss_fn = torch.nn.CrossEntropyLoss()
    loss = loss_fn(model(torch.from_numpy(x)) * 20.0, torch.from_numpy(y))
    loss.backward()
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
    return loss.item(), float(total)


def clip_npcnn(model, x, y):
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(model(x) * 20.0, y)
    model.backward(loss_fn.backward() * 20.0)  # the chain rule through "* 20.0" is written out
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
    return loss.item(), float(total)


def test_11_gradient_clipping():
    x, y = _data((6,), 4)
    model = nn.Sequential(nn.Linear(6, 10), nn.LeakyReLU(0.1), nn.Linear(10, 4))
    torch = _torch()
    if torch is not None:
        t = torch.nn
        tmodel = t.Sequential(t.Linear(6, 10), t.LeakyReLU(0.1), t.Linear(10, 4))
        _start_from_torch_weights(torch, tmodel, model)
    loss, total = clip_npcnn(model, x, y)
    assert total > 1.0  # the clip did something
    assert max(float(abs(p.grad).max()) for p in model.parameters()) <= np.float32(0.05)
    if torch is None:
        pytest.skip("PyTorch is not installed; the PyTorch comparison is skipped")
    np.testing.assert_allclose((loss, total), clip_torch(torch, tmodel, x, y), rtol=1e-6)
    _assert_same_grads(tmodel, model)


# ---------------------------------------------------------------------------------------------
# 12. ``print(model)`` gives PyTorch's text
# ---------------------------------------------------------------------------------------------

def _numpy_dtype_names(text):
    """PyTorch's text with its dtype names as NumPy's (ParameterList prints its parameters'
    dtypes, which in npcnn are NumPy's: "float32", not "torch.float32")."""
    return text.replace("torch.float", "float")


def _printed(models, capsys):
    for model in models:
        print(model)
    return capsys.readouterr().out


def test_12_print_model_matches_pytorch(capsys):
    ours = _printed([Heads(), nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.BatchNorm1d(8), nn.BatchNorm2d(3, affine=False),
        nn.LayerNorm(8), nn.Linear(8, 2, bias=False), nn.LogSoftmax(dim=1),
        nn.Conv2d(1, 6, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Unflatten(1, (2, 4)))], capsys)
    torch = torch_or_skip()
    t = torch.nn
    theirs = _printed([_make_heads_torch(torch), t.Sequential(
        t.Linear(4, 8), t.ReLU(inplace=True), t.Dropout(0.1), t.BatchNorm1d(8), t.BatchNorm2d(3, affine=False),
        t.LayerNorm(8), t.Linear(8, 2, bias=False), t.LogSoftmax(dim=1),
        t.Conv2d(1, 6, 3, padding=1), t.MaxPool2d(2), t.Flatten(), t.Unflatten(1, (2, 4)))], capsys)
    assert ours == _numpy_dtype_names(theirs)


def test_12_print_cnn_matches_pytorch(capsys):
    ours = _printed([cnn_npcnn_model()], capsys)  # a Conv2d without padding prints none, as PyTorch's
    torch = torch_or_skip()
    assert ours == _printed([cnn_torch_model(torch)], capsys)


def test_04_to_takes_a_pytorch_dtype_or_a_name():
    assert nn.Linear(2, 2).to("float64").weight.dtype == np.float64
    with pytest.raises(TypeError, match=r"Linear.to: 'bogus' is neither a device .* nor a dtype"):
        nn.Linear(2, 2).to("bogus")
    torch = torch_or_skip()
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).to(torch.float64)
    assert model[0].weight.dtype == np.float64 and model[1].num_batches_tracked.dtype.kind == "i"


# ---------------------------------------------------------------------------------------------
# The small known differences the README lists, each pinned so the list stays true
# ---------------------------------------------------------------------------------------------

def test_difference_all_ignored_targets_give_zero_not_nan():
    logits = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = np.full(3, -100)
    loss_fn = nn.CrossEntropyLoss()
    assert loss_fn(logits, y).item() == 0.0 and not loss_fn.backward().any()
    torch = torch_or_skip()
    assert math.isnan(torch.nn.CrossEntropyLoss()(torch.from_numpy(logits), torch.from_numpy(y)).item())


def test_difference_optimizers_need_a_positive_eps():
    params = list(nn.Linear(2, 2).parameters())
    for make in (optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad):
        with pytest.raises(ValueError, match="eps"):
            make(params, eps=0.0)


def test_difference_two_top_level_calls_before_backward_is_an_error():
    model, loss_fn = nn.Linear(3, 2), nn.MSELoss()
    x1, x2, target = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32), np.zeros((2, 2), np.float32)
    loss_fn(model(x1), target)
    g1 = loss_fn.backward()
    model(x2)  # a second forward pass from user code
    with pytest.raises(RuntimeError, match="Linear.backward: the gradient it was given comes from"):
        model.backward(g1)
    loss_fn(model(x1), target)
    g1 = loss_fn.backward()
    with npcnn.no_grad():  # the way to run an extra forward in between: it records nothing
        model(x2)
    assert model.backward(g1).shape == x1.shape


def test_difference_scaling_a_loss_value_warns_and_leaves_the_gradient():
    logits, y = _data((4,), 4, n=3)
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(logits, y)
    with pytest.warns(UserWarning, match="backward"):
        loss / 2
    np.testing.assert_allclose(loss_fn.backward(0.5) * 2, _ce_grad(logits, y), rtol=1e-6)


def _ce_grad(logits, y):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p / len(y)
