"""BLAS on the calling thread for the search's many small products.

OpenBLAS hands a product to its threads once it has a few thousand multiply-adds (a matrix-vector
product of 24 x 384 already). The big-library search makes hundreds of such products per query (a
candidate track's rows, the refinement's blocks), and every hand-off wakes the other BLAS threads: on
busy cores that made the refinement of 50 tracks 4-6x slower (62-100 ms vs 12-17 ms) and one
[1,200 x 384] x [384 x 3] product 12x slower (6.4 vs 0.5 ms, measured). Those parts run with BLAS
limited to one thread instead; the search's own second thread (the graph search) has the other core.

The limit is the process's (OpenBLAS has no per-thread setting): a product elsewhere during a search runs
on one thread too, which costs only speed. Without threadpoolctl nothing is limited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any


@cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()  # finds the BLAS libraries loaded now (numpy's): made once


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS on one thread, restored afterwards."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
