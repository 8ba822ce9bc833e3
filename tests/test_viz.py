"""npcnn.viz: known cases for every visualization, on tiny models and inputs."""

import numpy as np
import pytest
from conftest import torch_or_skip

import npcnn
from npcnn import nn, viz
from npcnn.gradcheck import numerical_gradient
from npcnn.viz._common import injected_gradient, input_gradient_mode, resize_bilinear


def _small_cnn(seed=0):
    """conv3(pad 1) -> ReLU -> maxpool2 -> conv3 -> ReLU -> flatten -> linear(3), float64, 1 x 8 x 8 input."""
    npcnn.manual_seed(seed)
    with npcnn.backend.default_dtype(np.float64):
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3),
                             nn.ReLU(), nn.Flatten(), nn.Linear(5 * 2 * 2, 3))


def _linear_model(in_shape, classes, seed=0):
    npcnn.manual_seed(seed)
    with npcnn.backend.default_dtype(np.float64):
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(in_shape)), classes))


def _state_untouched(model):
    """Parameters trainable, no grads, caches gone, training mode on: what a visualization must leave."""
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert all("backward" not in m.__dict__ for m in model.modules())


# ----------------------------------------------------------------------------- kernels


def test_apply_kernel_matches_scipy_correlate_for_every_named_kernel(rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = rng.standard_normal((2, 3, 9, 7))
    for name in viz.KERNELS:
        out = viz.apply_kernel(x, name)
        k = np.asarray(viz.KERNELS[name], dtype=np.float64)
        expected = np.stack([[ndimage.correlate(x[n, c], k, mode="constant", cval=0.0) for c in range(3)]
                             for n in range(2)])
        np.testing.assert_allclose(out, expected, atol=1e-12, err_msg=name)


def test_apply_kernel_known_cases_and_shapes(rng):
    img = rng.random((6, 8)).astype(np.float32)
    ident = viz.apply_kernel(img, "identity")
    assert ident.shape == (6, 8) and ident.dtype == np.float32
    np.testing.assert_array_equal(ident, img)
    ramp = np.tile(np.arange(10.0) * 0.5, (7, 1))                   # intensity grows to the right by 0.5
    sx = viz.apply_kernel(ramp, "sobel_x")
    np.testing.assert_allclose(sx[1:-1, 1:-1], 4.0)                 # (1 + 2 + 1) * 2 * 0.5
    np.testing.assert_allclose(viz.apply_kernel(ramp, "sobel_y")[1:-1, 1:-1], 0.0, atol=1e-12)
    flat = np.full((1, 5, 5), 3.0)
    np.testing.assert_allclose(viz.apply_kernel(flat, "box_blur")[0, 1:-1, 1:-1], 3.0)
    np.testing.assert_allclose(viz.apply_kernel(flat, "edge")[0, 1:-1, 1:-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(viz.apply_kernel(flat, "sharpen")[0, 1:-1, 1:-1], 3.0)
    custom = viz.apply_kernel(img, np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(custom[:, :-1], img[:, 1:])           # reads the right neighbour
    assert viz.apply_kernels(img, ["identity", ("shift", [[1.0]])]).keys() == {"identity", "shift"}


def test_apply_kernel_rejects_bad_input():
    with pytest.raises(ValueError, match="odd"):
        viz.apply_kernel(np.zeros((4, 4)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown kernel"):
        viz.apply_kernel(np.zeros((4, 4)), "nope")
    with pytest.raises(TypeError, match="float"):
        viz.apply_kernel(np.zeros((4, 4), dtype=np.uint8), "identity")


# ----------------------------------------------------------------------------- filters, feature maps


def test_make_grid_places_images():
    imgs = np.arange(5 * 2 * 3, dtype=np.float64).reshape(5, 2, 3)
    grid = viz.make_grid(imgs, nrow=3, padding=1, pad_value=-1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    np.testing.assert_array_equal(grid[1:3, 1:4], imgs[0])
    np.testing.assert_array_equal(grid[4:6, 5:8], imgs[4])           # row 1, column 1
    assert (grid[4:6, 9:12] == -1).all()                             # the empty slot
    rgb = viz.make_grid(np.zeros((2, 3, 4, 4)), nrow=2)
    assert rgb.shape == (6, 11, 3)
    with pytest.raises(ValueError, match="make_grid"):
        viz.make_grid(np.zeros((2, 5, 4, 4)))


def test_plot_filters_grid_and_first_conv():
    model = _small_cnn()
    grid = viz.plot_filters(model)
    assert grid.shape == (3 + 2, 4 * 4 + 1)                          # 4 filters 3x3 in one row
    assert grid.min() >= 0 and grid.max() <= 1
    np.testing.assert_array_equal(viz.filter_images(model), model[0].weight.data)
    assert viz.filter_images(model, layer="3").shape == (5, 4, 3, 3)


def test_feature_maps_equal_the_layer_output_and_leave_no_state(rng):
    model = _small_cnn()
    x = rng.standard_normal((2, 1, 8, 8))
    maps = viz.feature_maps(model, x, "1")
    with npcnn.no_grad():
        expected = model[1](model[0](x))
    np.testing.assert_array_equal(maps, expected)
    assert viz.feature_maps(model, x[0], model[1]).shape == (4, 8, 8)
    _state_untouched(model)
    assert all(m._saved is None for m in model.modules())
    with pytest.raises(ValueError, match="not part of"):
        viz.feature_maps(model, x, "99")


# ----------------------------------------------------------------------------- receptive fields


def test_receptive_field_lenet_known_values():
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    expected = {"0": (5, 1), "1": (5, 1), "2": (6, 2), "3": (14, 2), "5": (16, 4)}
    for layer, (size, jump) in expected.items():
        rf = viz.receptive_field(model, layer)
        assert rf.size == (size, size) and rf.jump == (jump, jump) and rf.start == (0, 0), layer
    padded = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    assert viz.receptive_field(padded, "2") == viz.ReceptiveField((8, 8), (2, 2), (-4, -4))
    with pytest.raises(ValueError, match="cannot follow a Flatten"):
        viz.receptive_field(model, "7")


def test_receptive_field_matches_the_gradient_support(rng):
    """With positive weights and linear layers, d unit / d input is non-zero inside the unit's
    receptive field (clipped to the image) and reaches all four of its edges (the field is the
    bounding box: dilation leaves holes inside it)."""
    with npcnn.backend.default_dtype(np.float64):
        model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.AvgPool2d(2),
                              nn.Conv2d(2, 2, (3, 2), dilation=2), nn.Identity())
    for p in model.parameters():
        p.data = np.abs(p.data) + 0.1
    x = rng.standard_normal((1, 1, 23, 21))
    rf = viz.receptive_field(model, "2")
    with input_gradient_mode(model):
        out_shape = model(x).shape
        for i, j in [(0, 0), (1, 2), (out_shape[2] - 1, out_shape[3] - 1)]:
            with injected_gradient(model[2]) as box:
                out = model(x)
                box[0] = np.zeros(out.shape)
                box[0][0, 1, i, j] = 1.0
                grad = model.backward(np.zeros(out.shape))[0, 0]
            top, left, bottom, right = rf.window(i, j)
            rows, cols = np.nonzero(grad)
            box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
            assert box == (max(top, 0), max(left, 0), min(bottom, 23), min(right, 21)), (i, j)


def test_max_activating_patches_against_brute_force(rng):
    with npcnn.backend.default_dtype(np.float64):
        model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
    k = rng.standard_normal((2, 1, 3, 3))
    model[0].weight.data, model[0].bias.data = k, np.zeros(2)
    images = rng.standard_normal((12, 1, 6, 7))
    res = viz.max_activating_patches(model, images, "0", channel=1, k=4)
    assert res.patches.shape == (4, 1, 3, 3) and res.field.size == (3, 3)
    with npcnn.no_grad():
        acts = model[0](images)[:, 1]
    best = acts.reshape(12, -1).max(axis=1)
    np.testing.assert_array_equal(res.indices, np.argsort(-best)[:4])
    np.testing.assert_allclose(res.values, np.sort(best)[::-1][:4])
    for patch, value, (i, j), n in zip(res.patches, res.values, res.positions, res.indices):
        np.testing.assert_allclose((patch * k[1]).sum(), value)      # the patch is what the unit saw
        assert acts[n, i, j] == value
    whole = viz.max_activating_patches(_small_cnn(), rng.standard_normal((5, 1, 8, 8)), "6", channel=0, k=2)
    assert whole.patches.shape == (2, 1, 8, 8) and whole.field is None


def test_cut_patch_fills_outside_the_image():
    from npcnn.viz.receptive_field import cut_patch

    image = np.arange(16.0).reshape(1, 4, 4)
    patch = cut_patch(image, viz.ReceptiveField((3, 3), (1, 1), (-1, -1)), 0, 0, fill=-9.0)
    np.testing.assert_array_equal(patch[0], [[-9, -9, -9], [-9, 0, 1], [-9, 4, 5]])


# ----------------------------------------------------------------------------- saliency


def test_saliency_of_a_linear_model_is_its_weight_row(rng):
    model = _linear_model((1, 3, 4), 3)
    x = rng.standard_normal((2, 1, 3, 4))
    w = model[1].weight.data
    raw = viz.saliency_map(model, x, target=[2, 0], reduce=None)
    np.testing.assert_allclose(raw, w[[2, 0]].reshape(2, 1, 3, 4), rtol=0, atol=1e-15)
    smap = viz.saliency_map(model, x[0], target=1)
    np.testing.assert_allclose(smap, np.abs(w[1]).reshape(3, 4), atol=1e-15)
    _state_untouched(model)


def test_class_score_gradient_matches_finite_differences(rng):
    model = _small_cnn()
    x = rng.standard_normal((1, 1, 8, 8))
    grad, classes = viz.class_score_gradient(model, x)
    c = int(classes[0])
    with npcnn.no_grad():
        assert c == int(model(x).argmax())
        numeric = numerical_gradient(lambda: float(model(x)[0, c]), x, np.arange(x.size))
    np.testing.assert_allclose(grad.ravel(), numeric, atol=1e-7)
    _state_untouched(model)


def test_saliency_keeps_existing_grads_and_frozen_flags(rng):
    model = _small_cnn()
    model[0].weight.requires_grad = False
    marker = np.ones_like(model[6].weight.data)
    model[6].weight.grad = marker
    model.eval()
    viz.saliency_map(model, rng.standard_normal((1, 1, 8, 8)))
    assert model[0].weight.requires_grad is False and model[6].weight.grad is marker
    assert not any(m.training for m in model.modules())


def test_guided_backprop_no_relu_passes_negative_or_masked_gradients(rng):
    model = _small_cnn(seed=3)
    x = rng.standard_normal((3, 1, 8, 8))
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    inputs, passed = {}, {}
    with viz.guided_relus(model):
        hooks = [r.register_forward_hook(lambda m, i, o: inputs.__setitem__(id(m), i[0])) for r in relus]
        hooks += [r.register_backward_hook(lambda m, gi, go: passed.__setitem__(id(m), gi)) for r in relus]
        guided, _ = viz.class_score_gradient(model, x, target=1)
        for h in hooks:
            h.remove()
    for r in relus:
        g, inp = passed[id(r)], inputs[id(r)]
        assert (g >= 0).all(), "a ReLU passed a negative gradient"
        assert (g[inp <= 0] == 0).all(), "a ReLU passed a gradient where its input was negative"
        assert (g > 0).any()
    np.testing.assert_array_equal(viz.guided_backprop(model, x, target=1), guided)
    _state_untouched(model)
    # the plain gradient does carry negative values back through the ReLUs: guiding changed something
    plain = viz.saliency_map(model, x, target=1, reduce=None)
    assert not np.allclose(plain, guided)


def test_guided_backprop_of_a_two_layer_mlp_by_hand(rng):
    npcnn.manual_seed(1)
    with npcnn.backend.default_dtype(np.float64):
        model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = rng.standard_normal((1, 1, 2, 3))
    w1, b1, w2 = model[1].weight.data, model[1].bias.data, model[3].weight.data
    h = x.reshape(1, 6) @ w1.T + b1
    g = w2[2]
    expected = (((h[0] > 0) & (g > 0)) * g) @ w1
    np.testing.assert_allclose(viz.guided_backprop(model, x, target=2).ravel(), expected, atol=1e-14)
    with pytest.raises(ValueError, match="no ReLU"):
        viz.guided_backprop(_linear_model((1, 2, 3), 2), x)


def test_grad_cam_equals_cam_for_a_global_average_pooling_net(rng):
    npcnn.manual_seed(2)
    with npcnn.backend.default_dtype(np.float64):
        model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 3))
    x = rng.standard_normal((2, 2, 7, 6))
    cam = viz.grad_cam(model, x, target=[0, 2], layer="1", upsample=False, normalize=False)
    with npcnn.no_grad():
        a = model[1](model[0](x))
    w = model[4].weight.data
    h, wd = a.shape[2:]
    expected = np.stack([np.maximum(np.einsum("k,kyx->yx", w[c], a[n]), 0) / (h * wd) for n, c in enumerate([0, 2])])
    np.testing.assert_allclose(cam, expected, atol=1e-14)
    up = viz.grad_cam(model, x[0], target=1)                         # default layer: the last Conv2d
    assert up.shape == (7, 6) and up.min() >= 0 and up.max() <= 1
    _state_untouched(model)


def test_resize_bilinear_matches_torch(rng):
    torch = torch_or_skip()
    maps = rng.standard_normal((2, 3, 5))
    ours = resize_bilinear(maps, (7, 11))
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=(7, 11), mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


# ----------------------------------------------------------------------------- occlusion


def test_occlusion_of_an_irrelevant_region_changes_nothing(rng):
    model = _linear_model((1, 12, 12), 2)
    w = model[1].weight.data.reshape(2, 12, 12)
    w[:, :, :6] = 0.0                                                # the left half is ignored
    x = rng.random((1, 12, 12))
    occ = viz.occlusion_map(model, x, target=1, size=4, stride=2, value=0.5)
    assert occ.shape == (5, 5)
    starts = [0, 2, 4, 6, 8]
    for a, r in enumerate(starts):
        for b, c in enumerate(starts):
            occluded = x.copy()
            occluded[:, r:r + 4, c:c + 4] = 0.5
            expected = float((w[1] * (x[0] - occluded[0])).sum())  # drop of a linear score
            assert occ[a, b] == pytest.approx(expected, abs=1e-12)
    assert (occ[:, :2] == 0).all() and (occ[:, 3:] != 0).all()
    probs = viz.occlusion_map(model, x, size=5, stride=3, score="prob")
    assert probs.shape == (4, 4) and np.abs(probs).max() <= 1      # 0, 3, 6 and the edge-covering 7
    pix = viz.occlusion_pixel_map(occ, x.shape, size=4, stride=2)
    assert pix.shape == (12, 12) and (pix[:, :4] == 0).all()
    _state_untouched(model)


# ----------------------------------------------------------------------------- gradient ascent


def test_class_model_plain_ascent_on_a_linear_model_is_known():
    model = _linear_model((1, 4, 5), 3)
    w = model[1].weight.data[2].reshape(1, 4, 5)
    start = np.zeros((1, 4, 5))
    img = viz.class_model(model, 2, (1, 4, 5), steps=7, lr=0.1, l2=0.0, jitter=0, blur_sigma=0, init=start)
    np.testing.assert_allclose(img, 7 * 0.1 * w / np.abs(w).mean(), atol=1e-12)
    _state_untouched(model)


def test_class_model_raises_the_class_score_with_regularizers():
    model = _small_cnn()
    kwargs = dict(steps=40, lr=0.1, l2=1e-3, jitter=1, blur_sigma=0.5, seed=4)
    imgs = viz.class_model(model, [0, 2], (1, 8, 8), **kwargs)
    assert imgs.shape == (2, 1, 8, 8)
    with npcnn.no_grad():
        start = model(np.zeros((1, 1, 8, 8)))[0]
        scores = model(imgs)
    assert scores[0, 0] > start[0] + 0.15 and scores[1, 2] > start[2] + 0.15   # (~ +0.2 / +0.25 measured)
    again = viz.class_model(model, [0, 2], (1, 8, 8), **kwargs)
    np.testing.assert_array_equal(imgs, again)
    clipped = viz.class_model(model, 1, (1, 8, 8), steps=5, clip=(0.0, 1.0))
    assert clipped.shape == (1, 8, 8) and clipped.min() >= 0 and clipped.max() <= 1


def test_injected_gradient_is_the_gradient_of_half_the_squared_activation(rng):
    model = _small_cnn()
    x = rng.standard_normal((1, 1, 8, 8))
    layer = model[4]
    with input_gradient_mode(model), viz.saliency.capture(layer) as acts, injected_gradient(layer) as box:
        out = model(x)
        box[0] = acts[0]
        grad = model.backward(np.zeros(out.shape))
    assert "backward" not in layer.__dict__

    def objective():
        with npcnn.no_grad():
            a = model[4](model[3](model[2](model[1](model[0](x)))))
        return 0.5 * float((a * a).sum())

    numeric = numerical_gradient(objective, x, np.arange(x.size))
    np.testing.assert_allclose(grad.ravel(), numeric, atol=1e-6)


def test_deep_dream_amplifies_the_layer(rng):
    model = _small_cnn()
    x = rng.random((1, 8, 8))
    before = viz.feature_maps(model, x, "4")
    dreamt = viz.deep_dream(model, x, "4", steps=10, lr=0.05, jitter=1)
    assert dreamt.shape == x.shape and not np.shares_memory(dreamt, x)
    after = viz.feature_maps(model, dreamt, "4")
    assert (after ** 2).sum() > 1.5 * (before ** 2).sum()
    c = int(before.sum(axis=(1, 2)).argmax())                       # a live channel (a dead ReLU stays dead)
    one = viz.deep_dream(model, x, "4", steps=10, lr=0.05, channel=c, jitter=0)
    assert viz.feature_maps(model, one, "4")[c].sum() > 1.5 * before[c].sum()
    _state_untouched(model)


# ----------------------------------------------------------------------------- neighbours


def test_nearest_neighbors_pixels_and_features(rng):
    db = rng.standard_normal((30, 1, 8, 8))
    q = db[[3, 17]] + 1e-3 * rng.standard_normal((2, 1, 8, 8))
    idx, dist = viz.nearest_neighbors(q, db, k=4)
    brute = ((q.reshape(2, 1, -1) - db.reshape(1, 30, -1)) ** 2).sum(-1)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :4])
    np.testing.assert_allclose(dist, np.sqrt(np.sort(brute, axis=1)[:, :4]), atol=1e-9)
    assert list(idx[:, 0]) == [3, 17]
    self_idx, self_dist = viz.nearest_neighbors(db[:5], db, k=2, exclude_self=True)
    assert (self_idx != np.arange(5)[:, None]).all() and (self_dist > 0).all()
    model = _small_cnn()
    fidx, _ = viz.nearest_neighbors(q, db, k=3, model=model)
    with npcnn.no_grad():
        feats = lambda a: model[5](model[4](model[3](model[2](model[1](model[0](a))))))  # noqa: E731
        fq, fd = feats(q), feats(db)
    fbrute = ((fq[:, None] - fd[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(fidx, np.argsort(fbrute, axis=1, kind="stable")[:, :3])


# ----------------------------------------------------------------------------- plots


def test_confusion_matrix_and_history_arrays():
    pred, target = np.array([0, 1, 1, 2, 2, 2]), np.array([0, 1, 2, 2, 2, 0])
    m = viz.plot_confusion_matrix((pred, target), classes=["a", "b", "c"])
    np.testing.assert_array_equal(m, [[1, 0, 1], [0, 1, 0], [0, 1, 2]])
    np.testing.assert_allclose(viz.plot_confusion_matrix(m, normalize=True).sum(axis=1), 1.0)
    np.testing.assert_array_equal(viz.misclassified(pred, target), [2, 5])
    history = npcnn.train.History()
    history.append(1, {"loss": 1.0, "accuracy": 0.5, "lr": 0.1})
    history.append(2, {"loss": 0.5, "accuracy": 0.7, "lr": 0.1})
    assert viz.plot_history(history) == {"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}


def test_plot_functions_write_pngs(tmp_path, rng):
    pytest.importorskip("matplotlib")
    model = _small_cnn()
    x = rng.random((4, 1, 8, 8))
    history = npcnn.train.History()
    for e in range(3):
        history.append(e + 1, {"loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "accuracy": 0.3 * e})
    paths = {
        "kernels": lambda p: viz.plot_kernels(x[0], p),
        "filters": lambda p: viz.plot_filters(model, p),
        "maps": lambda p: viz.plot_feature_maps(model, x[0], "1", p),
        "patches": lambda p: viz.plot_max_activating_patches(model, x, "3", [0, 1], p, k=3),
        "heat": lambda p: viz.plot_heatmaps(x, {"saliency": viz.saliency_map(model, x),
                                                "grad-cam": viz.grad_cam(model, x)}, p, titles=list("abcd")),
        "cm": lambda p: viz.plot_confusion_matrix(np.eye(3, dtype=int), p),
        "history": lambda p: viz.plot_history(history, p),
        "wrong": lambda p: viz.plot_misclassified(x, [0, 1, 2, 0], [0, 2, 2, 1], p),
        "neighbors": lambda p: viz.plot_neighbors(x[:2], x, p, k=2, model=model),
        "image": lambda p: viz.save_image(x[0], p),
    }
    for name, draw in paths.items():
        path = tmp_path / f"{name}.png"
        draw(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
