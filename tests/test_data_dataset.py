"""PyTorch's map-style dataset protocol: Dataset, TensorDataset, Subset, ConcatDataset, random_split,
default_collate, and the DataLoader's two paths (batch indexing and one sample at a time)."""

import collections
import warnings

import numpy as np
import pytest

import npcnn
import npcnn.distributed as dist
from npcnn.data import (
    CollateError,
    ConcatDataset,
    DataLoader,
    Dataset,
    ImageDataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from conftest import torch_or_skip


def _images(n=37, seed=0):
    gen = np.random.default_rng(seed)
    return gen.random((n, 28, 28)).astype(np.float32), gen.integers(0, 10, n)


class IntOnly(Dataset):
    """Written the PyTorch way: __getitem__ takes an int and nothing else."""

    def __init__(self, n=37):
        self.x, self.y = _images(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError(f"IntOnly wants an int, got {type(i).__name__}")
        return self.x[i][None], int(self.y[i])


class AcceptsArraysWrongly:
    """Not even a Dataset subclass: its indexing happens to accept an index array, but then
    returns (1, B, 28, 28) -- the silently wrong batch of the issue."""

    def __init__(self, n=37):
        self.x, self.y = _images(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i][None], self.y[i]


def test_int_only_dataset_is_read_one_sample_at_a_time():
    ds = IntOnly()
    batches = list(DataLoader(ds, batch_size=16))
    assert [b[0].shape for b in batches] == [(16, 1, 28, 28), (16, 1, 28, 28), (5, 1, 28, 28)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), ds.x[:, None])
    labels = np.concatenate([b[1] for b in batches])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, ds.y)


def test_array_accepting_dataset_gets_the_right_shapes_not_one_by_batch():
    ds = AcceptsArraysWrongly()
    loader = DataLoader(ds, batch_size=16, shuffle=True, seed=3)
    assert not loader.batch_indexing
    seen = []
    for xb, yb in loader:
        assert xb.shape == (len(yb), 1, 28, 28)
        for x1, y1 in zip(xb, yb):
            k = int(np.flatnonzero((ds.x == x1[0]).all(axis=(1, 2)))[0])
            assert ds.y[k] == y1
            seen.append(k)
    assert sorted(seen) == list(range(len(ds)))


def test_dict_samples_are_collated_into_a_dict():
    class Dicts(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"image": np.full((2, 3), i, dtype=np.float32), "label": i, "name": f"s{i}",
                    "extra": (np.float32(i / 2), [i, -i])}

    batch = next(iter(DataLoader(Dicts(), batch_size=4)))
    assert set(batch) == {"image", "label", "name", "extra"}
    assert batch["image"].shape == (4, 2, 3) and batch["image"].dtype == np.float32
    np.testing.assert_array_equal(batch["label"], [0, 1, 2, 3])
    assert batch["label"].dtype == np.int64
    assert batch["name"] == ["s0", "s1", "s2", "s3"]
    assert batch["extra"][0].dtype == np.float32 and isinstance(batch["extra"], tuple)
    np.testing.assert_array_equal(batch["extra"][1][1], [0, -1, -2, -3])
    with pytest.raises(TypeError, match="dicts"):
        next(iter(DataLoader(Dicts(), batch_size=4, to_float=True)))


def test_samples_that_disagree_get_an_error_naming_the_index():
    class Ragged(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return np.zeros((1, 28, 27 if i == 5 else 28)), i

    with pytest.raises(CollateError, match=r"dataset\[5\] \(element \[0\]\) has shape \(1, 28, 27\) but "
                                           r"dataset\[4\] \(element \[0\]\) has \(1, 28, 28\)"):
        list(DataLoader(Ragged(), batch_size=4))

    class MixedKeys(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"x": i} if i != 2 else {"y": i}

    with pytest.raises(CollateError, match=r"dataset\[2\] has keys \['y'\]"):
        list(DataLoader(MixedKeys(), batch_size=3))
    with pytest.raises(CollateError, match=r"sample\[1\] has type string"):
        default_collate([1, "a"])
    with pytest.raises(CollateError, match="is a object"):
        default_collate([object(), object()])


def test_default_collate_nested_structures_and_dtypes():
    Pair = collections.namedtuple("Pair", "a b")
    batch = default_collate([(np.ones(2, np.float32), [1.5, True], Pair(1, b"x")) for _ in range(3)])
    assert isinstance(batch, tuple) and isinstance(batch[1], list) and isinstance(batch[2], Pair)
    assert batch[0].shape == (3, 2) and batch[0].dtype == np.float32
    assert batch[1][0].dtype == np.float64 and batch[1][1].dtype == np.bool_
    assert batch[2].a.dtype == np.int64 and batch[2].b == [b"x"] * 3
    assert default_collate([np.int16(3), np.int16(4)]).dtype == np.int16


def test_subset_of_an_array_dataset_keeps_the_fast_path():
    x, y = _images(20)
    base = TensorDataset(x, y)
    sub = Subset(base, [4, 0, 19, 7, 7, 3])
    assert sub.batch_indexing and len(sub) == 6
    np.testing.assert_array_equal(sub[2][0], x[19])
    np.testing.assert_array_equal(sub[-1][1], y[3])
    loader = DataLoader(sub, batch_size=4)
    assert loader.batch_indexing
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb, x[[4, 0, 19, 7]])
    np.testing.assert_array_equal(yb, y[[4, 0, 19, 7]])
    assert not Subset(IntOnly(5), [1, 2]).batch_indexing
    np.testing.assert_array_equal(next(iter(DataLoader(Subset(IntOnly(5), [3, 1]), 2)))[1], IntOnly(5).y[[3, 1]])
    with pytest.raises(IndexError, match="Subset: index 20 out of range"):
        Subset(base, [0, 20])
    with pytest.raises(IndexError, match="Subset: index 6 out of range"):
        sub[6]
    with pytest.raises(TypeError, match="Subset: indices must be"):
        Subset(base, [0.5])


def test_concat_dataset_ints_batches_and_add():
    x, y = _images(12)
    a, b = TensorDataset(x[:5], y[:5]), TensorDataset(x[5:], y[5:])
    both = a + b
    assert isinstance(both, ConcatDataset) and len(both) == 12 and both.cumulative_sizes == [5, 12]
    assert both.batch_indexing
    for i in range(-12, 12):
        np.testing.assert_array_equal(both[i][0], x[i])
    idx = np.array([11, 0, 6, 4, 5, 4])
    got = both[idx]
    np.testing.assert_array_equal(got[0], x[idx])
    np.testing.assert_array_equal(got[1], y[idx])
    mixed = ConcatDataset([TensorDataset(x[:5, None], y[:5]), IntOnly(4)])
    assert not mixed.batch_indexing
    assert [len(batch[1]) for batch in DataLoader(mixed, batch_size=4)] == [4, 4, 1]
    with pytest.raises(IndexError, match="ConcatDataset: index 12"):
        both[12]


@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (11, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]), (5, [1.0]),
                                        (3, [0.1, 0.1, 0.8])])
def test_random_split_covers_every_sample_once_with_pytorchs_sizes(n, lengths):
    x = np.arange(n)
    if any(int(n * v) == 0 and isinstance(v, float) for v in lengths) and n == 3:
        with pytest.warns(UserWarning, match="split 1 is empty"):
            parts = random_split(TensorDataset(x), lengths, generator=4)
    else:
        parts = random_split(TensorDataset(x), lengths, generator=4)
    seen = np.concatenate([p.indices for p in parts])
    assert sorted(seen.tolist()) == list(range(n))
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's own empty-split warning
        expected = [len(s) for s in torch.utils.data.random_split(range(n), lengths)]
    assert [len(p) for p in parts] == expected


def test_random_split_is_deterministic_and_follows_manual_seed():
    ds = TensorDataset(np.arange(50))
    first = [p.indices.tolist() for p in random_split(ds, [20, 30], generator=1)]
    assert first == [p.indices.tolist() for p in random_split(ds, [20, 30], generator=np.random.default_rng(1))]
    assert first != [p.indices.tolist() for p in random_split(ds, [20, 30], generator=2)]
    npcnn.manual_seed(3)
    a = random_split(ds, [0.5, 0.5])[0].indices
    npcnn.manual_seed(3)
    np.testing.assert_array_equal(a, random_split(ds, [0.5, 0.5])[0].indices)
    with pytest.raises(ValueError, match="sum to 40, not to the 50"):
        random_split(ds, [20, 20])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.6])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(ds, [-10, 60])
    with pytest.raises(TypeError, match="generator must be"):
        random_split(ds, [25, 25], generator="seed")


def test_dataset_base_class_and_tensor_dataset_checks():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(ValueError, match="0-dimensional"):
        TensorDataset(np.float32(1))
    ds = TensorDataset([1, 2, 3], [[1.0], [2.0], [3.0]])  # array-likes are converted
    assert ds.tensors[1].shape == (3, 1)
    with pytest.raises(TypeError, match="dtype object"):
        TensorDataset(np.array([np.zeros(2), np.zeros(3)], dtype=object))


def test_per_sample_loader_shuffles_resumes_and_samplers():
    ds = IntOnly(23)
    ref = DataLoader(ds, batch_size=5, shuffle=True, seed=2)
    epoch = [b[1].tolist() for b in ref]
    np.testing.assert_array_equal(sorted(sum(epoch, [])), sorted(ds.y.tolist()))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=2)
    it = iter(loader)
    head = [next(it)[1].tolist() for _ in range(2)]
    resumed = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    resumed.load_state_dict(loader.state_dict())
    assert head + [b[1].tolist() for b in resumed] == epoch
    order = [5, 3, 3, 0]
    got = next(iter(DataLoader(ds, batch_size=4, sampler=order)))
    np.testing.assert_array_equal(got[1], ds.y[order])
    sampler = dist.DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    labels = np.concatenate([b[1] for b in DataLoader(ds, batch_size=4, sampler=sampler)])
    np.testing.assert_array_equal(labels, ds.y[sampler.indices()])


@pytest.mark.parametrize("make", [IntOnly, lambda: TensorDataset(*_images())])
def test_distributed_loader_with_both_kinds_of_dataset(make):
    ds = make()
    x, y = _images()
    loaders = [dist.DistributedDataLoader(ds, batch_size=4, seed=5, num_replicas=2, rank=r) for r in range(2)]
    seen = []
    for loader in loaders:
        for xb, yb in loader:
            assert xb.shape[0] == len(yb) and xb.shape[-2:] == (28, 28)
            flat = xb.reshape(len(xb), 28, 28)
            for x1, y1 in zip(flat, yb):
                k = int(np.flatnonzero((x == x1).all(axis=(1, 2)))[0])
                assert y[k] == y1
                seen.append(k)
    assert sorted(set(seen)) == list(range(len(ds)))


def test_batches_equal_pytorchs_dataloader_without_shuffle():
    torch = torch_or_skip()

    class Both(torch.utils.data.Dataset):
        def __init__(self):
            self.x, self.y = _images(19)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i][None], int(self.y[i]), {"w": float(i) / 3, "m": self.x[i][:2, :2]}

    ds = Both()
    for drop_last in (False, True):
        ours = list(DataLoader(ds, batch_size=6, drop_last=drop_last))
        theirs = list(torch.utils.data.DataLoader(ds, batch_size=6, drop_last=drop_last))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a[0], b[0].numpy())
            assert a[0].dtype == b[0].numpy().dtype
            np.testing.assert_array_equal(a[1], b[1].numpy())
            assert a[1].dtype == b[1].numpy().dtype
            for key in ("w", "m"):
                np.testing.assert_array_equal(a[2][key], b[2][key].numpy())
                assert a[2][key].dtype == b[2][key].numpy().dtype
    x, y = ds.x, ds.y
    for a, b in zip(DataLoader(TensorDataset(x, y), batch_size=8),
                    torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                                batch_size=8)):
        np.testing.assert_array_equal(a[0], b[0].numpy())
        np.testing.assert_array_equal(a[1], b[1].numpy())


def test_image_dataset_and_arrays_use_batch_indexing():
    x, y = _images(6)
    assert DataLoader(ImageDataset(x, y, classes=list("abcdefghij"))).batch_indexing
    assert DataLoader((x, y)).batch_indexing
    bare = next(iter(DataLoader(x, batch_size=4)))
    assert bare.shape == (4, 28, 28)
    assert not DataLoader(TensorDataset(x, y), collate_fn=default_collate).batch_indexing
    custom = next(iter(DataLoader(TensorDataset(x, y), batch_size=3, collate_fn=lambda s: len(s))))
    assert custom == 3


def test_a_dataset_claiming_batch_indexing_wrongly_is_caught():
    class Claims(AcceptsArraysWrongly):
        batch_indexing = True

    with pytest.raises(ValueError, match=r"Claims\[index_array\] of 16 indices returned element 0 of shape "
                                         r"\(1, 16, 28, 28\)"):
        next(iter(DataLoader(Claims(), batch_size=16)))


def test_subset_and_concat_of_per_sample_datasets_take_ints_only():
    with pytest.raises(TypeError, match="Subset: index must be an int, got ndarray"):
        Subset(IntOnly(5), [0, 1])[np.array([0, 1])]
    with pytest.raises(TypeError, match="ConcatDataset: index must be an int, got slice"):
        ConcatDataset([IntOnly(3), IntOnly(2)])[0:2]
    with pytest.raises(TypeError, match="Subset: index must be an int, got float"):
        Subset(IntOnly(5), [0, 1])[0.5]
