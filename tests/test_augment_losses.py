"""DiffAugment and the losses on numbers, against NumPy written from
docs/design.md section 4."""

import numpy as np
import tensorflow as tf

from digan_tf.training import augment
from digan_tf.training import iteration_inputs
from digan_tf.training import losses

RNG = np.random.default_rng(0)


def _reference_augment(frames, params):
    """design.md section 4, one pair at a time, in NumPy float64."""
    out = np.zeros_like(frames, np.float64)
    size = frames.shape[2]
    for b, pair in enumerate(frames.astype(np.float64)):
        x = pair + (params.brightness[b] - 0.5)
        mean = x.mean(axis=-1, keepdims=True)
        x = (x - mean) * (2 * params.saturation[b]) + mean
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * (params.contrast[b] + 0.5) + mean
        sr, sc = params.shift_rows[b], params.shift_cols[b]
        for i in range(size):
            for j in range(size):
                if 0 <= i + sr < size and 0 <= j + sc < size:
                    out[b, :, i, j] = x[:, i + sr, j + sc]
    return out


def test_diff_augment_matches_the_formulas():
    frames = RNG.uniform(-1, 1, (4, 2, 16, 16, 3)).astype(np.float32)
    params = augment.AugmentParams(
        brightness=np.array([0.1, 0.9, 0.5, 0.0], np.float32),
        saturation=np.array([0.0, 0.3, 0.99, 0.5], np.float32),
        contrast=np.array([0.2, 0.8, 0.5, 0.0], np.float32),
        shift_rows=np.array([2, -2, 0, 1], np.int32),
        shift_cols=np.array([-1, 2, 0, -2], np.int32))
    ours = augment.diff_augment(tf.constant(frames), params).numpy()
    np.testing.assert_allclose(ours, _reference_augment(frames, params),
                               atol=2e-6, rtol=0)


def test_draws_are_per_pair_within_bounds_and_slice_the_global_batch():
    seed = tf.constant([3, 4], tf.int64)
    whole = augment.draw_params(seed, 32, 32, 0, 8, 8)
    part = augment.draw_params(seed, 32, 32, 4, 4, 8)
    for field in augment.AugmentParams._fields:
        np.testing.assert_array_equal(getattr(part, field).numpy(),
                                      getattr(whole, field).numpy()[4:])
    big = augment.draw_params(seed, 32, 32, 0, 4000, 4000)
    assert augment.max_shift(32) == 4  # int(32 / 8 + 0.5)
    for field in ("shift_rows", "shift_cols"):
        values = getattr(big, field).numpy()
        assert set(np.unique(values)) == set(range(-4, 5))
    for field in ("brightness", "saturation", "contrast"):
        values = getattr(big, field).numpy()
        assert 0 <= values.min() and values.max() < 1


def _softplus(x):
    return np.log1p(np.exp(x))


def test_losses_match_the_formulas():
    motion = RNG.normal(0, 2, (5, 1)).astype(np.float32)
    image = RNG.normal(0, 2, (5, 2, 1)).astype(np.float32)
    m, i = motion[:, 0].astype(np.float64), image[..., 0].astype(np.float64)
    cases = [
        (losses.generator_loss, _softplus(-m) + _softplus(-i).mean(1)),
        (losses.discriminator_fake_loss,
         _softplus(m) + _softplus(i).mean(1)),
        (losses.discriminator_real_loss,
         _softplus(-m) + _softplus(-i).mean(1)),
    ]
    for loss, expected in cases:
        np.testing.assert_allclose(loss(motion, image).numpy(), expected,
                                   rtol=1e-6, err_msg=loss.__name__)


def test_r1_penalty_sums_squares_and_averages_frames():
    motion = RNG.normal(0, 1, (3, 8, 8, 7)).astype(np.float32)
    image = RNG.normal(0, 1, (3, 2, 8, 8, 3)).astype(np.float32)
    expected = (np.square(motion.astype(np.float64)).sum(axis=(1, 2, 3))
                + np.square(image.astype(np.float64)).sum(axis=(2, 3, 4))
                .mean(axis=1))
    np.testing.assert_allclose(losses.r1_penalty(motion, image).numpy(),
                               expected, rtol=1e-5)


def test_pairs_share_their_draws():
    """Both frames of a pair move together: equal frames stay equal."""
    frame = RNG.uniform(-1, 1, (3, 1, 8, 8, 3)).astype(np.float32)
    frames = np.concatenate([frame, frame], axis=1)
    params = augment.draw_params(tf.constant([1, 2], tf.int64), 8, 8, 0, 3, 3)
    out = augment.diff_augment(tf.constant(frames), params).numpy()
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_augmentation_moves_the_frames_and_leaves_dt_alone():
    """The motion discriminator sees augmented frames beside the exact dt
    plane (translation would otherwise shift zeros into it, colour would
    rescale it); the image discriminator sees the same augmented frames."""
    frames = RNG.uniform(-1, 1, (3, 2, 8, 8, 3)).astype(np.float32)
    dt = np.array([0.1, 0.5, 0.9], np.float32)
    params = augment.draw_params(tf.constant([3, 4], tf.int64), 8, 8, 0, 3, 3)
    motion, images = iteration_inputs.pair_inputs(tf.constant(frames),
                                                  tf.constant(dt), params)
    motion, images = motion.numpy(), images.numpy()
    np.testing.assert_array_equal(motion[..., 6],
                                  np.broadcast_to(dt[:, None, None],
                                                  (3, 8, 8)))
    augmented = augment.diff_augment(tf.constant(frames), params).numpy()
    assert np.abs(augmented - frames).mean() > 0.05
    np.testing.assert_array_equal(motion[..., :3], augmented[:, 0])
    np.testing.assert_array_equal(motion[..., 3:6], augmented[:, 1])
    np.testing.assert_array_equal(images.reshape(3, 2, 8, 8, 3), augmented)
