"""models.profile: parameters (trainable, frozen), buffers, output shapes and multiply-accumulates."""

import io

import numpy as np
import pytest

from npcnn import models, nn


def test_lenet5_profile_by_hand():
    prof = models.profile(models.lenet5(), (1, 32, 32))
    rows = {r.name: r for r in prof.rows}
    # MACs = output elements * inputs per output
    assert rows["c1"].macs == 6 * 28 * 28 * (1 * 5 * 5) == 117_600
    assert rows["c3"].macs == 16 * 10 * 10 * (6 * 5 * 5) == 240_000
    assert rows["c5"].macs == 120 * (16 * 5 * 5) == 48_000
    assert rows["f6"].macs == 84 * 120 and rows["output"].macs == 10 * 84
    assert rows["tanh1"].macs == 0 and rows["s2"].macs == 0
    assert prof.macs == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520
    assert [r.output_shape for r in prof.rows if r.type in ("Conv2d", "AvgPool2d")] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert rows["output"].output_shape == (10,)
    assert rows["c1"].params == 156 and rows["c3"].params == 2416 and rows["c5"].params == 48_120
    assert prof.params == prof.trainable == 61_706 and prof.frozen == 0 and prof.buffers == 0
    assert [r.name for r in prof.rows][:3] == ["c1", "tanh1", "s2"]  # call order


def test_trainable_frozen_and_buffers():
    model = models.resnet20(width=4)
    model.conv1.freeze()
    model.layer1.freeze()
    prof = models.profile(model, (3, 32, 32))
    frozen = 4 * 3 * 9 + sum(p.size for p in model.layer1.parameters())
    assert prof.frozen == frozen and prof.trainable == prof.params - frozen
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert prof.buffers == sum(2 * m.num_features + 1 for m in bns)  # running mean, var, counter
    assert prof.params == model.num_parameters()


def test_grouped_transposed_and_linear_macs():
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    assert models.profile(depthwise, (8, 10, 10)).macs == 8 * 10 * 10 * 9  # one channel per filter
    grouped = nn.Conv2d(8, 4, 3, groups=2)
    assert models.profile(grouped, (8, 5, 5)).macs == 4 * 3 * 3 * (4 * 9)
    up = nn.ConvTranspose2d(3, 2, 4, stride=2)
    prof = models.profile(up, (3, 5, 6))
    assert prof.rows[0].output_shape == (2, 12, 14)
    assert prof.macs == 3 * 5 * 6 * (2 * 4 * 4)  # every input scatters a 2x4x4 kernel
    conv1d = nn.Conv1d(2, 3, 5)
    assert models.profile(conv1d, (2, 9)).macs == 3 * 5 * (2 * 5)
    assert models.profile(nn.Linear(6, 7), (6,)).macs == 42


def test_googlenet_bottleneck_cost_arithmetic():
    """Szegedy et al. section 4: a 5x5 conv with 48 outputs on a 14x14x480 map (inception 4a's
    input) costs 112.9M multiplications; a 16-channel 1x1 reduction first cuts it to 5.3M."""
    direct = nn.Sequential(nn.Conv2d(480, 48, 5, padding=2, bias=False))
    assert models.profile(direct, (480, 14, 14)).macs == 14 * 14 * 48 * 5 * 5 * 480 == 112_896_000

    inception4a = models.googlenet(kernel5=5).inception4a  # the paper's 5x5 branch
    prof = models.profile(inception4a, (480, 14, 14))
    reduce, conv5 = prof["branch3.0.conv"], prof["branch3.1.conv"]
    assert reduce.output_shape == (16, 14, 14) and conv5.output_shape == (48, 14, 14)
    assert reduce.macs == 14 * 14 * 16 * 480 == 1_505_280
    assert conv5.macs == 14 * 14 * 48 * 5 * 5 * 16 == 3_763_200
    bottleneck = reduce.macs + conv5.macs
    assert bottleneck == 5_268_480  # 5.3M
    assert round(112_896_000 / bottleneck, 1) == 21.4
    out = inception4a(np.zeros((1, 480, 14, 14), np.float32))
    assert out.shape == (1, 192 + 208 + 48 + 64, 14, 14)


def test_summary_prints_the_table():
    out = io.StringIO()
    prof = models.summary(models.lenet5(), (1, 32, 32), file=out)
    text = out.getvalue()
    assert text == str(prof) + "\n"
    for expected in ("c1", "Conv2d", "[1, 6, 28, 28]", "117,600", "Total params: 61,706", "416,520"):
        assert expected in text


def test_profile_leaves_the_model_as_it_was():
    model = models.resnet20(width=4)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    models.profile(model, (3, 8, 8))
    assert model.training
    after = model.state_dict()
    for key, value in before.items():  # eval mode: running statistics untouched
        np.testing.assert_array_equal(after[key], value)
    assert not model.conv1._forward_hooks
    with pytest.raises(KeyError, match="no layer named"):
        models.profile(model, (3, 8, 8))["nope"]


def test_float64_model_is_profiled_in_float64():
    model = models.lenet5().double()
    assert models.profile(model, (1, 32, 32)).macs == 416_520


# torchvision's "GFLOPS" column (which counts multiply-accumulates of convolutions and linears)
TORCHVISION_GMACS = {"alexnet": 0.71, "resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30,
                     "googlenet": 1.50, "densenet121": 2.83, "vgg16": 15.47}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision(name):
    prof = models.profile(models.get_model(name), (3, 224, 224))
    assert round(prof.macs / 1e9, 2) == TORCHVISION_GMACS[name]


def test_resnet20_macs():
    # 41M, the usual figure: every 3x3 conv but the stem and the two stride-2 ones costs
    # 32*32*16*144 = 16*16*32*288 = 8*8*64*576 = 2,359,296 (16 of them); the stride-2 ones half that
    stem, strided, fc = 32 * 32 * 16 * 27, 16 * 16 * 32 * 144, 64 * 10
    expected = stem + 16 * 2_359_296 + 2 * strided + fc
    assert models.profile(models.resnet20(), (3, 32, 32)).macs == expected == 40_551_040
