"""alexnet_original(): AlexNet as published (NIPS 2012): layer sizes, parameters and
multiply-adds against the paper's arithmetic, the two-GPU grouping, and the paper's LRN."""

import numpy as np
import pytest

from npcnn import models, nn

# weights + biases per layer, from the paper's Fig. 2 (two GPUs = groups=2 in conv2, conv4, conv5)
PAPER_PARAMS = {
    "features.0": 96 * 3 * 11 * 11 + 96,          # 34,944
    "features.4": 256 * 48 * 5 * 5 + 256,         # 307,456
    "features.8": 384 * 256 * 3 * 3 + 384,        # 885,120
    "features.10": 384 * 192 * 3 * 3 + 384,       # 663,936
    "features.12": 256 * 192 * 3 * 3 + 256,       # 442,624
    "classifier.0": 9216 * 4096 + 4096,           # 37,752,832
    "classifier.3": 4096 * 4096 + 4096,           # 16,781,312
    "classifier.6": 4096 * 1000 + 1000,           # 4,097,000
}
PAPER_MACS = {
    "features.0": 55 * 55 * 96 * 3 * 11 * 11,
    "features.4": 27 * 27 * 256 * 48 * 5 * 5,
    "features.8": 13 * 13 * 384 * 256 * 3 * 3,
    "features.10": 13 * 13 * 384 * 192 * 3 * 3,
    "features.12": 13 * 13 * 256 * 192 * 3 * 3,
    "classifier.0": 9216 * 4096,
    "classifier.3": 4096 * 4096,
    "classifier.6": 4096 * 1000,
}


@pytest.fixture(scope="module")
def original_profile():
    return models.profile(models.alexnet_original(), (3, 227, 227))


def test_parameters_and_macs_match_the_docstring_and_the_paper(original_profile):
    prof = original_profile
    assert sum(PAPER_PARAMS.values()) == prof.params == 60_965_224
    assert sum(PAPER_MACS.values()) == prof.macs == 724_406_816
    for name in PAPER_PARAMS:
        assert (prof[name].params, prof[name].macs) == (PAPER_PARAMS[name], PAPER_MACS[name]), name
    doc = models.AlexNetOriginal.__doc__ + models.alexnet_original.__doc__
    assert "60,965,224" in doc and "724,406,816" in doc and "227x227" in doc


def test_layer_sizes_follow_the_paper(original_profile):
    shapes = [r.output_shape for r in original_profile.rows if r.type in ("Conv2d", "MaxPool2d")]
    assert shapes == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13),
                      (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]
    kinds = [r.type for r in original_profile.rows][:4]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]  # normalize, then pool (sec. 3.5)


def test_two_gpus_are_two_groups_and_differ_from_torchvision():
    model = models.alexnet_original(num_classes=10)
    groups = [m.groups for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]
    assert model.features[0].weight.shape == (96, 3, 11, 11)
    assert models.alexnet().features[0].weight.shape == (64, 3, 11, 11)


def test_lrn_is_the_papers_formula():
    """b = a / (2 + 1e-4 sum_{5 neighbouring maps} a^2)^0.75, written out, no 1/n."""
    lrn = models.alexnet_original().features[2]
    a = np.random.default_rng(0).standard_normal((1, 8, 3, 3)) * 30
    expected = np.empty_like(a)
    for c in range(8):
        window = (a[:, max(0, c - 2):min(8, c + 3)] ** 2).sum(axis=1)
        expected[:, c] = a[:, c] / (2.0 + 1e-4 * window) ** 0.75
    np.testing.assert_allclose(lrn(a), expected, rtol=1e-12)


def test_a_batch_of_two_images_gives_logits():
    model = models.alexnet_original(num_classes=5).eval()
    out = model(np.zeros((2, 3, 227, 227), dtype=np.float32))
    assert out.shape == (2, 5) and out.dtype == np.float32
