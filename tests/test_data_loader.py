"""DataLoader and TensorDataset: batching, permutations, determinism, resumable state."""

import numpy as np
import pytest

import npcnn
from npcnn.data import DataLoader, ImageDataset, TensorDataset
from npcnn.data import transforms as T


def _data(n=10):
    return np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2), np.arange(n, dtype=np.int64)


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_in_order(drop_last, sizes):
    x, y = _data()
    loader = DataLoader((x, y), batch_size=4, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == sizes
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y[: sum(sizes)])
    np.testing.assert_array_equal(batches[0][0], x[:4])
    assert isinstance(batches[0][0], np.ndarray) and batches[0][1].dtype == np.int64


def test_shuffle_is_a_permutation_each_epoch_and_seeded():
    x, y = _data(23)
    loader = DataLoader((x, y), batch_size=5, shuffle=True, seed=7)
    epochs = [np.concatenate([b[1] for b in loader]) for _ in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(23))
        np.testing.assert_array_equal(x[order], np.concatenate([b[0] for b in DataLoader((x[order], order))]))
    assert not np.array_equal(epochs[0], epochs[1])
    again = DataLoader((x, y), batch_size=5, shuffle=True, seed=7)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), epochs[0])
    assert loader.epoch == 3


def test_seed_none_follows_manual_seed():
    x, y = _data(30)
    npcnn.manual_seed(5)
    a = np.concatenate([b[1] for b in DataLoader((x, y), 8, shuffle=True)])
    npcnn.manual_seed(5)
    b = np.concatenate([b[1] for b in DataLoader((x, y), 8, shuffle=True)])
    npcnn.manual_seed(6)
    c = np.concatenate([b[1] for b in DataLoader((x, y), 8, shuffle=True)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_state_dict_resumes_mid_epoch_and_later_epochs():
    x, y = _data(20)
    ref = DataLoader((x, y), batch_size=3, shuffle=True, seed=1)
    ref_epochs = [[b[1].tolist() for b in ref] for _ in range(2)]

    loader = DataLoader((x, y), batch_size=3, shuffle=True, seed=1)
    it = iter(loader)
    seen = [next(it)[1].tolist() for _ in range(3)]
    state = loader.state_dict()
    assert state["batches_done"] == 3 and state["epoch"] == 0

    resumed = DataLoader((x, y), batch_size=3, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    rest = [b[1].tolist() for b in resumed]
    assert seen + rest == ref_epochs[0]
    assert [b[1].tolist() for b in resumed] == ref_epochs[1]
    assert resumed.state_dict()["epoch"] == 2 and resumed.state_dict()["batches_done"] == 0


def test_dataset_objects_and_tensor_dataset():
    x, y = _data(9)
    ds = ImageDataset(x, y, classes=list("abcdefghi"))
    got = [b for b in DataLoader(ds, batch_size=4, shuffle=True, seed=0)]
    assert sorted(np.concatenate([b[1] for b in got]).tolist()) == list(range(9))
    for xb, yb in got:
        np.testing.assert_array_equal(xb, x[yb])  # images stay paired with their labels
    masks = np.arange(9 * 4).reshape(9, 2, 2)
    triples = list(DataLoader(TensorDataset(x, y, masks), batch_size=5))
    assert len(triples[0]) == 3 and triples[1][2].shape == (4, 2, 2)
    with pytest.raises(ValueError, match="different lengths"):
        TensorDataset(x, y[:3])
    with pytest.raises(TypeError, match="DataLoader: expected"):
        DataLoader(42)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader((x, y), batch_size=0)


def test_uint8_converted_per_batch_and_transform_applied():
    x = np.arange(6 * 4, dtype=np.uint8).reshape(6, 1, 2, 2) * 10
    y = np.arange(6)
    loader = DataLoader((x, y), batch_size=4, to_float=True, transform=T.Normalize([0.5], [0.5]))
    xb, yb = next(iter(loader))
    assert xb.dtype == np.float32 and x.dtype == np.uint8  # the dataset itself stays uint8
    np.testing.assert_allclose(xb, (x[:4] / 255.0 - 0.5) / 0.5, rtol=1e-6, atol=1e-6)
    raw = next(iter(DataLoader((x, y), batch_size=4)))[0]
    assert raw.dtype == np.uint8


@pytest.mark.parametrize("bad", [2.7, 2.0, "all", 0, -3, True, None, np.float64(4)])
def test_bad_batch_size_is_a_clear_error(bad):
    x, y = _data()
    with pytest.raises(ValueError, match=r"DataLoader: batch_size must be a positive int, got"):
        DataLoader((x, y), batch_size=bad)


def test_numpy_int_batch_size_is_fine():
    x, y = _data()
    assert DataLoader((x, y), batch_size=np.int64(4)).batch_size == 4


@pytest.mark.parametrize("kwargs, error, match", [
    ({"shuffle": "yes"}, TypeError, "DataLoader: shuffle must be True or False"),
    ({"drop_last": 1}, TypeError, "DataLoader: drop_last must be True or False"),
    ({"to_float": "no"}, TypeError, "DataLoader: to_float must be True or False"),
    ({"pin_memory": "cuda"}, TypeError, "DataLoader: pin_memory must be True or False"),
    ({"num_workers": -1}, ValueError, "DataLoader: num_workers must be an int >= 0"),
    ({"num_workers": 1.5}, ValueError, "DataLoader: num_workers must be an int >= 0"),
    ({"timeout": -1}, ValueError, "DataLoader: timeout must be"),
    ({"prefetch_factor": 0}, ValueError, "DataLoader: prefetch_factor"),
    ({"sampler": [0, 1], "shuffle": True}, ValueError, "sampler and shuffle=True are mutually exclusive"),
    ({"sampler": 5}, TypeError, "DataLoader: sampler must be an iterable"),
    ({"collate_fn": 5}, TypeError, "DataLoader: collate_fn must be callable"),
    ({"transform": "flip"}, TypeError, "DataLoader: transform must be callable"),
    ({"seed": 1, "generator": 2}, ValueError, "seed or generator, not both"),
    ({"seed": 1.5}, TypeError, "DataLoader: seed must be None, an int seed or a numpy.random.Generator"),
    ({"generator": "torch"}, TypeError, "DataLoader: generator must be None, an int seed"),
])
def test_bad_arguments_name_the_loader_and_the_argument(kwargs, error, match):
    x, y = _data()
    with pytest.raises(error, match=match):
        DataLoader((x, y), batch_size=2, **kwargs)


@pytest.mark.parametrize("dataset, match", [
    ({"x": np.zeros(3)}, "a dict is not a dataset"),
    ((i for i in range(3)), "generators are not supported"),
    ({1, 2, 3}, "map-style dataset"),
])
def test_non_datasets_are_refused(dataset, match):
    with pytest.raises(TypeError, match=match):
        DataLoader(dataset, shuffle=True)


def test_pytorch_worker_arguments_are_accepted_and_change_nothing():
    x, y = _data(13)
    plain = [b[1].tolist() for b in DataLoader((x, y), batch_size=4, shuffle=True, seed=3)]
    called = []
    loader = DataLoader((x, y), batch_size=4, shuffle=True, seed=3, num_workers=4, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2, timeout=10,
                        worker_init_fn=lambda worker_id: called.append(worker_id))
    assert [b[1].tolist() for b in loader] == plain and not called


def test_generator_argument_is_pytorchs_name_for_the_seed():
    x, y = _data(13)
    a = [b[1].tolist() for b in DataLoader((x, y), batch_size=4, shuffle=True, seed=3)]
    b = [b[1].tolist() for b in DataLoader((x, y), batch_size=4, shuffle=True, generator=3)]
    c = [b[1].tolist() for b in DataLoader((x, y), 4, True, generator=np.random.default_rng(3))]
    assert a == b == c


def test_range_and_list_of_pairs_are_map_style_datasets():
    assert [b.tolist() for b in DataLoader(range(5), batch_size=2)] == [[0, 1], [2, 3], [4]]
    pairs = [(np.full(2, i), i) for i in range(3)]
    xb, yb = next(iter(DataLoader(pairs, batch_size=3)))
    assert xb.shape == (3, 2) and yb.tolist() == [0, 1, 2]


def test_distributed_loader_checks_its_arguments_too():
    import npcnn.distributed as dist

    x, y = _data()
    with pytest.raises(TypeError, match="DataLoader: shuffle must be True or False"):
        dist.DistributedDataLoader((x, y), batch_size=2, shuffle="yes", num_replicas=2, rank=0, seed=0)
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int"):
        dist.DistributedDataLoader((x, y), batch_size=2.5, num_replicas=2, rank=0, seed=0)
