"""Learning-rate schedules: closed forms, PyTorch's schedules, warmup, plateau, state dicts, plot."""

import math

import numpy as np
import pytest
from conftest import torch_or_skip

from npcnn import optim
from npcnn.nn.parameter import Parameter
from npcnn.optim import lr_scheduler as S


def _opt(lr=0.1, cls=optim.SGD, **kwargs):
    return cls([Parameter(np.zeros(2))], lr=lr, **kwargs)


def _lrs(scheduler, steps):
    """get_last_lr()[0] at t = 0 .. steps-1."""
    values = [scheduler.get_last_lr()[0]]
    for _ in range(steps - 1):
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


CLOSED_FORMS = [
    (lambda o: S.StepLR(o, step_size=3, gamma=0.5), lambda t: 0.1 * 0.5 ** (t // 3)),
    (lambda o: S.MultiStepLR(o, milestones=[5, 2], gamma=0.1), lambda t: 0.1 * 0.1 ** ((t >= 2) + (t >= 5))),
    (lambda o: S.ExponentialLR(o, gamma=0.9), lambda t: 0.1 * 0.9 ** t),
    (lambda o: S.ExponentialDecayLR(o, k=0.2), lambda t: 0.1 * math.exp(-0.2 * t)),
    (lambda o: S.InverseTimeLR(o, k=0.5), lambda t: 0.1 / (1 + 0.5 * t)),
    (lambda o: S.InverseSqrtLR(o), lambda t: 0.1 / math.sqrt(t + 1)),
    (lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=4), lambda t: 0.1 * max(0.0, 1 - t / 4)),
    (lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
     lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * t / 6)) / 2 if t <= 6 else 0.01),
]


@pytest.mark.parametrize("make,formula", CLOSED_FORMS)
def test_closed_forms(make, formula):
    opt = _opt()
    scheduler = make(opt)
    values = _lrs(scheduler, 12)
    np.testing.assert_allclose(values, [formula(t) for t in range(12)], rtol=1e-14, atol=1e-17)
    assert opt.param_groups[0]["lr"] == values[-1]
    assert opt.param_groups[0]["initial_lr"] == 0.1


def test_cosine_is_pinned_after_T_max():
    values = _lrs(S.CosineAnnealingLR(_opt(), T_max=4, eta_min=0.002), 10)
    assert values[4:] == [0.002] * 6
    assert values[0] == 0.1 and values[2] == pytest.approx(0.051)


def test_each_group_follows_its_own_base_lr():
    p, q = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [p]}, {"params": [q], "lr": 1.0}], lr=0.1)
    scheduler = S.StepLR(opt, step_size=1, gamma=0.5)
    scheduler.step()
    assert scheduler.get_last_lr() == [0.05, 0.5]


def _torch_lrs(torch, make, steps, **opt_kwargs):
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, **opt_kwargs)
    scheduler = make(torch.optim.lr_scheduler, t_opt)
    values = [scheduler.get_last_lr()[0]]
    for _ in range(steps - 1):
        t_opt.step()
        scheduler.step()
        values.append(scheduler.get_last_lr()[0])
    return values


TORCH_SCHEDULES = [
    lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    lambda m, o: m.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
    lambda m, o: m.ExponentialLR(o, gamma=0.9),
    lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
    lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6),
]


@pytest.mark.torch
@pytest.mark.parametrize("make", TORCH_SCHEDULES)
def test_matches_pytorch(make):
    torch = torch_or_skip()
    ours = _lrs(make(S, _opt()), 12)
    np.testing.assert_allclose(ours, _torch_lrs(torch, make, 12), rtol=1e-12)


@pytest.mark.torch
def test_cosine_matches_pytorch_up_to_T_max():
    torch = torch_or_skip()
    make = lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.003)  # noqa: E731
    np.testing.assert_allclose(_lrs(make(S, _opt()), 8), _torch_lrs(torch, make, 8), rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", [dict(), dict(anneal_strategy="linear"), dict(three_phase=True),
                                    dict(pct_start=0.5, div_factor=10.0, final_div_factor=100.0)])
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_one_cycle_matches_pytorch_with_momentum(kwargs, opt_name):
    torch = torch_or_skip()
    total = 20
    opt_kwargs = dict(momentum=0.9) if opt_name == "SGD" else {}
    opt = getattr(optim, opt_name)([Parameter(np.zeros(2))], lr=0.1, **opt_kwargs)
    t_opt = getattr(torch.optim, opt_name)([torch.zeros(2, requires_grad=True)], lr=0.1, **opt_kwargs)
    ours = S.OneCycleLR(opt, max_lr=1.0, total_steps=total, **kwargs)
    theirs = torch.optim.lr_scheduler.OneCycleLR(t_opt, max_lr=1.0, total_steps=total, **kwargs)
    key = "momentum" if opt_name == "SGD" else "betas"
    for _ in range(total):
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-12)
        m, tm = opt.param_groups[0][key], t_opt.param_groups[0][key]
        assert (m if key == "momentum" else m[0]) == pytest.approx(tm if key == "momentum" else tm[0], rel=1e-12)
        t_opt.step()
        ours.step()
        theirs.step()


def test_one_cycle_shape_and_errors():
    values = _lrs(S.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, cycle_momentum=False), 10)
    assert values[0] == pytest.approx(1.0 / 25) and max(values) == pytest.approx(1.0)
    assert values[-1] == pytest.approx(1.0 / 25 / 1e4)
    scheduler = S.OneCycleLR(_opt(), max_lr=1.0, epochs=2, steps_per_epoch=3, cycle_momentum=False)
    assert scheduler.total_steps == 6
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(_opt(), max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum"):
        S.OneCycleLR(_opt(cls=optim.Adagrad), max_lr=1.0, total_steps=5)
    scheduler = S.OneCycleLR(_opt(), max_lr=1.0, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="more than total_steps"):
        scheduler.step()


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", [dict(patience=2), dict(mode="max", patience=1, threshold=0.1, threshold_mode="abs"),
                                    dict(patience=0, cooldown=2, min_lr=0.002, factor=0.5)])
def test_plateau_matches_pytorch(kwargs):
    torch = torch_or_skip()
    metrics = [1.0, 0.9, 0.95, 0.92, 0.91, 0.91, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.45, 0.45, 0.45]
    opt = _opt()
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    ours = S.ReduceLROnPlateau(opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    for value in metrics:
        ours.step(value)
        t_opt.step()
        theirs.step(value)
        assert ours.get_last_lr()[0] == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)


def test_plateau_by_hand():
    opt = _opt(lr=1.0)
    scheduler = S.ReduceLROnPlateau(opt, patience=1, factor=0.5, threshold=0.0)
    lrs = []
    for value in [3.0, 2.0, 2.0, 2.0, 2.0, 1.0]:
        scheduler.step(value)
        lrs.append(scheduler.get_last_lr()[0])
    # two steps without improvement (> patience=1) halve the rate; the counter then restarts
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(opt, factor=1.5)


# ----------------------------------------------------------------------------- warmup


@pytest.mark.parametrize("make", [lambda o: S.CosineAnnealingLR(o, T_max=5), lambda o: S.StepLR(o, 2, 0.5),
                                  lambda o: S.InverseSqrtLR(o)])
def test_warmup_in_front_of_any_schedule(make):
    W = 4
    warm = S.LinearWarmup(make(_opt()), warmup_steps=W, start_factor=0.2)
    plain = _lrs(make(_opt()), 10)
    values = _lrs(warm, W + 10)
    expected = [0.1 * (0.2 + 0.8 * t / W) for t in range(W)] + plain
    np.testing.assert_allclose(values, expected, rtol=1e-14)
    assert warm.optimizer.param_groups[0]["lr"] == values[-1]


def test_warmup_in_front_of_plateau_and_one_cycle():
    warm = S.LinearWarmup(S.ReduceLROnPlateau(_opt(lr=1.0), patience=0, factor=0.5), warmup_steps=2, start_factor=0.0)
    lrs = [warm.get_last_lr()[0]]
    for value in [5.0, 5.0, 5.0, 5.0]:
        warm.step(value)
        lrs.append(warm.get_last_lr()[0])
    assert lrs == [0.0, 0.5, 1.0, 1.0, 0.5]  # the first plateau step sets the best, the second reduces
    with pytest.raises(ValueError, match="needs step\\(metric\\)"):
        warm.step()

    plain = _lrs(S.OneCycleLR(_opt(), max_lr=1.0, total_steps=6, cycle_momentum=False), 6)
    warm = S.LinearWarmup(S.OneCycleLR(_opt(), max_lr=1.0, total_steps=6, cycle_momentum=False), warmup_steps=3)
    values = _lrs(warm, 3 + 6)
    assert values[3:] == plain and values[:3] == pytest.approx([plain[0] * (0.1 + 0.3 * t) for t in range(3)])


def test_warmup_state_dict_round_trip():
    a = S.LinearWarmup(S.StepLR(_opt(), 2, 0.5), warmup_steps=3)
    for _ in range(4):
        a.step()
    b = S.LinearWarmup(S.StepLR(_opt(), 2, 0.5), warmup_steps=3)
    b.load_state_dict(a.state_dict())
    assert _lrs(a, 6) == _lrs(b, 6)
    with pytest.raises(KeyError):
        b.load_state_dict({"warmup_steps": 3})


# ----------------------------------------------------------------------------- state, errors, plot


@pytest.mark.parametrize("make", [c[0] for c in CLOSED_FORMS] + [
    lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=30), lambda o: S.ReduceLROnPlateau(o, patience=0)])
def test_state_dict_round_trip(make):
    def advance(scheduler, n):
        for i in range(n):
            scheduler.step(1.0) if isinstance(scheduler, S.ReduceLROnPlateau) else scheduler.step()
        return scheduler.get_last_lr()

    a = make(_opt(momentum=0.9))
    advance(a, 5)
    opt_b = _opt(momentum=0.9)
    b = make(opt_b)
    opt_b.load_state_dict(a.optimizer.state_dict())  # a plateau's reduced rate lives in the optimizer
    b.load_state_dict(a.state_dict())
    assert b.get_last_lr() == a.get_last_lr()
    assert advance(a, 3) == advance(b, 3)
    assert opt_b.param_groups[0]["lr"] == a.optimizer.param_groups[0]["lr"]
    with pytest.raises(KeyError, match="unknown keys \\['bogus'\\]"):
        b.load_state_dict(dict(a.state_dict(), bogus=1))


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), 2, last_epoch=3)
    opt = _opt()
    S.StepLR(opt, 2)
    assert S.StepLR(opt, 2, gamma=0.5, last_epoch=3).get_last_lr() == [0.1 * 0.5 ** 2]


def test_schedule_values_restores_everything():
    opt = _opt(momentum=0.9)
    scheduler = S.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    before = (scheduler.state_dict(), opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"])
    values = S.schedule_values(scheduler, 10)
    assert len(values) == 10 and max(values) == pytest.approx(1.0)
    assert (scheduler.state_dict(), opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]) == before
    assert S.schedule_values(S.ReduceLROnPlateau(_opt(), patience=0), 3, metrics=[1, 1, 1])[-1] == pytest.approx(0.01)


def test_plot_schedule(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = S.plot_schedule(S.LinearWarmup(S.CosineAnnealingLR(_opt(), T_max=20), 5), 25, label="warmup + cosine")
    line = ax.get_lines()[0]
    assert len(line.get_xdata()) == 25 and max(line.get_ydata()) == pytest.approx(0.1)
    ax.figure.savefig(tmp_path / "schedule.png")
    assert (tmp_path / "schedule.png").stat().st_size > 0


def test_bad_arguments():
    with pytest.raises(TypeError, match="expected an Optimizer"):
        S.StepLR(object(), 2)
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(_opt(), 0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(_opt(), 0)
    with pytest.raises(ValueError, match="warmup_steps"):
        S.LinearWarmup(S.StepLR(_opt(), 2), -1)


BAD_SCHEDULES = [
    (lambda o: S.ExponentialLR(o, gamma=-0.5), "ExponentialLR: invalid gamma -0.5; expected a finite number >= 0"),
    (lambda o: S.ExponentialLR(o, gamma=math.nan), "ExponentialLR: invalid gamma nan"),
    (lambda o: S.StepLR(o, step_size=2, gamma=-0.1), "StepLR: invalid gamma -0.1"),
    (lambda o: S.StepLR(o, step_size=2.5), "StepLR: invalid step_size 2.5; expected an integer >= 1"),
    (lambda o: S.MultiStepLR(o, milestones=[2, -1]), "MultiStepLR: invalid milestone -1"),
    (lambda o: S.MultiStepLR(o, milestones=[2], gamma=-2), "MultiStepLR: invalid gamma -2"),
    (lambda o: S.ExponentialDecayLR(o, k=-1.0), "ExponentialDecayLR: invalid k -1.0"),
    (lambda o: S.InverseTimeLR(o, k=math.inf), "InverseTimeLR: invalid k inf"),
    (lambda o: S.LinearLR(o, start_factor=-0.5), "LinearLR: invalid start_factor -0.5"),
    (lambda o: S.LinearLR(o, end_factor=math.nan), "LinearLR: invalid end_factor nan"),
    (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=-1e-3), "CosineAnnealingLR: invalid eta_min -0.001"),
    (lambda o: S.OneCycleLR(o, max_lr=-4e-3, total_steps=10), "OneCycleLR: invalid max_lr -0.004; expected"),
    (lambda o: S.OneCycleLR(o, max_lr=math.nan, total_steps=10), "OneCycleLR: invalid max_lr nan"),
    (lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10, div_factor=0), "OneCycleLR: invalid div_factor 0"),
    (lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10, final_div_factor=-1),
     "OneCycleLR: invalid final_div_factor -1"),
    (lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10, max_momentum=1.2), "OneCycleLR: invalid max_momentum 1.2"),
    (lambda o: S.OneCycleLR(o, max_lr=0.1, epochs=-2, steps_per_epoch=469), "OneCycleLR: invalid epochs -2"),
    (lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), "OneCycleLR: invalid pct_start 1.5"),
    (lambda o: S.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=10), "OneCycleLR: 2 max_lr values for 1 parameter"),
    (lambda o: S.ReduceLROnPlateau(o, factor=-0.5), r"ReduceLROnPlateau: invalid factor -0.5; .*in \[0, 1\)"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), r"ReduceLROnPlateau: invalid factor 1.0"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=-1.0), "ReduceLROnPlateau: invalid min_lr -1.0"),
    (lambda o: S.ReduceLROnPlateau(o, patience=-1), "ReduceLROnPlateau: invalid patience -1"),
    (lambda o: S.LinearWarmup(S.StepLR(o, 2), 3, start_factor=math.nan), "LinearWarmup: invalid start_factor nan"),
    (lambda o: S.LinearWarmup(S.StepLR(o, 2), 2.5), "LinearWarmup: invalid warmup_steps 2.5"),
    (lambda o: S.LinearWarmup(o, 3), "LinearWarmup: expected a learning-rate scheduler"),
    (lambda o: S.StepLR(o, 2, last_epoch=-5), "StepLR: invalid last_epoch -5"),
]


@pytest.mark.parametrize("make,message", BAD_SCHEDULES)
def test_a_schedule_that_would_write_a_bad_rate_is_rejected_at_construction(make, message):
    opt = _opt(0.1, momentum=0.9)
    with pytest.raises(ValueError if "expected a learning-rate" not in message else TypeError, match=message):
        make(opt)
    assert opt.param_groups[0]["lr"] == 0.1  # nothing written


# ----------------------------------------------------------------------------- warm-up without shifting, timescale


@pytest.mark.parametrize("make", [lambda o: S.CosineAnnealingLR(o, T_max=12), lambda o: S.StepLR(o, 2, 0.5),
                                  lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=12, cycle_momentum=False)])
def test_warmup_without_delay_keeps_the_schedule_in_place(make):
    W, T = 4, 12
    warm = S.LinearWarmup(make(_opt()), warmup_steps=W, start_factor=0.2, delay=False)
    plain = _lrs(make(_opt()), T)
    values = _lrs(warm, T)
    expected = [plain[t] * (0.2 + 0.8 * t / W) for t in range(W)] + plain[W:]
    np.testing.assert_allclose(values[:W], expected[:W], rtol=1e-14)
    assert values[W:] == plain[W:]  # identical from the end of the warm-up on: nothing shifted
    # the default still delays the schedule by W steps (documented)
    delayed = _lrs(S.LinearWarmup(make(_opt()), warmup_steps=W, start_factor=0.2), T + W)
    assert delayed[W:] == plain


def test_warmup_without_delay_state_dict_and_errors():
    a = S.LinearWarmup(S.CosineAnnealingLR(_opt(), T_max=10), warmup_steps=3, delay=False)
    for _ in range(2):
        a.step()
    b = S.LinearWarmup(S.CosineAnnealingLR(_opt(), T_max=10), warmup_steps=3)
    b.load_state_dict(a.state_dict())
    assert b.delay is False and _lrs(a, 6) == _lrs(b, 6)
    old = S.LinearWarmup(S.StepLR(_opt(), 2), warmup_steps=3).state_dict()
    del old["delay"]  # a checkpoint written before the option existed
    c = S.LinearWarmup(S.StepLR(_opt(), 2), warmup_steps=3, delay=False)
    c.load_state_dict(old)
    assert c.delay is True
    with pytest.raises(ValueError, match="delay=False needs a closed-form schedule"):
        S.LinearWarmup(S.ReduceLROnPlateau(_opt()), 3, delay=False)
    with pytest.raises(ValueError, match="LinearWarmup: invalid delay 'no'"):
        S.LinearWarmup(S.StepLR(_opt(), 2), 3, delay="no")


def test_inverse_sqrt_timescale():
    values = _lrs(S.InverseSqrtLR(_opt(), timescale=50), 400)
    np.testing.assert_allclose(values, [0.1 / math.sqrt(1 + t / 50) for t in range(400)], rtol=1e-15)
    assert values[150] == pytest.approx(0.05, rel=1e-15)  # halved at 3 * timescale
    assert values[1] / values[0] > 0.99  # not the 29% drop of timescale=1 after one step
    assert _lrs(S.InverseSqrtLR(_opt()), 2)[1] == pytest.approx(0.1 / math.sqrt(2))
    with pytest.raises(ValueError, match="InverseSqrtLR: invalid timescale 0"):
        S.InverseSqrtLR(_opt(), timescale=0)


def test_transformer_schedule_from_warmup_and_inverse_sqrt():
    W = 8
    values = _lrs(S.LinearWarmup(S.InverseSqrtLR(_opt(1.0), timescale=W), W, start_factor=0.0), 60)
    expected = [min(t / W, math.sqrt(W / t)) if t else 0.0 for t in range(60)]  # Vaswani et al.'s, peak 1
    np.testing.assert_allclose(values, expected, rtol=1e-14)
