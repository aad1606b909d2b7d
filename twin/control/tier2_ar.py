"""Tier 2 of the GridPilot cascade: a per-host AR(4) predictor and the per-GPU cap split.

At 1 Hz each host (or cohort) predicts its next sample, one step ahead, with an
autoregressive model fitted online by exponentially weighted recursive least squares
(RLS), and splits its power envelope over its GPUs in proportion to their predicted
demand (:func:`rebalance_caps`). The paper (§3.1, Eq. 2, lost in our copy) fits
"AR(4) by RLS over a 30 s rolling window (forgetting factor λ, 60 s effective memory)"
at 1 Hz; every constant and where it comes from is in ``docs/parameters.md``
(Tier 2). In short:

* **Model** ``y[k] = φ1 y[k-1] + ... + φp y[k-p] + c + e[k]``: the intercept ``c`` is
  the kit's (``AR4Outer``: ``y_t = c + Σ φ_i y_{t-i}``); without it a series with a
  non-zero mean (board power ~250 W) can only be fitted with Σφ ≈ 1, a smoothed
  persistence that cannot revert to the mean.
* **Memory** λ = 1 - 1/60: effective memory N_eff = 1/(1-λ) = 60 samples = 60 s at
  1 Hz. The kit (denisa-c/gridpilot @ aaa1fba, ``scripts/v100/controller/
  hierarchical_controller.py``) refits ordinary least squares on a 60-sample buffer
  every 30 s; we read the paper's "30 s rolling window" as that refit interval. We
  update at every tick.
* **Prior** θ0 = persistence (φ1 = 1, the rest 0) with weight I/δ: what the predictor
  says before data arrive. Its weight is held at ~I/δ for ever so that the covariance
  P stays bounded (P <~ δ·I) when a series stops exciting some directions: with plain
  RLS and forgetting, a host idling at constant power grows P like λ^-k
  ("covariance wind-up").

After tick k, θ minimises ``Σ_i λ^(k-i) (y_i - φ_iᵀθ)² + prior``. The prior starts as
``(θ - θ0)ᵀ(I/δ)(θ - θ0)``, decays with λ like the data, and is topped up at every
tick by one pseudo-observation ``θ_j = θ0_j`` of weight (1-λ)·m/δ, j cycling over the
m coefficients, so that its weight per coefficient stays within 4 % of 1/δ (for
λ = 1 - 1/60, m = 5: between λ^4·r and r, r = (1-λ)m/(1-λ^m) = 1.034; the exact cost
is written out in ``tests/test_tier2_ar.py``). Everything is batched
over series: one (n, m, m) array of P matrices, no Python loop over series.

Two backends compute the same tick: ``"numpy"`` (:func:`rls_update`, the reference) and
``"numba"`` (:func:`_tick_soa` compiled, ~10x faster for 980 series: one call per tick,
arrays laid out series-last so that every loop runs over series, P stored as its upper
triangle since the rank-1 updates keep it exactly symmetric). They agree to rounding
(``tests/test_tier2_ar.py``); ``bench/tier2_kernel.py`` times them. For the default model
(order 4 and intercept) the numba backend runs :func:`_tick5_soa`, the same operations as
:func:`_tick_soa` in one pass per series (bit for bit the same results, ~0.6 of the time).

:class:`HostPowerPredictor` is Tier 2 as the engine runs it (energy counters in, clipped
predictions and running error sums out); with numba one period is one compiled call
(:func:`_power_tick_soa`, which repeats the numpy path's operations and its
``np.add.reduce`` sums bit for bit).

References: Ljung & Söderström (1983), *Theory and Practice of Recursive
Identification*, MIT Press, §2.6 (RLS with forgetting); Åström & Wittenmark (1995),
*Adaptive Control*, 2nd ed., §11.2 (covariance wind-up and its remedies).
"""

from __future__ import annotations

import functools
from numbers import Integral

import numpy as np

__all__ = ["FORGETTING_60S", "DELTA", "RlsAr", "HostPowerPredictor", "rls_update", "rebalance_caps"]

#: λ for a 60-sample (60 s at 1 Hz) effective memory: 1/(1-λ) = 60.
FORGETTING_60S = 1.0 - 1.0 / 60.0
#: Prior covariance scale P0 = δ·I (prior weight I/δ), in (units of θ)².
DELTA = 1.0e3


def rls_update(theta: np.ndarray, p: np.ndarray, phi: np.ndarray, y: np.ndarray,
               forgetting: float, weight: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One weighted RLS step with exponential forgetting, batched over series (pure).

    Minimises ``λ·(old cost) + w·(y - φᵀθ)²`` given the old minimiser and its
    covariance: ``K = Pφ / (λ/w + φᵀPφ)``, ``θ += K (y - φᵀθ)``, ``P = (P - K (Pφ)ᵀ) / λ``.

    Parameters
    ----------
    theta : (n, m) array
        Coefficients before the step.
    p : (n, m, m) array
        Covariance (inverse information) matrices, symmetric positive definite.
    phi : (n, m) array
        Regressors.
    y : (n,) array
        Observations.
    forgetting : float
        λ in (0, 1]; 1 applies no forgetting.
    weight : float or (n,) array
        Weight w > 0 of this observation (1 for data).

    Returns
    -------
    theta, p : arrays
        New coefficients and covariance (new arrays; inputs untouched).
    """
    p_phi = np.einsum("nij,nj->ni", p, phi)
    return _rank1(theta, p, p_phi, np.einsum("ni,ni->n", phi, p_phi),
                  y - np.einsum("ni,ni->n", phi, theta), forgetting, weight)


def _rank1(theta, p, p_phi, phi_p_phi, err, forgetting, weight):
    """The RLS step given Pφ, φᵀPφ and the a-priori error (shared by data and prior)."""
    inv_denom = 1.0 / (forgetting / weight + phi_p_phi)
    theta = theta + p_phi * (err * inv_denom)[:, None]
    b = p_phi * np.sqrt(inv_denom)[:, None]
    p = p - np.einsum("ni,nj->nij", b, b)  # b_i b_j = b_j b_i: P stays exactly symmetric
    if forgetting != 1.0:
        p /= forgetting
    return theta, p


# ---------------------------------------------------------------- compiled backend
# Plain Python over arrays laid out series-last (structure of arrays): θ (m, n), the upper
# triangle of P packed row-wise (m(m+1)/2, n) and indexed by tri[i, j], lags (order, n).
# Every inner loop runs over series, so the compiler vectorises it; numba compiles them in
# _numba_kernels() (fastmath off: IEEE arithmetic, the same operations as the numpy path).


def _tick_soa(theta, pk, lags, count, y, j, lam, c, theta0_j, intercept, tri):
    """One tick for all series in place: the RLS step and the prior pseudo-observation on
    coefficient ``j`` (weight 1/c) for series with ``count >= order``, then the lag shift
    and the count. Returns -1, or the index of the first non-finite ``y`` (nothing changed)."""
    m, n = theta.shape
    order = lags.shape[0]
    n_bad = 0                       # y - y is 0 for finite y, NaN otherwise
    for s in range(n):              # no early exit: an integer sum the compiler vectorises
        n_bad += (y[s] - y[s]) != 0.0
    if n_bad:
        for s in range(n):
            if not np.isfinite(y[s]):
                return s
    w = np.empty((3 * m + 7, n))
    phi, b, col = w[:m], w[m:2 * m], w[2 * m:3 * m]          # regressors, Pφ, P[:, j]
    sq, pred, g, r = w[3 * m], w[3 * m + 1], w[3 * m + 2], w[3 * m + 3]
    odd, sq_odd, pred_odd = w[3 * m + 4], w[3 * m + 5], w[3 * m + 6]
    for i in range(order):          # φ = 0 for series not ready: θ unchanged, P restored below
        for s in range(n):
            phi[i, s] = lags[i, s] if count[s] >= order else 0.0
    if intercept:
        for s in range(n):
            phi[order, s] = 1.0 if count[s] >= order else 0.0
    # Sums over coefficients in numpy's einsum order for m <= 7 (even terms, odd terms, then
    # their sum), so that the backends agree to the last bit where P is ill-conditioned.
    for i in range(m):              # Pφ
        e = tri[i, 0]
        for s in range(n):
            b[i, s] = pk[e, s] * phi[0, s]
        for l in range(2, m, 2):
            e = tri[i, l]
            for s in range(n):
                b[i, s] += pk[e, s] * phi[l, s]
        if m > 1:
            e = tri[i, 1]
            for s in range(n):
                odd[s] = pk[e, s] * phi[1, s]
            for l in range(3, m, 2):
                e = tri[i, l]
                for s in range(n):
                    odd[s] += pk[e, s] * phi[l, s]
            for s in range(n):
                b[i, s] += odd[s]
    i1 = 1 % m                      # hoisted: an integer modulo per series otherwise
    for s in range(n):              # φᵀPφ and φᵀθ
        sq[s] = phi[0, s] * b[0, s]
        pred[s] = phi[0, s] * theta[0, s]
        sq_odd[s] = phi[i1, s] * b[i1, s]
        pred_odd[s] = phi[i1, s] * theta[i1, s]
    for i in range(2, m):
        if i % 2 == 0:
            for s in range(n):
                sq[s] += phi[i, s] * b[i, s]
                pred[s] += phi[i, s] * theta[i, s]
        else:
            for s in range(n):
                sq_odd[s] += phi[i, s] * b[i, s]
                pred_odd[s] += phi[i, s] * theta[i, s]
    if m > 1:
        for s in range(n):
            sq[s] += sq_odd[s]
            pred[s] += pred_odd[s]
    for s in range(n):              # data step, weight 1: 1/(λ + φᵀPφ)
        inv = 1.0 / (lam + sq[s])
        g[s] = (y[s] - pred[s]) * inv
        r[s] = np.sqrt(inv)
    for i in range(m):
        for s in range(n):
            theta[i, s] += b[i, s] * g[s]
            b[i, s] *= r[s]
    for i in range(m):              # column j of the data-updated P, (P - bbᵀ)/λ
        e = tri[i, j]
        for s in range(n):
            col[i, s] = (pk[e, s] - b[i, s] * b[j, s]) / lam
    for s in range(n):              # prior step: regressor e_j, weight 1/c, no forgetting
        inv = 1.0 / (c + col[j, s])
        g[s] = (theta0_j - theta[j, s]) * inv if count[s] >= order else 0.0
        r[s] = np.sqrt(inv)
    for i in range(m):
        for s in range(n):
            theta[i, s] += col[i, s] * g[s]
            col[i, s] *= r[s]
    for i in range(m):              # both rank-1 steps on P, one pass per stored entry
        for l in range(i, m):
            e = tri[i, l]
            for s in range(n):
                v = (pk[e, s] - b[i, s] * b[l, s]) / lam - col[i, s] * col[l, s]
                pk[e, s] = v if count[s] >= order else pk[e, s]
    for i in range(order - 1, 0, -1):
        for s in range(n):
            lags[i, s] = lags[i - 1, s]
    for s in range(n):
        lags[0, s] = y[s]
        count[s] += 1
    return -1


#: Series per block in :func:`_tick5_soa`: a compile-time constant, so that the compiler knows
#: the rows of the block's scratch to lie a fixed distance apart.
_BLOCK5 = 128


def _tick5_soa(theta, pk, lags, count, y, j, lam, c, theta0_j, pred):
    """:func:`_tick_soa` for the default model (order 4 and intercept: m = 5) in one pass per
    series, bit for bit: the same operations in the same order (``tests/test_tier2_ar.py``),
    and then, into ``pred`` (n,), the prediction after the tick as :func:`_predict_soa`
    computes it (``pred`` of size 0: none). Returns -1, or the index of the first non-finite
    ``y`` (nothing changed).

    Compiled it takes ~0.6 of :func:`_tick_soa` + :func:`_predict_soa` (980 series): every
    series' state is read once and held in registers, not streamed through memory ~10 times.
    Two choices make that so:

    * The pass writes the new θ and P into a scratch of ``_BLOCK5`` series, copied back row by
      row after it. Written straight into the model's arrays, whose rows lie a run-time length
      apart, the compiler would need a run-time overlap test for every pair of the 20 written
      rows and the 26 read ones (hundreds, over LLVM's limit of 128): the loop would stay scalar
      (3x slower than :func:`_tick_soa`). The scratch is one object of fixed row length: 26
      tests, and the loop runs on SIMD vectors of series.
    * Each entry of ``U = (P - bbᵀ)/λ`` (the data-updated P) is divided once and column j of U
      (which the prior step needs) is taken from them: 17 divisions per series instead of 22
      (``b_i b_j = b_j b_i`` exactly); division throughput bounds this loop.
    """
    n = theta.shape[1]
    n_bad = 0                       # as in _tick_soa: y - y is 0 for finite y, NaN otherwise
    for s in range(n):
        n_bad += (y[s] - y[s]) != 0.0
    if n_bad:
        for s in range(n):
            if not np.isfinite(y[s]):
                return s
    w = np.empty((21, _BLOCK5))     # a block's new θ (rows 0-4), P (5-19) and prediction (20)
    s0 = 0
    while s0 < n:                   # (a while loop: the compiler knows s0 >= 0, no index wrap-around)
        nb = min(_BLOCK5, n - s0)
        for s in range(nb):
            k = s0 + s
            ready = count[k] >= 4   # φ = 0 for series not ready: θ unchanged, P restored
            f0 = lags[0, k] if ready else 0.0
            f1 = lags[1, k] if ready else 0.0
            f2 = lags[2, k] if ready else 0.0
            f3 = lags[3, k] if ready else 0.0
            f4 = 1.0 if ready else 0.0
            p00, p01, p02, p03, p04 = pk[0, k], pk[1, k], pk[2, k], pk[3, k], pk[4, k]
            p11, p12, p13, p14 = pk[5, k], pk[6, k], pk[7, k], pk[8, k]
            p22, p23, p24 = pk[9, k], pk[10, k], pk[11, k]
            p33, p34 = pk[12, k], pk[13, k]
            p44 = pk[14, k]
            # Pφ, φᵀPφ and φᵀθ: even terms, odd terms, their sum (_tick_soa's order)
            b0 = ((p00 * f0 + p02 * f2) + p04 * f4) + (p01 * f1 + p03 * f3)
            b1 = ((p01 * f0 + p12 * f2) + p14 * f4) + (p11 * f1 + p13 * f3)
            b2 = ((p02 * f0 + p22 * f2) + p24 * f4) + (p12 * f1 + p23 * f3)
            b3 = ((p03 * f0 + p23 * f2) + p34 * f4) + (p13 * f1 + p33 * f3)
            b4 = ((p04 * f0 + p24 * f2) + p44 * f4) + (p14 * f1 + p34 * f3)
            t0, t1, t2, t3, t4 = theta[0, k], theta[1, k], theta[2, k], theta[3, k], theta[4, k]
            sq = ((f0 * b0 + f2 * b2) + f4 * b4) + (f1 * b1 + f3 * b3)
            pr = ((f0 * t0 + f2 * t2) + f4 * t4) + (f1 * t1 + f3 * t3)
            inv = 1.0 / (lam + sq)  # data step, weight 1
            g = (y[k] - pr) * inv
            r = np.sqrt(inv)
            t0 += b0 * g
            t1 += b1 * g
            t2 += b2 * g
            t3 += b3 * g
            t4 += b4 * g
            b0 *= r
            b1 *= r
            b2 *= r
            b3 *= r
            b4 *= r
            u00 = (p00 - b0 * b0) / lam
            u01 = (p01 - b0 * b1) / lam
            u02 = (p02 - b0 * b2) / lam
            u03 = (p03 - b0 * b3) / lam
            u04 = (p04 - b0 * b4) / lam
            u11 = (p11 - b1 * b1) / lam
            u12 = (p12 - b1 * b2) / lam
            u13 = (p13 - b1 * b3) / lam
            u14 = (p14 - b1 * b4) / lam
            u22 = (p22 - b2 * b2) / lam
            u23 = (p23 - b2 * b3) / lam
            u24 = (p24 - b2 * b4) / lam
            u33 = (p33 - b3 * b3) / lam
            u34 = (p34 - b3 * b4) / lam
            u44 = (p44 - b4 * b4) / lam
            if j == 0:              # column j of U, U_jj and θ_j
                c0, c1, c2, c3, c4, cj, tj = u00, u01, u02, u03, u04, u00, t0
            elif j == 1:
                c0, c1, c2, c3, c4, cj, tj = u01, u11, u12, u13, u14, u11, t1
            elif j == 2:
                c0, c1, c2, c3, c4, cj, tj = u02, u12, u22, u23, u24, u22, t2
            elif j == 3:
                c0, c1, c2, c3, c4, cj, tj = u03, u13, u23, u33, u34, u33, t3
            else:
                c0, c1, c2, c3, c4, cj, tj = u04, u14, u24, u34, u44, u44, t4
            inv = 1.0 / (c + cj)    # prior step: regressor e_j, weight 1/c, no forgetting
            g = (theta0_j - tj) * inv if ready else 0.0
            r = np.sqrt(inv)
            t0 += c0 * g
            t1 += c1 * g
            t2 += c2 * g
            t3 += c3 * g
            t4 += c4 * g
            w[0, s], w[1, s], w[2, s], w[3, s], w[4, s] = t0, t1, t2, t3, t4
            c0 *= r
            c1 *= r
            c2 *= r
            c3 *= r
            c4 *= r
            w[5, s] = u00 - c0 * c0 if ready else p00
            w[6, s] = u01 - c0 * c1 if ready else p01
            w[7, s] = u02 - c0 * c2 if ready else p02
            w[8, s] = u03 - c0 * c3 if ready else p03
            w[9, s] = u04 - c0 * c4 if ready else p04
            w[10, s] = u11 - c1 * c1 if ready else p11
            w[11, s] = u12 - c1 * c2 if ready else p12
            w[12, s] = u13 - c1 * c3 if ready else p13
            w[13, s] = u14 - c1 * c4 if ready else p14
            w[14, s] = u22 - c2 * c2 if ready else p22
            w[15, s] = u23 - c2 * c3 if ready else p23
            w[16, s] = u24 - c2 * c4 if ready else p24
            w[17, s] = u33 - c3 * c3 if ready else p33
            w[18, s] = u34 - c3 * c4 if ready else p34
            w[19, s] = u44 - c4 * c4 if ready else p44
            # the prediction from the shifted lags (y, lags 0-2) as _predict_soa sums it: even
            # terms from 0, odd terms from 0, their sum; the newest sample until count >= 4
            even = ((0.0 + y[k] * t0) + lags[1, k] * t2) + 1.0 * t4
            odd = (0.0 + lags[0, k] * t1) + lags[2, k] * t3
            w[20, s] = even + odd if count[k] >= 3 else y[k]
        for i in range(5):          # copy back, one row per loop
            for s in range(nb):
                theta[i, s0 + s] = w[i, s]
        for e in range(15):
            for s in range(nb):
                pk[e, s0 + s] = w[5 + e, s]
        if pred.size:
            for s in range(nb):
                pred[s0 + s] = w[20, s]
        s0 += _BLOCK5
    for s in range(n):
        lags[3, s] = lags[2, s]
        lags[2, s] = lags[1, s]
        lags[1, s] = lags[0, s]
        lags[0, s] = y[s]
        count[s] += 1
    return -1


def _predict_soa(theta, lags, count, intercept):
    """``coefᵀ·[lags, 1]`` per series, the newest lag while ``count < order`` (series-last)."""
    m, n = theta.shape
    order = lags.shape[0]
    out, odd = np.zeros(n), np.zeros(n)        # even and odd terms, as in _tick_soa
    for i in range(m):
        acc = out if i % 2 == 0 else odd
        for s in range(n):
            acc[s] += (lags[i, s] if i < order else 1.0) * theta[i, s]
    for s in range(n):
        out[s] = out[s] + odd[s] if count[s] >= order else lags[0, s]
    return out


def _pairwise_sum(a):
    """``np.add.reduce(a)`` for a contiguous float64 vector, bit for bit: numpy's pairwise
    summation (blocks of <= 128 summed in 8 interleaved partial sums, halves split at a
    multiple of 8), written without recursion so that numba compiles it."""
    n = a.size
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    lo_st, n_st = np.empty(64, dtype=np.int64), np.empty(64, dtype=np.int64)
    left_st, stage = np.empty(64), np.zeros(64, dtype=np.int64)   # stage 1: left half summed
    top, lo_st[0], n_st[0] = 0, 0, n
    while True:
        lo, m = lo_st[top], n_st[top]
        if m > 128:                                   # descend into the left half
            half = m // 2
            half -= half % 8
            stage[top] = 0
            top += 1
            lo_st[top], n_st[top] = lo, half
            continue
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        while i < m - m % 8:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        v = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < m:
            v += a[lo + i]
            i += 1
        while True:                                   # hand v to the enclosing halves
            if top == 0:
                return v
            top -= 1
            if stage[top] == 0:                       # v is the left half: now the right one
                left_st[top], stage[top] = v, 1
                half = n_st[top] // 2
                half -= half % 8
                lo_st[top + 1], n_st[top + 1] = lo_st[top] + half, n_st[top] - half
                top += 1
                break
            v = left_st[top] + v                      # both halves done


def _pairwise_sums3(y, pred_w, mean_w, st, left, sums):
    """``sums`` := (Σ|pred_w - y|, Σ|mean_w - y|, Σy), each bit for bit as
    :func:`_pairwise_sum` (``np.add.reduce``) sums it, in one pass: the three sums walk the same
    pairwise tree (it depends on the length only), each with its own 8 partial sums per block,
    so no difference vector is stored. ``st`` (3, 64) int64 and ``left`` (3, 64) float: work
    arrays (start, length, stage; the left halves' sums)."""
    n = y.size
    if n < 8:
        a0 = a1 = a2 = 0.0
        for i in range(n):
            a0 += abs(pred_w[i] - y[i])
            a1 += abs(mean_w[i] - y[i])
            a2 += y[i]
        sums[0], sums[1], sums[2] = a0, a1, a2
        return
    top, st[0, 0], st[1, 0] = 0, 0, n
    while True:
        lo, m = st[0, top], st[1, top]
        if m > 128:                                   # descend into the left half
            half = m // 2
            half -= half % 8
            st[2, top] = 0
            top += 1
            st[0, top], st[1, top] = lo, half
            continue
        yv, pv, mv = y[lo:lo + m], pred_w[lo:lo + m], mean_w[lo:lo + m]   # views: indices from 0 (no wrap-around)
        p0, p1, p2, p3 = abs(pv[0] - yv[0]), abs(pv[1] - yv[1]), abs(pv[2] - yv[2]), abs(pv[3] - yv[3])
        p4, p5, p6, p7 = abs(pv[4] - yv[4]), abs(pv[5] - yv[5]), abs(pv[6] - yv[6]), abs(pv[7] - yv[7])
        q0, q1, q2, q3 = abs(mv[0] - yv[0]), abs(mv[1] - yv[1]), abs(mv[2] - yv[2]), abs(mv[3] - yv[3])
        q4, q5, q6, q7 = abs(mv[4] - yv[4]), abs(mv[5] - yv[5]), abs(mv[6] - yv[6]), abs(mv[7] - yv[7])
        r0, r1, r2, r3, r4, r5, r6, r7 = yv[0], yv[1], yv[2], yv[3], yv[4], yv[5], yv[6], yv[7]
        m8 = m - m % 8
        for i in range(8, m8, 8):
            p0 += abs(pv[i] - yv[i])
            p1 += abs(pv[i + 1] - yv[i + 1])
            p2 += abs(pv[i + 2] - yv[i + 2])
            p3 += abs(pv[i + 3] - yv[i + 3])
            p4 += abs(pv[i + 4] - yv[i + 4])
            p5 += abs(pv[i + 5] - yv[i + 5])
            p6 += abs(pv[i + 6] - yv[i + 6])
            p7 += abs(pv[i + 7] - yv[i + 7])
            q0 += abs(mv[i] - yv[i])
            q1 += abs(mv[i + 1] - yv[i + 1])
            q2 += abs(mv[i + 2] - yv[i + 2])
            q3 += abs(mv[i + 3] - yv[i + 3])
            q4 += abs(mv[i + 4] - yv[i + 4])
            q5 += abs(mv[i + 5] - yv[i + 5])
            q6 += abs(mv[i + 6] - yv[i + 6])
            q7 += abs(mv[i + 7] - yv[i + 7])
            r0 += yv[i]
            r1 += yv[i + 1]
            r2 += yv[i + 2]
            r3 += yv[i + 3]
            r4 += yv[i + 4]
            r5 += yv[i + 5]
            r6 += yv[i + 6]
            r7 += yv[i + 7]
        vp = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
        vq = ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))
        vr = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for i in range(m8, m):
            vp += abs(pv[i] - yv[i])
            vq += abs(mv[i] - yv[i])
            vr += yv[i]
        while True:                                   # hand the sums to the enclosing halves
            if top == 0:
                sums[0], sums[1], sums[2] = vp, vq, vr
                return
            top -= 1
            if st[2, top] == 0:                       # the left half: now the right one
                left[0, top], left[1, top], left[2, top], st[2, top] = vp, vq, vr, 1
                half = st[1, top] // 2
                half -= half % 8
                st[0, top + 1], st[1, top + 1] = st[0, top] + half, st[1, top] - half
                top += 1
                break
            vp = left[0, top] + vp                    # both halves done
            vq = left[1, top] + vq
            vr = left[2, top] + vr


# The kernels _power_tick_soa calls: the plain functions, replaced by their compiled versions
# in _numba_kernels() (numba compiles calls to compiled functions it finds as globals).
_tick_kernel, _tick5_kernel, _predict_kernel, _sum_kernel = _tick_soa, _tick5_soa, _predict_soa, _pairwise_sum
_power_kernel = None  # the compiled _power_tick_soa


def _power_work(n):
    """Work arrays of :func:`_power_period_soa` for ``n`` series: (rows y, y / hi_w and the
    prediction; the pairwise sums' stacks)."""
    return np.empty((3, n)), np.empty((3, 64), dtype=np.int64), np.empty((3, 64))


def _unit_divisors(period_s, n_hosts):
    """1 where ``period_s`` is 1.0, 2 where every ``n_hosts`` is 1.0 as well, else 0: the
    divisions by exactly 1.0 in ``((E - E_prev) / period_s) / n_hosts`` are the identity in IEEE
    (x / 1.0 == x, NaN, inf and -0 included), so those may be left out bit for bit."""
    if period_s != 1.0:
        return 0
    for s in range(n_hosts.size):
        if n_hosts[s] != 1.0:
            return 1
    return 2


def _power_period_soa(theta, pk, lags, count, j, lam, c, theta0, intercept, tri, p0,
                      gpu_j, host_j, prev_j, period_s, n_hosts, lo_w, hi_w, reset, mean_w, pred_w, score, sums,
                      unit, work, st, left):
    """:func:`_power_tick_soa` given work arrays (:func:`_power_work`) and ``unit`` (the
    divisions by 1.0 to leave out, :func:`_unit_divisors`): the same operations in the same
    order, without allocations (but the general model's prediction)."""
    n = gpu_j.size
    y, scaled = work[0], work[1]
    if unit == 2:                   # (E - E_prev) / 1.0 / 1.0 == E - E_prev
        for s in range(n):
            e = gpu_j[s] + host_j[s]
            v = e - prev_j[s]
            y[s] = v
            scaled[s] = v / hi_w[s]
            prev_j[s] = e
    elif unit == 1:
        for s in range(n):
            e = gpu_j[s] + host_j[s]
            v = (e - prev_j[s]) / n_hosts[s]
            y[s] = v
            scaled[s] = v / hi_w[s]
            prev_j[s] = e
    else:
        for s in range(n):
            e = gpu_j[s] + host_j[s]
            v = (e - prev_j[s]) / period_s / n_hosts[s]
            y[s] = v
            scaled[s] = v / hi_w[s]
            prev_j[s] = e
    if score:
        _sums3_kernel(y, pred_w, mean_w, st, left, sums)
    m = theta.shape[0]
    for s in range(n):
        if reset[s]:
            for i in range(m):
                theta[i, s] = theta0[i]
            for k in range(pk.shape[0]):
                pk[k, s] = p0[k]
            for i in range(lags.shape[0]):
                lags[i, s] = np.nan
            count[s] = 0
            reset[s] = False
    if m == 5 and intercept:        # the default model: tick and prediction in one pass
        pred = work[2]
        bad = _tick5_kernel(theta, pk, lags, count, scaled, j, lam, c, theta0[j], pred)
        if bad >= 0:
            return bad
    else:
        bad = _tick_kernel(theta, pk, lags, count, scaled, j, lam, c, theta0[j], intercept, tri)
        if bad >= 0:
            return bad
        pred = _predict_kernel(theta, lags, count, intercept)
    for s in range(n):
        v = pred[s] * hi_w[s]
        v = lo_w[s] if v < lo_w[s] else v     # not max/min: a NaN stays NaN, as in np.maximum
        pred_w[s] = hi_w[s] if v > hi_w[s] else v
        mean_w[s] = y[s]
    return -1


# The kernels _power_tick_soa and _power_block_soa call (plain until _numba_kernels() runs).
_sums3_kernel, _work_kernel, _unit_kernel, _period_kernel = (_pairwise_sums3, _power_work, _unit_divisors,
                                                             _power_period_soa)


def _power_tick_soa(theta, pk, lags, count, j, lam, c, theta0, intercept, tri, p0,
                    gpu_j, host_j, prev_j, period_s, n_hosts, lo_w, hi_w, reset, mean_w, pred_w, score, sums):
    """One Tier-2 period of :class:`HostPowerPredictor` in place (series-last layout).

    The same operations in the same order as its numpy path: mean power per host
    ``y = ((E - E_prev) / period) / n_hosts`` from the energy counters (``prev_j`` := E);
    with ``score``, ``sums`` := (Σ|pred_w - y|, Σ|mean_w - y|, Σy), each summed as
    ``np.add.reduce``; the ``reset`` series back to the prior (``reset`` cleared); the RLS
    tick on ``y / hi_w`` (:func:`_tick_soa`); ``pred_w`` := the prediction times ``hi_w``
    clipped to [lo_w, hi_w] (NaN kept, as np.maximum/np.minimum), ``mean_w`` := y.
    Returns -1, or the index of the first non-finite sample (the RLS state unchanged).
    (:func:`_power_period_soa` with work arrays of its own.)
    """
    work, st, left = _work_kernel(gpu_j.size)
    return _period_kernel(theta, pk, lags, count, j, lam, c, theta0, intercept, tri, p0, gpu_j, host_j, prev_j,
                          period_s, n_hosts, lo_w, hi_w, reset, mean_w, pred_w, score, sums,
                          _unit_kernel(period_s, n_hosts), work, st, left)


def _power_block_soa(theta, pk, lags, count, k0, lam, c, theta0, intercept, tri, p0,
                     gpu_j, host_j, gpu_w, host_w, dts, ends, prev_j, period_s, n_hosts, lo_w, hi_w, reset,
                     mean_w, pred_w, score, sums):
    """Consecutive Tier-2 periods in one call (block stepping): for each interval ``i`` the
    cumulative energies advance as a settled fleet's do, ``gpu_j += gpu_w * dts[i]`` and
    ``host_j += host_w * dts[i]`` (in place), and where ``ends[i]`` a period closes: the
    ``r``-th, :func:`_power_tick_soa` with coefficient index ``(k0 + r) % m`` and scoring
    ``score[r]``, its sums into ``sums[r]`` (:func:`_power_period_soa` on work arrays
    allocated once per block). One interval per period (``ends`` all true) in blocks of base
    ticks; several in blocks of 100 ms log sub-ticks.
    Returns ``(periods done, bad)``: ``bad`` is -1, or the first non-finite cohort of period
    ``periods done`` (which is not done)."""
    m = theta.shape[0]
    n = gpu_j.size
    work, st, left = _work_kernel(n)
    unit = _unit_kernel(period_s, n_hosts)
    r = 0
    for i in range(dts.size):
        d = dts[i]
        for s in range(n):
            gpu_j[s] += gpu_w[s] * d
            host_j[s] += host_w[s] * d
        if ends[i]:
            bad = _period_kernel(theta, pk, lags, count, (k0 + r) % m, lam, c, theta0, intercept, tri, p0,
                                 gpu_j, host_j, prev_j, period_s, n_hosts, lo_w, hi_w, reset, mean_w, pred_w,
                                 score[r], sums[r], unit, work, st, left)
            if bad >= 0:
                return r, bad
            r += 1
    return r, -1


@functools.cache
def _numba_kernels():
    """(tick, predict, power tick, tick for m = 5) compiled by numba, cached on disk;
    ImportError without numba."""
    global _tick_kernel, _tick5_kernel, _predict_kernel, _sum_kernel, _power_kernel
    global _sums3_kernel, _work_kernel, _unit_kernel, _period_kernel
    import numba

    jit = numba.njit(cache=True, fastmath=False, error_model="numpy")  # numpy: no 1/0 checks
    _tick_kernel, _tick5_kernel = jit(_tick_soa), jit(_tick5_soa)
    _predict_kernel, _sum_kernel, _sums3_kernel = jit(_predict_soa), jit(_pairwise_sum), jit(_pairwise_sums3)
    _work_kernel, _unit_kernel, _period_kernel = jit(_power_work), jit(_unit_divisors), jit(_power_period_soa)
    _power_kernel = jit(_power_tick_soa)
    return _tick_kernel, _predict_kernel, _power_kernel, _tick5_kernel


@functools.cache
def _block_kernel():
    """The compiled :func:`_power_block_soa` (after :func:`_numba_kernels`)."""
    import numba

    _numba_kernels()
    return numba.njit(cache=True, fastmath=False, error_model="numpy")(_power_block_soa)


def _aot():
    """The ahead-of-time built kernels (:mod:`twin.aot`), or None."""
    from twin import aot

    return aot.kernels()


_BACKENDS = ("auto", "numba", "numpy")


def _resolve_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {_BACKENDS}")
    if backend == "numpy":
        return "numpy"
    if _aot() is not None:      # the kernels built ahead of time (twin.aot): numba's start-up not paid
        return "numba"
    try:
        _numba_kernels()
    except ImportError as exc:
        if backend == "numba":
            raise ImportError("RlsAr(backend='numba') needs numba: pip install numba "
                              "(a core dependency of gridtwin), or use backend='numpy'") from exc
        return "numpy"
    return "numba"


class RlsAr:
    """AR(order) one-step-ahead predictors for ``n_series`` series, fitted by batched RLS.

    Parameters
    ----------
    n_series : int
        Number of series (hosts or cohorts), >= 1.
    order : int
        AR order p, >= 1 (paper: 4, chosen by AIC).
    forgetting : float
        λ in [0.5, 1]; effective memory 1/(1-λ) samples (default 60).
    delta : float
        Prior covariance scale δ > 0: P0 = δ·I around θ0 = persistence. Large δ is a
        weak prior; 1e3 is weak for both watt-scale (|φ|² ~ 1e5 W²) and
        utilisation-scale (|φ|² ~ 1) series.
    intercept : bool
        Fit the constant c (coefficient ``coef[:, order]``).
    backend : {"auto", "numba", "numpy"}
        ``"numpy"``: :func:`rls_update`, the reference; ``"numba"``: the same arithmetic
        compiled (:func:`_tick_soa`), ImportError without numba; ``"auto"``: numba if it
        imports, else numpy. The backend in use is ``self.backend``.

    Notes
    -----
    Samples arrive with :meth:`update`, one per series per tick (1 Hz in Tier 2). The
    coefficients are updated from the (order+1)-th sample on; before ``order`` samples
    :meth:`predict` returns the last sample (persistence), NaN before the first.
    """

    def __init__(self, n_series: int, order: int = 4, forgetting: float = FORGETTING_60S,
                 delta: float = DELTA, intercept: bool = True, backend: str = "auto"):
        for name, v in (("n_series", n_series), ("order", order)):
            if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
                raise ValueError(f"{name}={v!r}: expected an integer >= 1")
        if not 0.5 <= forgetting <= 1.0:
            raise ValueError(f"forgetting={forgetting!r}: expected 0.5 <= forgetting <= 1 "
                             f"(effective memory 1/(1-forgetting) samples)")
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"delta={delta!r}: expected a finite value > 0")
        self.backend = _resolve_backend(backend)
        self.n_series, self.order = int(n_series), int(order)
        self.forgetting, self.delta, self.intercept = float(forgetting), float(delta), bool(intercept)
        m = self.order + int(self.intercept)
        self._theta0 = np.zeros(m)
        self._theta0[0] = 1.0                                         # persistence
        self._theta = np.tile(self._theta0, (self.n_series, 1))
        self._p = np.tile(self.delta * np.eye(m), (self.n_series, 1, 1))
        self._lags = np.full((self.n_series, self.order), np.nan)     # newest first
        self._count = np.zeros(self.n_series, dtype=np.int64)         # samples seen
        self._k = 0                                                   # ticks (prior cycling)
        # Prior pseudo-observation weight: one coefficient per tick, cycling, so that on
        # average (1-λ)/δ·I of prior information enters per tick, which balances the
        # forgetting of the initial I/δ and keeps the prior weight ~ I/δ for ever.
        self._prior_w = (1.0 - self.forgetting) * m / self.delta
        if self.backend == "numba":   # series-last layout, P as its packed upper triangle
            iu = np.triu_indices(m)
            self._tri = np.zeros((m, m), dtype=np.int64)
            self._tri[iu] = self._tri.T[iu] = np.arange(iu[0].size)
            self._p0_packed = (self.delta * np.eye(m))[iu]
            self._theta = np.ascontiguousarray(self._theta.T)
            self._p = np.repeat(self._p0_packed[:, None], self.n_series, axis=1)
            self._lags = np.ascontiguousarray(self._lags.T)

    # ------------------------------------------------------------------ state
    @property
    def coef(self) -> np.ndarray:
        """(n_series, order [+1]) coefficients [φ1 .. φp, (c)]; c in the series' unit."""
        return self._theta.T.copy() if self.backend == "numba" else self._theta.copy()

    @property
    def covariance(self) -> np.ndarray:
        """(n_series, m, m) RLS covariance P (inverse information), a copy."""
        if self.backend == "numba":
            return np.ascontiguousarray(self._p[self._tri].transpose(2, 0, 1))
        return self._p.copy()

    @property
    def n_samples(self) -> np.ndarray:
        """Samples received per series (int array, a copy)."""
        return self._count.copy()

    def config(self) -> dict:
        return {"n_series": self.n_series, "order": self.order, "forgetting": self.forgetting,
                "delta": self.delta, "intercept": self.intercept}

    def _regressors(self) -> np.ndarray:
        if not self.intercept:
            return self._lags
        return np.concatenate([self._lags, np.ones((self.n_series, 1))], axis=1)

    # ------------------------------------------------------------------ tick
    def update(self, y: np.ndarray) -> None:
        """Append the newest sample of every series and update the coefficients.

        Parameters
        ----------
        y : (n_series,) array
            Newest sample per series (any unit; a finite number).

        Raises
        ------
        ValueError
            If ``y`` has the wrong shape or a non-finite value (then nothing changes).
        """
        y = np.asarray(y, dtype=float)
        if y.shape != (self.n_series,):
            raise ValueError(f"y has shape {y.shape}; expected ({self.n_series},)")
        if self.backend == "numba":
            m = self._theta.shape[0]
            j = self._k % m
            c = 1.0 / self._prior_w if self._prior_w > 0 else np.inf   # weight 0: no prior step
            kernels = _numba_kernels()
            if m == 5 and self.intercept:    # the default model: its one-pass kernel, same bits
                bad = kernels[3](self._theta, self._p, self._lags, self._count, np.ascontiguousarray(y),
                                 j, self.forgetting, c, self._theta0[j], np.empty(0))   # no prediction
            else:
                bad = kernels[0](self._theta, self._p, self._lags, self._count, np.ascontiguousarray(y),
                                 j, self.forgetting, c, self._theta0[j], self.intercept, self._tri)
            if bad < 0:
                self._k += 1
                return
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            raise ValueError(f"y[{bad[0]}] = {y[bad[0]]!r} is not finite ({bad.size} of "
                             f"{y.size} series); expected a finite sample for every series")
        ready = self._count >= self.order
        if ready.any():
            theta, p = rls_update(self._theta, self._p, self._regressors(), y, self.forgetting)
            if self._prior_w > 0:
                # prior pseudo-observation "θ_j = θ0_j" with weight w (regressor e_j: Pφ is
                # column j of P), without forgetting: the tick's forgetting is applied once
                j = self._k % self._theta.shape[1]
                theta, p = _rank1(theta, p, p[:, :, j].copy(), p[:, j, j].copy(),
                                  self._theta0[j] - theta[:, j], 1.0, self._prior_w)
            if ready.all():
                self._theta, self._p = theta, p
            else:
                self._theta = np.where(ready[:, None], theta, self._theta)
                self._p = np.where(ready[:, None, None], p, self._p)
        self._lags[:, 1:] = self._lags[:, :-1]
        self._lags[:, 0] = y
        self._count += 1
        self._k += 1

    def predict(self) -> np.ndarray:
        """One-step-ahead prediction per series, (n_series,) array.

        ``coefᵀ·[y[k], .., y[k-p+1], 1]`` once ``order`` samples exist, the last sample
        before that, NaN before the first sample.
        """
        if self.backend == "numba":
            return _numba_kernels()[1](self._theta, self._lags, self._count, self.intercept)
        pred = np.einsum("ni,ni->n", self._regressors(), self._theta)
        early = self._count < self.order
        return np.where(early, self._lags[:, 0], pred)

    def reset(self, series: np.ndarray) -> None:
        """Forget everything about ``series`` (indices or boolean mask), e.g. on a job change."""
        idx = np.arange(self.n_series)[series]
        if self.backend == "numba":
            self._theta[:, idx] = self._theta0[:, None]
            self._p[:, idx] = self._p0_packed[:, None]
            self._lags[:, idx] = np.nan
            self._count[idx] = 0
            return
        self._theta[idx] = self._theta0
        self._p[idx] = self.delta * np.eye(self._theta.shape[1])
        self._lags[idx] = np.nan
        self._count[idx] = 0


class HostPowerPredictor:
    """Tier 2 as the engine runs it: per-host mean power from energy counters, one period ahead.

    Every period (:meth:`step`) the mean power of one host of each cohort over the period
    is taken from the cohorts' cumulative energy counters, scored against the prediction
    made a period ago (and against persistence, the period before's mean, for scale), fed
    to ``model`` per unit of the host's top power ``hi_w`` (so that the prior weighs the
    same whatever the host's size), and the next period's prediction is kept in
    :attr:`pred_w`, clipped to [lo_w, hi_w]. With ``model.backend == "numba"`` the whole
    period is one compiled call (:func:`_power_tick_soa`); the numpy path is the reference
    and the two agree as :class:`RlsAr`'s backends do.

    Parameters
    ----------
    model : RlsAr
        One series per cohort.
    n_hosts : (n,) array
        Hosts per cohort.
    lo_w, hi_w : float or (n,) array
        Power of one host all idle and all at its top limits [W], ``0 < lo_w <= hi_w``.
    period_s : float
        Tier 2's period [s], > 0.
    """

    def __init__(self, model: RlsAr, n_hosts, lo_w, hi_w, period_s: float):
        n = model.n_series
        self.model = model
        self.n_hosts, self.lo_w, self.hi_w = (np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=float), (n,)))
                                              for a in (n_hosts, lo_w, hi_w))
        if not (np.all(self.lo_w >= 0) and np.all(self.lo_w <= self.hi_w) and np.all(self.hi_w > 0)):
            raise ValueError("lo_w, hi_w: expected 0 <= lo_w <= hi_w, hi_w > 0 [W] for every cohort")
        if not period_s > 0:
            raise ValueError(f"period_s = {period_s!r}: expected > 0 [s]")
        self.period_s = float(period_s)
        self.pred_w: np.ndarray | None = None   # prediction of the next period's mean power [W]
        self.mean_w: np.ndarray | None = None   # the last period's mean power [W]
        self._prev_j: np.ndarray | None = None
        self._sums = np.zeros(3)
        self._args: list | None = None          # the compiled period's arguments (numba)
        self._call = None                       # the compiled period for self._args' types
        self._fed: tuple = ()                   # the arrays of the call that _call was resolved for
        self._types: list | None = None         # numba types of self._args

    def start(self, energy_j: np.ndarray) -> None:
        """The cohorts' cumulative energy [J] at the start of the first period."""
        self._prev_j = np.array(energy_j, dtype=float)
        if self._args is not None:
            self._args[13] = self._prev_j
            self._fed = ()          # the next period resolves (and checks) its kernel again

    def step(self, gpu_energy_j: np.ndarray, host_energy_j: np.ndarray, reset: np.ndarray,
             score: bool) -> tuple[float, float, float] | None:
        """Close one period given the cumulative GPU and host energy per cohort [J].

        ``reset`` (bool, (n,)): series whose model restarts from the prior before this
        period's sample (a new job on the host); cleared. Returns, when ``score`` and a
        prediction exists, ``(Σ|pred - y|, Σ|persistence - y|, Σy)`` over cohorts [W].
        """
        args, model = self._args, self.model
        if (args is not None and args[0] is model._theta and args[1] is model._p and args[2] is model._lags
                and args[3] is model._count):   # numba after the first period, the model's arrays in place
            args[4] = model._k % self._m
            args[11], args[12], args[18], args[21] = gpu_energy_j, host_energy_j, reset, score
            fed = self._fed
            if fed and fed[0] is gpu_energy_j and fed[1] is host_energy_j and fed[2] is reset:
                bad = self._call(*args)        # the overload these arrays' types resolved to
            else:
                bad = self._resolve(args)
            if bad >= 0:
                raise ValueError(f"Tier 2: the mean power of cohort {bad} is not finite")
            model._k += 1
            return tuple(self._sums.tolist()) if score else None
        if model.backend == "numba":
            n = model.n_series
            first = self.pred_w is None
            if first:
                self.pred_w, self.mean_w = np.empty(n), np.empty(n)
            self._m = m = model._theta.shape[0]
            c = 1.0 / model._prior_w if model._prior_w > 0 else np.inf   # weight 0: no prior step
            # _power_tick_soa's arguments; per period step() sets [4] j, [11] gpu_j, [12] host_j,
            # [18] reset and [21] score, start() sets [13] prev_j
            self._args = args = [model._theta, model._p, model._lags, model._count, model._k % m, model.forgetting,
                                 c, model._theta0, model.intercept, model._tri, model._p0_packed,
                                 gpu_energy_j, host_energy_j, self._prev_j, self.period_s, self.n_hosts,
                                 self.lo_w, self.hi_w, reset, self.mean_w, self.pred_w, score and not first,
                                 self._sums]
            self._fed = ()
            bad = self._resolve(args)          # the first period has nothing to score yet
            if bad >= 0:
                raise ValueError(f"Tier 2: the mean power of cohort {bad} is not finite")
            model._k += 1
            return tuple(self._sums.tolist()) if score and not first else None
        # numpy: bare ufunc calls (x.sum() is add.reduce, np.clip(x, lo, hi) is
        # minimum(maximum(x, lo), hi) for lo <= hi), the operations the kernel repeats
        sub, absolute, total = np.subtract, np.absolute, np.add.reduce
        e = np.add(gpu_energy_j, host_energy_j)
        y = np.true_divide(np.true_divide(sub(e, self._prev_j), self.period_s), self.n_hosts)
        self._prev_j = e
        sums = None
        if score and self.pred_w is not None:
            sums = (float(total(absolute(sub(self.pred_w, y)))), float(total(absolute(sub(self.mean_w, y)))),
                    float(total(y)))
        if reset.any():
            model.reset(reset)
            reset[:] = False
        model.update(np.true_divide(y, self.hi_w))
        self.mean_w = y
        self.pred_w = np.minimum(np.maximum(np.multiply(model.predict(), self.hi_w), self.lo_w), self.hi_w)
        return sums

    def _resolve(self, args: list) -> int:
        """One compiled period through numba's dispatcher (which types every argument), and
        the compiled overload it ran kept for the next periods that are fed the same energy
        and reset arrays (``step`` checks identity). The other arguments are this object's
        and its model's own arrays, changed in place only, and scalars of fixed types.
        With an AOT build (:mod:`twin.aot`) whose types the arguments fit, that kernel
        instead (the same compiled code, without numba's dispatcher or start-up)."""
        aot = _aot()
        if aot is not None:
            from twin.aot import args_fit

            if args_fit("power_tick", args):
                self._call, self._fed = aot.power_tick, (args[11], args[12], args[18])
                return aot.power_tick(*args)
        kernel = _numba_kernels()[2]
        bad = kernel(*args)
        typeof = kernel.typeof_pyval
        if self._types is None:
            self._types = [typeof(a) for a in args]
        for i in (11, 12, 18):
            self._types[i] = typeof(args[i])
        try:
            self._call = kernel.get_overload(tuple(self._types))
            self._fed = (args[11], args[12], args[18])
        except KeyError:   # no overload of exactly these types (the dispatcher converted one)
            self._call, self._fed = None, ()
        return bad


    def step_block(self, gpu_energy_j: np.ndarray, host_energy_j: np.ndarray, gpu_power_w: np.ndarray,
                   host_power_w: np.ndarray, dts_s, reset: np.ndarray, score, ends=None) -> list:
        """Close periods while the cohorts draw constant power (block stepping): for each
        interval of ``dts_s`` [s] the cumulative energies [J] advance by ``power * d`` (as a
        settled fleet's do; the given arrays are not changed), and after each interval
        where ``ends`` is true (default: every one) :meth:`step` closes a period, the
        ``r``-th with ``score[r]``; with the numba backend in one compiled call
        (:func:`_power_block_soa`). Returns :meth:`step`'s results, one per period (on a
        non-finite sample, raises after the periods before it, as :meth:`step` would)."""
        ends = np.ones(len(dts_s), dtype=bool) if ends is None else np.array(ends, dtype=bool)
        if ends.shape != (len(dts_s),):
            raise ValueError(f"ends: expected one flag per interval ({len(dts_s)}), got shape {ends.shape}")
        k = int(np.count_nonzero(ends))
        score = np.asarray(score, dtype=bool)
        if score.shape != (k,):
            raise ValueError(f"score: expected one flag per period ({k}), got shape {score.shape}")
        model = self.model
        g, h = np.array(gpu_energy_j, dtype=float), np.array(host_energy_j, dtype=float)
        a = self._args
        if (model.backend != "numba" or k == 0 or a is None or a[0] is not model._theta or a[1] is not model._p
                or a[2] is not model._lags or a[3] is not model._count):   # (the first period sets _args)
            out, r = [], 0
            for d, end in zip(dts_s, ends.tolist()):
                g += gpu_power_w * d
                h += host_power_w * d
                if end:
                    out.append(self.step(g, h, reset, bool(score[r])))
                    r += 1
            return out
        sums = np.zeros((k, 3))
        gw, hw = np.ascontiguousarray(gpu_power_w, dtype=float), np.ascontiguousarray(host_power_w, dtype=float)
        dts = np.ascontiguousarray(dts_s, dtype=float)
        score = np.ascontiguousarray(score)
        aot = _aot()
        if (aot is not None and self._call is aot.power_tick and self._fed and self._fed[2] is reset
                and g.ndim == h.ndim == gw.ndim == hw.ndim == dts.ndim == 1):
            # _resolve checked every other argument (the same arrays, by identity) for the
            # AOT period; the block's own arrays are made here: float64/bool, contiguous, 1-d
            kernel = aot.power_block
        else:
            kernel = _block_kernel()
        done, bad = kernel(a[0], a[1], a[2], a[3], model._k, a[5], a[6], a[7], a[8], a[9], a[10],
                           g, h, gw, hw, dts, ends, a[13], a[14], a[15], a[16], a[17], reset, a[19], a[20], score,
                           sums)
        model._k += done
        out = [tuple(r) if sc else None for r, sc in zip(sums[:done].tolist(), score[:done].tolist())]
        if bad >= 0:
            raise ValueError(f"Tier 2: the mean power of cohort {bad} is not finite")
        return out


def rebalance_caps(envelope_w, predicted_w, min_w, max_w) -> np.ndarray:
    """Split each host's power envelope over its GPUs in proportion to predicted demand.

    Water-filling: ``cap_g = clip(α·d_g, min_g, max_g)`` with the host's α chosen so
    that the caps sum to the envelope. The weight ``d_g = max(predicted_g, min_g)`` is
    the predicted demand floored at the GPU's minimum cap: a GPU cannot be held below
    that anyway, and an idle GPU keeps headroom in proportion to it when the envelope
    has slack (equal weights on a host whose weights are all zero). A host whose
    envelope is at least ``Σ max_g`` gets every GPU at its maximum (the sum is then
    below the envelope); otherwise the caps sum to the envelope, to rounding, and
    never above it.

    Parameters
    ----------
    envelope_w : float or (H,) array
        Host power envelope for its GPUs [W].
    predicted_w : (G,) or (H, G) array
        Predicted demand per GPU [W] (any non-negative weight works).
    min_w, max_w : float or array broadcastable to ``predicted_w``
        Power-limit range per GPU [W], ``0 <= min_w <= max_w``.

    Returns
    -------
    caps_w : array, shape of ``predicted_w`` broadcast with the limits
        Caps with ``min_w <= caps_w <= max_w`` and ``caps_w.sum(-1) <= envelope_w``.

    Raises
    ------
    ValueError
        On non-finite inputs, ``min_w > max_w``, negative limits, or an envelope below
        ``Σ min_w`` (no caps within the limits fit it; the caller must not ask for that).
    """
    d = np.asarray(predicted_w, dtype=float)
    lo, hi = np.broadcast_arrays(np.asarray(min_w, dtype=float), np.asarray(max_w, dtype=float), d)[:2]
    d = np.broadcast_to(d, lo.shape)
    if d.ndim == 0:
        raise ValueError("predicted_w must have at least one axis (GPUs)")
    env = np.asarray(envelope_w, dtype=float)
    env_b = np.broadcast_to(env, d.shape[:-1])
    for name, a in (("envelope_w", env_b), ("predicted_w", d), ("min_w", lo), ("max_w", hi)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} holds a non-finite value")
    if np.any(lo < 0) or np.any(lo > hi):
        raise ValueError(f"power-limit ranges must satisfy 0 <= min_w <= max_w; got min "
                         f"{np.min(lo):g} W, largest min - max {np.max(lo - hi):g} W")
    floor = lo.sum(-1)
    short = np.flatnonzero(np.ravel(env_b < floor))
    if short.size:
        i = short[0]
        raise ValueError(f"envelope {np.ravel(env_b)[i]:g} W of host {i} is below the sum of its "
                         f"GPUs' minimum caps {np.ravel(floor)[i]:g} W ({short.size} hosts short)")
    d = np.maximum(d, lo)
    d = np.where(d.sum(-1, keepdims=True) > 0, d, 1.0)
    e = env_b[..., None]
    # S(α) = Σ clip(α d, lo, hi) is piecewise linear: its slope rises by d_g at α = lo_g/d_g
    # and falls by d_g at α = hi_g/d_g. Sort those breakpoints, integrate the slope to get
    # S at each, take the last breakpoint with S <= E and solve on the segment after it.
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.concatenate([np.where(d > 0, lo / d, 0.0), np.where(d > 0, hi / d, 0.0)], -1)
    order = np.argsort(bp, axis=-1, kind="stable")
    bp = np.take_along_axis(bp, order, -1)
    slope = np.cumsum(np.take_along_axis(np.concatenate([d, -d], -1), order, -1), -1)
    s = np.cumsum(np.diff(bp, axis=-1) * slope[..., :-1], -1)
    s = floor[..., None] + np.concatenate([np.zeros_like(bp[..., :1]), s], -1)   # S(bp_i)
    k = np.maximum(np.sum(s <= e, axis=-1) - 1, 0)[..., None]          # ties: the last one
    a_k, s_k, sl = (np.take_along_axis(x, k, -1) for x in (bp, s, slope))
    alpha = np.where(sl > 0, a_k + (e - s_k) / np.where(sl > 0, sl, 1.0), a_k)
    caps = np.clip(alpha * d, lo, hi)
    for _ in range(16):                                               # rounding: never exceed E
        over = caps.sum(-1, keepdims=True) > e
        if not over.any():
            return caps
        alpha = np.where(over, alpha * (1.0 - 4 * np.finfo(float).eps), alpha)
        caps = np.clip(alpha * d, lo, hi)
    raise RuntimeError("rebalance_caps: caps still exceed the envelope after rounding correction")
