"""The collector's pauses (app.jobs.collector) nest, end on errors, and leave no cycle behind."""

import gc
import weakref

import pytest

from app.jobs.collector import collector_paused


class Node:
    pass


def cycle() -> weakref.ref:
    node = Node()
    node.me = node  # type: ignore[attr-defined]
    return weakref.ref(node)


def test_pauses_nest_and_the_last_one_enables_the_collector():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause goes on
    assert gc.isenabled()


def test_a_pause_ending_while_another_goes_on_collects_its_cycles():
    with collector_paused():
        with collector_paused():
            made = cycle()
            assert made() is not None
        assert made() is None


def test_an_error_ends_the_pause():
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the task failed")
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
