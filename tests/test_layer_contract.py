"""Dtype stays put: every layer, block and loss of the gradient-check registry (which must hold
every layer class of npcnn.nn), built in float32 and fed float32, gives float32 outputs, input
gradients, parameter gradients and floating buffers — NumPy 2 would silently promote to float64
on a stray np.float64 scalar or buffer. And no backward modifies its dout in place (it may feed
two branches)."""

import numpy as np
import pytest

import npcnn
from npcnn.diagnostics import GRADCHECK_CASES

MODULE_CASES = [c for c in GRADCHECK_CASES if "Loss" not in c.name]


@pytest.mark.parametrize("case", MODULE_CASES, ids=[c.name for c in MODULE_CASES])
def test_float32_in_float32_everywhere(case):
    npcnn.manual_seed(0)
    module = case.factory().float()
    xs = [x.astype(np.float32) for x in case.inputs(0)]
    out = module(*xs)
    assert out.dtype == np.float32, f"{case.name}: output {out.dtype}"
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    dout_before = dout.copy()
    dxs = module.backward(dout)
    np.testing.assert_array_equal(dout, dout_before, err_msg=f"{case.name}.backward modified dout in place")
    for dx in dxs if isinstance(dxs, tuple) else (dxs,):
        assert dx.dtype == np.float32, f"{case.name}: input gradient {dx.dtype}"
    for name, param in module.named_parameters():
        if param.grad is not None:
            assert param.grad.dtype == np.float32, f"{case.name}.{name}: gradient {param.grad.dtype}"
    for name, buf in module.named_buffers():
        if np.dtype(buf.dtype).kind == "f":
            assert buf.dtype == np.float32, f"{case.name}.{name}: buffer {buf.dtype}"
