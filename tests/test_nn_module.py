import copy

import numpy as np
import pytest

import npcnn
from npcnn import nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(5, 3, bias=False)
        self.register_buffer("seen", np.zeros(1, dtype=np.int64))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

    def backward(self, dout):
        return self.fc1.backward(self.act.backward(self.fc2.backward(dout)))


def test_registration_names_and_counts():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert list(m.state_dict()) == ["seen", "fc1.weight", "fc1.bias", "fc2.weight"]  # own state first, as PyTorch
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert len(list(m.modules())) == 4
    assert m.num_parameters() == 4 * 5 + 5 + 5 * 3
    assert m.fc2.bias is None


def test_shared_parameter_counted_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert seq.num_parameters() == 12
    assert len(list(seq.parameters())) == 2


def test_assigning_non_parameter_over_parameter_is_an_error():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="holds a Parameter"):
        m.weight = np.zeros((2, 2))


def test_backward_before_forward_and_twice_are_errors():
    layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="Linear.backward\\(\\) needs a forward pass first"):
        layer.backward(np.ones((1, 2), np.float32))
    layer(np.ones((1, 3), np.float32))
    layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="a second time"):
        layer.backward(np.ones((1, 2), np.float32))


def test_no_grad_skips_caches_and_backward_says_why():
    layer = nn.Linear(3, 2)
    with npcnn.no_grad():
        layer(np.ones((1, 3), np.float32))
        assert not npcnn.is_grad_enabled()
    assert layer._saved is None
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward(np.ones((1, 2), np.float32))


def test_gradients_accumulate_and_zero_grad_clears():
    layer = nn.Linear(3, 2)
    x = np.ones((2, 3), np.float32)
    for _ in range(2):
        layer(x)
        layer.backward(np.ones((2, 2), np.float32))
    np.testing.assert_allclose(layer.bias.grad, [4.0, 4.0])
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_freeze_stops_gradients_and_unfreeze_restores():
    m = TwoLayer()
    m.fc1.freeze()
    x = np.ones((2, 4), np.float32)
    m.backward(np.ones_like(m(x)))
    assert m.fc1.weight.grad is None and m.fc2.weight.grad is not None
    assert m.num_parameters(trainable_only=True) == 15
    m.unfreeze()
    assert m.num_parameters(trainable_only=True) == m.num_parameters()


def test_train_eval_propagate():
    m = TwoLayer().eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_state_dict_round_trip_and_errors():
    a, b = TwoLayer(), TwoLayer()
    a.seen = np.array([7], dtype=np.int64)
    b.load_state_dict(a.state_dict())
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
        assert va is not vb and va.dtype == vb.dtype
    state = dict(a.state_dict())
    state["fc1.weight"] = np.zeros((4, 4))
    with pytest.raises(ValueError, match="'fc1.weight' has shape \\(4, 4\\)"):
        b.load_state_dict(state)
    state = dict(a.state_dict())
    del state["fc2.weight"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match="missing keys \\['fc2.weight'\\], unexpected keys \\['extra'\\]"):
        b.load_state_dict(state)
    result = b.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc2.weight"] and result.unexpected_keys == ["extra"]


def test_to_double_casts_params_and_float_buffers_only():
    m = TwoLayer().double()
    assert m.fc1.weight.dtype == np.float64 and m.seen.dtype == np.int64
    assert m.float().fc1.weight.dtype == np.float32


def test_deepcopy_is_independent():
    m = TwoLayer()
    c = copy.deepcopy(m)
    c.fc1.weight.data += 1
    assert not np.allclose(c.fc1.weight.data, m.fc1.weight.data)


def test_forward_and_backward_hooks():
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    seen = []
    h1 = m[0].register_forward_hook(lambda mod, inp, out: seen.append(("f", out.shape)))
    h2 = m[0].register_backward_hook(lambda mod, dx, dout: seen.append(("b", dx.shape)))
    out = m(np.ones((2, 3), np.float32))
    m.backward(np.ones_like(out))
    assert seen == [("f", (2, 3)), ("b", (2, 3))]
    h1.remove()
    h2.remove()
    assert "backward" not in m[0].__dict__
    m(np.ones((2, 3), np.float32))
    assert len(seen) == 2


def test_sequential_indexing_and_named_children():
    from collections import OrderedDict

    seq = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh()))
    assert isinstance(seq["act"], nn.Tanh) and isinstance(seq[0], nn.Linear)
    assert len(seq[:1]) == 1 and list(seq.state_dict()) == ["fc.weight", "fc.bias"]


def test_flatten_and_reshape_round_trip(rng):
    x = rng.normal(size=(2, 3, 4, 5))
    flat = nn.Flatten()
    assert flat(x).shape == (2, 60)
    np.testing.assert_array_equal(flat.backward(flat(x)), x)
    r = nn.Reshape(4, 15)
    assert r(x).shape == (2, 4, 15)
    assert r.backward(r(x)).shape == x.shape


def test_lenet_style_summary_table():
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    import io

    text = str(model.summary((16, 5, 5), file=io.StringIO()))
    assert "48,120" in text and "10,164" in text and "850" in text
    assert "Total params: 59,134" in text


def test_replacing_a_child_keeps_its_position():
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    seq.add_module("0", nn.Linear(4, 4))
    setattr(seq, "1", nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear"]
    m = TwoLayer()
    m.fc1 = nn.Linear(4, 5)
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]


# ----------------------------------------------------------------------------- hooks and gradient injection, one road


def test_backward_hook_inside_injected_gradient_sees_and_keeps_the_injection(rng):
    from npcnn.viz._common import injected_gradient

    with npcnn.backend.default_dtype(np.float64):
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    layer = model[1]
    x = rng.standard_normal((2, 3))
    injected = rng.standard_normal((2, 4))
    seen = []
    with injected_gradient(layer) as box:
        box[0] = injected
        handle = layer.register_backward_hook(lambda m, dx, dout: seen.append(dout))
        model(x)
        with_hook = model.backward(np.zeros((2, 2)))
        handle.remove()
        model(x)
        without_hook = model.backward(np.zeros((2, 2)))
    np.testing.assert_array_equal(seen[0], injected)  # the hook sees the injected gradient
    np.testing.assert_allclose(with_hook, without_hook, rtol=0, atol=0)  # and does not drop it
    assert np.abs(with_hook).max() > 0
    model(x)
    assert np.abs(model.backward(np.zeros((2, 2)))).max() == 0  # injection gone after the block
    assert not layer._backward_pre_hooks and not layer._backward_hooks


def test_pre_hook_replacing_dout_and_hook_replacing_dx_compose(rng):
    layer = nn.Tanh()
    x = rng.standard_normal((2, 3))
    out = layer(x)
    h1 = layer.register_backward_pre_hook(lambda m, dout: 2.0 * dout)
    h2 = layer.register_backward_hook(lambda m, dx, dout: dx + 1.0)
    dx = layer.backward(np.ones_like(out))
    np.testing.assert_allclose(dx, 2.0 * (1.0 - out ** 2) + 1.0, rtol=1e-12)
    h1.remove()
    h2.remove()
    layer(x)
    np.testing.assert_allclose(layer.backward(np.ones_like(out)), 1.0 - out ** 2, rtol=1e-12)


def test_eval_mode_restores_every_modules_own_flag():
    from npcnn.nn.utils import eval_mode

    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    model[1].eval()  # a frozen BatchNorm inside a training model
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]
    with pytest.raises(KeyError), eval_mode(model):
        raise KeyError("restored on errors too")
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_evaluate_restores_every_modules_own_flag():
    from npcnn.train import evaluate

    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model[1].eval()
    evaluate(model, [(np.ones((4, 2), np.float32), np.array([0, 1, 2, 0]))])
    assert [m.training for m in model.modules()] == [True, True, False]


def test_model_tree_helpers_live_in_nn_utils_and_stay_importable_from_viz():
    from npcnn.nn import utils
    from npcnn.viz import _common

    for name in ("find_layer", "last_module", "last_linear", "model_dtype", "capture", "eval_mode"):
        assert getattr(_common, name) is getattr(utils, name)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert utils.find_layer(model, "2") == ("2", model[2]) and utils.last_linear(model) is model[2]


# ----------------------------------------------------------------------------- load_state_dict: check all, then assign


def test_failed_load_state_dict_overwrites_nothing():
    a, b = TwoLayer(), TwoLayer()
    before = {k: v.copy() for k, v in b.state_dict().items()}
    state = {k: v.copy() for k, v in a.state_dict().items()}
    state["fc2.weight"] = np.zeros((2, 2), np.float32)  # the last key is wrong
    with pytest.raises(ValueError, match="'fc2.weight' has shape"):
        b.load_state_dict(state)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_float64_values_beyond_float32_are_an_error_not_inf():
    m = TwoLayer()
    state = {k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v for k, v in m.state_dict().items()}
    state["fc1.bias"] = state["fc1.bias"].copy()
    state["fc1.bias"][0] = 1e300
    kept = m.fc1.weight.data.copy()
    with pytest.raises(ValueError, match="'fc1.bias' holds finite float64 values beyond the range of float32"):
        m.load_state_dict(state)
    np.testing.assert_array_equal(m.fc1.weight.data, kept)
    state["fc1.bias"][0] = 0.5
    m.load_state_dict(state)  # in range: cast to float32
    assert m.fc1.bias.dtype == np.float32 and m.fc1.bias.data[0] == 0.5


def test_load_state_dict_rejects_floats_into_integer_buffers():
    m = TwoLayer()
    state = dict(m.state_dict())
    state["seen"] = np.array([1.5])
    with pytest.raises(ValueError, match="'seen' has dtype float64, which cannot be loaded into a int64 slot"):
        m.load_state_dict(state)
