"""Weights move between PyTorch and npcnn through .safetensors and .npz files: the same
architecture has the same state_dict keys and, with the same weights, the same outputs."""

import numpy as np
import pytest
from conftest import torch_or_skip

import npcnn
from npcnn import nn


def _npcnn_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 3 * 3, 5))


def _torch_net(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(3, 4, 3, padding=1), t.BatchNorm2d(4), t.ReLU(), t.MaxPool2d(2),
                        t.Conv2d(4, 6, 3), t.BatchNorm2d(6), t.ReLU(), t.Flatten(), t.Linear(6 * 3 * 3, 5))


def _trained_torch_net(torch):
    """A torch net whose batch-norm running statistics and affine parameters are not the defaults."""
    torch.manual_seed(0)
    net = _torch_net(torch)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        net.train()
        for _ in range(3):
            net(torch.randn(8, 3, 10, 10) * 2 + 1)
    return net.eval()


def _outputs_match(torch, torch_net, our_net, x):
    torch_net.eval()
    our_net.eval()
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(x)).numpy()
    with npcnn.no_grad():
        ours = our_net(x)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_pytorch_state_dict_loads_into_npcnn(tmp_path, rng, suffix):
    torch = torch_or_skip()
    torch_net = _trained_torch_net(torch)
    state = {k: v.detach().cpu().numpy() for k, v in torch_net.state_dict().items()}
    path = tmp_path / f"torch{suffix}"
    if suffix == ".safetensors":
        safetensors_torch = pytest.importorskip("safetensors.torch")
        safetensors_torch.save_file(torch_net.state_dict(), str(path))  # what a PyTorch user writes
    else:
        np.savez(path, **state)
    ours = _npcnn_net()
    assert list(ours.state_dict()) == list(torch_net.state_dict())   # same keys, same order
    loaded = npcnn.load(path)
    result = ours.load_state_dict(loaded)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(npcnn.to_numpy(value), state[key], err_msg=key)
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    _outputs_match(torch, torch_net, ours, x)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_npcnn_state_dict_loads_into_pytorch(tmp_path, rng, suffix):
    torch = torch_or_skip()
    npcnn.manual_seed(5)
    ours = _npcnn_net()
    ours.train()
    for _ in range(3):  # move the running statistics away from 0 and 1
        with npcnn.no_grad():
            ours(rng.standard_normal((8, 3, 10, 10)).astype(np.float32) * 2 + 1)
    path = tmp_path / f"npcnn{suffix}"
    npcnn.save(ours, path)
    if suffix == ".safetensors":
        safetensors_torch = pytest.importorskip("safetensors.torch")
        state = safetensors_torch.load_file(str(path))
    else:
        with np.load(path) as archive:
            state = {k: torch.from_numpy(archive[k]) for k in archive.files}
    torch_net = _torch_net(torch)
    torch_net.load_state_dict(state, strict=True)
    assert int(torch_net[1].num_batches_tracked) == 3
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    _outputs_match(torch, torch_net, ours, x)


def test_round_trip_npcnn_to_torch_and_back_is_exact(tmp_path):
    torch = torch_or_skip()
    safetensors_torch = pytest.importorskip("safetensors.torch")
    ours = _npcnn_net()
    npcnn.save(ours, tmp_path / "a.safetensors")
    torch_net = _torch_net(torch)
    torch_net.load_state_dict(safetensors_torch.load_file(str(tmp_path / "a.safetensors")))
    safetensors_torch.save_file(torch_net.state_dict(), str(tmp_path / "b.safetensors"))
    back = npcnn.load(tmp_path / "b.safetensors")
    for key, value in ours.state_dict().items():
        assert back[key].dtype == np.asarray(value).dtype, key
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_torchvision_architectures_load(name, rng):
    """The recipe of the README ("Weight exchange with PyTorch"): a torchvision state_dict loads as is
    (random weights here; the pretrained ones need a download)."""
    torch = torch_or_skip()
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed")
    models = pytest.importorskip("npcnn.models")
    torch_net = getattr(torchvision.models, name)(weights=None).eval()
    ours = getattr(models, name)()
    ours.load_state_dict({k: v.numpy() for k, v in torch_net.state_dict().items()})
    size = 32 if name == "resnet18" else 64
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    _outputs_match(torch, torch_net, ours, x)
