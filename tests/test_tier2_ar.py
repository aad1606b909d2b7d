"""Tier 2 (twin/control/tier2_ar.py): the batched RLS AR(p) predictor and the cap split.

Every random generator is seeded; each tolerance is stated beside its check with the
arithmetic behind it. Nothing here is timed (bench/tier2_kernel.py times the backends).
Every RlsAr test runs on both backends (fixture ``backend``); the numba runs skip, saying
why, when numba is not importable.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import toeplitz

from twin.control import tier2_ar
from twin.control.tier2_ar import DELTA, FORGETTING_60S, HostPowerPredictor, RlsAr, rebalance_caps, rls_update

try:
    import numba  # noqa: F401
    NO_NUMBA = ""
except ImportError as exc:  # the numpy backend is still tested
    NO_NUMBA = f"numba is not importable ({exc}): pip install numba"
needs_numba = pytest.mark.skipif(bool(NO_NUMBA), reason=NO_NUMBA or "numba is importable")

PHI_A = np.array([0.5, -0.3, 0.2, -0.1])  # stationary: largest root modulus 0.74


@pytest.fixture(params=["numpy", pytest.param("numba-aot", marks=needs_numba),
                        pytest.param("numba-jit", marks=needs_numba)])
def backend(request, monkeypatch):
    """The backend's name for RlsAr; "numba" both with the AOT build's kernels (twin.aot;
    skipped without one) and with numba's JIT (the AOT build hidden)."""
    from conftest import backend_via

    return backend_via(request.param, monkeypatch)


def _simulate(phi, c, sigma, n_series, n_ticks, rng, y_init):
    """AR(p) with intercept, n_series independent series, (n_ticks, n_series)."""
    p = len(phi)
    y = np.empty((n_ticks, n_series))
    y[:p] = y_init
    for k in range(p, n_ticks):
        y[k] = c + phi @ y[k - 1:k - p - 1 if k > p else None:-1] + rng.normal(0.0, sigma, n_series)
    return y


def _autocov(phi, sigma2, n_lags):
    """γ_0..γ_n_lags of a stationary AR(p) (Yule-Walker, solved for γ_0..γ_p, then recursed)."""
    p = len(phi)
    a = np.eye(p + 1)
    for k in range(p + 1):
        for i in range(1, p + 1):
            a[k, abs(k - i)] -= phi[i - 1]
    g = list(np.linalg.solve(a, np.r_[sigma2, np.zeros(p)]))
    while len(g) < n_lags + 1:
        g.append(float(phi @ np.array(g[:-p - 1:-1])))
    return np.array(g)


def _feed(model, y):
    for row in y:
        model.update(row)
    return model


# ------------------------------------------------------------------ constants


def test_forgetting_gives_sixty_sample_memory():
    # N_eff = 1/(1-λ) = 60 samples = 60 s at 1 Hz (paper §3.1)
    assert 1.0 / (1.0 - FORGETTING_60S) == pytest.approx(60.0, rel=1e-12)


# ------------------------------------------------------------------ estimation


def test_recovers_known_ar4_coefficients_without_forgetting(backend):
    # 200 series x 3000 samples, λ = 1 (plain recursive LS). Per-series standard error
    # of φ ~ 1/sqrt(3000) ≈ 0.02 (measured sd 0.019-0.021), so the mean over 200 series
    # has se ≈ 0.0015: tolerance 0.01 on each φ_i (≈ 6 se, plus O(1/N) LS bias).
    # Mean μ = c/(1-Σφ) = 50/0.7 = 71.43; its se ≈ σ/(1-Σφ)/sqrt(3000·200) ≈ 0.002:
    # tolerance 0.05.
    rng = np.random.default_rng(20240501)
    c = 50.0
    y = _simulate(PHI_A, c, 1.0, 200, 3000, rng, c / (1 - PHI_A.sum()))
    coef = _feed(RlsAr(200, forgetting=1.0, backend=backend), y).coef
    np.testing.assert_allclose(coef[:, :4].mean(0), PHI_A, atol=0.01)
    mean_implied = coef[:, 4] / (1.0 - coef[:, :4].sum(1))
    assert mean_implied.mean() == pytest.approx(c / (1 - PHI_A.sum()), abs=0.05)


def test_equals_the_batch_weighted_ridge_solution(backend):
    # The recursion must reproduce, to rounding, the minimiser of
    #   Σ_k λ^(K-k) [(y_k - φ_kᵀθ)² + w (θ_j(k) - θ0_j(k))²] + λ^(n_upd) (θ-θ0)ᵀ(I/δ)(θ-θ0),
    # (data rows and the cycling prior pseudo-rows, j(k) = k mod 5, w = (1-λ)·5/δ),
    # solved here in one go. Unit-scale data keep the 5x5 system well conditioned:
    # atol 1e-9 on θ.
    rng = np.random.default_rng(3)
    lam, delta, p = 0.95, 10.0, 4
    y = _simulate(PHI_A, 0.3, 1.0, 1, 120, rng, 0.0)[:, 0]
    model = _feed(RlsAr(1, order=p, forgetting=lam, delta=delta, backend=backend), y[:, None])
    m, w, theta0 = p + 1, (1 - lam) * (p + 1) / delta, np.r_[1.0, np.zeros(p)]
    ticks = np.arange(p, len(y))                 # ticks at which coefficients are updated
    age = len(y) - 1 - ticks
    r_mat = lam ** len(ticks) * np.eye(m) / delta
    r_vec = r_mat @ theta0
    for k, a in zip(ticks, age):
        phi = np.r_[y[k - 1::-1][:p], 1.0]
        r_mat += lam ** a * np.outer(phi, phi)
        r_vec += lam ** a * phi * y[k]
        j = k % m
        r_mat[j, j] += lam ** a * w
        r_vec[j] += lam ** a * w * theta0[j]
    np.testing.assert_allclose(model.coef[0], np.linalg.solve(r_mat, r_vec), rtol=0, atol=1e-9)


def test_tracks_a_coefficient_change_with_the_time_constant_lambda_implies(backend):
    # Regime A -> B at tick 600. B is built to share A's mean (100) and autocovariances
    # γ0..γ3 (it differs in γ4: φB = Γ⁻¹[γ1, γ2, γ3, γ4 + 0.3]), so the regressors'
    # second moments are the same in both regimes and the weighted-LS estimate moves
    # from A's to B's as λ^j: time constant 1/(1-λ) = 60 ticks. Distances are measured
    # between mean estimates over 400 series and the steady-state means (the estimator
    # has an O(1/60) small-sample bias in each regime). Seeds 1-5 give fitted time
    # constants 53-63 ticks over j = 0..119: tolerance 20 % (48-72).
    g = _autocov(PHI_A, 1.0, 4)
    gamma = np.r_[g[1:4], g[4] + 0.3]
    phi_b = np.linalg.solve(toeplitz(g[:4]), gamma)
    sigma_b = np.sqrt(g[0] - phi_b @ gamma)
    mu = 100.0
    rng = np.random.default_rng(7)
    n, t_switch, t_end = 400, 600, 1000
    y = np.empty((t_end, n))
    y[:4] = mu
    for k in range(4, t_end):
        phi, sigma = (PHI_A, 1.0) if k < t_switch else (phi_b, sigma_b)
        y[k] = mu * (1 - phi.sum()) + phi @ y[k - 1:(k - 5 if k > 4 else None):-1] + rng.normal(0, sigma, n)
    model = RlsAr(n, backend=backend)
    mean_coef = np.empty((t_end, 5))
    for k in range(t_end):
        model.update(y[k])
        mean_coef[k] = model.coef.mean(0)
    steady_a = mean_coef[t_switch - 200:t_switch, :4].mean(0)
    steady_b = mean_coef[-100:, :4].mean(0)
    dist = (np.linalg.norm(mean_coef[t_switch - 1:, :4] - steady_b, axis=1)
            / np.linalg.norm(steady_a - steady_b))
    j = np.arange(120)
    tau = -1.0 / np.polyfit(j, np.log(dist[j]), 1)[0]
    assert 48.0 <= tau <= 72.0, f"fitted time constant {tau:.1f} ticks, expected 60 ± 20 %"
    # and pointwise at one time constant: e^-1 = 0.368; seeds 1-5 give 0.355-0.408
    assert dist[60] == pytest.approx(np.exp(-1.0), abs=0.07)


def test_vectorised_equals_a_loop_over_series(backend):
    # Same arithmetic, batched or one series at a time: equal to rounding (rtol 1e-12).
    rng = np.random.default_rng(11)
    y = np.column_stack([_simulate(PHI_A, c, s, 1, 150, rng, c / 0.7)[:, 0]
                         for c, s in [(50.0, 1.0), (10.0, 3.0), (0.0, 0.1), (200.0, 5.0), (1.0, 0.01)]])
    batch = RlsAr(5, backend=backend)
    singles = [RlsAr(1, backend=backend) for _ in range(5)]
    for row in y:
        np.testing.assert_allclose(batch.predict(), [s.predict()[0] for s in singles], rtol=1e-12)
        batch.update(row)
        for s, v in zip(singles, row):
            s.update(np.array([v]))
    np.testing.assert_allclose(batch.coef, np.vstack([s.coef for s in singles]), rtol=1e-12)


def test_rls_update_is_pure_and_matches_sherman_morrison():
    # One step by hand: with P = I, φ = (1, 2), λ = 0.5, y = 3, θ = 0:
    # φᵀPφ = 5, K = φ/(0.5 + 5) = φ/5.5, θ' = 3φ/5.5, P' = (I - φφᵀ/5.5)/0.5.
    theta, p = np.zeros((1, 2)), np.eye(2)[None]
    phi, y = np.array([[1.0, 2.0]]), np.array([3.0])
    t1, p1 = rls_update(theta, p, phi, y, 0.5)
    np.testing.assert_allclose(t1[0], 3 * phi[0] / 5.5, rtol=1e-15)
    np.testing.assert_allclose(p1[0], (np.eye(2) - np.outer(phi[0], phi[0]) / 5.5) / 0.5, rtol=1e-15)
    assert np.all(theta == 0) and np.all(p == np.eye(2))


# ------------------------------------------------------------------ behaviour


def test_warm_up_predicts_persistence_then_nan_free(backend):
    model = RlsAr(2, backend=backend)
    assert np.all(np.isnan(model.predict()))
    for k, v in enumerate([5.0, 6.0, 7.0]):
        model.update(np.array([v, -v]))
        np.testing.assert_array_equal(model.predict(), [v, -v])   # fewer than 4 samples
    model.update(np.array([8.0, -8.0]))
    # 4 samples, no update yet: θ = θ0 = persistence, so still the last value
    np.testing.assert_array_equal(model.predict(), [8.0, -8.0])
    np.testing.assert_array_equal(model.n_samples, [4, 4])


def test_constant_series_does_not_wind_up(backend):
    # A constant series excites one direction of the 5 only. Plain RLS with λ = 1-1/60
    # would grow P in the other four like λ^-k: after 20 000 ticks, e^(20000/60) ≈ 1e144.
    # With the prior kept at weight >= 0.966/δ per coefficient (module docstring), P
    # stays below δ/0.966 = 1.035 δ: tolerance 1.1 δ. Predictions stay exact.
    model = RlsAr(3, backend=backend)
    level = np.array([40.0, 0.0, 250.0])
    for _ in range(20_000):
        model.update(level)
    assert np.linalg.eigvalsh(model.covariance).max() <= 1.1 * DELTA
    np.testing.assert_allclose(model.predict(), level, rtol=1e-12, atol=1e-12)


def test_intercept_lets_a_noisy_level_revert_to_its_mean(backend):
    # White noise (σ = 3 W) around 250 W. The best one-step predictor is the mean: MAE
    # σ·sqrt(2/π) = 2.394 W; an LS fit of m = 5 coefficients on N_eff = 60 samples
    # inflates the error variance by (1 + m/N_eff), so MAE ≈ 2.394·sqrt(1.083) = 2.49 W
    # (seeds 5-7 give 2.47). Without an intercept the model must keep Σφ ≈ 1, at best
    # the mean of the 4 lags: MAE σ·sqrt(1 + 1/4)·sqrt(2/π) = 2.68 W (seeds 5-7: 2.73).
    # Over the last 500 of 1000 ticks, 100 series: with <= 2.49 + 2 %, without >= 2.68 - 2 %.
    rng = np.random.default_rng(5)
    y = 250.0 + rng.normal(0.0, 3.0, (1000, 100))
    mae = {}
    for intercept in (True, False):
        model, err = RlsAr(100, intercept=intercept, backend=backend), []
        for k, row in enumerate(y):
            if k >= 500:
                err.append(np.abs(row - model.predict()))
            model.update(row)
        mae[intercept] = float(np.mean(err))
    assert mae[True] <= 2.394 * np.sqrt(1 + 5 / 60) * 1.02
    assert mae[False] >= 2.394 * np.sqrt(1.25) * 0.98


def test_reset_restores_the_prior_for_chosen_series_only(backend):
    rng = np.random.default_rng(2)
    model = _feed(RlsAr(3, backend=backend), 100 + rng.normal(0, 1, (50, 3)))
    before = model.coef
    model.reset(np.array([False, True, False]))
    np.testing.assert_array_equal(model.coef[1], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(model.coef[[0, 2]], before[[0, 2]])
    assert np.isnan(model.predict()[1]) and model.n_samples[1] == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"n_series": 0}, "n_series"), ({"n_series": 2.0}, "n_series"), ({"order": 0}, "order"),
    ({"forgetting": 0.3}, "forgetting"), ({"forgetting": 1.01}, "forgetting"),
    ({"forgetting": float("nan")}, "forgetting"), ({"delta": 0.0}, "delta"),
])
def test_constructor_rejects_bad_parameters(kwargs, match, backend):
    with pytest.raises(ValueError, match=match):
        RlsAr(**{"n_series": 2, "backend": backend, **kwargs})


def test_update_rejects_bad_samples_and_changes_nothing(backend):
    model = RlsAr(2, backend=backend)
    with pytest.raises(ValueError, match="shape"):
        model.update(np.zeros(3))
    with pytest.raises(ValueError, match=r"y\[1\]"):
        model.update(np.array([1.0, np.nan]))
    np.testing.assert_array_equal(model.n_samples, [0, 0])
    np.testing.assert_array_equal(model.coef, np.tile([1.0, 0, 0, 0, 0], (2, 1)))


# ------------------------------------------------------------------ backends


@needs_numba
@pytest.mark.parametrize("bad", [[37], [5, 37], [0], [99], [12, 13, 50]])
def test_numba_tick_reports_the_first_non_finite_sample_and_changes_nothing(bad):
    """The compiled tick counts non-finite samples without an early exit (so that the loop
    vectorises) and then looks for the first one: the same index and no state change."""
    model = RlsAr(100, backend="numba")
    rng = np.random.default_rng(3)
    for _ in range(8):
        model.update(rng.normal(1.0, 0.1, 100))
    state = (model.coef, model.covariance, model._lags.copy(), model.n_samples)
    for values in ([np.nan], [np.inf], [-np.inf], [np.nan, np.inf, -np.inf]):
        y = rng.normal(1.0, 0.1, 100)
        y[bad] = (values * len(bad))[:len(bad)]
        with pytest.raises(ValueError, match=rf"y\[{bad[0]}\]"):
            model.update(y)
        for before, after in zip(state, (model.coef, model.covariance, model._lags, model.n_samples)):
            np.testing.assert_array_equal(after, before)
    model.update(np.full(100, 1.0))       # finite again: accepted
    np.testing.assert_array_equal(model.n_samples, 9)


@needs_numba
@pytest.mark.parametrize("order, intercept, forgetting", [
    (4, True, FORGETTING_60S), (2, False, 0.9), (3, True, 1.0)])
def test_numba_backend_agrees_with_numpy(order, intercept, forgetting):
    # 2 500 ticks of 64 AR(4) series on scales 1 to 1e3 (utilisation to watts), one held
    # constant (the unexcited case); every 97 ticks a random fifth of them is reset, so
    # some series are always warming up (partial readiness). Same arithmetic, summed in
    # another order (φᵀθ, Pφ) and with P stored as one triangle: the backends agree to
    # rounding amplified by the conditioning of P, measured <= 5e-11 of each quantity's
    # largest magnitude. Tolerance 1e-9 relative to that, and the same NaN pattern.
    rng = np.random.default_rng(17)
    n = 64
    scale = 10.0 ** rng.uniform(0.0, 3.0, n)
    ref, fast = (RlsAr(n, order=order, intercept=intercept, forgetting=forgetting, backend=b)
                 for b in ("numpy", "numba"))
    assert (ref.backend, fast.backend) == ("numpy", "numba")
    x = np.zeros((4, n))                                   # unit-scale AR(4) lags
    partial = 0
    for k in range(2_500):
        x = np.vstack([0.3 + PHI_A @ x + rng.normal(0.0, 0.1, n), x[:-1]])
        y = scale * x[0]
        y[0] = 250.0
        if k % 97 == 50:
            mask = rng.random(n) < 0.2
            ref.reset(mask)
            fast.reset(np.flatnonzero(mask))               # indices or mask, same effect
        ref.update(y)
        fast.update(y)
        partial += 0 < (ref.n_samples < order).sum() < n
        if k % 50 == 0 or k >= 2_490:
            for a, b in ((ref.coef, fast.coef), (ref.covariance, fast.covariance),
                         (ref.predict(), fast.predict())):
                np.testing.assert_array_equal(np.isnan(b), np.isnan(a))
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * np.nanmax(np.abs(a)))
            np.testing.assert_array_equal(fast.n_samples, ref.n_samples)
    assert partial >= 25 * (order - 1)     # 26 resets, each leaves order-1 ticks partly ready


def _tick_both(kernels, a, b, y, k, theta0_j, c):
    """One tick of the general kernel + prediction on ``a`` and of the m = 5 one on ``b``."""
    tick, predict, tick5 = kernels
    j = k % 5
    pred_b = np.full(a.n_series, -7.0)
    ra = tick(a._theta, a._p, a._lags, a._count, y, j, a.forgetting, c, theta0_j, True, a._tri)
    rb = tick5(b._theta, b._p, b._lags, b._count, y, j, b.forgetting, c, theta0_j, pred_b)
    return ra, rb, (predict(a._theta, a._lags, a._count, True) if ra < 0 else None), pred_b


def _assert_same_bits(x, y):
    np.testing.assert_array_equal(x, y)                     # values, NaN where NaN
    np.testing.assert_array_equal(np.signbit(x), np.signbit(y))   # and the sign of zeros


def _check_tick5_against_general(kernels, n, ticks, forgetting, seed):
    rng = np.random.default_rng(seed)
    a, b = (RlsAr(n, forgetting=forgetting, backend="numba") for _ in range(2))
    c = 1.0 / a._prior_w if a._prior_w > 0 else np.inf      # forgetting 1: no prior step
    scale = 10.0 ** rng.uniform(-1.0, 3.0, n)               # utilisation to watts
    x = np.zeros((4, n))
    for k in range(ticks):
        x = np.vstack([0.3 + PHI_A @ x + rng.normal(0.0, 0.1, n), x[:-1]])
        y = scale * x[0]
        y[::5] = 250.0                                      # some series constant (unexcited)
        if k % 23 == 11:                                    # resets: partly ready ticks follow
            idx = rng.choice(n, max(1, n // 4), replace=False)
            a.reset(idx)
            b.reset(idx)
        theta0_j = float(a._theta0[k % 5]) if k % 7 else rng.normal()   # any θ0_j
        ra, rb, pred_a, pred_b = _tick_both(kernels, a, b, y, k, theta0_j, c)
        assert ra == rb == -1
        for xa, xb in ((a._theta, b._theta), (a._p, b._p), (a._lags, b._lags), (a._count, b._count),
                       (pred_a, pred_b)):
            _assert_same_bits(xa, xb)
    return a, b, c


@needs_numba
@pytest.mark.parametrize("n", [1, 7, 100, 980])
@pytest.mark.parametrize("forgetting", [FORGETTING_60S, 1.0])
def test_m5_kernel_equals_the_general_kernel_bit_for_bit(n, forgetting):
    # the compiled one-pass kernel for order 4 + intercept against the compiled general tick
    # followed by the compiled prediction: every θ, P entry, lag, count and prediction equal
    # to the last bit (and the sign of zeros) over 160 ticks, every j, on series from 0.1 to
    # 1e3 in scale, some constant, with resets every 23 ticks (series warming up) and blocks
    # of the kernel's scratch full, partial (n = 980: 7 full + 84) or one series; forgetting 1
    # is the case without prior step (c = inf)
    k = tier2_ar._numba_kernels()
    a, b, c = _check_tick5_against_general((k[0], k[1], k[3]), n, 160, forgetting, seed=n)
    # a non-finite sample: both report the first bad index and change nothing
    state = [z.copy() for z in (b._theta, b._p, b._lags, b._count)]
    for bad in ([0], [n - 1], [n // 2, n - 1]):
        y = np.ones(n)
        y[bad] = [np.nan, np.inf][:len(bad)] if len(bad) > 1 else [-np.inf]
        ra, rb, _, _ = _tick_both((k[0], k[1], k[3]), a, b, y, 3, 0.0, c)
        assert ra == rb == bad[0]
        for before, after in zip(state, (b._theta, b._p, b._lags, b._count)):
            np.testing.assert_array_equal(after, before)


def test_m5_kernel_plain_python_equals_the_general_one():
    # the same check without numba, on the plain Python functions (a few ticks of 7 series)
    kernels = (tier2_ar._tick_soa, tier2_ar._predict_soa, tier2_ar._tick5_soa)
    rng = np.random.default_rng(2)
    n = 7
    a, b = (RlsAr(n, backend="numpy") for _ in range(2))
    for m in (a, b):   # the numba backend's layout, built by hand (numba may be missing)
        iu = np.triu_indices(5)
        m._tri = np.zeros((5, 5), dtype=np.int64)
        m._tri[iu] = m._tri.T[iu] = np.arange(15)
        m._theta, m._lags = np.ascontiguousarray(m._theta.T), np.ascontiguousarray(m._lags.T)
        m._p = np.repeat((DELTA * np.eye(5))[iu][:, None], n, axis=1)
    for k in range(12):
        ra, rb, pred_a, pred_b = _tick_both(kernels, a, b, rng.normal(1.0, 0.3, n), k, float(k % 5 == 0),
                                            1.0 / a._prior_w)
        assert ra == rb == -1
        for xa, xb in ((a._theta, b._theta), (a._p, b._p), (a._lags, b._lags), (pred_a, pred_b)):
            _assert_same_bits(xa, xb)


@pytest.mark.parametrize("order, intercept, uses_m5", [(4, True, True), (4, False, False), (3, True, False)])
def test_the_m5_kernel_is_used_for_the_default_model_only(monkeypatch, order, intercept, uses_m5):
    # RlsAr.update (numba) and the period of HostPowerPredictor (_power_tick_soa, here run as
    # plain Python) call the one-pass kernel for order 4 + intercept, the general one otherwise
    calls = []

    def spy(name, fn):
        def wrapped(*args):
            calls.append(name)
            return fn(*args)
        return wrapped

    tick, tick5 = spy("general", tier2_ar._tick_soa), spy("m5", tier2_ar._tick5_soa)
    monkeypatch.setattr(tier2_ar, "_tick_kernel", tick)
    monkeypatch.setattr(tier2_ar, "_tick5_kernel", tick5)
    monkeypatch.setattr(tier2_ar, "_numba_kernels", lambda: (tick, tier2_ar._predict_soa, None, tick5))
    for name, fn in (("_period_kernel", tier2_ar._power_period_soa), ("_work_kernel", tier2_ar._power_work),
                     ("_unit_kernel", tier2_ar._unit_divisors), ("_sums3_kernel", tier2_ar._pairwise_sums3)):
        monkeypatch.setattr(tier2_ar, name, fn)   # plain Python even after numba compiled them
    model = RlsAr(3, order=order, intercept=intercept, backend="numba")
    model.update(np.ones(3))
    assert calls == ["m5" if uses_m5 else "general"]
    calls.clear()
    hp = HostPowerPredictor(model, np.ones(3), 100.0, 200.0, 1.0)
    hp.start(np.zeros(3))
    args = [model._theta, model._p, model._lags, model._count, 0, model.forgetting, 1.0 / model._prior_w,
            model._theta0, model.intercept, model._tri, model._p0_packed, np.full(3, 150.0), np.zeros(3),
            hp._prev_j, 1.0, hp.n_hosts, hp.lo_w, hp.hi_w, np.zeros(3, dtype=bool), np.zeros(3), np.zeros(3),
            False, np.zeros(3)]
    assert tier2_ar._power_tick_soa(*args) == -1
    assert calls == ["m5" if uses_m5 else "general"]


def test_backend_choice_fallback_and_errors(monkeypatch):
    assert RlsAr(2, backend="numpy").backend == "numpy"
    assert RlsAr(2).backend == ("numpy" if NO_NUMBA else "numba")
    with pytest.raises(ValueError, match="backend='cuda'"):
        RlsAr(2, backend="cuda")

    def no_numba():
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(tier2_ar, "_numba_kernels", no_numba)   # as if numba were missing
    monkeypatch.setattr(tier2_ar, "_aot", lambda: None)         # (and no AOT build: twin.aot)
    assert RlsAr(2, backend="auto").backend == "numpy"              # silently
    with pytest.raises(ImportError, match="pip install numba"):
        RlsAr(2, backend="numba")


# ------------------------------------------------------------------ rebalance_caps


def test_rebalance_worked_example():
    # 600 W over demands 100/200/300 W, limits 150-300 W: proportional (α = 1) puts
    # GPU 0 at 100 < 150, so it sits at 150; the other two share 450 W in ratio 2:3
    # (α = 450/500 = 0.9): 180 and 270 W. Sum 600 W.
    np.testing.assert_allclose(rebalance_caps(600.0, [100.0, 200.0, 300.0], 150.0, 300.0),
                               [150.0, 180.0, 270.0], rtol=1e-12)


def test_rebalance_saturates_equal_shares_and_negative_demand():
    # envelope above Σmax: everyone at max, sum 900 <= 1000
    np.testing.assert_array_equal(rebalance_caps(1000.0, [100.0, 200.0, 300.0], 150.0, 300.0), 300.0)
    # demand is floored at the minimum cap: no predicted demand gives equal shares,
    # 700/3 W each
    np.testing.assert_allclose(rebalance_caps(700.0, [0.0, 0.0, 0.0], 150.0, 300.0), 700 / 3, rtol=1e-12)
    # a negative prediction weighs as 150 W: weights 150:250:260 (sum 660) share 700 W,
    # α = 700/660 = 1.0606 -> 159.1, 265.2, 275.8 W, all within 150-300 W
    caps = rebalance_caps(700.0, [-5.0, 250.0, 260.0], 150.0, 300.0)
    np.testing.assert_allclose(caps, np.array([150.0, 250.0, 260.0]) * 700 / 660, rtol=1e-12)
    # with zero minimum caps and zero demand a GPU gets nothing; the others fill up
    np.testing.assert_allclose(rebalance_caps(300.0, [0.0, 100.0, 300.0], 0.0, 400.0), [0.0, 75.0, 225.0])


def test_rebalance_random_hosts_respect_limits_envelope_and_proportionality():
    rng = np.random.default_rng(9)
    hosts, gpus = 980, 8
    lo = rng.uniform(50.0, 150.0, (hosts, gpus))
    hi = lo + rng.uniform(0.0, 300.0, (hosts, gpus))
    demand = rng.uniform(0.0, 400.0, (hosts, gpus))
    demand[::7, 0] = 0.0
    env = rng.uniform(lo.sum(1), hi.sum(1) * 1.2)
    caps = rebalance_caps(env, demand, lo, hi)
    assert np.all(caps >= lo) and np.all(caps <= hi)
    assert np.all(caps.sum(1) <= env)                                  # never above, not even by 1 ulp
    # the envelope is used in full unless every GPU is at its max (rounding: 1e-9 relative)
    np.testing.assert_allclose(caps.sum(1), np.minimum(env, hi.sum(1)), rtol=1e-9)
    # GPUs strictly inside their limits all get the same cap per watt of weight, the
    # weight being the demand floored at the minimum cap (relative spread <= 1e-9)
    free = (caps > lo + 1e-9) & (caps < hi - 1e-9)
    ratio = caps / np.maximum(demand, lo)
    r_max = np.where(free, ratio, -np.inf).max(1)
    r_min = np.where(free, ratio, np.inf).min(1)
    some = free.any(1)
    assert some.sum() >= 490  # 712 of 980 hosts with this seed; the rest saturate
    assert np.all(r_max[some] - r_min[some] <= 1e-9 * r_max[some])


@pytest.mark.parametrize("args, match", [
    ((299.0, [1.0, 1.0], 150.0, 300.0), "below the sum"),
    ((600.0, [1.0, 1.0], 200.0, 150.0), "min_w <= max_w"),
    ((600.0, [1.0, np.nan], 150.0, 300.0), "predicted_w"),
    ((np.inf, [1.0, 1.0], 150.0, 300.0), "envelope_w"),
])
def test_rebalance_rejects_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        rebalance_caps(*args)


# ------------------------------------------------------------------ the engine's period


def _glue_period(model, prev_j, gpu_j, host_j, period_s, n_hosts, lo_w, hi_w, reset, last):
    """One Tier-2 period written out with numpy around RlsAr.update/predict (what the engine
    did before HostPowerPredictor): returns (prev_j, (mean_w, pred_w), sums or None)."""
    e = gpu_j + host_j
    y = (e - prev_j) / period_s / n_hosts
    sums = None
    if last is not None:
        sums = (float(np.abs(last[1] - y).sum()), float(np.abs(last[0] - y).sum()), float(y.sum()))
    if reset.any():
        model.reset(reset)
    model.update(y / hi_w)
    return e, (y, np.clip(model.predict() * hi_w, lo_w, hi_w)), sums


@pytest.mark.parametrize("n, model", [(3, {}), (37, {}), (980, {}), (37, {"order": 3}),
                                        (37, {"intercept": False})])
def test_host_power_predictor_equals_the_numpy_glue_bit_for_bit(backend, n, model):
    # HostPowerPredictor (one compiled call per period with numba) against the same period
    # written out with numpy around an RlsAr of the same backend: identical to the last bit
    # (the kernel runs the same operations in the same order, its sums are numpy's pairwise
    # summation), with resets every 13 periods and hosts of two sizes; the default model
    # (numba: the one-pass kernel, its prediction against RlsAr.predict's) and two others.
    rng = np.random.default_rng(5)
    n_hosts = np.where(np.arange(n) % 3 == 0, 100.0, 1.0)
    hi_w = 2000.0 + 10.0 * np.arange(n) % 7
    lo_w = 0.3 * hi_w
    fast = HostPowerPredictor(RlsAr(n, backend=backend, **model), n_hosts, lo_w, hi_w, 1.0)
    ref = RlsAr(n, backend=backend, **model)
    gpu_j, host_j = rng.uniform(0, 1e3, n), rng.uniform(0, 1e3, n)
    fast.start(gpu_j + host_j)
    prev, last = gpu_j + host_j, None
    reset = np.zeros(n, dtype=bool)
    for k in range(300):
        level = lo_w + (hi_w - lo_w) * (0.5 + 0.4 * np.sin(k / 17.0 + np.arange(n)))
        gpu_j = gpu_j + n_hosts * (0.8 * level + rng.normal(0, 20, n))
        host_j = host_j + n_hosts * 0.2 * level
        mask = rng.random(n) < 0.05 if k % 13 == 6 else np.zeros(n, dtype=bool)
        reset |= mask
        sums = fast.step(gpu_j, host_j, reset, score=k > 2)
        assert not reset.any()
        prev, now, ref_sums = _glue_period(ref, prev, gpu_j, host_j, 1.0, n_hosts, lo_w, hi_w, mask,
                                           last if k > 2 else None)
        last = now
        np.testing.assert_array_equal(fast.mean_w, now[0])
        np.testing.assert_array_equal(fast.pred_w, now[1])
        assert sums == ref_sums
    np.testing.assert_array_equal(fast.model.coef, ref.coef)


@pytest.mark.parametrize("n", [1, 37, 980])
def test_host_power_predictor_fed_in_place_equals_the_numpy_glue(backend, n):
    # the engine's pattern: the same energy and reset arrays every period, accumulated in
    # place (with numba the compiled overload is then called without the dispatcher), with
    # a period fed fresh arrays in between (back through the dispatcher), a reset mask,
    # a non-finite sample refused, and start() re-anchoring the energy counters: every
    # period identical, to the last bit, to the numpy glue around an RlsAr of the same backend
    rng = np.random.default_rng(11)
    n_hosts = np.where(np.arange(n) % 4 == 1, 20.0, 1.0)
    hi_w = 1800.0 + 50.0 * (np.arange(n) % 5)
    lo_w = 0.25 * hi_w
    fast = HostPowerPredictor(RlsAr(n, backend=backend), n_hosts, lo_w, hi_w, 1.0)
    ref = RlsAr(n, backend=backend)
    gpu_j, host_j = np.zeros(n), rng.uniform(0, 1e3, n)
    reset = np.zeros(n, dtype=bool)
    fast.start(gpu_j + host_j)
    prev, last = gpu_j + host_j, None
    for k in range(120):
        level = lo_w + (hi_w - lo_w) * (0.5 + 0.45 * np.sin(k / 11.0 + np.arange(n)))
        gpu_j += n_hosts * (0.8 * level + rng.normal(0, 15, n))
        host_j += n_hosts * 0.2 * level
        mask = rng.random(n) < 0.1 if k % 9 == 4 else np.zeros(n, dtype=bool)
        reset |= mask
        g, h = (gpu_j.copy(), host_j.copy()) if k == 50 else (gpu_j, host_j)   # fresh arrays once
        if k == 80 and backend == "numba":   # a non-finite sample: refused, the model unchanged
            bad_g = gpu_j.copy()
            bad_g[-1] = np.nan
            state = (fast.model.coef, fast.pred_w.copy(), fast._prev_j.copy())
            with pytest.raises(ValueError, match="not finite"):
                fast.step(bad_g, h, reset, True)
            np.testing.assert_array_equal(fast.model.coef, state[0])
            np.testing.assert_array_equal(fast.pred_w, state[1])
            fast._prev_j[:] = state[2]   # the refused period has moved the counters: put them back
        if k == 90:   # the model's arrays replaced (not in place): the cached arguments are not used
            fast.model._theta = fast.model._theta.copy()
            fast.model._p = fast.model._p.copy()
        if k == 100:  # re-anchor the counters mid-run (numba: the cached arguments follow)
            fast.start(g + h)
            prev, last = g + h, None
            continue
        sums = fast.step(g, h, reset, score=k > 2 and last is not None)
        assert not reset.any()
        prev, now, ref_sums = _glue_period(ref, prev, g, h, 1.0, n_hosts, lo_w, hi_w, mask,
                                           last if k > 2 else None)
        last = now
        np.testing.assert_array_equal(fast.mean_w, now[0])
        np.testing.assert_array_equal(fast.pred_w, now[1])
        assert sums == ref_sums
    np.testing.assert_array_equal(fast.model.coef, ref.coef)
    if backend == "numba":   # the last periods ran the kept overload, fed the in-place arrays
        assert fast._call is not None and fast._fed[0] is gpu_j and fast._fed[2] is reset


@needs_numba
def test_host_power_predictor_backends_agree():
    # the compiled period against the numpy one: as RlsAr's backends (rounding amplified by
    # the conditioning of P, test_numba_backend_agrees_with_numpy): 1e-9 relative
    rng = np.random.default_rng(8)
    n = 50
    hi_w = np.full(n, 2400.0)
    a, b = (HostPowerPredictor(RlsAr(n, backend=be), np.ones(n), 600.0, hi_w, 1.0) for be in ("numpy", "numba"))
    e = np.zeros(n)
    a.start(e)
    b.start(e)
    reset = [np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)]
    for k in range(500):
        e = e + 1500.0 + 400.0 * np.sin(k / 9.0 + np.arange(n)) + rng.normal(0, 30, n)
        if k % 50 == 10:
            mask = rng.random(n) < 0.2
            reset[0] |= mask
            reset[1] |= mask
        sa, sb = a.step(e, np.zeros(n), reset[0], True), b.step(e, np.zeros(n), reset[1], True)
        np.testing.assert_allclose(b.pred_w, a.pred_w, rtol=1e-9)
        np.testing.assert_array_equal(b.mean_w, a.mean_w)
        if k:
            np.testing.assert_allclose(sb, sa, rtol=1e-9)


def test_pairwise_sum_is_numpys_add_reduce():
    # the kernels' sum (plain Python here) against np.add.reduce, bit for bit, on lengths
    # around every branch of numpy's pairwise summation (< 8, <= 128, halves at multiples of 8)
    rng = np.random.default_rng(3)
    for n in [0, 1, 7, 8, 9, 127, 128, 129, 135, 136, 257, 980, 1031, 5400]:
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 6, n)
        assert tier2_ar._pairwise_sum(a) == np.add.reduce(a)


def _sums3_cases():
    rng = np.random.default_rng(4)
    for n in [0, 1, 7, 8, 9, 127, 128, 129, 135, 136, 257, 980, 1031, 5400]:
        y, p, m = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 6, n) for _ in range(3))
        yield y, p, m
        if n > 9:   # edge values: signed zeros, infinities, NaN (once in one of the three)
            y, p, m = y.copy(), p.copy(), m.copy()
            y[:3], p[:3], m[:3] = -0.0, 0.0, -0.0
            y[n // 2], m[n - 1], p[n // 3] = np.inf, np.nan, -np.inf
            yield y, p, m


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
def test_fused_scoring_sums_are_numpys(compiled):
    # the three scoring sums in one pass (_pairwise_sums3) against np.add.reduce of the numpy
    # path's vectors, bit for bit, on every branch of the pairwise summation and edge values
    kernel = tier2_ar._numba_kernels() and tier2_ar._sums3_kernel if compiled else tier2_ar._pairwise_sums3
    st, left, sums = np.empty((3, 64), dtype=np.int64), np.empty((3, 64)), np.empty(3)
    for y, p, m in _sums3_cases():
        kernel(y, p, m, st, left, sums)
        want = [np.add.reduce(np.absolute(np.subtract(p, y))), np.add.reduce(np.absolute(np.subtract(m, y))),
                np.add.reduce(y)]
        _assert_same_bits(sums, np.array(want))


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_numba)])
@pytest.mark.parametrize("period_s, n_hosts", [(1.0, 1.0), (1.0, 4.0), (1.0, "mixed"), (2.0, 1.0), (0.5, "mixed")])
def test_period_without_unit_divisions_equals_numpy_formula(compiled, period_s, n_hosts):
    # _power_period_soa leaves out the divisions by exactly 1.0 (_unit_divisors): y, y / hi_w
    # and the energy bookkeeping equal the numpy path's ((E - E_prev) / period) / n_hosts bit for bit
    n = 23
    rng = np.random.default_rng(5)
    nh = rng.choice([1.0, 2.0, 3.0], n) if n_hosts == "mixed" else np.full(n, n_hosts)
    unit = tier2_ar._unit_divisors(period_s, nh)
    assert unit == (0 if period_s != 1.0 else 2 if np.all(nh == 1.0) else 1)
    if compiled:
        tier2_ar._numba_kernels()
        assert tier2_ar._unit_kernel(period_s, nh) == unit
    period = tier2_ar._period_kernel if compiled else tier2_ar._power_period_soa
    iu = np.triu_indices(5)       # a fresh default model in the series-last layout
    tri = np.zeros((5, 5), dtype=np.int64)
    tri[iu] = tri.T[iu] = np.arange(15)
    theta, lags = np.zeros((5, n)), np.full((4, n), np.nan)
    pk = np.repeat((DELTA * np.eye(5))[iu][:, None], n, axis=1)
    count, p0 = np.zeros(n, dtype=np.int64), (DELTA * np.eye(5))[iu]
    hi, lo = rng.uniform(200.0, 900.0, n) * nh, np.full(n, 10.0)
    prev = rng.uniform(0.0, 1e6, n)
    prev[:2] = 0.0
    gpu, host = prev + rng.uniform(0.0, 500.0, n) * period_s * nh, rng.uniform(0.0, 1e3, n)
    gpu[0], host[0] = -0.0, -0.0                  # E - E_prev = -0.0: the sign kept
    gpu[1], host[1] = 0.0, 0.0
    want_y = np.true_divide(np.true_divide(np.subtract(np.add(gpu, host), prev), period_s), nh)
    prev_k, mean_w, pred_w, sums = prev.copy(), np.zeros(n), np.zeros(n), np.zeros(3)
    work, st, left = tier2_ar._power_work(n)
    bad = period(theta, pk, lags, count, 0, FORGETTING_60S, 1.0, np.zeros(5), True, tri, p0, gpu, host, prev_k,
                 period_s, nh, lo, hi, np.zeros(n, dtype=bool), mean_w, pred_w, True, sums, unit, work, st, left)
    assert bad == -1
    _assert_same_bits(mean_w, want_y)
    _assert_same_bits(work[1], np.true_divide(want_y, hi))
    _assert_same_bits(prev_k, np.add(gpu, host))
    assert np.signbit(mean_w[0]) and not np.signbit(mean_w[1])


def test_host_power_predictor_rejects_bad_limits():
    with pytest.raises(ValueError, match="lo_w <= hi_w"):
        HostPowerPredictor(RlsAr(2, backend="numpy"), np.ones(2), 3.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="period_s"):
        HostPowerPredictor(RlsAr(2, backend="numpy"), np.ones(2), 1.0, 2.0, 0.0)
