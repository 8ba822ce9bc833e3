# %% [markdown]
# # Lesson 7 — The learning rate and its schedules
#
# The learning rate is the hyperparameter that matters most (the lecture's "first ladder"). This
# lesson shows, first on a quadratic where everything can be computed exactly and then on a
# network:
#
# 1. too small, good and too large rates, and the stability limit $\eta < 2/\lambda$;
# 2. what momentum does on a badly conditioned problem;
# 3. the schedules — time-based $1/(1+kt)$, $1/\sqrt{t+1}$, $\exp(-kt)$, step, cosine, warm-up —
#    on one figure, checked against their formulas, and the same network trained under each;
# 4. warm-up rescuing a learning rate that diverges without it.
#
# Run: `python examples/lessons/07_learning_rate.py [--quick]`.

# %%
import math

import numpy as np

import npcnn
from npcnn import data, diagnostics, nn, optim, train
from npcnn.optim import lr_scheduler
from _course import all_claims_hold, claim, flat_digits, savefig, setup

quick, out = setup("07_learning_rate", "The learning rate and its schedules")

# %% [markdown]
# ## 1. On a quadratic: too small, good, too large
#
# Gradient descent on $f(w) = \frac{\lambda}{2} w^2$ is $w_{t+1} = w_t - \eta\lambda w_t = (1 - \eta\lambda)\,w_t$.
# It converges when $|1 - \eta\lambda| < 1$, i.e. $0 < \eta < 2/\lambda$: smoothly for
# $\eta < 1/\lambda$, in one step at $\eta = 1/\lambda$, oscillating between $1/\lambda$ and
# $2/\lambda$, and it diverges beyond $2/\lambda$. A network's loss is locally such a bowl in every
# direction, with $\lambda$ the curvature, so its largest curvature sets the largest stable rate.
# We run npcnn's `SGD` on a parameter whose gradient we write ourselves ($g = \lambda w$, $\lambda = 4$).


def descend(lam, lr, steps, momentum=0.0, w0=1.0):
    """Run npcnn's SGD on f(w) = sum(lam * w^2) / 2 (one coordinate per curvature); return |w| per step."""
    w = nn.Parameter(np.full(np.shape(lam), w0, dtype=np.float64))
    opt = optim.SGD([w], lr=lr, momentum=momentum)
    norms = [float(np.linalg.norm(w.data))]
    for _ in range(steps):
        opt.zero_grad()
        w.accumulate_grad(np.asarray(lam) * w.data)
        opt.step()
        norms.append(float(np.linalg.norm(w.data)))
    return np.array(norms)


# %%
lam = 4.0
rates = {"too small (0.01)": 0.01, "good (0.2)": 0.2, "1/lambda (0.25)": 0.25, "oscillating (0.45)": 0.45,
         "too large (0.55)": 0.55}
paths = {name: descend(lam, lr, 30) for name, lr in rates.items()}
for name, path in paths.items():
    print(f"eta = {name:20s}: |w_30| = {path[-1]:.3e}   (|1 - eta lambda|^30 = {abs(1 - rates[name] * lam) ** 30:.3e})")

# %% [markdown]
# ## 2. Momentum on a long, narrow valley
#
# With curvatures $\lambda_1 = 1$ and $\lambda_2 = 50$ the rate must stay below $2/50$ for the
# steep direction, and then the shallow one shrinks only by $1 - \eta$ per step. Momentum keeps a
# running velocity $b_t = \mu b_{t-1} + g_t$ and steps along it, $w \leftarrow w - \eta\,b_t$: the
# oscillations across the valley cancel, the steady push along it adds up, and the effective
# step along the valley floor becomes about $\eta/(1-\mu)$. Too much momentum overshoots in its
# turn: for condition number $\kappa = \lambda_2/\lambda_1$ the classical best choice is
# $\mu = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2 \approx 0.57$ for $\kappa = 50$.

# %%
valley = np.array([1.0, 50.0])
plain = descend(valley, 0.035, 400)
heavy = {mu: descend(valley, 0.035, 400, momentum=mu) for mu in (0.6, 0.9)}


def steps_to(path, tol=1e-6):
    return int(np.argmax(path < tol)) if (path < tol).any() else None


steps_plain = steps_to(plain)
steps_momentum = {mu: steps_to(path) for mu, path in heavy.items()}
print(f"steps to |w| < 1e-6 at eta = 0.035: plain SGD {steps_plain}, momentum 0.6: {steps_momentum[0.6]}, "
      f"momentum 0.9: {steps_momentum[0.9]}")

# %% [markdown]
# ## 3. The schedules
#
# With initial rate $\eta_0$, step $t$ and a constant $k$ (the lecture's formulas):
#
# | schedule | $\eta_t$ | npcnn |
# | --- | --- | --- |
# | time-based | $\eta_0 / (1 + kt)$ | `InverseTimeLR(opt, k)` |
# | square root | $\eta_0 / \sqrt{t + 1}$ | `InverseSqrtLR(opt)` |
# | exponential | $\eta_0\, e^{-kt}$ | `ExponentialDecayLR(opt, k)` |
# | step | $\eta_0\, \gamma^{\lfloor t / s \rfloor}$ (cut by $1-\gamma$ every $s$ steps) | `StepLR(opt, s, gamma)` |
# | cosine | $\eta_T + \frac{\eta_0 - \eta_T}{2}(1 + \cos\frac{\pi t}{T})$, then $\eta_T$ | `CosineAnnealingLR` |
# | warm-up | linear from $s\,\eta_0$ to $\eta_0$ over $W$ steps, then any schedule | `LinearWarmup(schedule, W, s)` |
#
# (`CosineAnnealingLR(opt, T, eta_min)` is the cosine with $\eta_T$ = `eta_min`.)
# npcnn's cosine stays at $\eta_T$ after $T$, as the lecture says; PyTorch's `CosineAnnealingLR`
# would turn back up. Each is computed by `schedule_values` and compared with its formula.

# %%
steps = 150 if quick else 600
lr0, k = 0.05, 10.0 / steps


def make_schedule(name, opt):
    if name == "constant":
        return lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=1.0, total_iters=1)
    if name == "time-based 1/(1+kt)":
        return lr_scheduler.InverseTimeLR(opt, k)
    if name == "1/sqrt(t+1)":
        return lr_scheduler.InverseSqrtLR(opt)
    if name == "exponential exp(-kt)":
        return lr_scheduler.ExponentialDecayLR(opt, k / 2)
    if name == "step (x0.5 every T/4)":
        return lr_scheduler.StepLR(opt, steps // 4, gamma=0.5)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.0)
    if name == "warm-up + cosine":
        warm = steps // 10
        return lr_scheduler.LinearWarmup(lr_scheduler.CosineAnnealingLR(opt, steps - warm), warm, start_factor=0.1)
    raise ValueError(name)


FORMULAS = {
    "constant": lambda t: lr0,
    "time-based 1/(1+kt)": lambda t: lr0 / (1 + k * t),
    "1/sqrt(t+1)": lambda t: lr0 / math.sqrt(t + 1),
    "exponential exp(-kt)": lambda t: lr0 * math.exp(-k / 2 * t),
    "step (x0.5 every T/4)": lambda t: lr0 * 0.5 ** (t // (steps // 4)),
    "cosine": lambda t: 0.5 * lr0 * (1 + math.cos(math.pi * t / steps)) if t < steps else 0.0,
    "warm-up + cosine": lambda t: (lr0 * (0.1 + 0.9 * t / (steps // 10)) if t < steps // 10 else
                                   0.5 * lr0 * (1 + math.cos(math.pi * (t - steps // 10) / (steps - steps // 10)))),
}
dummy = nn.Parameter(np.zeros(1))
schedule_values = {}
worst_formula_error = 0.0
for name in FORMULAS:
    values = lr_scheduler.schedule_values(make_schedule(name, optim.SGD([dummy], lr=lr0)), steps)
    schedule_values[name] = values
    worst_formula_error = max(worst_formula_error, max(abs(v - FORMULAS[name](t)) for t, v in enumerate(values)))
print(f"max |schedule_values - formula| over all schedules and steps = {worst_formula_error:.1e}")
past_the_end = lr_scheduler.schedule_values(make_schedule("cosine", optim.SGD([dummy], lr=lr0)), steps + 20)[steps:]
print(f"cosine after T steps: {past_the_end[:3]} ...")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7, 4))
for name, values in schedule_values.items():
    ax.plot(values, label=name)
ax.set_xlabel("step t")
ax.set_ylabel("learning rate")
ax.set_title(rf"schedules from $\eta_0$ = {lr0}, k = {k:.3g}")
ax.legend(fontsize=8)
savefig(fig, out, "schedules.png")

# %% [markdown]
# ### The same network under each schedule
#
# A 6-layer ReLU MLP (width 128, He init) on flattened MNIST digits, SGD with momentum 0.9 from
# $\eta_0 = 0.05$, each run from the same initial weights and the same batches. We report the
# loss on a fixed set of 1,000 training digits at the end. Decaying the rate lets the last steps
# settle into the minimum instead of rattling around it at full step size.

# %%
x_all, labels, task = flat_digits()
n_classes = int(labels.max()) + 1
eval_loader = data.DataLoader((x_all[:1000], labels[:1000]), batch_size=1000)


def train_run(lr, n_steps, schedule=None, depth=6, init="he", residual=False, momentum=0.9):
    """Train a fresh, identically initialized MLP; return (per-step losses, final evaluation)."""
    npcnn.manual_seed(0)
    net = diagnostics.deep_mlp(depth, 128, "relu", init=init, in_features=x_all.shape[1],
                               out_features=n_classes, residual=residual)
    opt = optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    sched = schedule(opt) if schedule else None
    loader = data.DataLoader((x_all, labels), batch_size=64, shuffle=True, seed=0)
    losses = []
    with np.errstate(all="ignore"):
        while len(losses) < n_steps:
            for batch in loader:
                losses.append(train.train_step(net, nn.CrossEntropyLoss(), opt, batch))
                if sched is not None:
                    sched.step()
                if len(losses) == n_steps:
                    break
        result = train.evaluate(net, eval_loader, loss_fn=nn.CrossEntropyLoss())
    return losses, result


def finite(value):
    return value if np.isfinite(value) else np.inf


lr_runs = {lr: train_run(lr, steps) for lr in (1e-5, 0.05, 1.0)}
for lr, (_, result) in lr_runs.items():
    print(f"constant eta = {lr:g}: final loss {result['loss']:.4f}")

schedule_runs = {name: train_run(lr0, steps, lambda opt, name=name: make_schedule(name, opt)) for name in FORMULAS}
lines = ["| schedule | final loss | accuracy |", "| --- | ---: | ---: |"]
for name, (_, result) in schedule_runs.items():
    lines.append(f"| {name} | {result['loss']:.4f} | {100 * result['accuracy']:.1f}% |")
schedule_table = "\n".join(lines)
print(schedule_table)
(out / "schedules.md").write_text(f"{task}, {steps} steps\n\n{schedule_table}\n")

# %% [markdown]
# ## 4. Warm-up rescues a rate that diverges
#
# Some networks are sharpest at initialization. A 10-layer residual MLP with He init is one:
# every block adds its output to its input, so at initialization the activations grow by about
# $\sqrt 2$ per block and the loss surface is steep. At $\eta = 0.01$ with momentum the first steps
# overshoot and the loss runs off to infinity. A linear warm-up from $0.01\,\eta$ over the first 200
# steps lets training first move into a flatter region, where the full rate is stable.

# %%
warm_steps = 300
rescue_lr = 0.01
without = train_run(rescue_lr, warm_steps, depth=10, residual=True)
with_warmup = train_run(rescue_lr, warm_steps, depth=10, residual=True,
                        schedule=lambda opt: lr_scheduler.LinearWarmup(
                            lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=1.0, total_iters=1), 200,
                            start_factor=0.01))
print(f"residual 10-layer MLP, eta = {rescue_lr}: without warm-up final loss {without[1]['loss']}, "
      f"with 200 warm-up steps {with_warmup[1]['loss']:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for name, path in paths.items():
    axes[0].semilogy(np.maximum(path, 1e-30), label=name)
axes[0].set_title(r"GD on $\lambda w^2/2$, $\lambda = 4$")
axes[0].set_xlabel("step")
axes[0].set_ylabel("|w|")
axes[0].legend(fontsize=7)
for name, (losses, _) in schedule_runs.items():
    axes[1].plot(np.convolve(losses, np.ones(10) / 10, mode="valid"), label=name)
for lr, (losses, _) in lr_runs.items():
    if lr != 0.05:
        axes[1].plot(np.convolve(np.nan_to_num(losses, nan=5.0, posinf=5.0), np.ones(10) / 10, mode="valid"),
                     ":", label=f"constant {lr:g}")
axes[1].set_ylim(0, 3)
axes[1].set_title(f"6-layer MLP on {task}, SGD + momentum")
axes[1].set_xlabel("step")
axes[1].legend(fontsize=6)
axes[2].semilogy(np.nan_to_num(without[0], nan=1e4, posinf=1e4)[:warm_steps], label="no warm-up (inf/NaN drawn at 1e4)")
axes[2].semilogy(with_warmup[0], label="200-step linear warm-up")
axes[2].set_ylim(0.1, 2e4)
axes[2].set_title(rf"residual 10-layer MLP, $\eta$ = {rescue_lr}")
axes[2].set_xlabel("step")
axes[2].legend()
savefig(fig, out, "training.png")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("on lambda w^2 / 2, SGD follows |1 - eta lambda|^t exactly (to 1e-12)",
      all(abs(path[-1] - abs(1 - rates[name] * lam) ** 30) < 1e-12 * max(1.0, path[-1])
          for name, path in paths.items()))
claim("eta < 2 / lambda converges, eta > 2 / lambda diverges",
      paths["oscillating (0.45)"][-1] < 1e-2 and paths["too large (0.55)"][-1] > 1e2)
claim(f"momentum 0.6 reaches |w| < 1e-6 in under a third of plain SGD's steps ({steps_momentum[0.6]} vs "
      f"{steps_plain}); 0.9 is faster than plain SGD too, but overshoots ({steps_momentum[0.9]})",
      steps_plain is not None and steps_momentum[0.6] < steps_plain / 3
      and steps_momentum[0.6] < steps_momentum[0.9] < steps_plain)
claim("every schedule matches its formula at every step (to 1e-15)", worst_formula_error < 1e-15)
claim("the cosine schedule ends pinned at eta_T = 0, the warm-up starts at 0.1 eta_0",
      past_the_end == [0.0] * 20 and abs(schedule_values["warm-up + cosine"][0] - 0.1 * lr0) < 1e-15)
too_small, good, too_large = (finite(lr_runs[lr][1]["loss"]) for lr in (1e-5, 0.05, 1.0))
# "learns": below half the guessing loss on MNIST; the synthetic fallback task learns more slowly
factor = 0.5 if task == "MNIST" else 0.85
claim(f"too small (1e-5) barely moves from the guessing loss ln {n_classes}; too large (1.0) diverges; 0.05 learns",
      too_small > 0.8 * np.log(n_classes) and too_large > np.log(n_classes) and good < factor * too_small)
claim(f"every schedule trains: its final loss is below {factor} x the guessing loss",
      all(finite(r["loss"]) < factor * np.log(n_classes) for _, r in schedule_runs.values()))
claim(f"at eta = {rescue_lr} the residual MLP diverges without warm-up (inf/NaN) and learns with it "
      f"(final loss below {factor} x the guessing loss)",
      finite(without[1]["loss"]) == np.inf and with_warmup[1]["loss"] < factor * np.log(n_classes))

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
