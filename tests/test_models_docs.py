"""The numbers in the model docstrings are the models' numbers.

Each constructor's docstring (``help(models.resnet50)``) says "Native input CxHxW: P parameters,
M multiply-adds." and, where Keras ships the architecture, "Keras counts K parameters: + S
BatchNorm moving statistics [+ B conv biases]." The numbers are parsed from the docstring and
compared with ``models.profile`` / the model itself, so the text cannot drift from the code; the
Keras totals are also compared with the Keras model-zoo table of the lecture (an outside source).
"""

import inspect
import re

import pytest

from npcnn import models, nn

NATIVE = re.compile(r"Native input (\d+)x(\d+)x(\d+): ([\d,]+) parameters, ([\d,]+) multiply-adds")
KERAS = re.compile(r"Keras counts ([\d,]+) parameters: \+ ([\d,]+) BatchNorm moving statistics"
                   r"(?: \+ ([\d,]+) conv biases)?")
KERNEL5 = re.compile(r"With kernel5=5: ([\d,]+) parameters, ([\d,]+) multiply-adds")

# over 40M parameters or 5 G multiply-adds: seconds each to build and profile, outside the default run
HEAVY = {"alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet101", "resnet152", "fcn8s"}
HEAVY |= {"alexnet_original"}

# The lecture's Keras model-zoo table (deck 004), "Parameters" column
KERAS_TABLE = {"vgg16": 138_357_544, "vgg19": 143_667_240, "resnet50": 25_636_712, "resnet101": 44_707_176,
               "resnet152": 60_419_944, "mobilenet_v2": 3_538_984, "densenet121": 8_062_504,
               "densenet169": 14_307_880, "densenet201": 20_242_984}


def number(text):
    return int(text.replace(",", ""))


def native_line(name):
    doc = inspect.getdoc(models.MODELS[name]) or ""
    match = NATIVE.search(" ".join(doc.split()))  # the line may wrap
    assert match, f"models.{name}: docstring lacks 'Native input CxHxW: P parameters, M multiply-adds'"
    c, h, w, params, macs = match.groups()
    return (int(c), int(h), int(w)), number(params), number(macs)


def _params(names):
    marks = {name: [] for name in names}
    for name in names:
        if name in HEAVY:
            marks[name].append(pytest.mark.slow)
    return [pytest.param(name, marks=marks[name], id=name) for name in names]


@pytest.mark.parametrize("name", _params(models.list_models()))
def test_docstring_counts_match_profile(name):
    shape, params, macs = native_line(name)
    assert shape == models.input_shape(name), f"{name}: docstring input {shape}"
    prof = models.profile(models.get_model(name), shape)
    assert (prof.params, prof.macs) == (params, macs), (
        f"models.{name}: profile says {prof.params:,} parameters, {prof.macs:,} multiply-adds; "
        f"the docstring {params:,} and {macs:,}")


@pytest.mark.parametrize("name", _params(models.list_models()))
def test_docstring_names_paper_layout_and_deviations(name):
    doc = inspect.getdoc(models.MODELS[name]) or ""
    assert re.search(r"\b(19|20)\d\d\b", doc), f"{name}: no year of the paper"
    assert "Stages" in doc, f"{name}: no stage layout"
    assert "Deviations" in doc, f"{name}: no deviations from the paper"
    assert "Args:" in doc, f"{name}: no argument descriptions"


def _keras_names():
    names = []
    for name in models.list_models():
        if "Keras counts" in (inspect.getdoc(models.MODELS[name]) or ""):
            names.append(name)
    return names


def test_keras_lines_cover_the_lecture_table():
    assert set(KERAS_TABLE) - {"vgg16", "vgg19"} <= set(_keras_names())  # VGG: "counts the same"
    for name in ("vgg16", "vgg19"):
        assert f"Keras's VGG{name[3:]} counts the same {KERAS_TABLE[name]:,}" in " ".join(
            inspect.getdoc(models.MODELS[name]).split())


@pytest.mark.parametrize("name", _params(_keras_names()))
def test_keras_difference(name):
    """Keras = npcnn + BatchNorm's moving mean and variance (+ a bias per conv in ResNet v1)."""
    _, params, _ = native_line(name)
    doc = " ".join(inspect.getdoc(models.MODELS[name]).split())
    keras, stats, biases = KERAS.search(doc).groups()
    keras, stats, biases = number(keras), number(stats), number(biases or "0")
    model = models.get_model(name)
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
    assert stats == 2 * bn_channels
    if biases:
        assert biases == sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is None)
    assert keras == params + stats + biases == models.keras_parameter_count(model, conv_biases=bool(biases))
    if name in KERAS_TABLE:
        assert keras == KERAS_TABLE[name]


def test_keras_parameter_count_counts_what_it_says():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 1))
    assert model.num_parameters() == 108 + 8 + 25
    assert models.keras_parameter_count(model) == 141 + 8
    assert models.keras_parameter_count(model, conv_biases=True) == 141 + 8 + 4
    assert models.batchnorm_channels(model) == 4 and models.biasless_conv_channels(model) == 4


def test_googlenet_kernel5_line_and_the_lecture_arithmetic():
    """googlenet(kernel5=5) is the paper's net; its profile gives the bottleneck arithmetic that
    the module docstring (and the lecture) quotes, for inception 4a and 3a."""
    doc = " ".join(inspect.getdoc(models.googlenet).split())
    params, macs = (number(g) for g in KERNEL5.search(doc).groups())
    model = models.googlenet(kernel5=5)
    prof = models.profile(model, (3, 224, 224))
    assert (prof.params, prof.macs) == (params, macs)
    assert model.inception4a.branch3[1].conv.weight.shape == (48, 16, 5, 5)

    module_doc = " ".join(inspect.getmodule(models.googlenet).__doc__.split())
    cases = {  # block: (input C, H, reduce, 5x5 outputs)
        "inception4a": (480, 14, 16, 48),
        "inception3a": (192, 28, 16, 32),
    }
    for block, (c, size, red, out) in cases.items():
        reduce, conv5 = prof[f"{block}.branch3.0.conv"].macs, prof[f"{block}.branch3.1.conv"].macs
        direct = models.profile(nn.Conv2d(c, out, 5, padding=2, bias=False), (c, size, size)).macs
        assert reduce == size * size * red * c and conv5 == size * size * out * 25 * red
        assert direct == size * size * out * 25 * c
        for value in (direct, reduce, conv5, reduce + conv5):
            assert f"{value:,}" in module_doc, f"{block}: {value:,} not in the googlenet module docstring"
    assert "112,896,000" in module_doc and "5,268,480" in module_doc  # inception 4a: 112.9M vs 5.27M
    assert "120,422,400" in module_doc and "12,443,648" in module_doc  # inception 3a: 120.4M vs 12.4M
