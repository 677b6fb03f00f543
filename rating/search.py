"""Reverse rating search: the largest grid step whose cost fits a budget."""

from __future__ import annotations

from collections.abc import Callable


def largest_fitting(cost: Callable[[int], int], lo: int, hi: int, budget: int, guess: int) -> int:
    """Largest ``k`` in ``[lo, hi]`` with ``cost(k) <= budget``, for ``cost`` non-decreasing and
    ``cost(lo) <= budget``.

    Gallops from ``guess`` (a closed-form estimate, usually exact or one step off) and then
    bisects, so it costs O(log distance-from-guess) evaluations, never a linear scan.
    """
    k = min(max(guess, lo), hi)
    if cost(k) <= budget:
        lo, step = k, 1
        while True:
            probe = lo + step
            if probe >= hi:
                if cost(hi) <= budget:
                    return hi
                bad = hi
                break
            if cost(probe) > budget:
                bad = probe
                break
            lo, step = probe, step * 2
    else:
        bad, step = k, 1
        while True:
            probe = bad - step
            if probe <= lo:
                break
            if cost(probe) <= budget:
                lo = probe
                break
            bad, step = probe, step * 2
    while bad - lo > 1:
        mid = (lo + bad) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            bad = mid
    return lo
