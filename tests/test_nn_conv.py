"""Conv2d, Conv1d and ConvTranspose2d layers: gradient checks, options, errors, PyTorch oracle."""

import numpy as np
import pytest
from conftest import noncontiguous, torch_or_skip

import npcnn
from npcnn import nn
from npcnn.gradcheck import check_module
from npcnn.nn.conv import choose_algorithm


# ----------------------------------------------------------------------------- gradient checks

CONV2D_CASES = [
    # (constructor kwargs, input shape)
    (dict(in_channels=3, out_channels=4, kernel_size=3), (2, 3, 6, 7)),
    (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1), (1, 3, 7, 6)),  # batch 1, odd
    (dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
     (2, 2, 8, 5)),
    (dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2), (2, 4, 5, 5)),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4, bias=False), (2, 4, 5, 6)),  # depthwise
    (dict(in_channels=4, out_channels=3, kernel_size=1), (2, 4, 5, 5)),  # pointwise fast path
    (dict(in_channels=2, out_channels=3, kernel_size=4, padding="same"), (2, 2, 6, 5)),  # even kernel: asymmetric
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="same", dilation=2), (1, 2, 7, 6)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="valid"), (2, 2, 5, 5)),
]


@pytest.mark.parametrize("kwargs,shape", CONV2D_CASES)
def test_conv2d_gradcheck(float64, rng, kwargs, shape):
    layer = nn.Conv2d(**kwargs, algo="im2col")
    check_module(layer, rng.standard_normal(shape)).assert_ok()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [(2, 1), "same"])
def test_conv2d_padding_modes_gradcheck(float64, rng, mode, padding):
    layer = nn.Conv2d(2, 3, kernel_size=(3, 4), padding=padding, padding_mode=mode)
    check_module(layer, rng.standard_normal((2, 2, 5, 6))).assert_ok()


def test_conv2d_noncontiguous_input(float64, rng):
    layer = nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
    x = rng.standard_normal((2, 3, 7, 7))
    xn = noncontiguous(x)
    np.testing.assert_allclose(layer(xn), layer(x), rtol=1e-12, atol=1e-12)
    check_module(layer, xn).assert_ok()


@pytest.mark.parametrize("kwargs,shape", CONV2D_CASES[:4])
def test_direct_matches_im2col(float64, rng, kwargs, shape):
    fast, direct = nn.Conv2d(**kwargs, algo="im2col"), nn.Conv2d(**kwargs, algo="direct")
    direct.load_state_dict(fast.state_dict())
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(direct(x), fast(x), rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(fast(x).shape)
    np.testing.assert_allclose(direct.backward(dout), fast.backward(dout), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(direct.weight.grad, fast.weight.grad, rtol=1e-10, atol=1e-10)
    assert direct.algo_used == "direct" and fast.algo_used == "im2col"
    check_module(direct, x).assert_ok()


@pytest.mark.parametrize("kwargs,shape", [
    (dict(in_channels=3, out_channels=4, kernel_size=3), (2, 3, 9)),
    (dict(in_channels=4, out_channels=2, kernel_size=2, stride=2, padding=1, dilation=2, groups=2), (1, 4, 10)),
    (dict(in_channels=2, out_channels=3, kernel_size=4, padding="same", padding_mode="reflect"), (2, 2, 7)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=2, padding_mode="circular"), (2, 2, 5)),
])
def test_conv1d_gradcheck(float64, rng, kwargs, shape):
    layer = nn.Conv1d(**kwargs)
    check_module(layer, rng.standard_normal(shape)).assert_ok()
    assert layer.weight.shape == (kwargs["out_channels"], kwargs["in_channels"] // kwargs.get("groups", 1),
                                  kwargs["kernel_size"])


@pytest.mark.parametrize("kwargs,shape", [
    (dict(in_channels=3, out_channels=2, kernel_size=3), (2, 3, 4, 5)),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, output_padding=1, groups=2),
     (1, 4, 3, 4)),
    (dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, dilation=2, output_padding=1, bias=False),
     (2, 2, 3, 3)),
])
def test_conv_transpose2d_gradcheck(float64, rng, kwargs, shape):
    check_module(nn.ConvTranspose2d(**kwargs), rng.standard_normal(shape)).assert_ok()


# ----------------------------------------------------------------------------- properties


def test_shapes_and_init():
    layer = nn.Conv2d(6, 16, 5)
    assert layer.weight.shape == (16, 6, 5, 5) and layer.bias.shape == (16,)
    bound = 1.0 / np.sqrt(6 * 25)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound  # uniform over the whole range
    assert list(layer.state_dict()) == ["weight", "bias"]
    t = nn.ConvTranspose2d(8, 6, 3, groups=2)
    assert t.weight.shape == (8, 3, 3, 3)
    out = nn.Conv2d(3, 8, 3, stride=2, padding=1)(np.zeros((2, 3, 15, 16), np.float32))
    assert out.shape == (2, 8, 8, 8)
    assert nn.Conv2d(3, 4, 4, padding="same")(np.zeros((1, 3, 7, 6), np.float32)).shape == (1, 4, 7, 6)


def test_adjoint_identity_conv_and_conv_transpose(float64, rng):
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    convt = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False)
    convt.weight.data = conv.weight.data  # conv weight (out=6, in/g=2) is convT weight (in=6, out/g=2)
    x = rng.standard_normal((2, 4, 8, 8))
    y = rng.standard_normal((2, 6, 4, 4))
    cx, ty = conv(x), convt(y)
    assert cx.shape == y.shape and ty.shape == x.shape
    np.testing.assert_allclose((cx * y).sum(), (x * ty).sum(), rtol=1e-12)


def test_float32_stays_float32_and_dout_untouched(rng):
    for layer, shape in ((nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (2, 3, 5, 5)),
                         (nn.Conv2d(4, 2, 1), (2, 4, 3, 3)), (nn.Conv1d(3, 4, 3), (2, 3, 7)),
                         (nn.ConvTranspose2d(3, 4, 3, stride=2), (2, 3, 4, 4))):
        x = rng.standard_normal(shape).astype(np.float32)
        out = layer(x)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        before = dout.copy()
        dx = layer.backward(dout)
        assert out.dtype == dx.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == np.float32
        assert dx.shape == x.shape and np.array_equal(dout, before)


def test_frozen_weight_gets_no_gradient(rng):
    layer = nn.Conv2d(3, 4, 3)
    layer.weight.requires_grad = False
    layer(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    layer.backward(np.ones((2, 4, 3, 3), np.float32))
    assert layer.weight.grad is None and layer.bias.grad is not None


def test_no_grad_keeps_no_cache(rng):
    layer = nn.Conv2d(3, 4, 3)
    with npcnn.no_grad():
        layer(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    with pytest.raises(RuntimeError, match="forward pass first"):
        layer.backward(np.ones((2, 4, 3, 3), np.float32))


# ----------------------------------------------------------------------------- algorithm choice


def test_auto_picks_im2col_for_small_kernels(rng):
    layer = nn.Conv2d(3, 4, 3, padding=1)
    assert layer.algo_used is None
    layer(rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
    assert layer.algo_used == "im2col"
    assert choose_algorithm("auto", (7, 7), (2, 2), (1, 1), 1) == "im2col"   # strided stem
    assert choose_algorithm("auto", (7, 7), (1, 1), (1, 1), 2) == "im2col"   # grouped
    assert choose_algorithm("auto", (7, 7), (1, 1), (2, 2), 1) == "im2col"   # dilated
    assert choose_algorithm("direct", (7, 7), (1, 1), (1, 1), 1) == "direct"


def test_auto_picks_fft_for_large_kernels(rng):
    assert choose_algorithm("auto", (7, 7), (1, 1), (1, 1), 1) == "fft"
    layer = nn.Conv2d(2, 3, 7, padding=3)
    layer(rng.standard_normal((1, 2, 12, 12)).astype(np.float32))
    assert layer.algo_used == "fft"


def test_fft_matches_im2col(float64, rng):
    fft, ref = nn.Conv2d(3, 4, 5, padding=2, algo="fft"), nn.Conv2d(3, 4, 5, padding=2, algo="im2col")
    fft.load_state_dict(ref.state_dict())
    x = rng.standard_normal((2, 3, 9, 8))
    np.testing.assert_allclose(fft(x), ref(x), rtol=1e-10, atol=1e-10)
    check_module(fft, x).assert_ok()


def test_conv1d_fft_matches_im2col(float64, rng):
    fft, ref = nn.Conv1d(3, 4, 7, padding=3, algo="fft"), nn.Conv1d(3, 4, 7, padding=3, algo="im2col")
    fft.load_state_dict(ref.state_dict())
    x = rng.standard_normal((2, 3, 20))
    np.testing.assert_allclose(fft(x), ref(x), rtol=1e-10, atol=1e-10)
    assert nn.Conv1d(3, 4, 7).algo == "auto" and choose_algorithm("auto", (7,), (1,), (1,), 1) == "fft"
    check_module(fft, x).assert_ok()


# ----------------------------------------------------------------------------- errors


def test_errors(rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="Conv2d: .*divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: expected input of shape \(N, C, H, W\).*add the batch axis"):
        nn.Conv2d(3, 4, 3)(x[0])
    with pytest.raises(ValueError, match="Conv2d: expected in_channels"):
        nn.Conv2d(4, 4, 3)(x)
    with pytest.raises(ValueError, match="Conv2d: kernel .* larger than the padded input"):
        nn.Conv2d(3, 4, 7, padding=0)(x)
    with pytest.raises(ValueError, match="Conv2d: kernel .* larger than the padded input"):
        nn.Conv2d(3, 4, 3, dilation=3)(x)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="algo"):
        nn.Conv2d(3, 4, 3, algo="strassen")
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding"):
        nn.ConvTranspose2d(3, 4, 3, stride=1, dilation=1, output_padding=1)
    with pytest.raises(ValueError, match=r"Conv1d: expected input of shape \(N, C, L\)"):
        nn.Conv1d(3, 4, 3)(x)
    with pytest.raises(ValueError, match="Conv2d: reflect padding"):
        nn.Conv2d(3, 4, 3, padding=5, padding_mode="reflect")(x)
    with pytest.raises(TypeError, match="Conv2d: input dtype float64"):
        nn.Conv2d(3, 4, 3)(x.astype(np.float64))


def test_repr():
    assert repr(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)) == \
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"


# ----------------------------------------------------------------------------- PyTorch oracle


def _torch_layer(torch, layer, dtype):
    kind = {"Conv2d": torch.nn.Conv2d, "Conv1d": torch.nn.Conv1d, "ConvTranspose2d": torch.nn.ConvTranspose2d}
    cls = kind[type(layer).__name__]
    kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias is not None, padding_mode=layer.padding_mode,
                  dtype=torch.float64 if dtype == np.float64 else torch.float32)
    if cls is torch.nn.ConvTranspose2d:
        kwargs["output_padding"] = layer.output_padding
    t = cls(layer.in_channels, layer.out_channels, layer.kernel_size, **kwargs)
    t.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in layer.state_dict().items()})
    return t


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 8)),
    (lambda: nn.Conv2d(4, 6, (3, 2), padding=(2, 1), dilation=(1, 2), groups=2, padding_mode="reflect"),
     (2, 4, 6, 7)),
    (lambda: nn.Conv2d(2, 3, 4, padding="same", padding_mode="circular"), (1, 2, 6, 5)),
    (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode="replicate"), (2, 4, 5, 5)),
    (lambda: nn.Conv2d(8, 4, 1, bias=False), (2, 8, 6, 6)),
    (lambda: nn.Conv1d(3, 4, 4, padding="same", padding_mode="reflect"), (2, 3, 9)),
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 4, 5)),
])
def test_matches_torch(rng, dtype, tol, make, shape):
    torch = torch_or_skip()
    with npcnn.backend.default_dtype(dtype):
        layer = make()
    t = _torch_layer(torch, layer, dtype)
    x = rng.standard_normal(shape).astype(dtype)
    out = layer(x)
    tx = torch.tensor(x, requires_grad=True)
    tout = t(tx)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.weight.grad, t.weight.grad.numpy(), rtol=tol, atol=tol)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, t.bias.grad.numpy(), rtol=tol, atol=tol)
    assert set(layer.state_dict()) == set(t.state_dict())


# ----------------------------------------------------------------------------- regressions (issue 14)


@pytest.mark.parametrize("kwargs,shape", [
    (dict(in_channels=5, out_channels=4, kernel_size=1, stride=3, padding=(0, 1)), (1, 5, 3, 1)),
    (dict(in_channels=3, out_channels=6, kernel_size=(4, 2), stride=1, padding=2, dilation=3), (3, 3, 13, 1)),
    (dict(in_channels=3, out_channels=3, kernel_size=2, stride=4, padding=(2, 1), groups=3, bias=False),
     (1, 3, 1, 7)),
])
def test_fft_exact_where_windows_read_only_padding(float64, rng, kwargs, shape):
    """Issue 14's three configurations: algo="fft" gave rounding noise where the answer is 0."""
    fft, ref = nn.Conv2d(**kwargs, algo="fft"), nn.Conv2d(**kwargs, algo="im2col")
    fft.load_state_dict(ref.state_dict())
    x = rng.standard_normal(shape)
    expected = ref(x)
    np.testing.assert_allclose(fft(x), expected, rtol=1e-10, atol=1e-300)
    dout = rng.standard_normal(expected.shape)
    np.testing.assert_allclose(fft.backward(dout), ref.backward(dout), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(fft.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("make,shape", [(lambda: nn.Conv2d(2, 3, 7, padding=3), (2, 2, 12, 12)),
                                        (lambda: nn.Conv1d(2, 3, 7, padding=3), (2, 2, 16))])
def test_auto_takes_im2col_for_non_finite_input(float64, rng, make, shape):
    """One inf pixel: "auto" must give im2col's answer (inf/NaN only in its receptive field)."""
    layer = make()
    x = rng.standard_normal(shape)
    with npcnn.no_grad():
        layer(x)
    assert layer.algo_used == "fft"
    x[(0, 1) + tuple(s // 2 for s in shape[2:])] = np.inf
    with np.errstate(invalid="ignore"), npcnn.no_grad():
        out = layer(x)
    assert layer.algo_used == "im2col"
    ref = make()
    ref.load_state_dict(layer.state_dict())
    ref.algo = "im2col"
    with np.errstate(invalid="ignore"), npcnn.no_grad():
        np.testing.assert_array_equal(out, ref(x))
    assert np.isfinite(out[1]).all() and np.isfinite(out[0]).any() and not np.isfinite(out[0]).all()


# ----------------------------------------------------------------------------- constructor checks (issue 15)


@pytest.mark.parametrize("error,cls,args,kwargs,message", [
    (ValueError, nn.Conv2d, (3, 4, 0), {}, r"Conv2d: kernel_size must be >= 1, got 0"),
    (ValueError, nn.Conv2d, (3, 4, -2), {}, r"Conv2d: kernel_size must be >= 1, got -2"),
    (ValueError, nn.Conv2d, (0, 4, 3), {}, r"Conv2d: in_channels must be an int >= 1, got 0"),
    (ValueError, nn.Conv2d, (3, -1, 3), {}, r"Conv2d: out_channels must be an int >= 1, got -1"),
    (TypeError, nn.Conv2d, (3, 4, 3), {"stride": 2.5}, r"Conv2d: stride must be an int or a tuple of 2 ints, got 2.5"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"stride": 0}, r"Conv2d: stride must be >= 1, got 0"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"dilation": (1, 0)}, r"Conv2d: dilation must be >= 1, got \(1, 0\)"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"padding": -1}, r"Conv2d: padding must be >= 0, got -1"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"padding": "full"}, r"Conv2d: padding must be an int, a tuple, 'same' or"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"padding": (1, 2, 3)}, r"Conv2d: padding must be an int, 2 ints"),
    (ValueError, nn.Conv2d, (3, 4, (3, 3, 3)), {}, r"Conv2d: kernel_size must be an int or a tuple of 2 ints"),
    (ValueError, nn.Conv2d, (4, 6, 3), {"groups": 0}, r"Conv2d: groups must be an int >= 1, got 0"),
    (ValueError, nn.Conv2d, (4, 6, 3), {"groups": 4}, r"Conv2d: in_channels \(4\) and out_channels \(6\) must both be "
                                          r"divisible by groups \(4\)"),
    (ValueError, nn.Conv2d, (3, 4, 3), {"padding_mode": "mirror"}, r"Conv2d: padding_mode must be one of"),
    (ValueError, nn.Conv1d, (3, 4, 0), {}, r"Conv1d: kernel_size must be >= 1, got 0"),
    (ValueError, nn.Conv1d, (3, 4, 3), {"stride": (1, 1)}, r"Conv1d: stride must be an int, got \(1, 1\)"),
    (ValueError, nn.Conv1d, (3, 4, 3), {"padding": "half"}, r"Conv1d: padding must be an int, a tuple, 'same'"),
    (ValueError, nn.ConvTranspose2d, (3, 4, 0), {}, r"ConvTranspose2d: kernel_size must be >= 1, got 0"),
    (ValueError, nn.ConvTranspose2d, (3, 4, 3), {"padding": -1}, r"ConvTranspose2d: padding must be >= 0, got -1"),
    (TypeError, nn.ConvTranspose2d, (3, 4, 3), {"padding": "same"}, r"ConvTranspose2d: padding must be an int or a"),
    (TypeError, nn.ConvTranspose2d, (3, 4, 3), {"stride": 1.5}, r"ConvTranspose2d: stride must be an int or a tuple"),
    (ValueError, nn.ConvTranspose2d, (3, 4, 3), {"output_padding": -1}, r"ConvTranspose2d: output_padding .* >= 0"),
    (ValueError, nn.ConvTranspose2d, (3, 4, 3), {"padding_mode": "reflect"}, r"ConvTranspose2d: only padding_mode="),
    (ValueError, nn.ConvTranspose2d, (3, 4, 3), {"groups": 2}, r"ConvTranspose2d: in_channels \(3\) and out"),
])
def test_constructor_errors_name_class_argument_and_allowed_values(error, cls, args, kwargs, message):
    with pytest.raises(error, match=message):
        cls(*args, **kwargs)


def test_large_single_sample_is_banded_in_the_layer(float64, rng):
    """A layer on one sample whose columns exceed the buffer cap gives the same answer in bands."""
    from npcnn.functional import conv as F

    layer = nn.Conv2d(3, 4, 5, padding=2, algo="im2col")
    x = rng.standard_normal((1, 3, 20, 20))
    ref = layer(x)
    dx_ref = layer.backward(np.ones_like(ref))
    previous = F.get_max_buffer_bytes()
    try:
        F.set_max_buffer_bytes(20_000)  # the sample's columns: 75 x 20 x 24 x 8 = 288 KB
        out = layer(x)
        dx = layer.backward(np.ones_like(out))
    finally:
        F.set_max_buffer_bytes(previous)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer,expected", [
    (lambda t: t.Conv2d(3, 8, 3), "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"),
    (lambda t: t.Conv2d(3, 8, (3, 2), stride=2, padding=1, dilation=2, groups=1, bias=False,
                        padding_mode="reflect"), None),
    (lambda t: t.Conv2d(4, 8, 4, padding="same", groups=2), None),
    (lambda t: t.Conv2d(4, 8, 3, padding="valid"), None),
    (lambda t: t.Conv1d(2, 3, 5, stride=2, padding=2, padding_mode="circular"), None),
    (lambda t: t.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1), None),
    (lambda t: t.ConvTranspose2d(6, 4, 3, dilation=2, bias=False), None),
])
def test_repr_matches_pytorch(layer, expected):
    mine = repr(layer(nn))
    if expected is not None:
        assert mine == expected
    torch = torch_or_skip()
    assert mine == repr(layer(torch.nn))
