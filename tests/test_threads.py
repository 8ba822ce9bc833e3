"""npcnn.threads: the BLAS thread count at run time, the automatic choice, and map_split."""

import threading

import numpy as np
import pytest

from npcnn import threads


def test_set_and_get_round_trip():
    before = threads.get_num_threads()
    try:
        assert threads.set_num_threads(1) == 1
        assert threads.get_num_threads() == 1
        a = np.ones((64, 64), dtype=np.float32)
        np.testing.assert_allclose(a @ a, 64.0)  # the BLAS still works at the new count
    finally:
        threads.set_num_threads(before)
        threads.set_num_workers(None)
    assert threads.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_thread_count_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="thread count >= 1"):
        threads.set_num_threads(bad)


def test_automatic_choice_is_between_one_and_the_cores():
    assert 1 <= threads.default_num_threads() <= threads.available_cores()
    assert threads.busy_cores_elsewhere(0.01) >= 0.0


def test_map_split_keeps_order_and_covers_every_item():
    names = set()

    def fn(group):
        names.add(threading.current_thread().name)
        return [i * i for i in group]

    results = threads.map_split(fn, range(7), workers=3)
    assert len(results) == 3
    assert [len(r) for r in results] == [3, 2, 2]
    assert sum(results, []) == [i * i for i in range(7)]
    assert threads.map_split(fn, [5], workers=4) == [[25]]  # one item: one group, this thread
    assert threads.map_split(fn, range(3), workers=1) == [[0, 1, 4]]


def test_map_split_puts_the_blas_thread_count_back():
    before = threads.get_num_threads()
    seen = threads.map_split(lambda group: threads.get_num_threads(), range(4), workers=2)
    assert seen == [1, 1]  # one BLAS thread while the groups run
    assert threads.get_num_threads() == before


def test_map_split_passes_exceptions_on():
    def fn(group):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        threads.map_split(fn, range(4), workers=2)


def test_apply_default_reads_the_environment():
    before = threads.get_num_threads()
    try:
        assert threads.apply_default({"NPCNN_NUM_THREADS": "1"}) == 1
        assert threads.apply_default({"NPCNN_NUM_THREADS": "keep"}) is None
        assert threads.apply_default({"OPENBLAS_NUM_THREADS": "1"}) is None  # the user's BLAS setting wins
        assert 1 <= threads.apply_default({"NPCNN_NUM_THREADS": "auto"}) <= threads.available_cores()
        assert threads.apply_default({"NPCNN_NUM_THREADS": "split"}) == 1
        assert threads.get_num_workers() == threads.available_cores()
        with pytest.raises(ValueError, match="NPCNN_NUM_THREADS='many'"):
            threads.apply_default({"NPCNN_NUM_THREADS": "many"})
        with pytest.raises(ValueError, match="NPCNN_NUM_THREADS='0'"):
            threads.apply_default({"NPCNN_NUM_THREADS": "0"})
    finally:
        threads.set_num_threads(before)
        threads.set_num_workers(None)


def test_workers_follow_the_blas_unless_set():
    try:
        threads.set_num_workers(None)
        assert threads.get_num_workers() == threads.get_num_threads()
        threads.set_num_workers(3)
        assert threads.get_num_workers() == 3
        assert len(threads.map_split(lambda g: g, range(6))) == 3
        with pytest.raises(ValueError, match=">= 1 or None"):
            threads.set_num_workers(0)
    finally:
        threads.set_num_workers(None)
