"""Images made by gradient ascent on the input: class models and DeepDream.

Class model (Simonyan et al. 2014): find an image I that maximizes

    S_c(I) - l2 ||I||^2

(S_c the class logit) by gradient ascent from a near-zero start, with the two regularizers that
make the result look like an image rather than adversarial noise: a random shift ("jitter", up
to ``jitter`` pixels, undone on the gradient) before each step, and a Gaussian blur of the image
every ``blur_every`` steps. DeepDream amplifies what a layer already sees in an image: ascent on
0.5 ||A_layer(I)||^2 (or one channel's part of it), starting from the image itself.

Each step is normalized by the gradient's mean absolute value, so ``lr`` is roughly "pixel
change per step" whatever the scale of the scores.
"""

import numpy as np

from .. import backend
from ._common import as_batch, blur, capture, find_layer, injected_gradient, input_gradient_mode, one_hot


def _shifts(rng, jitter):
    if jitter <= 0:
        return 0, 0
    dy, dx = rng.integers(-jitter, jitter + 1, size=2)
    return int(dy), int(dx)


def _ascend(images, gradient_fn, steps, lr, l2, jitter, blur_sigma, blur_every, clip, seed):
    """The shared loop: images (N, C, H, W) move along the normalized gradient of the objective."""
    xp = backend.get_array_module(images)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        dy, dx = _shifts(rng, jitter)
        shifted = xp.roll(images, (dy, dx), axis=(2, 3))
        grad = xp.roll(gradient_fn(shifted), (-dy, -dx), axis=(2, 3))
        if l2:
            grad = grad - (2.0 * l2) * images
        scale = xp.abs(grad).mean(axis=(1, 2, 3), keepdims=True) + 1e-12
        images = images + lr * grad / scale
        if blur_sigma > 0 and blur_every and (step + 1) % blur_every == 0:
            images = blur(images, blur_sigma)
        if clip is not None:
            images = xp.clip(images, clip[0], clip[1])
    return images


def class_model(model, target, shape, steps=100, lr=0.1, l2=1e-3, jitter=2, blur_sigma=0.5, blur_every=4,
                clip=None, init=None, seed=0):
    """An image (C, H, W) of ``shape`` that the model scores highly as class ``target``.

    ``target`` may be a list of classes: then a batch (K, C, H, W), one image per class, made
    in one ascent. ``init`` (same shape) replaces the default start, small noise around zero;
    ``clip=(lo, hi)`` keeps the pixels in the data's range.

    Args:
        model (Module): a classifier returning logits (N, classes); its parameters are not
            changed (their gradients are not computed) and its mode is left as it was.
        target (int or list of ints): the class(es) whose logit is ascended.
        shape (tuple): one image's (C, H, W).
        steps (int, default 100): gradient-ascent steps.
        lr (float, default 0.1): the step, in pixel units: each step moves the pixels by
            lr * grad / mean|grad|.
        l2 (float, default 1e-3): weight of the -l2 ||I||^2 penalty (0 turns it off).
        jitter (int, default 2): the largest random shift, in pixels, before each step.
        blur_sigma (float, default 0.5): Gaussian blur of the image (in pixels) every
            ``blur_every`` steps; 0 turns it off.
        blur_every (int, default 4): steps between blurs.
        clip (pair of floats, default None): (lo, hi) bounds of the pixels after each step.
        init (array, default None): the start (C, H, W); None: 0.01 N(0, 1) noise.
        seed (int, default 0): seeds the start noise and the jitter.

    Returns:
        The image (C, H, W), or (K, C, H, W) for a list of K targets, on the model's device.
    """
    classes = np.atleast_1d(np.asarray(target, dtype=np.int64))
    rng = np.random.default_rng(seed)
    if init is None:
        start = 0.01 * rng.standard_normal((len(classes),) + tuple(shape))
    else:
        start = np.broadcast_to(backend.to_numpy(init), (len(classes),) + tuple(shape))
    images, _ = as_batch(model, np.ascontiguousarray(start, dtype=np.float64))
    images = images.copy()
    dout = None

    def gradient(batch):
        nonlocal dout
        logits = model(batch)
        if dout is None:
            dout = one_hot(backend.asarray(classes), logits.shape[1], logits.dtype)
        return model.backward(dout)

    with input_gradient_mode(model):
        images = _ascend(images, gradient, steps, lr, l2, jitter, blur_sigma, blur_every, clip, seed + 1)
    return images[0] if np.ndim(target) == 0 else images


def deep_dream(model, image, layer, steps=20, lr=0.05, channel=None, jitter=2, blur_sigma=0.0, blur_every=4,
               clip=None, seed=0):
    """DeepDream: ascend 0.5 ||A||^2 of ``layer``'s output A (only ``channel`` of it when given)
    from ``image`` (C, H, W) or a batch. Returns the amplified image(s), same shape.

    Args:
        model (Module): the network; its parameters and mode are left as they were.
        image (array): (C, H, W) or (N, C, H, W), the start.
        layer (Module or str): the layer (or its dotted name in ``model.named_modules()``).
        steps (int, default 20): gradient-ascent steps.
        lr (float, default 0.05): the step in pixel units (as in :func:`class_model`).
        channel (int, default None): amplify only this channel of A; None: all of A.
        jitter, blur_sigma, blur_every, clip, seed: as in :func:`class_model` (no blur by
            default).
    """
    module = find_layer(model, layer)[1]
    images, single = as_batch(model, image)
    images = images.copy()

    def gradient(batch):
        with capture(module) as acts, injected_gradient(module) as box:
            out = model(batch)
            a = acts[0]
            if channel is None:
                box[0] = a  # d(0.5 ||A||^2)/dA = A
            else:
                box[0] = a * 0.0
                box[0][:, channel] = a[:, channel]
            xp = backend.get_array_module(out)
            return model.backward(xp.zeros_like(out))

    with input_gradient_mode(model):
        images = _ascend(images, gradient, steps, lr, 0.0, jitter, blur_sigma, blur_every, clip, seed)
    return images[0] if single else images
