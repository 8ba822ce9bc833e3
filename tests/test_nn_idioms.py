"""PyTorch's everyday idioms on npcnn modules: apply, get_submodule, zero_grad(set_to_none=),
.to(device / dtype), Parameter as an array, ModuleDict, ParameterList, Unflatten, reprs equal
to PyTorch's, and constructor arguments checked with errors naming class, argument and range."""

import numpy as np
import pytest

import npcnn
from npcnn import nn
from npcnn.gradcheck import check_module
from conftest import torch_or_skip


def _model():
    npcnn.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))


def test_apply_visits_children_first_then_self():
    model = _model()
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Linear", "Sequential", "Sequential"]


def test_apply_for_custom_init():
    model = _model()

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    model.apply(init)
    assert all(not m.weight.data.any() for m in model.modules() if isinstance(m, nn.Linear))


def test_get_submodule():
    model = _model()
    assert model.get_submodule("3.0") is model[3][0] and model.get_submodule("") is model
    with pytest.raises(AttributeError, match="Sequential has no submodule `7` \\(looking up '3.7'\\)"):
        model.get_submodule("3.7")


def test_zero_grad_set_to_none_false_keeps_zero_arrays():
    model = _model()
    out = model(np.ones((5, 3), np.float32))
    model.backward(np.ones_like(out))
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == p.dtype and not p.grad.any()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("args,kwargs", [(("cpu",), {}), (("numpy",), {}), ((), {"device": "cpu"}),
                                         (("cpu", np.float64), {}), ((np.float64,), {}), (("float64",), {}),
                                         ((), {"dtype": np.float64})])
def test_to_accepts_pytorch_forms(args, kwargs):
    model = _model()
    assert model.to(*args, **kwargs) is model
    wants64 = np.float64 in args or "float64" in args or kwargs.get("dtype") is np.float64
    assert model[0].weight.dtype == (np.float64 if wants64 else np.float32)
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    assert isinstance(model[0].weight.data, np.ndarray)
    assert model.cpu() is model


def test_to_a_torch_device_and_unknown_devices():
    torch = torch_or_skip()
    model = _model().to(torch.device("cpu"))
    assert isinstance(model[0].weight.data, np.ndarray)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model.to(device="tpu")


def test_to_cuda_without_cupy_says_how_to_get_it():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: the GPU path is tested in test_gpu.py")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        _model().cuda()


def test_parameter_behaves_like_its_array():
    p = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert p.numel() == 6 and len(p) == 2
    np.testing.assert_array_equal(p[1], [3.0, 4.0, 5.0])
    a = np.asarray(p)
    assert a.dtype == np.float32 and a.shape == (2, 3) and a.dtype != object
    assert np.asarray(p, dtype=np.float64).dtype == np.float64


# ----------------------------------------------------------------------------- ModuleDict, ParameterList, Unflatten


def test_module_dict_registers_and_behaves_like_a_dict():
    heads = nn.ModuleDict({"cls": nn.Linear(3, 2), "box": nn.Linear(3, 4)})
    heads["extra"] = nn.ReLU()
    assert list(heads) == ["cls", "box", "extra"] and len(heads) == 3 and "box" in heads
    assert list(heads.state_dict()) == ["cls.weight", "cls.bias", "box.weight", "box.bias"]
    assert isinstance(heads.pop("extra"), nn.ReLU) and "extra" not in heads
    assert [k for k, _ in heads.items()] == ["cls", "box"]
    with pytest.raises(TypeError, match="expected a Module"):
        heads["bad"] = 3
    with pytest.raises(KeyError, match="would hide the method ModuleDict.keys"):
        heads["keys"] = nn.ReLU()
    with pytest.raises(KeyError, match="keys must be non-empty strings"):
        heads["a.b"] = nn.ReLU()


def test_module_dict_and_parameter_list_match_pytorch_state_dict_keys():
    torch = torch_or_skip()
    ours = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Sequential(nn.Linear(3, 1))})
    ref = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 3), "b": torch.nn.Sequential(torch.nn.Linear(3, 1))})
    assert list(ours.state_dict()) == list(ref.state_dict())
    plist = nn.ParameterList([np.zeros(3, np.float32), nn.Parameter(np.ones((2, 2), np.float32))])
    tlist = torch.nn.ParameterList([torch.zeros(3), torch.ones(2, 2)])
    assert list(plist.state_dict()) == list(tlist.state_dict())
    assert repr(ours) == repr(ref)


def test_parameter_list_is_trained_by_its_owner():
    class Scales(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([np.full(3, 2.0), np.full(3, 3.0)])

        def forward(self, x):
            self.save_for_backward(x)
            return x * self.scales[0].data * self.scales[1].data

        def backward(self, dout):
            x = self.pop_saved()
            a, b = self.scales
            a.accumulate_grad((dout * x * b.data).sum(axis=0))
            b.accumulate_grad((dout * x * a.data).sum(axis=0))
            return dout * a.data * b.data

    m = Scales()
    assert [n for n, _ in m.named_parameters()] == ["scales.0", "scales.1"] and len(m.scales) == 2
    check_module(m, np.random.default_rng(0).standard_normal((4, 3))).assert_ok()


@pytest.mark.parametrize("dim,size,shape", [(1, (3, 4), (2, 12)), (-1, (2, -1), (2, 3, 6)), (0, (2, 1), (2, 5))])
def test_unflatten_gradcheck_and_pytorch(rng, dim, size, shape):
    x = rng.standard_normal(shape)
    layer = nn.Unflatten(dim, size)
    check_module(layer, x).assert_ok()
    torch = torch_or_skip()
    ref = torch.nn.Unflatten(dim, size)
    assert tuple(layer(x).shape) == tuple(ref(torch.from_numpy(x)).shape)
    np.testing.assert_array_equal(layer(x), ref(torch.from_numpy(x)).numpy())
    assert repr(layer) == repr(ref)


def test_unflatten_errors():
    with pytest.raises(ValueError, match="cannot split dimension 1 of size 12 .* into \\(5, 2\\)"):
        nn.Unflatten(1, (5, 2))(np.zeros((2, 12)))
    with pytest.raises(ValueError, match="at most one -1"):
        nn.Unflatten(1, (-1, -1))
    with pytest.raises(TypeError, match="tuple of ints"):
        nn.Unflatten(1, 3)


# ----------------------------------------------------------------------------- print(model) is PyTorch's text


def _pairs(t):
    return [
        (nn.BatchNorm1d(4), t.BatchNorm1d(4)),
        (nn.BatchNorm2d(3, momentum=None, affine=False), t.BatchNorm2d(3, momentum=None, affine=False)),
        (nn.BatchNorm2d(3, bias=False), t.BatchNorm2d(3, bias=False)),
        (nn.BatchNorm1d(5, eps=1e-3, track_running_stats=False), t.BatchNorm1d(5, eps=1e-3, track_running_stats=False)),
        (nn.LayerNorm(6), t.LayerNorm(6)),
        (nn.LayerNorm((2, 3), bias=False), t.LayerNorm((2, 3), bias=False)),
        (nn.LayerNorm(4, elementwise_affine=False), t.LayerNorm(4, elementwise_affine=False)),
        (nn.GroupNorm(2, 4), t.GroupNorm(2, 4)), (nn.GroupNorm(1, 3, affine=False), t.GroupNorm(1, 3, affine=False)),
        (nn.GroupNorm(2, 4, bias=False), t.GroupNorm(2, 4, bias=False)),
        (nn.LocalResponseNorm(5), t.LocalResponseNorm(5)),
        (nn.Dropout(), t.Dropout()), (nn.Dropout2d(0.1, inplace=True), t.Dropout2d(0.1, inplace=True)),
        (nn.ReLU(), t.ReLU()), (nn.ReLU(inplace=True), t.ReLU(inplace=True)), (nn.ReLU6(), t.ReLU6()),
        (nn.LeakyReLU(), t.LeakyReLU()), (nn.LeakyReLU(0.2, True), t.LeakyReLU(0.2, True)),
        (nn.ELU(), t.ELU()), (nn.ELU(inplace=True), t.ELU(inplace=True)), (nn.SiLU(), t.SiLU()),
        (nn.SiLU(True), t.SiLU(True)), (nn.Hardswish(), t.Hardswish()), (nn.Hardswish(True), t.Hardswish(True)),
        (nn.GELU(), t.GELU()), (nn.GELU("tanh"), t.GELU("tanh")), (nn.Sigmoid(), t.Sigmoid()), (nn.Tanh(), t.Tanh()),
        (nn.Softmax(dim=1), t.Softmax(dim=1)), (nn.LogSoftmax(dim=-1), t.LogSoftmax(dim=-1)),
        (nn.Linear(3, 4), t.Linear(3, 4)), (nn.Linear(3, 4, bias=False), t.Linear(3, 4, bias=False)),
        (nn.Flatten(), t.Flatten()), (nn.Unflatten(1, (2, 5)), t.Unflatten(1, (2, 5))), (nn.Identity(), t.Identity()),
        (nn.CrossEntropyLoss(), t.CrossEntropyLoss()), (nn.MSELoss(), t.MSELoss()), (nn.NLLLoss(), t.NLLLoss()),
        (nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Dropout(0.2))),
         t.Sequential(t.Linear(2, 2), t.Sequential(t.ReLU(), t.Dropout(0.2)))),
        (nn.ModuleList([nn.ReLU(), nn.Tanh()]), t.ModuleList([t.ReLU(), t.Tanh()])),
        (nn.ModuleDict({"a": nn.SiLU()}), t.ModuleDict({"a": t.SiLU()})),
    ]


def test_reprs_match_pytorch():
    torch = torch_or_skip()
    for ours, ref in _pairs(torch.nn):
        assert repr(ours) == repr(ref)


# ----------------------------------------------------------------------------- constructor arguments


@pytest.mark.parametrize("make,error,match", [
    (lambda: nn.BatchNorm1d(4, eps=-1), ValueError, "BatchNorm1d: eps must be a finite number with 0.0 < eps, got -1"),
    (lambda: nn.BatchNorm2d(4, eps=0), ValueError, "BatchNorm2d: eps must be a finite number with 0.0 < eps"),
    (lambda: nn.BatchNorm2d(4, momentum=1.5), ValueError,
     "BatchNorm2d: momentum must be a finite number with 0.0 <= momentum <= 1.0, got 1.5"),
    (lambda: nn.BatchNorm2d(4, momentum=float("nan")), ValueError, "momentum must be a finite number"),
    (lambda: nn.BatchNorm1d(0), ValueError, "BatchNorm1d: num_features must be an integer >= 1, got 0"),
    (lambda: nn.BatchNorm1d(2.5), TypeError, "BatchNorm1d: num_features must be an integer >= 1, got 2.5"),
    (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape entries must be an integer >= 1"),
    (lambda: nn.LayerNorm(()), TypeError, "LayerNorm: normalized_shape must be an int or a non-empty tuple"),
    (lambda: nn.LayerNorm(4, eps=float("inf")), ValueError, "LayerNorm: eps must be a finite number"),
    (lambda: nn.GroupNorm(0, 4), ValueError, "GroupNorm: num_groups must be an integer >= 1, got 0"),
    (lambda: nn.GroupNorm(3, 4), ValueError, "num_channels \\(4\\) must be divisible by num_groups \\(3\\)"),
    (lambda: nn.GroupNorm(2, 4, eps=-1e-5), ValueError, "GroupNorm: eps must be a finite number with 0.0 < eps"),
    (lambda: nn.LocalResponseNorm(0), ValueError, "LocalResponseNorm: size must be an integer >= 1"),
    (lambda: nn.Dropout(1.5), ValueError, "Dropout: p must be a finite number with 0.0 <= p <= 1.0, got 1.5"),
    (lambda: nn.Dropout2d(float("nan")), ValueError, "Dropout2d: p must be a finite number"),
    (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features must be an integer >= 1, got 0"),
    (lambda: nn.Linear(3, -2), ValueError, "Linear: out_features must be an integer >= 1, got -2"),
    (lambda: nn.Linear(2.5, 3), TypeError, "Linear: in_features must be an integer >= 1, got 2.5"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError,
     "CrossEntropyLoss: label_smoothing must be a finite number with 0.0 <= label_smoothing <= 1.0, got 1.5"),
    (lambda: nn.CrossEntropyLoss(ignore_index=-100.5), TypeError, "CrossEntropyLoss: ignore_index must be an integer"),
    (lambda: nn.MSELoss(reduction="avg"), ValueError, "MSELoss: reduction must be one of"),
])
def test_constructor_arguments_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_batchnorm_without_bias_trains_only_the_scale(rng, float64):
    layer = nn.BatchNorm1d(3, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    check_module(layer, rng.standard_normal((5, 3))).assert_ok()
    check_module(nn.GroupNorm(2, 4, bias=False), rng.standard_normal((2, 4, 3))).assert_ok()


def test_block_and_container_arguments_are_validated():
    with pytest.raises(ValueError, match="SqueezeExcitation: reduction must be an integer >= 1, got 0"):
        nn.SqueezeExcitation(8, reduction=0)
    with pytest.raises(TypeError, match="Flatten: start_dim must be an int"):
        nn.Flatten(start_dim=1.0)


# ----------------------------------------------------------------------------- the new pieces on CuPy


@pytest.mark.gpu
@pytest.mark.parametrize("make,shape", [(lambda: nn.Upsample(scale_factor=2), (1, 2, 3, 4)),
                                        (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), (1, 2, 3, 4)),
                                        (lambda: nn.Upsample(size=5, mode="linear", align_corners=True), (1, 2, 3)),
                                        (lambda: nn.SiLU(), (3, 4)), (lambda: nn.Hardswish(), (3, 4)),
                                        (lambda: nn.Unflatten(1, (2, 3)), (2, 6))])
def test_new_layers_on_cupy_match_numpy(make, shape):
    from conftest import cupy_or_skip

    cupy_or_skip()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    layer = make()
    out = layer(x)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    with npcnn.use_backend("cupy"):
        out_gpu = layer(npcnn.backend.asarray(x))
        dx_gpu = layer.backward(npcnn.backend.asarray(dout))
        assert out_gpu.dtype == np.float32 and dx_gpu.dtype == np.float32
    np.testing.assert_allclose(npcnn.backend.to_numpy(out_gpu), out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(npcnn.backend.to_numpy(dx_gpu), dx, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_weighted_cross_entropy_and_to_cuda_on_cupy():
    from conftest import cupy_or_skip

    cupy_or_skip()
    rng = np.random.default_rng(0)
    logits, y, w = rng.standard_normal((5, 3)), np.array([0, 1, 2, 1, 0]), np.array([0.5, 1.0, 2.0])
    cpu = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)
    value = cpu(logits, y)
    grad = cpu.backward()
    gpu = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1).to("cuda")
    with npcnn.use_backend("cupy"):
        value_gpu = gpu(npcnn.backend.asarray(logits), npcnn.backend.asarray(y))
        grad_gpu = gpu.backward()
    assert value_gpu.item() == pytest.approx(value.item(), rel=1e-12)
    np.testing.assert_allclose(npcnn.backend.to_numpy(grad_gpu), grad, rtol=1e-12)
    model = _model().to("cuda")
    assert npcnn.backend.is_cupy_array(model[0].weight.data) and npcnn.backend.is_cupy_array(model[1].running_mean)
    assert np.asarray(model[0].weight).shape == (4, 3)
    assert isinstance(model.cpu()[0].weight.data, np.ndarray)
