"""The cyclic garbage collector paused while a batch-writing task runs (an import slice).

Such a task keeps each batch's rows (~10 container objects a row) alive until the batch
commits, then frees them by reference counting; meanwhile young collections walked every one
of them twice (young, then middle generation) for nothing: ~0.7 s of the worker's ~6 s of CPU
for 200,000 imported rows. Paused, the process still frees everything that is not in a cycle.

The collector is one per process and a worker runs several tasks at once, so the pauses nest:
the last one to end enables it again. A pause that ends while another goes on collects the
young generation, which holds all the cyclic garbage made since the collector was paused:
cycles never wait longer than one slice (`SLICE_SECONDS`) to be collected.
"""

import contextlib
import gc
from collections.abc import Iterator

_paused = 0
_was_enabled = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    global _paused, _was_enabled
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused:
            gc.collect(0)
        elif _was_enabled:
            gc.enable()
