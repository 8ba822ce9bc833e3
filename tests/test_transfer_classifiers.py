"""Classifiers on extracted features: k-nearest neighbours against a brute-force loop twin, both
metrics, ties, standardization, bad input; kNN and the linear SVM on features of a small net."""

import numpy as np
import pytest

import npcnn
from npcnn import nn, transfer
from npcnn.data import DataLoader
from npcnn.transfer import KNeighborsClassifier, LinearSVM


def knn_naive(train_x, train_y, query, k, metric):
    """One query at a time: sort all distances, count the k nearest labels, break ties by the
    smaller summed rank, as the documented rule says."""
    out = []
    for q in query:
        if metric == "euclidean":
            d = np.sqrt(((train_x - q) ** 2).sum(axis=1))
        else:
            d = 1 - train_x @ q / (np.linalg.norm(train_x, axis=1) * np.linalg.norm(q))
        order = np.argsort(d, kind="stable")[:k]
        best = None
        for label in sorted(set(train_y[order])):
            members = [j for j, i in enumerate(order) if train_y[i] == label]
            key = (-len(members), sum(members))
            if best is None or key < best[0]:
                best = (key, label)
        out.append(best[1])
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3, 4, 7])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_matches_the_loop_twin(rng, k, metric):
    for trial in range(3):
        x = rng.standard_normal((60, 5))
        y = rng.integers(0, 4, 60) + 10             # labels need not start at 0
        q = rng.standard_normal((25, 5))
        got = KNeighborsClassifier(k, metric=metric, standardize=False, batch_size=7).fit(x, y).predict(q)
        want = knn_naive(x, y, q, k, metric)
        assert np.array_equal(got, want), f"k={k} metric={metric} trial={trial}: {got} != {want}"


def test_kneighbors_distances_and_order(rng):
    x = rng.standard_normal((30, 3))
    q = rng.standard_normal((4, 3))
    d, i = KNeighborsClassifier(5, standardize=False).fit(x, np.zeros(30)).kneighbors(q)
    full = np.sqrt(((q[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :5], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :5])


def test_tie_goes_to_the_nearer_label():
    x = np.array([[0.0], [1.0], [-2.0], [2.5]])
    y = np.array([0, 1, 1, 0])
    # query at 0.4: nearest are 0 (label 0, rank 0), 1 (label 1, rank 1); with k=2 a 1-1 tie -> 0
    assert KNeighborsClassifier(2, standardize=False).fit(x, y).predict([[0.4]])[0] == 0
    assert KNeighborsClassifier(2, standardize=False).fit(x, y).predict([[0.6]])[0] == 1


def test_standardization_makes_scale_irrelevant(rng):
    x = rng.standard_normal((80, 2))
    y = (x[:, 0] > 0).astype(int)
    scaled = x * np.array([1.0, 1e4])                # the useful feature is drowned without standardizing
    q = rng.standard_normal((200, 2))
    truth = (q[:, 0] > 0).astype(int)
    qs = q * np.array([1.0, 1e4])
    assert KNeighborsClassifier(3).fit(scaled, y).score(qs, truth) > 0.9
    assert KNeighborsClassifier(3, standardize=False).fit(scaled, y).score(qs, truth) < 0.8


def test_one_neighbour_memorizes_its_training_set(rng):
    x = rng.standard_normal((50, 8))
    y = rng.integers(0, 5, 50)
    assert KNeighborsClassifier(1).fit(x, y).score(x, y) == 1.0


@pytest.mark.parametrize("kwargs, match", [({"k": 0}, "k must be"), ({"k": 2.5}, "k must be"),
                                           ({"metric": "manhattan"}, "metric must be")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KNeighborsClassifier(**kwargs)


def test_bad_data(rng):
    knn = KNeighborsClassifier(3)
    with pytest.raises(RuntimeError, match="call fit"):
        knn.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="at least k"):
        knn.fit(np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="labels"):
        knn.fit(np.zeros((5, 2)), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        knn.fit(np.full((5, 2), np.nan), np.zeros(5))
    knn.fit(rng.standard_normal((5, 2)), np.arange(5))
    with pytest.raises(ValueError, match="features"):
        knn.predict(np.zeros((1, 3)))


def test_classifiers_on_features_of_a_network(rng):
    npcnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    centres = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, 300)
    x = (centres[y] + rng.standard_normal((300, 6))).astype(np.float32)
    feats, labels = transfer.extract_features(model, DataLoader((x, y), batch_size=64))
    assert feats.shape == (300, 16)
    for clf in (KNeighborsClassifier(5), LinearSVM(epochs=200)):
        clf.fit(feats[:200], labels[:200])
        assert clf.score(feats[200:], labels[200:]) > 0.8, type(clf).__name__
