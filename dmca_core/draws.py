"""Every random draw a study makes, derived from the study seed alone.

The core draws rows and columns here and hands them to the backend, so both backends see the same
rows and one seed always gives the same numbers. Each purpose has its own stream,
``np.random.default_rng([seed, code])``: adding or resizing one draw never shifts another.
"""

from __future__ import annotations

import attrs
import numpy as np

from .errors import UsageError

# purpose codes: fixed forever, since changing one changes every seeded result
PLACEBO = 1
RANDOM_COMMON_CAUSE = 2
SUBSETS = 3
BOOTSTRAP = 4
HALVES = 5

N_SUBSETS = 20
SUBSET_FRACTION = 0.8
N_BOOTSTRAP = 9


def rng_for(seed: int, purpose: int) -> np.random.Generator:
    """The generator of one purpose of one study."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), purpose])


def placebo_permutation(seed: int, n: int) -> np.ndarray:
    """A permutation of ``range(n)``: the placebo treatment is ``T[perm]``."""
    return rng_for(seed, PLACEBO).permutation(n)


def random_common_cause(seed: int, n: int) -> np.ndarray:
    """An independent N(0, 1) column of length ``n``."""
    return rng_for(seed, RANDOM_COMMON_CAUSE).standard_normal(n)


def subsets(seed: int, n: int, count: int = N_SUBSETS, fraction: float = SUBSET_FRACTION) -> np.ndarray:
    """``count`` random subsets of ``floor(fraction * n)`` distinct rows each, shape (count, size).

    Each subset is uniform over all subsets of its size, its rows in increasing order. It is drawn
    as the complement of the rows it leaves out: choosing those (a fifth of the rows) costs a
    fifth of shuffling every row, which took ~30% of an n = 1e5 study step, and sorted rows are
    read in memory order by whatever gathers them.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"subset fraction must be in (0, 1], got {fraction!r}")
    size = int(np.floor(fraction * n))
    rng = rng_for(seed, SUBSETS)
    out = np.empty((count, size), dtype=np.intp)
    keep = np.empty(n, dtype=bool)
    for i in range(count):
        keep.fill(True)
        keep[rng.choice(n, n - size, replace=False, shuffle=False)] = False
        out[i] = np.flatnonzero(keep)
    return out


def bootstrap(seed: int, n: int, count: int = N_BOOTSTRAP) -> np.ndarray:
    """``count`` resamples of ``n`` rows drawn with replacement, shape (count, n)."""
    return rng_for(seed, BOOTSTRAP).integers(0, n, size=(count, n))


def halves(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of ``range(n)`` (sizes ``n // 2`` and ``n - n // 2``)."""
    perm = rng_for(seed, HALVES).permutation(n)
    return perm[: n // 2], perm[n // 2 :]


@attrs.frozen(eq=False)
class StudyDraws:
    """All draws of one study over a table of ``n`` rows."""

    seed: int
    n: int
    placebo: np.ndarray
    common_cause: np.ndarray
    subsets: np.ndarray
    bootstrap: np.ndarray
    halves: tuple[np.ndarray, np.ndarray]

    @classmethod
    def make(cls, seed: int, n: int) -> StudyDraws:
        return cls(
            seed=seed,
            n=n,
            placebo=placebo_permutation(seed, n),
            common_cause=random_common_cause(seed, n),
            subsets=subsets(seed, n),
            bootstrap=bootstrap(seed, n),
            halves=halves(seed, n),
        )
