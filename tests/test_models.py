"""Model zoo: parameter counts against the papers / torchvision, state_dict layouts, output
shapes, float64 gradient checks of every block type, PyTorch oracles, end-to-end training."""

import copy

import numpy as np
import pytest
from conftest import noncontiguous, torch_or_skip

import npcnn
from npcnn import models, nn
from npcnn.gradcheck import check_module

# ----------------------------------------------------------------------------- parameter counts

# torchvision's counts (trainable parameters, 1000 classes) and the CIFAR nets of He et al. sec. 4.2
COUNTS = {
    "lenet5": 61_706,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "se_resnet50": 28_088_024,  # SENet paper Table 7: 28.09M
    "mobilenet_v2": 3_504_872,
    "resnet20": 269_722,  # 0.27M
    "resnet32": 464_154,  # 0.46M
    "resnet44": 658_586,  # 0.66M
    "resnet56": 853_018,  # 0.85M
    "resnet110": 1_727_962,  # 1.7M
    "plain20": 269_722,  # option A shortcuts have no parameters: same counts
    "plain32": 464_154,
    "plain44": 658_586,
    "plain56": 853_018,
    "plain110": 1_727_962,
    "fcn_tiny": 153_430,
}
# over 40M parameters: a few seconds each to build, so outside the default run
BIG_COUNTS = {
    "alexnet": 61_100_840,
    "zfnet": 62_357_608,  # conv 96x3x7x7, 256x96x5x5, 384x256x3x3, 384x384x3x3, 256x384x3x3; fc 9216-4096-4096-1000
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count(name):
    model = models.get_model(name)
    assert model.num_parameters() == COUNTS[name]
    assert model.num_parameters(trainable_only=True) == COUNTS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BIG_COUNTS))
def test_parameter_count_big(name):
    assert models.get_model(name).num_parameters() == BIG_COUNTS[name]


def test_zfnet_count_matches_the_papers_layer_table():
    # built from the paper's Fig. 3 layer by layer (conv: out * (in * k * k + 1); fc: out * (in + 1))
    convs = [(96, 3, 7), (256, 96, 5), (384, 256, 3), (384, 384, 3), (256, 384, 3)]
    fcs = [(4096, 256 * 6 * 6), (4096, 4096), (1000, 4096)]
    expected = sum(o * (i * k * k + 1) for o, i, k in convs) + sum(o * (i + 1) for o, i in fcs)
    assert expected == BIG_COUNTS["zfnet"]


@pytest.mark.slow
def test_vgg_batch_norm_adds_four_numbers_per_channel_two_trainable():
    # vgg11 has 8 convolutions with 64 + 128 + 256 * 2 + 512 * 4 = 2752 channels
    with_bn = models.vgg11(num_classes=10, batch_norm=True)
    plain = models.vgg11(num_classes=10)
    assert with_bn.num_parameters() - plain.num_parameters() == 2 * 2752
    assert sum(b.size for b in with_bn.buffers()) == 2 * 2752 + 8  # running mean, var; 8 counters


def test_mlp_counts_and_structure():
    net = models.mlp([2, 3, 3, 1], "tanh")
    assert net.num_parameters() == (2 + 1) * 3 + (3 + 1) * 3 + (3 + 1) * 1 == 25
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    net = models.mlp([4, 8, 2], "relu", output_activation="sigmoid")
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    assert net(np.ones((5, 4), np.float32)).shape == (5, 2)
    with pytest.raises(ValueError, match="unknown activation"):
        models.mlp([2, 3, 2], "swishy")
    with pytest.raises(ValueError, match="at least"):
        models.mlp([2])


def test_cifar_width_argument_scales_channels():
    model = models.resnet20(width=4)
    assert model.conv1.weight.shape == (4, 3, 3, 3)
    assert model.fc.weight.shape == (10, 16)
    assert model(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
    with pytest.raises(ValueError, match="6n"):
        models.CifarResNet(21)


def test_num_classes_and_in_channels_arguments():
    assert models.resnet18(num_classes=7, in_channels=1).conv1.weight.shape == (64, 1, 7, 7)
    assert models.resnet18(num_classes=7).fc.weight.shape == (7, 512)
    assert models.densenet121(num_classes=5, in_channels=4).features.conv0.weight.shape == (64, 4, 7, 7)
    assert models.mobilenet_v2(num_classes=5).classifier[1].weight.shape == (5, 1280)
    assert models.googlenet(num_classes=5, in_channels=1).conv1.conv.weight.shape == (64, 1, 7, 7)
    assert models.lenet5(num_classes=3, in_channels=3).c1.weight.shape == (6, 3, 5, 5)


def test_registry():
    names = models.list_models()
    for expected in ("lenet5", "alexnet", "zfnet", "vgg16", "googlenet", "resnet50", "resnet20", "plain110",
                     "densenet121", "se_resnet50", "mobilenet_v2", "fcn8s", "fcn_tiny"):
        assert expected in names
    assert names == sorted(names)
    model = models.get_model("resnet20", num_classes=3, width=4)
    assert model.fc.weight.shape == (3, 16)
    assert models.input_shape("lenet5") == (1, 32, 32) and models.input_shape("resnet110") == (3, 32, 32)
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        models.get_model("resnet21")


# ----------------------------------------------------------------------------- state_dict layouts


def _conv_bn(prefix, out_c, in_c, k):
    """Keys and shapes of a bias-free conv followed by a BatchNorm, named like torchvision."""
    conv, bn = prefix
    return [(f"{conv}.weight", (out_c, in_c, k, k)),
            (f"{bn}.weight", (out_c,)), (f"{bn}.bias", (out_c,)),
            (f"{bn}.running_mean", (out_c,)), (f"{bn}.running_var", (out_c,)), (f"{bn}.num_batches_tracked", ())]


def _resnet18_expected():
    """torchvision resnet18's state_dict, written out from its definition."""
    keys = _conv_bn(("conv1", "bn1"), 64, 3, 7)
    # (stage, block, in channels, out channels, has downsample)
    blocks = [(1, 0, 64, 64, False), (1, 1, 64, 64, False),
              (2, 0, 64, 128, True), (2, 1, 128, 128, False),
              (3, 0, 128, 256, True), (3, 1, 256, 256, False),
              (4, 0, 256, 512, True), (4, 1, 512, 512, False)]
    for stage, block, c_in, c_out, down in blocks:
        p = f"layer{stage}.{block}"
        keys += _conv_bn((f"{p}.conv1", f"{p}.bn1"), c_out, c_in, 3)
        keys += _conv_bn((f"{p}.conv2", f"{p}.bn2"), c_out, c_out, 3)
        if down:
            keys += _conv_bn((f"{p}.downsample.0", f"{p}.downsample.1"), c_out, c_in, 1)
    keys += [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]
    return keys


def test_resnet18_state_dict_matches_torchvision():
    expected = _resnet18_expected()
    state = models.resnet18().state_dict()
    assert len(state) == len(expected) == 122
    assert sorted(state) == sorted(k for k, _ in expected)
    for key, shape in expected:
        assert tuple(np.shape(state[key])) == shape, key


@pytest.mark.parametrize("name, samples", [
    ("resnet50", {"layer1.0.conv3.weight": (256, 64, 1, 1), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                  "layer2.0.conv2.weight": (128, 128, 3, 3), "layer4.2.bn3.running_var": (2048,),
                  "fc.weight": (1000, 2048)}),
    ("densenet121", {"features.conv0.weight": (64, 3, 7, 7), "features.norm0.running_mean": (64,),
                     "features.denseblock1.denselayer1.norm1.weight": (64,),
                     "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
                     "features.denseblock1.denselayer6.conv2.weight": (32, 128, 3, 3),
                     "features.transition1.conv.weight": (128, 256, 1, 1),
                     "features.denseblock4.denselayer16.norm1.weight": (992,),
                     "features.norm5.weight": (1024,), "classifier.weight": (1000, 1024)}),
    ("mobilenet_v2", {"features.0.0.weight": (32, 3, 3, 3), "features.0.1.running_mean": (32,),
                      "features.1.conv.0.0.weight": (32, 1, 3, 3), "features.1.conv.1.weight": (16, 32, 1, 1),
                      "features.1.conv.2.weight": (16,), "features.2.conv.0.0.weight": (96, 16, 1, 1),
                      "features.2.conv.1.0.weight": (96, 1, 3, 3), "features.2.conv.2.weight": (24, 96, 1, 1),
                      "features.17.conv.3.running_var": (320,), "features.18.0.weight": (1280, 320, 1, 1),
                      "classifier.1.weight": (1000, 1280)}),
    ("googlenet", {"conv1.conv.weight": (64, 3, 7, 7), "conv1.bn.running_mean": (64,),
                   "conv3.conv.weight": (192, 64, 3, 3), "inception3a.branch1.conv.weight": (64, 192, 1, 1),
                   "inception3a.branch2.0.conv.weight": (96, 192, 1, 1),
                   "inception3a.branch2.1.conv.weight": (128, 96, 3, 3),
                   "inception3a.branch3.1.conv.weight": (32, 16, 3, 3),
                   "inception3a.branch4.1.conv.weight": (32, 192, 1, 1),
                   "inception5b.branch4.1.bn.weight": (128,), "fc.weight": (1000, 1024)}),
    ("se_resnet50", {"layer1.0.se.fc1.weight": (16, 256), "layer4.2.se.fc2.weight": (2048, 128),
                     "layer3.5.conv2.weight": (256, 256, 3, 3)}),
])
def test_torchvision_state_dict_keys(name, samples):
    state = models.get_model(name).state_dict()
    for key, shape in samples.items():
        assert tuple(np.shape(state[key])) == shape, key
    key_counts = {"resnet50": 320, "densenet121": 727, "mobilenet_v2": 314, "googlenet": 344}
    if name in key_counts:  # torchvision's len(state_dict()) (googlenet without aux heads)
        assert len(state) == key_counts[name]


@pytest.mark.slow
def test_vgg_and_alexnet_state_dict_keys():
    state = models.vgg16().state_dict()
    convs = [k for k in state if k.startswith("features") and k.endswith("weight")]
    assert convs[0] == "features.0.weight" and convs[-1] == "features.28.weight"
    assert state["classifier.0.weight"].shape == (4096, 25088)
    assert state["classifier.6.weight"].shape == (1000, 4096)
    state = models.alexnet().state_dict()
    assert sorted(state) == sorted(f"{part}.{i}.{p}" for part, idx in (("features", (0, 3, 6, 8, 10)),
                                                                      ("classifier", (1, 4, 6)))
                                   for i in idx for p in ("weight", "bias"))
    assert models.vgg11(batch_norm=True).state_dict()["features.1.running_var"].shape == (64,)


# ----------------------------------------------------------------------------- forward shapes


SMALL = ["lenet5", "resnet20", "plain20", "resnet32", "fcn_tiny"]  # run in the default test run


def _x(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


@pytest.mark.parametrize("name", SMALL)
def test_forward_and_backward_shapes_small(name):
    model = models.get_model(name)
    shape = models.input_shape(name)
    x = _x(shape)
    out = model(x)
    expected = (2, 2, 64, 64) if name == "fcn_tiny" else (2, 10)
    assert out.shape == expected and out.dtype == np.float32
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in model.parameters())


def test_lenet5_on_padded_mnist_size():
    assert models.lenet5(padding=2)(_x((1, 28, 28))).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in models.list_models() if n not in SMALL])
def test_forward_native_size(name):
    model = models.get_model(name).eval()
    shape = models.input_shape(name)
    with npcnn.no_grad():
        out = model(_x(shape, batch=1))
    if name == "fcn8s":
        expected = (1, 21) + shape[1:]  # PASCAL VOC's 21 classes, at every pixel
    else:
        expected = (1, 10 if shape == (3, 32, 32) else 1000)
    assert out.shape == expected
    assert np.isfinite(out).all()


@pytest.mark.slow
def test_zfnet_layer_sizes_follow_the_paper():
    prof = models.profile(models.zfnet(), (3, 224, 224))
    shapes = [r.output_shape for r in prof.rows if r.type in ("Conv2d", "MaxPool2d")]
    assert shapes == [(96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13),
                      (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]


# ----------------------------------------------------------------------------- block gradient checks


def _check(module, x, **kwargs):
    """Gradient check with BatchNorm's affine parameters made random first: at their initial
    gamma = 1, beta = 0 a BN whose input is rescaled by the next BN has an exactly zero gradient,
    which would test nothing."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1.0 + 0.5 * np.random.default_rng(7).standard_normal(m.weight.shape)
            m.bias.data = 0.5 * np.random.default_rng(8).standard_normal(m.bias.shape)
    assert _kink_margin(module, x) > 1e-4, "an activation sits on a ReLU kink: pick another input seed"
    check_module(module, x, max_entries=kwargs.pop("max_entries", 60), **kwargs).assert_ok()


def _kink_margin(module, x):
    """How close any ReLU / ReLU6 input comes to a kink (0, or 6 for ReLU6) on this input:
    central differences across a kink are wrong by O(1), so the checks keep away from them."""
    margins = []

    def hook(layer, inputs, output):
        kinks = (0.0, 6.0) if isinstance(layer, nn.ReLU6) else (0.0,)
        margins.append(min(float(np.abs(inputs[0] - k).min()) for k in kinks))

    probe = copy.deepcopy(module).to(np.float64)
    for m in probe.modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6)):
            m.register_forward_hook(hook)
    with npcnn.no_grad():
        probe(*[np.asarray(a, dtype=np.float64) for a in (x if isinstance(x, tuple) else (x,))])
    return min(margins, default=np.inf)


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("in_c, out_c, stride, h", [(4, 8, 2, 6), (4, 8, 2, 5), (3, 3, 1, 5), (4, 6, 1, 4)])
def test_shortcut_a_forward_and_gradcheck(in_c, out_c, stride, h):
    layer = models.ShortcutA(in_c, out_c, stride)
    x = _rand((2, in_c, h, h + 1))
    out = layer(x)
    front = (out_c - in_c) // 2
    expected = np.zeros((2, out_c) + x[:, :, ::stride, ::stride].shape[2:])
    expected[:, front:front + in_c] = x[:, :, ::stride, ::stride]
    np.testing.assert_array_equal(out, expected)
    assert out.shape[2] == -(-h // stride)  # ceil, like a stride-s 3x3 conv with padding 1
    _check(layer, x, max_entries=None)
    _check(layer, noncontiguous(x[:1]), max_entries=None)
    with pytest.raises(ValueError, match="ShortcutA"):
        layer(_rand((2, in_c + 1, h, h)))


@pytest.mark.parametrize("stride, downsample", [(1, None), (2, "A"), (2, "projection"), (1, "plain")])
def test_basic_block_gradcheck(float64, stride, downsample):
    in_c, out_c = (3, 3) if stride == 1 else (2, 4)
    shortcut = {"A": models.ShortcutA(in_c, out_c, stride),
                "projection": nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_c))}.get(downsample)
    block = models.BasicBlock(in_c, out_c, stride, shortcut, residual=downsample != "plain")
    _check(block, _rand((2, in_c, 5, 4)))


def test_basic_block_gradcheck_eval_mode_batch1_noncontiguous(float64):
    block = models.BasicBlock(3, 3)
    for bn in (block.bn1, block.bn2):  # non-trivial running statistics
        bn.running_mean = _rand(3, seed=1) * 0.1
        bn.running_var = np.abs(_rand(3, seed=2)) + 0.5
    block.eval()
    _check(block, noncontiguous(_rand((1, 3, 4, 5))))


def test_residual_vs_plain_block_differ_by_exactly_the_shortcut():
    block = models.BasicBlock(3, 3).eval()
    plain = models.BasicBlock(3, 3, residual=False).eval()
    plain.load_state_dict(block.state_dict())
    x = _x((3, 4, 4)).astype(np.float32)
    body = plain.bn2(plain.conv2(plain.relu1(plain.bn1(plain.conv1(x)))))
    np.testing.assert_allclose(block(x), np.maximum(body + x, 0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plain(x), np.maximum(body, 0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_bottleneck_gradcheck(float64, stride):
    down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=stride, bias=False), nn.BatchNorm2d(8))
    _check(models.Bottleneck(4, 2, stride, down), _rand((2, 4, 5, 5)))
    _check(models.Bottleneck(8, 2), _rand((2, 8, 3, 4)))  # identity shortcut


def test_se_bottleneck_gradcheck(float64):
    block = models.SEBottleneck(8, 2, reduction=4)
    assert block.se is not None and block.se.fc1.weight.shape == (2, 8)
    _check(block, _rand((2, 8, 4, 3)))


@pytest.mark.parametrize("kernel5", [3, 5])
def test_inception_gradcheck(float64, kernel5):
    block = models.Inception(3, 2, 2, 3, 1, 2, 2, kernel5=kernel5)
    x = _rand((2, 3, 5, 4))
    out = block(x)
    assert out.shape == (2, 2 + 3 + 2 + 2, 5, 4)
    assert block.branch3[1].conv.weight.shape == (2, 1, kernel5, kernel5)
    _check(block, x)


def test_inception_output_is_the_concatenation_of_its_branches():
    block = models.Inception(4, 2, 2, 3, 1, 2, 2).eval()
    x = _x((4, 6, 6))
    branches = [block.branch1(x), block.branch2(x), block.branch3(x), block.branch4(x)]
    np.testing.assert_array_equal(block(x), np.concatenate(branches, axis=1))


def test_dense_layer_block_and_transition_gradcheck(float64):
    layer = models.DenseLayer(3, growth_rate=2, bn_size=2)
    x = _rand((2, 3, 4, 4))
    out = layer(x)
    assert out.shape == (2, 5, 4, 4)
    np.testing.assert_array_equal(out[:, :3], x)  # the input passes through unchanged
    _check(layer, x)
    block = models.dense_block(3, 2, bn_size=2, growth_rate=2)
    assert block(_rand((2, 2, 3, 3))).shape == (2, 2 + 3 * 2, 3, 3)
    _check(block, _rand((2, 2, 3, 3)))
    _check(models.transition(4, 2), _rand((2, 4, 4, 6)))


@pytest.mark.parametrize("inp, oup, stride, t", [(4, 4, 1, 1), (4, 4, 1, 3), (4, 6, 2, 2), (3, 5, 1, 2)])
def test_inverted_residual_gradcheck(float64, inp, oup, stride, t):
    block = models.InvertedResidual(inp, oup, stride, t)
    assert block.use_res_connect == (stride == 1 and inp == oup)
    depthwise = block.conv[-3][0]
    assert depthwise.groups == inp * t and depthwise.weight.shape == (inp * t, 1, 3, 3)
    _check(block, _rand((2, inp, 5, 4), seed=1))


def test_relu6():
    layer = nn.ReLU6()
    x = np.array([-1.0, 0.5, 5.5, 7.0], dtype=np.float32)
    out = layer(x)
    np.testing.assert_array_equal(out, [0.0, 0.5, 5.5, 6.0])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [0, 1, 1, 0])
    _check(layer, np.array([[-1.0, 0.5, 3.0, 5.5, 6.5]]), max_entries=None)


@pytest.mark.parametrize("offset, padding, skip_size", [(0, 1, 6), (2, 0, 12), (1, 0, 11)])
def test_fcn_skip_fusion_gradcheck(float64, offset, padding, skip_size):
    fusion = models.SkipFusion(skip_channels=3, num_classes=2, offset=offset, padding=padding)
    for p in (fusion.score.weight, fusion.score.bias):  # leave the paper's zero init for the check
        nn.init.normal_(p)
    coarse, skip = _rand((2, 2, 3, 3)), _rand((2, 3, skip_size, skip_size), seed=1)
    out = fusion(coarse, skip)
    assert out.shape == (2, 2, 8 - 2 * padding, 8 - 2 * padding)
    check_module(fusion, coarse, skip).assert_ok()
    with pytest.raises(ValueError, match="crop"):
        fusion(coarse, _rand((2, 3, 2, 2)))


def test_fcn_tiny_gradcheck(float64):
    model = models.fcn_tiny(num_classes=2, width=1)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.data.any():  # zero-initialized score layers
            nn.init.normal_(m.weight, 0.0, 0.5)
    _check(model, _rand((1, 3, 32, 32)), max_entries=25)


def test_bilinear_kernel_upsamples_constants_to_constants():
    up = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
    models.bilinear_kernel_(up.weight)
    out = up(np.ones((1, 2, 5, 5), np.float32))
    np.testing.assert_allclose(out[:, :, 1:-1, 1:-1], 1.0, rtol=1e-6)  # interior: exact interpolation
    np.testing.assert_allclose(up.weight.data[0, 0, :, 0], [0.0625, 0.1875, 0.1875, 0.0625])
    assert not up.weight.data[0, 1].any()


# ----------------------------------------------------------------------------- FCN


def _small_classifier():
    """conv(3->4, 3x3) - ReLU - maxpool 2 - conv(4->6, 3x3) - ReLU - flatten - fc 6*5*5 -> 8 - ReLU - fc 8 -> 5
    on 3x16x16 inputs (no padding, so every score is the classifier applied to one window)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 5 * 5, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 5))


def test_convolutionize_same_outputs_at_training_size_and_sliding_windows_at_larger_size():
    model = _small_classifier().eval()
    conv = models.convolutionize(model, (3, 16, 16))
    types = [type(m).__name__ for m in conv]
    assert "Linear" not in types and "Flatten" not in types
    assert conv[5].weight.shape == (8, 6, 5, 5) and conv[-1].weight.shape == (5, 8, 1, 1)
    conv.eval()
    x = _x((3, 16, 16), batch=3)
    np.testing.assert_allclose(conv(x)[:, :, 0, 0], model(x), rtol=1e-5, atol=1e-5)
    big = _x((3, 22, 20), batch=2, seed=1)
    scores = conv(big)
    assert scores.shape == (2, 5, 4, 3)  # total stride 2: (22 - 16) / 2 + 1, (20 - 16) / 2 + 1
    for i in range(4):
        for j in range(3):
            window = big[:, :, 2 * i:2 * i + 16, 2 * j:2 * j + 16]
            np.testing.assert_allclose(scores[:, :, i, j], model(window), rtol=1e-5, atol=1e-5)


def test_convolutionize_lenet5():
    model = models.lenet5().eval()
    conv = models.convolutionize(model, (1, 32, 32))
    assert not conv.training and not any(m.training for m in conv.modules())  # the model's mode
    x = _x((1, 32, 32))
    np.testing.assert_allclose(conv(x)[:, :, 0, 0], model(x), rtol=1e-5, atol=1e-5)
    assert conv(_x((1, 40, 44))).shape == (2, 10, 3, 4)


def test_convolutionize_errors():
    with pytest.raises(ValueError, match="identity"):
        models.convolutionize(nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 2)), (3, 4, 4))
    with pytest.raises(ValueError, match="Flatten"):
        models.convolutionize(nn.Sequential(nn.Linear(4, 2)), (4,))
    train_mode = models.convolutionize(_small_classifier().double(), (3, 16, 16))
    assert all(m.training for m in train_mode.modules()) and train_mode[0].weight.dtype == np.float64
    with pytest.raises(ValueError, match="cannot read"):
        models.convolutionize(nn.Sequential(nn.Flatten(), nn.Linear(5, 2)), (1, 2, 2))


@pytest.mark.slow
def test_convolutionize_vgg11_at_224():
    model = models.vgg11(num_classes=10).eval()
    conv = models.convolutionize(model, (3, 224, 224)).eval()
    assert conv[-7].weight.shape == (4096, 512, 7, 7)  # fc6 as a 7x7 conv
    x = _x((3, 224, 224), batch=1)
    with npcnn.no_grad():
        np.testing.assert_allclose(conv(x)[:, :, 0, 0], model(x), rtol=1e-4, atol=1e-5)


def _paper_geometry_fcn(num_classes=3):
    """FCN-8s with the paper's padding-100 / ceil-pool / crop geometry at a tiny width."""
    def pool():
        return nn.MaxPool2d(2, stride=2, ceil_mode=True)

    features3 = nn.Sequential(nn.Conv2d(3, 2, 3, padding=100), nn.ReLU(), pool(),
                              nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(), pool(),
                              nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), pool())
    features4 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), pool())
    features5 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), pool(),
                              nn.Conv2d(4, 5, 7), nn.ReLU(), nn.Conv2d(5, 5, 1), nn.ReLU())
    return models.FCN8s(features3, features4, features5, (3, 4, 5), num_classes)


@pytest.mark.parametrize("h, w", [(32, 32), (45, 37), (1, 70)])
def test_fcn8s_paper_geometry_crops_to_the_input_size(h, w):
    model = _paper_geometry_fcn()
    out = model(_x((3, h, w), batch=1))
    assert out.shape == (1, 3, h, w)
    assert model.backward(np.ones_like(out)).shape == (1, 3, h, w)


def test_fcn_tiny_shapes_and_errors():
    model = models.fcn_tiny(num_classes=4, width=2)
    assert model(_x((3, 64, 64))).shape == (2, 4, 64, 64)
    assert model(_x((3, 96, 32))).shape == (2, 4, 96, 32)
    with pytest.raises(ValueError, match="crop"):
        model(_x((3, 60, 64)))


@pytest.mark.slow
def test_fcn8s_vgg16_reuses_the_classifier_and_outputs_full_resolution():
    vgg = models.vgg16(num_classes=10).eval()
    fcn = models.fcn8s(vgg, num_classes=4).eval()
    fc6 = fcn.features5[-6]
    np.testing.assert_array_equal(fc6.weight.data, vgg.classifier[0].weight.data.reshape(4096, 512, 7, 7))
    assert fcn.features3[0].weight.data is vgg.features[0].weight.data or \
        np.array_equal(fcn.features3[0].weight.data, vgg.features[0].weight.data)
    with npcnn.no_grad():
        out = fcn(_x((3, 40, 52), batch=1))
    assert out.shape == (1, 4, 40, 52)
    assert models.fcn8s().num_parameters() == 134_489_759


# ----------------------------------------------------------------------------- PyTorch oracles


def _to_torch_state(torch, state):
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def test_lenet5_matches_pytorch():
    torch = torch_or_skip()
    tnn = torch.nn
    ours = models.lenet5()
    theirs = tnn.Sequential()
    for name, layer in [("c1", tnn.Conv2d(1, 6, 5)), ("tanh1", tnn.Tanh()), ("s2", tnn.AvgPool2d(2)),
                        ("c3", tnn.Conv2d(6, 16, 5)), ("tanh3", tnn.Tanh()), ("s4", tnn.AvgPool2d(2)),
                        ("c5", tnn.Conv2d(16, 120, 5)), ("tanh5", tnn.Tanh()), ("flatten", tnn.Flatten()),
                        ("f6", tnn.Linear(120, 84)), ("tanh6", tnn.Tanh()), ("output", tnn.Linear(84, 10))]:
        theirs.add_module(name, layer)
    theirs.load_state_dict(_to_torch_state(torch, ours.state_dict()))
    x = _x((1, 32, 32), batch=4)
    out = ours(x)
    xt = torch.from_numpy(x).requires_grad_()
    out_t = theirs(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-4, atol=1e-4)
    dout = _x((10,), batch=4, seed=3)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(ours.backward(dout), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.c1.weight.grad, theirs.c1.weight.grad.numpy(), rtol=1e-4, atol=1e-4)


def _torch_resnet20(torch):
    tnn, F = torch.nn, torch.nn.functional

    class Block(tnn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c_out)
            self.conv2 = tnn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c_out)
            self.stride, self.pad = stride, (c_out - c_in) // 2

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            short = x if self.pad == 0 and self.stride == 1 else \
                F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(out + short)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            self.layer1 = tnn.Sequential(*[Block(16, 16, 1) for _ in range(3)])
            self.layer2 = tnn.Sequential(Block(16, 32, 2), Block(32, 32, 1), Block(32, 32, 1))
            self.layer3 = tnn.Sequential(Block(32, 64, 2), Block(64, 64, 1), Block(64, 64, 1))
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


@pytest.mark.parametrize("training", [True, False])
def test_resnet20_matches_pytorch(training):
    torch = torch_or_skip()
    ours = models.resnet20().train(training)
    theirs = _torch_resnet20(torch).train(training)
    theirs.load_state_dict(_to_torch_state(torch, ours.state_dict()))
    x = _x((3, 32, 32), batch=4)
    xt = torch.from_numpy(x).requires_grad_()
    out, out_t = ours(x), theirs(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-4, atol=1e-4)
    dout = _x((10,), batch=4, seed=5)
    out_t.backward(torch.from_numpy(dout))
    dx = ours.backward(dout)
    scale = float(np.abs(xt.grad.numpy()).max())
    np.testing.assert_allclose(dx / scale, xt.grad.numpy() / scale, atol=1e-4)
    if training:  # the running statistics moved the same way
        np.testing.assert_allclose(ours.layer2[0].bn1.running_var, theirs.layer2[0].bn1.running_var.numpy(),
                                   rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- training


def _blobs(n, size, channels, seed=0):
    """Two classes: a bright square in the top-left or in the bottom-right quadrant, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = 0.5 * rng.standard_normal((n, channels, size, size)).astype(np.float32)
    half = size // 2
    for k in range(n):
        r, c = rng.integers(0, half - half // 2, 2) + (half if labels[k] else 0)
        x[k, :, r:r + half // 2, c:c + half // 2] += 2.0
    return x, labels


def _train(model, x, y, steps, lr):
    """Plain SGD with momentum 0.9, full batch; returns the losses."""
    loss_fn = nn.CrossEntropyLoss()
    velocity = {id(p): np.zeros_like(p.data) for p in model.parameters()}
    losses = []
    for _ in range(steps):
        model.zero_grad()
        losses.append(float(loss_fn(model(x), y)))
        model.backward(loss_fn.backward())
        for p in model.parameters():
            v = velocity[id(p)]
            v *= 0.9
            v += p.grad
            p.data -= lr * v
    return losses


@pytest.mark.parametrize("name, lr", [("lenet5", 0.1), ("resnet20", 0.05), ("plain20", 0.05)])
def test_trains_end_to_end(name, lr):
    model = models.get_model(name, num_classes=2)
    shape = models.input_shape(name)
    size = shape[1] if name == "lenet5" else 12  # the CIFAR nets take any size; 12x12 keeps it quick
    x, y = _blobs(16, size, shape[0])
    losses = _train(model, x, y, steps=8, lr=lr)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
