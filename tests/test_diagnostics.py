"""npcnn.diagnostics: the recorder, its tables and plots, and gradcheck_all."""

import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import npcnn
from npcnn import nn
from npcnn.diagnostics import GRADCHECK_CASES, GradcheckCase, Table, deep_mlp, gradcheck_all, init_weights_, record
from npcnn.gradcheck import TOLERANCES, check_module
from npcnn.nn import composition
from npcnn.optim import SGD


def _mlp():
    npcnn.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Sigmoid())


def _x(shape=(7, 6), seed=3, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _n(a):
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


def _hooks_left(model):
    return [name for name, m in model.named_modules() if m._forward_hooks or m._backward_hooks
            or "backward" in m.__dict__]


# ----------------------------------------------------------------------------- the recorder


def test_hooks_exist_only_inside_the_block():
    model = _mlp()
    with record(model) as rec:
        assert _hooks_left(model)
        model(_x())
    assert _hooks_left(model) == []
    assert len(rec.layers) == 6


def test_recording_changes_nothing():
    """Outputs, gradients and the random generator's state are the same with and without record."""
    x, dout = _x(), _x((7, 3), seed=4)
    results = []
    for observed in (False, True):
        model = _mlp()
        npcnn.manual_seed(11)
        if observed:
            with record(model):
                out = model(x)
                dx = model.backward(dout)
        else:
            out = model(x)
            dx = model.backward(dout)
        results.append((out, dx, [p.grad for p in model.parameters()], npcnn.backend.rng().random()))
    (out0, dx0, g0, r0), (out1, dx1, g1, r1) = results
    assert np.array_equal(out0, out1) and np.array_equal(dx0, dx1) and r0 == r1
    assert all(np.array_equal(a, b) for a, b in zip(g0, g1))


def test_layer_rows_match_a_manual_forward_and_backward():
    model = _mlp()
    x, dout = _x(scale=3.0), _x((7, 3), seed=4)
    with record(model) as rec:
        model(x)
        dx = model.backward(dout)
    # Recompute every intermediate by hand, layer by layer.
    outs, h = [], x
    for layer in model:
        h = layer.forward(h)
        outs.append(h)
    table = rec.table()
    assert table.column("name") == ["0", "1", "2", "3", "4", "5"]
    assert table.column("type") == ["Linear", "Tanh", "Linear", "ReLU", "Linear", "Sigmoid"]
    for row, out in zip(table, outs):
        assert row["act_mean"] == pytest.approx(float(out.mean()), rel=1e-6, abs=1e-7)
        assert row["act_std"] == pytest.approx(float(out.std()), rel=1e-6)
        assert row["frac_zero"] == float((out == 0).mean())
    assert table[1]["frac_saturated"] == float((np.abs(outs[1]) > 0.99).mean()) > 0  # scale 3: some saturate
    assert table[5]["frac_saturated"] == float(((outs[5] < 0.01) | (outs[5] > 0.99)).mean())
    assert np.isnan(table[3]["frac_saturated"]) and table[3]["frac_zero"] > 0.2
    assert table[-1]["grad_output_norm"] == pytest.approx(_n(dout), rel=1e-6)
    assert table[0]["grad_input_norm"] == pytest.approx(_n(dx), rel=1e-6)
    for upper, lower in zip(table.rows[1:], table.rows[:-1]):  # the chain: one layer's dx is the next one's dout
        assert lower["grad_output_norm"] == pytest.approx(upper["grad_input_norm"], rel=1e-6)
    for index in (0, 2, 4):
        assert table[index]["weight_grad_norm"] == pytest.approx(_n(model[index].weight.grad), rel=1e-6)
    assert np.isnan(table[1]["weight_grad_norm"])
    assert rec.param_grad_norms["4.bias"] == pytest.approx(_n(model[4].bias.grad), rel=1e-6)


def test_works_on_residual_and_concat_trees():
    npcnn.manual_seed(0)
    body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    model = nn.Sequential(composition.Residual(body), composition.Concat(nn.Linear(4, 2), nn.Linear(4, 3)), nn.ReLU())
    x, dout = _x((5, 4)), _x((5, 5), seed=9)
    with record(model, modules="all") as rec:
        model(x)
        dx = model.backward(dout)
    names = [r.name for r in rec.layers]
    assert set(names) == {name or "(model)" for name, _ in model.named_modules()} - {"(model)"} | {""}
    residual = rec["0"]
    block_dx = rec["0.body.0"].grad_input_norm
    # dL/dx = dL/dH (dF/dx + 1): the Residual's input gradient is its output gradient plus the body's.
    assert residual.grad_input_norm == pytest.approx(_n(dx), rel=1e-6)
    assert residual.grad_input_norm != pytest.approx(block_dx)
    concat_pieces = np.hypot(rec["1.0"].grad_output_norm, rec["1.1"].grad_output_norm)
    assert rec["1"].grad_output_norm == pytest.approx(concat_pieces, rel=1e-6)  # dout is split between branches
    assert rec["1"].shape == (5, 5)
    assert _hooks_left(model) == []


def test_module_selection():
    model = _mlp()
    x = _x()
    for modules, expected in ((nn.Linear, ["0", "2", "4"]), (["1", "5"], ["1", "5"]),
                              (lambda name, m: name == "3", ["3"]), ("all", ["0", "1", "2", "3", "4", "5", ""])):
        with record(model, modules=modules) as rec:
            model(x)
        assert [r.name for r in rec.layers] == expected
    with pytest.raises(KeyError, match="nope"):
        record(model, modules=["nope"]).__enter__()


def test_update_ratios_predicted_and_measured_agree_for_plain_sgd():
    model = _mlp()
    optimizer = SGD(model.parameters(), lr=0.1)
    with record(model) as rec:
        model(_x())
        model.backward(_x((7, 3), seed=4))
        predicted = rec.update_ratios(lr=0.1)
        table = rec.param_table(lr=0.1)
        optimizer.step()
    measured = rec.update_ratios()
    assert set(predicted) == {name for name, _ in model.named_parameters()}
    for name in predicted:
        assert measured[name] == pytest.approx(predicted[name], rel=1e-3)
        assert measured[name] > 0
    assert table.column("name") == list(predicted)
    assert table[0]["grad_to_weight"] * 0.1 == pytest.approx(predicted["0.weight"], rel=1e-6)


def test_table_markdown_and_csv(tmp_path):
    table = Table(["a", "b"], [{"a": 1, "b": 0.5}, {"a": "x", "b": float("nan")}])
    text = table.to_markdown()
    assert text.splitlines()[0] == "| a | b |" and "| x | — |" in text
    path = tmp_path / "t.csv"
    assert table.to_csv(path) == path.read_text() == "a,b\n1,0.5\nx,nan\n"
    assert len(table.where(a=1)) == 1
    with pytest.raises(KeyError):
        table.append({"c": 1})


def test_importing_npcnn_does_not_import_matplotlib():
    code = "import sys, npcnn, npcnn.diagnostics; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed")
def test_plots_write_pngs(tmp_path):
    runs = {}
    for init in ("small", "he"):
        npcnn.manual_seed(0)
        model = deep_mlp(5, 16, "relu", init=init)
        with record(model) as rec:
            model(_x((8, 16)))
            model.backward(_x((8, 10), seed=2))
        runs[init] = rec
    rec.plot_gradients(tmp_path / "g.png")
    rec.plot_activations(tmp_path / "a.png", types=nn.ReLU)
    npcnn.diagnostics.plot_gradient_norms(runs, tmp_path / "g2.png", column="weight_grad_norm", types=nn.Linear)
    npcnn.diagnostics.plot_activation_histograms(runs, tmp_path / "a2.png", types=nn.ReLU)
    npcnn.diagnostics.plot_curves({"a": [3, 2, 1]}, tmp_path / "c.png", logy=True)
    for name in ("g", "a", "g2", "a2", "c"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- nets


def test_deep_mlp_structure_and_inits():
    model = deep_mlp(4, 8, "tanh", init="zeros", residual=True, batchnorm=True, in_features=3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4 and linears[0].in_features == 3 and linears[-1].out_features == 10
    assert not isinstance(model.block1, composition.Residual) and isinstance(model.block2, composition.Residual)
    assert all(np.all(m.weight.data == 0) for m in linears)
    init_weights_(model, "he")
    assert np.std(linears[1].weight.data) == pytest.approx(np.sqrt(2 / 8), rel=0.3)
    assert np.all(linears[1].bias.data == 0)
    with pytest.raises(ValueError, match="unknown init"):
        init_weights_(model, "glorot")
    with pytest.raises(ValueError, match="depth"):
        deep_mlp(1)


# ----------------------------------------------------------------------------- gradcheck_all


def test_gradcheck_all_passes_on_a_subset():
    table = gradcheck_all(names=["Linear", "BatchNorm2d", "Residual", "CrossEntropy"])
    assert len(table) >= 10 and set(table.column("dtype")) == {"float64", "float32"}
    assert all(table.column("ok")), str(table)
    assert max(table.where(dtype="float64").column("max_rel_error")) < 1e-7
    assert max(table.where(dtype="float32").column("max_rel_error")) < 1e-5


class _WrongTanh(nn.Tanh):
    """tanh with the derivative of the sigmoid-style mistake 1 - out (instead of 1 - out^2)."""

    def backward(self, dout):
        out = self.pop_saved()
        return dout * (1.0 - out)


def test_gradcheck_all_catches_a_wrong_backward():
    table = gradcheck_all([GradcheckCase("wrong tanh", _WrongTanh, (4, 5))])
    assert table.column("ok") == [False, False]
    assert min(table.column("max_rel_error")) > 1e-2


def test_float32_check_measures_float32_rounding():
    npcnn.manual_seed(0)
    layer = nn.Linear(20, 10)
    report = check_module(layer, _x((4, 20)).astype(np.float64), dtype=np.float32)
    assert report.ok and 1e-9 < report.max_rel_error < 1e-5  # float32 rounding: well above float64's
    assert report.tol == TOLERANCES["float32"] == 1e-4 and report.title == "Linear (float32)"
    assert layer.weight.dtype == np.float32 and layer.weight.grad is None  # the module itself untouched
    exact = check_module(layer, _x((4, 20)).astype(np.float64))
    assert exact.tol == 1e-6 and exact.max_rel_error < 1e-8 < report.max_rel_error


def test_float32_check_catches_a_wrong_backward_and_an_in_place_dout():
    npcnn.manual_seed(0)
    assert not check_module(_WrongTanh(), _x((4, 5)), dtype=np.float32).ok

    class Scale(nn.Module):
        """out = 2 x; a backward that doubles dout in place."""

        def forward(self, x):
            return 2.0 * x

        def backward(self, dout):
            dout *= 2.0
            return dout

    for dtype in (np.float64, np.float32):
        with pytest.raises(AssertionError, match="modified dout in place"):
            check_module(Scale(), _x((3, 4)), dtype=dtype)


def test_registry_is_loaded_on_first_use_only():
    """``import npcnn.diagnostics`` does not load the registry (which imports the model zoo's blocks)."""
    code = ("import sys, npcnn.diagnostics as d; assert 'npcnn.diagnostics.gradcheck_zoo' not in sys.modules; "
            "cases = d.GRADCHECK_CASES; assert 'npcnn.diagnostics.gradcheck_zoo' in sys.modules; print(len(cases))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == len(GRADCHECK_CASES) > 60


def test_case_inputs_are_seeded_float64():
    case = GradcheckCase("two inputs", composition.Add, [(4, 5), (1, 5)])
    a, b = case.inputs(0)
    assert a.shape == (4, 5) and b.shape == (1, 5) and a.dtype == np.float64
    np.testing.assert_array_equal(a, np.random.default_rng(1000).standard_normal((4, 5)))
    assert not np.array_equal(case.inputs(1)[0], a)


def _layer_classes():
    """Every Module subclass defined in npcnn.nn (public, with a forward of its own)."""
    import npcnn.nn as package

    classes = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"npcnn.nn.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, nn.Module) and cls.__module__ == module.__name__ and not name.startswith("_")
                    and "forward" in cls.__dict__ and cls is not nn.Module):
                classes.add(cls)
    return classes


def test_registry_covers_every_layer():
    """A layer added to npcnn.nn without a GRADCHECK_CASES entry fails here: append a case."""
    covered = set()
    for case in GRADCHECK_CASES:
        covered |= {type(m) for m in case.factory().modules()}
        if isinstance(case.factory(), nn.Module):
            for m in case.factory().modules():
                if hasattr(m, "loss"):
                    covered.add(type(m.loss))
    missing = sorted(c.__name__ for c in _layer_classes() - covered if not issubclass(c, nn.ModuleList))
    assert missing == [], f"no gradcheck case for {missing}"



@pytest.mark.slow
def test_every_registered_case_passes():
    """The whole registry (what ``python -m npcnn gradcheck --all`` runs), ~10 s."""
    table = gradcheck_all()
    failed = [f"{r['case']} ({r['dtype']}): {r['max_rel_error']:.1e}" for r in table if not r["ok"]]
    assert failed == [], failed
