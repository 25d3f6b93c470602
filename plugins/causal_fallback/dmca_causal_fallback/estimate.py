"""Backdoor adjustment by ordinary least squares, in numpy (and scipy's Student t quantile).

The model is ``Y ~ 1 + T + W``. Rather than solving it as written, each design is centred (which
absorbs the intercept exactly: Frisch-Waugh-Lovell) and its columns scaled to unit norm, then
factored by QR. That keeps the factorisation well conditioned when columns have large means or
very different scales, and the diagonal of R then measures directly how far each column lies from
the span of the ones before it, which is how singular designs are caught and named.

For the treatment coefficient only one row of ``(X'X)^-1 X'`` is needed; call it ``v``. Then
``beta_T = v . y``, the classical variance is ``s^2 * |v|^2`` and the HC3 variance is
``sum(v^2 e^2 / (1 - h)^2)`` (the T,T element of the sandwich), with the leverages
``h = 1/n + |Q_i|^2`` (the intercept's share plus the centred design's). The 95% interval is
``effect -/+ t_{0.975, n-k} * se``, ``k`` counting the intercept: HC3 with Student's t holds its
coverage down to a few dozen rows, where HC1 with the normal quantile covered ~90% (docs/metrics.md).
Everything is batched over stacks of equal-sized row sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
from scipy.special import stdtrit

from dmca_core.design import design_columns, leverage_error
from dmca_core.errors import DataError
from dmca_core.types import EffectEstimate, Table

# |R_jj| of a unit-norm column below this: the column is (numerically) a combination of the others
COLLINEAR_TOL = 1e-9
# the same test on refits, in squared form on the Gram matrix (see estimate_many)
SUBSET_SINGULAR_TOL = 1e-12


@attrs.frozen(eq=False)
class OlsBatch:
    """Per row set: beta_T, its HC3 and classical standard errors, dof, each row's leverage; ``bad``
    names a singular column."""

    beta: np.ndarray
    se_hc3: np.ndarray
    se_classical: np.ndarray
    dof: int
    bad: list[str | None]
    leverage: np.ndarray


def ols_batch(X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> OlsBatch:
    """Fit ``y ~ 1 + X`` on each of a stack of designs: ``X`` (m, r, q), ``y`` (m, r); column 0 is T."""
    m, r, q = X.shape
    k = q + 1
    dof = r - k
    if dof < 1:
        raise DataError(f"{r} rows cannot fit {k} coefficients (intercept, {', '.join(names)})")
    Xc = X - X.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("mrq,mrq->mq", Xc, Xc))  # (m, q)
    bad: list[str | None] = [None] * m
    const = norms <= 0.0
    safe = np.where(const, 1.0, norms)
    Q, R = np.linalg.qr(Xc / safe[:, None, :])
    diag = np.abs(np.diagonal(R, axis1=1, axis2=2))  # (m, q)
    for i in np.flatnonzero(const.any(axis=1) | (diag < COLLINEAR_TOL).any(axis=1)):
        j = int(np.argmax(const[i])) if const[i].any() else int(np.argmax(diag[i] < COLLINEAR_TOL))
        bad[i] = names[j]
        R[i] = np.eye(q)  # keep the batch going; this set's numbers are discarded below
    # v = Q R^-T e_0 / norm_T: the treatment row of (X'X)^-1 X' in the original units
    e0 = np.zeros((m, q, 1))
    e0[:, 0, 0] = 1.0
    a = np.linalg.solve(np.swapaxes(R, 1, 2), e0)  # (m, q, 1)
    v = (Q @ a)[..., 0] / safe[:, :1]  # (m, r)
    beta = np.einsum("mr,mr->m", v, yc)
    resid = yc - (Q @ (np.swapaxes(Q, 1, 2) @ yc[..., None]))[..., 0]
    v2 = v * v
    leverage = 1.0 / r + np.einsum("mrq,mrq->mr", Q, Q)
    # a row of leverage 1 makes this inf or NaN; estimate() refuses it with leverage_error
    with np.errstate(divide="ignore", invalid="ignore"):
        hc3 = np.einsum("mr,mr->m", v2, (resid / (1.0 - leverage)) ** 2)
    s2 = np.einsum("mr,mr->m", resid, resid) / dof
    classical = s2 * v2.sum(axis=1)
    for i, b in enumerate(bad):
        if b is not None:
            beta[i] = hc3[i] = classical[i] = np.nan
    return OlsBatch(beta, np.sqrt(hc3), np.sqrt(classical), dof, bad, leverage)


def singular_message(column: str, treatment: str, names: Sequence[str], X: np.ndarray) -> str:
    j = list(names).index(column)
    col = X[..., j]
    if np.ptp(col) == 0.0:
        return f"column {column!r} is constant ({col.flat[0]:g}): it cannot enter the regression"
    role = "treatment" if column == treatment else "adjustment column"
    others = [n for n in names if n != column]
    return (
        f"{role} {column!r} is collinear with the other regressors ({', '.join(others)} and the "
        "intercept): the effect is not identified from these data"
    )


def estimate(
    table: Table, treatment: str, outcome: str, adjustment: Sequence[str], t0: float, t1: float
) -> EffectEstimate:
    """Backdoor-adjusted effect of moving ``treatment`` from ``t0`` to ``t1`` (see EffectEstimate)."""
    X, y, names = design_columns(table, treatment, outcome, adjustment)
    fit = ols_batch(X[None], y[None], names)
    if fit.bad[0] is not None:
        raise DataError(singular_message(fit.bad[0], treatment, names, X))
    if (error := leverage_error(fit.leverage[0], X, names)) is not None:
        raise error
    scale = float(t1) - float(t0)
    beta, se_b, se_c = float(fit.beta[0]), float(fit.se_hc3[0]), float(fit.se_classical[0])
    effect = scale * beta
    se = abs(scale) * se_b
    half = float(stdtrit(fit.dof, 0.975)) * se
    return EffectEstimate(
        effect=effect,
        se=se,
        ci_low=effect - half,
        ci_high=effect + half,
        t_classical=beta / se_c if se_c > 0 else float("inf") * np.sign(beta),
        dof=fit.dof,
        adjustment_set=tuple(adjustment),
    )


def row_counts(row_sets: Sequence[np.ndarray] | np.ndarray, n: int) -> np.ndarray:
    """How many times each of ``n`` rows appears in each set: shape (m, n)."""
    sets = [np.asarray(s, dtype=np.intp).reshape(-1) for s in row_sets]
    if not sets:
        return np.zeros((0, n))
    flat = np.concatenate([s + i * n for i, s in enumerate(sets)])
    return np.bincount(flat, minlength=len(sets) * n).reshape(len(sets), n).astype(np.float64)


def estimate_many(
    table: Table,
    treatment: str,
    outcome: str,
    adjustment: Sequence[str],
    t0: float,
    t1: float,
    row_sets: Sequence[np.ndarray] | np.ndarray,
) -> np.ndarray:
    """The effect on each row set (indices into ``table``, repeats allowed); NaN where a set's
    design is singular.

    The full design is orthonormalised once (centred, scaled, QR: ``Xc = Q0 R0``). On a row set
    the columns of ``Q0`` stay close to orthogonal, so the normal equations in that basis have a
    condition number near 1 and solving them loses nothing; ``beta = R0^-1 gamma`` maps back.
    A row set is then just a vector of row counts, and every sum the normal equations need
    (``Q'Q``, ``Q'y``, ``Q'1``, ``1'y``) is one product of the count matrix with per-row features.
    """
    X, y, names = design_columns(table, treatment, outcome, adjustment)
    n, q = X.shape
    Xc = X - X.mean(axis=0)
    norms = np.sqrt(np.einsum("rq,rq->q", Xc, Xc))
    Q0, R0 = np.linalg.qr(Xc / np.where(norms > 0, norms, 1.0))
    bad = np.flatnonzero((norms <= 0) | (np.abs(np.diag(R0)) < COLLINEAR_TOL))
    if bad.size:
        raise DataError(singular_message(names[int(bad[0])], treatment, names, X))
    yc = y - y.mean()
    # T's row of R0^-1, in original units: beta_T = w . gamma
    e0 = np.zeros(q)
    e0[0] = 1.0
    w = np.linalg.solve(R0.T, e0) / norms[0]

    counts = row_counts(row_sets, n)
    iu, ju = np.triu_indices(q)
    feats = np.column_stack([Q0[:, iu] * Q0[:, ju], Q0 * yc[:, None], Q0, yc])
    sums = counts @ feats  # (m, q(q+1)/2 + 2q + 1)
    npair = iu.size
    r = counts.sum(axis=1)
    sqq, sqy, sq, sy = sums[:, :npair], sums[:, npair : npair + q], sums[:, npair + q : -1], sums[:, -1]
    gram = np.empty((len(r), q, q))
    gram[:, iu, ju] = sqq
    gram[:, ju, iu] = sqq
    rr = np.maximum(r, 1.0)
    gram -= sq[:, :, None] * sq[:, None, :] / rr[:, None, None]  # centre on the set's own means
    cross = sqy - sq * (sy / rr)[:, None]
    # a set whose own design is singular shows up as a (near) zero eigenvalue of its Gram matrix,
    # whose eigenvalues are otherwise all near r / n; 1e-12 is a squared sine of 1e-6, far above
    # rounding (~1e-16) so an exactly constant column is always caught
    ok = (r - q - 1 >= 1) & (np.linalg.eigvalsh(gram)[:, 0] > SUBSET_SINGULAR_TOL * rr / n)
    gram[~ok] = np.eye(q)
    gamma = np.linalg.solve(gram, cross[..., None])[..., 0]
    return (float(t1) - float(t0)) * np.where(ok, gamma @ w, np.nan)
