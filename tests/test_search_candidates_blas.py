"""search/blas.py: BLAS runs on one thread inside the block and as before after it."""

from __future__ import annotations

import numpy as np
import pytest
import threadpoolctl  # a dependency (pyproject.toml): no skip
from viml.search.blas import one_blas_thread


def blas_threads() -> list[int]:
    """Threads of numpy's own BLAS (the one the search's products run on; scipy may bring another)."""
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas" and "numpy" in info["filepath"]]  # fmt: skip


def test_blas_is_on_one_thread_inside_and_restored_after():
    np.ones((2, 2)) @ np.ones((2, 2))  # numpy's BLAS is loaded
    if not blas_threads():
        pytest.skip("numpy's BLAS is not one threadpoolctl controls here")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before and max(before) == 2
        with one_blas_thread():
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == before
