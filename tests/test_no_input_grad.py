"""nn.no_input_grad: the training loops let the first layer skip the input gradient, and
nothing else changes (the parameter gradients are the same to the bit, every other module still
returns its dx, hooks still see theirs)."""

import numpy as np
import pytest

import npcnn
from npcnn import nn
from npcnn.train import Trainer, train_step


class Spy(nn.Module):
    """Identity that records needs_input_grad at each backward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        return x

    def backward(self, dout):
        self.seen.append(self.needs_input_grad)
        return dout


def small_cnn(seed=0):
    npcnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def grads(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def run(model, x, skip):
    model.zero_grad()
    out = model(x)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    if skip:
        with nn.no_input_grad():
            dx = model.backward(dout)
    else:
        dx = model.backward(dout)
    return dx, grads(model)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_parameter_gradients_and_no_input_gradient(dtype):
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(dtype)
    model = small_cnn()
    model.to(dtype)
    dx, full = run(model, x, skip=False)
    assert dx.shape == x.shape and dx.dtype == dtype
    none, skipped = run(model, x, skip=True)
    assert none is None
    assert full.keys() == skipped.keys()
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name], err_msg=name)
    dx_again, _ = run(model, x, skip=False)  # the permission does not outlive the block
    np.testing.assert_array_equal(dx_again, dx)


def test_only_the_first_layer_is_told():
    first, second = Spy(), Spy()
    model = nn.Sequential(first, nn.Linear(3, 3), second, nn.Linear(3, 2))
    run(model, np.ones((2, 3), np.float32), skip=True)
    assert first.seen == [False] and second.seen == [True]
    run(model, np.ones((2, 3), np.float32), skip=False)
    assert first.seen == [False, True]


def test_nested_sequentials_pass_it_down_to_the_very_first_layer():
    spy = Spy()
    model = nn.Sequential(nn.Sequential(spy, nn.Conv2d(1, 2, 3)), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    assert run(model, np.ones((2, 1, 5, 5), np.float32), skip=True)[0] is not None  # the spy returns its dout
    assert spy.seen == [False]
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Flatten(), nn.Linear(2 * 3 * 3, 2))
    assert run(model, np.ones((2, 1, 5, 5), np.float32), skip=True)[0] is None


@pytest.mark.parametrize("first", [nn.Conv1d(2, 3, 3), nn.Linear(2 * 6, 3)])
def test_conv1d_and_linear_return_none(first):
    model = nn.Sequential(first) if isinstance(first, nn.Conv1d) else nn.Sequential(nn.Flatten(), first)
    x = np.random.default_rng(2).standard_normal((4, 2, 6)).astype(np.float32)
    dx, full = run(model, x, skip=False)
    assert dx.shape == x.shape
    none, skipped = run(model, x, skip=True)
    if isinstance(first, nn.Conv1d):
        assert none is None
    else:
        assert none.shape == x.shape  # Flatten is first: it reshapes its dout, as always
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name])


def test_a_module_with_a_backward_hook_still_computes_its_input_gradient():
    model = small_cnn()
    seen = []
    handle = model[0].register_backward_hook(lambda module, dx, dout: seen.append(dx))
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8)).astype(np.float32)
    dx, _ = run(model, x, skip=True)
    assert dx is not None and seen[-1] is dx and dx.shape == x.shape
    handle.remove()
    assert run(model, x, skip=True)[0] is None


def test_hand_written_backwards_are_untouched():
    # a residual block adds its branches' input gradients: it is not a Sequential, so its
    # children compute dx as usual and the sum works
    npcnn.manual_seed(4)
    block = nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()))
    model = nn.Sequential(block, nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    x = np.random.default_rng(5).standard_normal((3, 2, 4, 4)).astype(np.float32)
    dx, full = run(model, x, skip=False)
    dx_skip, skipped = run(model, x, skip=True)
    np.testing.assert_array_equal(dx_skip, dx)  # Residual is first and returns its dx
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name])


def test_permission_is_reset_after_an_error():
    class Boom(nn.Module):
        def forward(self, x):
            return x

        def backward(self, dout):
            raise ValueError("boom")

    spy = Spy()
    model = nn.Sequential(spy, Boom())
    model(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError):
        with nn.no_input_grad():
            model.backward(np.ones((1, 2), np.float32))
    model2 = nn.Sequential(spy)
    model2(np.ones((1, 2), np.float32))
    assert model2.backward(np.ones((1, 2), np.float32)) is not None
    assert spy.seen == [True]


def test_training_loops_skip_it_and_train_the_same():
    x = np.random.default_rng(6).standard_normal((6, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    losses = []
    for loop in ("manual", "train_step", "Trainer"):
        model = small_cnn(seed=7)
        spy = Spy()
        model = nn.Sequential(spy, *model)
        loss_fn = nn.CrossEntropyLoss()
        optimizer = npcnn.optim.SGD(model.parameters(), lr=0.1)
        if loop == "manual":
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
            optimizer.zero_grad()
        elif loop == "train_step":
            train_step(model, loss_fn, optimizer, (x, y))
        else:
            trainer = Trainer(model, loss_fn, optimizer, metrics=(), verbose=0)
            trainer.fit([(x, y)], epochs=1)
        losses.append(float(loss_fn(model(x), y)))
        assert spy.seen == [loop == "manual"]
    assert losses[0] == losses[1] == losses[2]


def test_gradcheck_still_checks_the_input_gradient():
    from npcnn.gradcheck import check_module

    with npcnn.backend.default_dtype(np.float64):
        model = small_cnn()
    model.to(np.float64)
    x = np.random.default_rng(8).standard_normal((2, 1, 8, 8))
    report = check_module(model, x)
    report.assert_ok()
