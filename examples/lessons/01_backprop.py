# %% [markdown]
# # Lesson 1 — Backpropagation by hand
#
# Every layer in npcnn has a hand-written `backward`. Before trusting any of them, we derive the
# gradients of a tiny network ourselves, with pencil-and-paper formulas turned into NumPy, and
# check that three independent answers agree:
#
# 1. the chain rule written out for every one of the network's 25 parameters;
# 2. npcnn's `model.backward(...)`;
# 3. `npcnn.gradcheck`, which never looks at a derivative: it nudges each parameter by
#    $\pm\varepsilon$ and measures how the loss moves.
#
# Then we use the same formulas to see why deep sigmoid networks stop learning
# ($\sigma' \le 1/4$), why a skip connection helps (the two-path chain rule), and how large
# weights make gradients explode.
#
# Run: `python examples/lessons/01_backprop.py [--quick]`.

# %%
import numpy as np

import npcnn
from npcnn import diagnostics, gradcheck, nn
from _course import all_claims_hold, claim, savefig, setup

quick, out = setup("01_backprop", "Backpropagation by hand")
npcnn.manual_seed(0)

# %% [markdown]
# ## 1. The 2-3-3-1 network of the lecture
#
# Two inputs, two hidden layers of three sigmoid units, one sigmoid output:
#
# $$z^{[1]} = W^{[1]}x + b^{[1]},\; a^{[1]} = \sigma(z^{[1]}),\qquad
#   z^{[2]} = W^{[2]}a^{[1]} + b^{[2]},\; a^{[2]} = \sigma(z^{[2]}),\qquad
#   \hat y = \sigma(W^{[3]}a^{[2]} + b^{[3]})$$
#
# with $W^{[1]}\in\mathbb{R}^{3\times 2}$, $W^{[2]}\in\mathbb{R}^{3\times 3}$,
# $W^{[3]}\in\mathbb{R}^{1\times 3}$: $6+3+9+3+3+1 = 25$ parameters. The loss is the squared error
# $L = (\hat y - y)^2$ (npcnn's `MSELoss` on one sample).

# %%
model = nn.Sequential(
    nn.Linear(2, 3), nn.Sigmoid(),
    nn.Linear(3, 3), nn.Sigmoid(),
    nn.Linear(3, 1), nn.Sigmoid(),
).double()
x = np.array([[0.5, -1.2]])
y = np.array([[1.0]])
loss_fn = nn.MSELoss()

loss = loss_fn(model(x), y)
model.zero_grad()
model.backward(loss_fn.backward())
print(f"loss L = {loss:.6f}")

# %% [markdown]
# ## 2. Every partial derivative, written out
#
# Call $t = \partial L/\partial \hat y = 2(\hat y - y)$ and use $\sigma'(z) = \sigma(z)(1-\sigma(z))$.
# Going backwards, each layer turns the gradient of its output into the gradient of its input:
#
# $$\delta^{[3]} = t\,\sigma'(z^{[3]}),\qquad
#   \frac{\partial L}{\partial W^{[3]}_{1j}} = \delta^{[3]} a^{[2]}_j,\qquad
#   \frac{\partial L}{\partial b^{[3]}} = \delta^{[3]}$$
#
# $$\frac{\partial L}{\partial a^{[2]}_j} = \delta^{[3]} W^{[3]}_{1j},\qquad
#   \delta^{[2]}_j = \frac{\partial L}{\partial a^{[2]}_j}\,\sigma'(z^{[2]}_j),\qquad
#   \frac{\partial L}{\partial W^{[2]}_{ji}} = \delta^{[2]}_j a^{[1]}_i$$
#
# $$\frac{\partial L}{\partial a^{[1]}_i} = \sum_j \delta^{[2]}_j W^{[2]}_{ji},\qquad
#   \delta^{[1]}_i = \frac{\partial L}{\partial a^{[1]}_i}\,\sigma'(z^{[1]}_i),\qquad
#   \frac{\partial L}{\partial W^{[1]}_{ik}} = \delta^{[1]}_i x_k$$
#
# (The lecture writes the same chain for one weight per layer:
# $\partial L/\partial w_3 = t\,\sigma' a_2$, $\partial L/\partial w_2 = t\,\sigma' w_3\,\sigma' a_2$, ...)
# Below, one scalar at a time, exactly as on paper.

# %%
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


W1, b1 = model[0].weight.data, model[0].bias.data
W2, b2 = model[2].weight.data, model[2].bias.data
W3, b3 = model[4].weight.data, model[4].bias.data
xs = x[0]

z1 = [sum(W1[i, k] * xs[k] for k in range(2)) + b1[i] for i in range(3)]
a1 = [sigmoid(v) for v in z1]
z2 = [sum(W2[j, i] * a1[i] for i in range(3)) + b2[j] for j in range(3)]
a2 = [sigmoid(v) for v in z2]
z3 = sum(W3[0, j] * a2[j] for j in range(3)) + b3[0]
yhat = sigmoid(z3)

t = 2.0 * (yhat - y[0, 0])
delta3 = t * yhat * (1 - yhat)
hand = {"2.weight": np.zeros((3, 3)), "0.weight": np.zeros((3, 2)), "4.weight": np.zeros((1, 3)),
        "0.bias": np.zeros(3), "2.bias": np.zeros(3), "4.bias": np.array([delta3])}
dL_da2 = [delta3 * W3[0, j] for j in range(3)]
delta2 = [dL_da2[j] * a2[j] * (1 - a2[j]) for j in range(3)]
dL_da1 = [sum(delta2[j] * W2[j, i] for j in range(3)) for i in range(3)]
delta1 = [dL_da1[i] * a1[i] * (1 - a1[i]) for i in range(3)]
for j in range(3):
    hand["4.weight"][0, j] = delta3 * a2[j]
    hand["2.bias"][j] = delta2[j]
    hand["0.bias"][j] = delta1[j]
    for i in range(3):
        hand["2.weight"][j, i] = delta2[j] * a1[i]
    for k in range(2):
        hand["0.weight"][j, k] = delta1[j] * xs[k]

# %% [markdown]
# ## 3. Hand, npcnn and finite differences side by side

# %%
report = gradcheck.check_module(model, x)  # every parameter and the input, against central differences
numeric = {}
for name, p in model.named_parameters():
    flat = p.data.reshape(-1)
    grads = np.empty_like(flat)
    for idx in range(flat.size):
        keep = flat[idx]
        flat[idx] = keep + 1e-6
        up = loss_fn(model(x), y)
        flat[idx] = keep - 1e-6
        down = loss_fn(model(x), y)
        flat[idx] = keep
        grads[idx] = (up - down) / 2e-6
    numeric[name] = grads.reshape(p.shape)

lines = ["| parameter | hand | npcnn backward | finite difference |", "| --- | ---: | ---: | ---: |"]
worst_backward = worst_numeric = 0.0
for name, p in model.named_parameters():
    for idx in np.ndindex(*p.shape):
        h, b, n = hand[name][idx], p.grad[idx], numeric[name][idx]
        worst_backward = max(worst_backward, abs(h - b))
        worst_numeric = max(worst_numeric, abs(h - n))
        lines.append(f"| {name}{list(idx)} | {h:+.12f} | {b:+.12f} | {n:+.12f} |")
table = "\n".join(lines)
print(table)
(out / "gradients.md").write_text(table + "\n")
print(f"max |hand - backward| = {worst_backward:.1e},  max |hand - finite difference| = {worst_numeric:.1e}")
print(report)

# %% [markdown]
# The hand derivation and npcnn's backward agree to the last few bits of a float64 (they are the
# same arithmetic in a different order); the finite differences agree to about $10^{-10}$, the
# accuracy a central difference with $\varepsilon = 10^{-6}$ can reach.
#
# ## 4. Why sigmoid gradients vanish: $\sigma' \le 1/4$
#
# $\sigma'(z) = \sigma(1-\sigma)$ is a product $ab$ of two positive numbers with $a + b = 1$, and
# $ab \le \left(\frac{a+b}{2}\right)^2 = \frac14$, with equality only at $\sigma = 1/2$, i.e. $z=0$.
# Each sigmoid layer multiplies the backward signal by $\sigma'(z)\,w$, so through $d$ layers
#
# $$\left|\frac{\partial L}{\partial w_1}\right| \le |t| \left(\tfrac14\right)^{d} \prod_l |w_l|\;|x|,$$
#
# which for weights of order one shrinks like $4^{-d}$: the first layers barely move
# ($w_1 \leftarrow w_1 - \eta\,\partial L/\partial w_1 \approx w_1$).

# %%
z = np.linspace(-10, 10, 200001)
s = sigmoid(z)
dsig = s * (1 - s)
print(f"max sigma'(z) on [-10, 10] = {dsig.max():.12f} at z = {z[dsig.argmax()]:+.6f}")

depth = 10 if quick else 20
width = 32 if quick else 64
gradient_norms = {}
for activation, init in (("sigmoid", "xavier"), ("relu", "he")):
    npcnn.manual_seed(1)
    deep = diagnostics.deep_mlp(depth, width, activation, init=init).double()
    inputs = np.random.default_rng(2).standard_normal((64, width))
    targets = np.random.default_rng(3).integers(0, 10, 64)
    ce = nn.CrossEntropyLoss()
    ce(deep(inputs), targets)
    deep.zero_grad()
    deep.backward(ce.backward())
    gradient_norms[f"{activation}, {init} init"] = [float(np.linalg.norm(p.grad)) for n, p in
                                                    deep.named_parameters() if n.endswith("weight")]

import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].plot(z[::100], s[::100], label=r"$\sigma(z)$")
axes[0].plot(z[::100], dsig[::100], label=r"$\sigma'(z) \leq 1/4$")
axes[0].axhline(0.25, color="gray", lw=0.5)
axes[0].set_xlabel("z")
axes[0].legend()
for label, norms in gradient_norms.items():
    axes[1].semilogy(range(1, depth + 1), norms, marker="o", label=label)
axes[1].set_xlabel("layer (1 = nearest the input)")
axes[1].set_ylabel(r"$\|\partial L / \partial W\|$")
axes[1].set_title(f"{depth}-layer MLP, width {width}")
axes[1].legend()
savefig(fig, out, "vanishing.png")
sig_norms = gradient_norms["sigmoid, xavier init"]
relu_norms = gradient_norms["relu, he init"]
print(f"sigmoid net: first-layer / last-hidden-layer gradient norm = {sig_norms[0] / sig_norms[-2]:.2e}")
print(f"ReLU + He  : first-layer / last-hidden-layer gradient norm = {relu_norms[0] / relu_norms[-2]:.2e}")

# %% [markdown]
# ## 5. Two paths: the chain rule adds
#
# When one value feeds two branches, its gradient is the **sum** of what comes back along each.
# The lecture's example: $x$ feeds $x^2$ and $e^x$, $L = x^2 + e^x$, so
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial x^2}\frac{\partial x^2}{\partial x}
#   + \frac{\partial L}{\partial e^x}\frac{\partial e^x}{\partial x} = 2x + e^x .$$
#
# A residual block is the same fork: $H(x) = F(x) + x$, so
# $\partial L/\partial x = \partial L/\partial H \,(\partial F/\partial x + 1)$. The "+1" path hands
# the gradient back unchanged, however small $\partial F/\partial x$ has become.

# %%
x0 = 1.0
two_path = 2 * x0 + np.exp(x0)
finite = ((x0 + 1e-6) ** 2 + np.exp(x0 + 1e-6) - (x0 - 1e-6) ** 2 - np.exp(x0 - 1e-6)) / 2e-6
print(f"dL/dx at x = 1: 2x + e^x = {two_path:.12f}, finite difference = {finite:.12f}")

npcnn.manual_seed(4)
body = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 4)).double()
block = nn.Residual(body)
h_in = np.random.default_rng(5).standard_normal((3, 4))
block(h_in)
dH = np.random.default_rng(6).standard_normal((3, 4))
dx_block = block.backward(dH)
body(h_in)
dx_body = body.backward(dH)
print(f"max |residual backward - (body backward + dL/dH)| = {np.abs(dx_block - (dx_body + dH)).max():.1e}")

# %% [markdown]
# ## 6. Exploding gradients
#
# The same product that vanishes for small factors explodes for large ones. A deep ReLU net with
# He initialization keeps the backward signal at a constant size; multiply every weight by 2 and
# each layer doubles it: after $d$ layers the first layer's gradient is about $2^{d-1}$ times
# larger, and one SGD step throws the weights far away.

# %%
explode = {}
for scale in (1.0, 2.0):
    npcnn.manual_seed(1)
    deep = diagnostics.deep_mlp(depth, width, "relu", init="he", scale=scale).double()
    inputs = np.random.default_rng(2).standard_normal((64, width))
    ce = nn.CrossEntropyLoss()
    ce(deep(inputs), np.random.default_rng(3).integers(0, 10, 64))
    deep.zero_grad()
    deep.backward(ce.backward())
    explode[scale] = [float(np.linalg.norm(p.grad)) for n, p in deep.named_parameters() if n.endswith("weight")]
growth = explode[2.0][0] / explode[1.0][0]
print(f"first-layer gradient norm, He init: {explode[1.0][0]:.3e}; weights x2: {explode[2.0][0]:.3e} "
      f"(x{growth:.1e}; 2^(d-1) = {2.0 ** (depth - 1):.1e})")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("the hand-derived gradients of all 25 parameters equal npcnn's backward to 1e-12",
      worst_backward < 1e-12)
claim("... and the finite differences to 1e-8", worst_numeric < 1e-8)
claim("npcnn.gradcheck passes on the 2-3-3-1 network (relative error < 1e-6)", report.ok)
claim("sigma'(z) <= 1/4, with the maximum 1/4 at z = 0",
      dsig.max() <= 0.25 and abs(dsig.max() - 0.25) < 1e-15 and z[dsig.argmax()] == 0.0)
claim(f"in a {depth}-layer sigmoid net the first layer's gradient is < 1/100 of the last hidden layer's",
      sig_norms[0] < sig_norms[-2] / 100)
claim("with ReLU and He init it stays within a factor 10", 0.1 < relu_norms[0] / relu_norms[-2] < 10)
claim("two paths add: dL/dx = 2x + e^x to 1e-8", abs(two_path - finite) < 1e-8)
claim("the residual block's input gradient is exactly body's plus dL/dH (the '+1' path)",
      np.array_equal(dx_block, dx_body + dH))
claim(f"doubling the weights of the {depth}-layer ReLU net multiplies the first gradient by > 2^(d-2)",
      growth > 2.0 ** (depth - 2))

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
