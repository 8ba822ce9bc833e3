"""npcnn.threads: the BLAS thread count at run time, the automatic choice, run_shared and its load detector."""

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


def test_chunk_ranges_and_single_thread_cases_of_run_shared():
    assert threads.chunk_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert threads.chunk_ranges(0, 3) == []
    seen = []
    threads.run_shared(lambda q: seen.append((threading.current_thread().name, list(q))), [5], workers=4)
    assert seen == [(threading.current_thread().name, [5])]  # one item: this thread, once
    seen.clear()
    threads.run_shared(lambda q: seen.append(list(q)), range(3), workers=1)
    assert seen == [[0, 1, 2]]


def test_run_shared_holds_the_blas_to_one_thread_and_puts_it_back():
    before = threads.get_num_threads()
    seen = []
    threads.run_shared(lambda q: seen.extend(threads.get_num_threads() for _ in q), range(4), workers=2)
    assert seen == [1, 1, 1, 1]  # one BLAS thread while the threads run
    assert threads.get_num_threads() == before


def test_apply_default_reads_the_environment():
    before = threads.get_num_threads()
    try:
        assert threads.apply_default({"NPCNN_NUM_THREADS": "1"}) == 1
        assert threads.apply_default({"NPCNN_NUM_THREADS": "keep"}) is None
        assert threads.apply_default({"OPENBLAS_NUM_THREADS": "1"}) is None  # the user's BLAS setting wins
        assert 1 <= threads.apply_default({"NPCNN_NUM_THREADS": "auto"}) <= threads.available_cores()
        assert threads.apply_default({"NPCNN_NUM_THREADS": "split"}) == 1
        assert threads.get_num_workers() == min(threads.available_cores(), threads.MAX_DEFAULT_WORKERS)
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
        import time

        names = set()
        threads.run_shared(lambda q: [names.add(threading.current_thread().name) or time.sleep(0.01) for _ in q],
                           range(12))
        assert len(names) == 3
        with pytest.raises(ValueError, match=">= 1 or None"):
            threads.set_num_workers(0)
    finally:
        threads.set_num_workers(None)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_run_shared_hands_every_item_to_exactly_one_thread(workers):
    seen, names, lock = [], set(), threading.Lock()

    def work(queue):
        for item in queue:
            with lock:
                seen.append(item)
                names.add(threading.current_thread().name)

    threads.run_shared(work, range(50), workers=workers)
    assert sorted(seen) == list(range(50))
    assert len(names) <= workers
    threads.run_shared(work, [], workers=workers)  # nothing to do is fine


def test_run_shared_a_slow_thread_takes_fewer_items():
    import time

    taken = {}

    def work(queue):
        name = threading.current_thread().name
        for item in queue:
            taken[name] = taken.get(name, 0) + 1
            if name == threading.main_thread().name:
                time.sleep(0.02)  # the calling thread is kept waiting, as by a busy core

    threads.run_shared(work, range(40), workers=2)
    assert sum(taken.values()) == 40
    assert taken.get(threading.main_thread().name, 0) < 20  # the other thread took the rest


def test_run_shared_passes_exceptions_on_and_stops_the_others():
    done = []

    def work(queue):
        for item in queue:
            if item == 3:
                raise KeyError("boom")
            done.append(item)

    with pytest.raises(KeyError):
        threads.run_shared(work, range(1000), workers=2)
    assert len(done) < 1000


def test_run_shared_inside_a_worker_runs_in_that_thread():
    inner = []

    def work(queue):
        for item in queue:
            threads.run_shared(lambda q: inner.extend((threading.current_thread().name, i) for i in q),
                               range(3), workers=2)

    threads.run_shared(work, range(2), workers=2)
    assert len(inner) == 6
    for name in {n for n, _ in inner}:  # each nested call ran wholly in one thread
        assert sorted(i for n, i in inner if n == name) in ([0, 1, 2], [0, 0, 1, 1, 2, 2])


def test_num_workers_context_puts_the_setting_back():
    threads.set_num_workers(None)
    with threads.num_workers(3):
        assert threads.get_num_workers() == 3
    assert threads.get_num_workers() == threads.get_num_threads()
    with pytest.raises(RuntimeError):
        with threads.num_workers(2):
            raise RuntimeError
    assert threads.get_num_workers() == threads.get_num_threads()


def test_contiguous_runs():
    assert threads.contiguous_runs(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert threads.contiguous_runs([1, 2], 5) == [[1], [2]]
    assert threads.contiguous_runs([1, 2, 3], 0) == [[1, 2, 3]]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_pool_of_its_own():
    import os

    threads.run_shared(lambda q: list(q), range(8), workers=2)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: a parallel kernel must not wait for the parent's threads
        code = 1
        try:
            seen = []
            threads.run_shared(lambda q: seen.extend(q), range(8), workers=2)
            code = 0 if sorted(seen) == list(range(8)) else 1
        finally:
            os._exit(code)
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child hung in run_shared")


def test_load_detector_rests_the_threads_after_lopsided_calls(monkeypatch):
    import time

    threads.reset_load_state(warm=True)
    monkeypatch.setattr(threads, "SOLO_CALLS", 5)
    names = []

    def lopsided(queue):  # the helper is kept waiting (as by a busy core) while the caller works
        for item in queue:
            names.append(threading.current_thread().name)
            if threading.current_thread() is not threading.main_thread():
                time.sleep(0.2)

    try:
        for _ in range(threads.LOADED_STRIKES):
            threads.run_shared(lopsided, range(20), workers=2)
        state = threads.load_state()
        assert state["solo_spells"] == 1 and state["solo_calls"] == 5
        names.clear()
        for _ in range(5):  # resting: everything on the calling thread
            threads.run_shared(lopsided, range(20), workers=2)
        assert set(names) == {threading.main_thread().name}
        assert threads.load_state()["solo_calls"] == 0
        names.clear()
        threads.run_shared(lambda q: [names.append(threading.current_thread().name) or time.sleep(0.001)
                                      for _ in q], range(40), workers=2)
        assert len(set(names)) == 2  # then both threads again
    finally:
        threads.reset_load_state()


def test_load_detector_ignores_small_and_even_calls():
    threads.reset_load_state()
    threads._judge_load([1, 20])  # the first calls are not judged (the threads start then)
    assert threads.load_state()["strikes"] == 0 and threads.load_state()["calls"] == 1
    threads.reset_load_state(warm=True)
    threads.run_shared(lambda q: list(q), range(threads.JUDGE_MIN_ITEMS - 1), workers=2)
    assert threads.load_state()["strikes"] == 0
    threads._judge_load([10, 10])
    threads._judge_load([6, 14])  # 6 >= half of the fair 10: even enough
    assert threads.load_state()["strikes"] == 0
    threads._judge_load([4, 16])
    assert threads.load_state()["strikes"] == 1
    threads._judge_load([10, 10])
    assert threads.load_state()["strikes"] == 0
    threads.reset_load_state()


def test_resting_threads_also_rest_the_blas():
    before = threads.get_num_threads()
    try:
        if threads.set_num_threads(2) != 2:
            pytest.skip("the BLAS thread count cannot be set here")
        threads.reset_load_state(warm=True)
        threads._load["solo_calls"] = 1
        seen = []
        threads.run_shared(lambda q: seen.extend((threading.current_thread().name, threads.get_num_threads())
                                                 for _ in q), range(10), workers=2)
        assert {s for s in seen} == {(threading.main_thread().name, 1)}
        assert threads.get_num_threads() == 2
    finally:
        threads.set_num_threads(before)
        threads.reset_load_state()
