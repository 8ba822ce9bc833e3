"""The CuPy backend: every layer case of the gradient-check registry, run on the GPU, agrees with
the same module on NumPy (forward, input gradient and parameter gradients), and keeps float32.

Runs only where CuPy and a GPU are present (``python -m pytest -m gpu``); skipped with the reason
elsewhere.
"""

import copy

import numpy as np
import pytest

import npcnn
from npcnn import backend
from npcnn.diagnostics import GRADCHECK_CASES
from conftest import cupy_or_skip

pytestmark = pytest.mark.gpu

MODULE_CASES = GRADCHECK_CASES  # layers, blocks, models and losses (through LossAsModule)


@pytest.mark.parametrize("case", MODULE_CASES, ids=[c.name for c in MODULE_CASES])
def test_layer_on_cupy_matches_numpy(case):
    cupy_or_skip()
    npcnn.manual_seed(0)
    cpu = case.factory().float()
    xs = [x.astype(np.float32) for x in case.inputs(0)]
    gpu = copy.deepcopy(cpu)
    with npcnn.use_backend("cupy"):
        gpu.to()
        npcnn.manual_seed(1)  # dropout masks differ between generators: compare in eval mode
        for m in (cpu, gpu):
            m.eval()
        out_gpu = gpu(*[backend.asarray(x) for x in xs])
        dout = np.random.default_rng(2).standard_normal(out_gpu.shape).astype(np.float32)
        dx_gpu = gpu.backward(backend.asarray(dout))
    out_cpu = cpu(*xs)
    dx_cpu = cpu.backward(dout)
    assert out_gpu.dtype == np.float32
    np.testing.assert_allclose(backend.to_numpy(out_gpu), out_cpu, rtol=1e-4, atol=1e-5)
    dxs_gpu = dx_gpu if isinstance(dx_gpu, tuple) else (dx_gpu,)
    dxs_cpu = dx_cpu if isinstance(dx_cpu, tuple) else (dx_cpu,)
    for a, b in zip(dxs_gpu, dxs_cpu):
        np.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-4, atol=1e-5)
    for (name, p_gpu), p_cpu in zip(gpu.named_parameters(), cpu.parameters()):
        if p_cpu.grad is not None:
            np.testing.assert_allclose(backend.to_numpy(p_gpu.grad), p_cpu.grad, rtol=1e-4, atol=1e-5, err_msg=name)
