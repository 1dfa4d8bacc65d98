import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from tests import testing


def _images(batch, channels, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 32, 32, channels)).astype(np.float32)


def test_shapes():
    image_d = digan_tf.ImageDiscriminator(**testing.TINY_DISCRIMINATOR)
    motion_d = digan_tf.MotionDiscriminator(**testing.TINY_DISCRIMINATOR)
    assert image_d(_images(4, 3)).shape == (4, 1)
    assert motion_d(_images(4, 7)).shape == (4, 1)
    assert image_d.input_channels == 3 and motion_d.input_channels == 7


def test_dt_plane_changes_the_motion_logit():
    motion_d = digan_tf.MotionDiscriminator(**testing.TINY_DISCRIMINATOR)
    x = _images(4, 7)
    x[..., 6] = 0.1
    near = motion_d(x).numpy()
    x[..., 6] = 0.9
    far = motion_d(x).numpy()
    assert np.abs(near - far).min() > 1e-4


def test_label_changes_a_conditional_logit():
    image_d = digan_tf.ImageDiscriminator(
        num_classes=5, **testing.TINY_DISCRIMINATOR
    )
    x = _images(4, 3)
    a = image_d(x, labels=np.array([0, 1, 2, 3])).numpy()
    b = image_d(x, labels=np.array([4, 4, 4, 4])).numpy()
    assert np.abs(a - b).min() > 1e-5
    assert image_d.mapping is not None and len(image_d.mapping.dense_layers) == 8
    with pytest.raises(ValueError, match="labels"):
        image_d(x)


def test_minibatch_std_groups_are_strided():
    # Batch 8, group 4: sample n is in group n mod 2, so changing sample 0
    # moves the logits of samples 2, 4, 6 and leaves 1, 3, 5, 7 alone.
    image_d = digan_tf.ImageDiscriminator(**testing.TINY_DISCRIMINATOR)
    x = _images(8, 3)
    before = image_d(x).numpy()[:, 0]
    x[0] += 1.0
    after = image_d(x).numpy()[:, 0]
    changed = np.abs(after - before) > 1e-6
    assert changed.tolist() == [True, False, True, False,
                                True, False, True, False]


def test_bad_inputs_name_the_argument():
    image_d = digan_tf.ImageDiscriminator(**testing.TINY_DISCRIMINATOR)
    with pytest.raises(ValueError, match=r"images.*\[\?, 32, 32, 3\].*7"):
        image_d(_images(4, 7))
    with pytest.raises(ValueError, match="images.*float.*int32"):
        image_d(np.zeros((4, 32, 32, 3), np.int32))
    with pytest.raises(ValueError, match=r"batch size \(6\).*divisible.*4"):
        image_d(_images(6, 3))
    conditional = digan_tf.ImageDiscriminator(
        num_classes=3, **testing.TINY_DISCRIMINATOR
    )
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\].*3"):
        conditional(_images(4, 3), labels=np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="resolution.*power of two.*12"):
        digan_tf.MotionDiscriminator(resolution=12)
    with pytest.raises(ValueError, match="num_classes.*-2"):
        digan_tf.ImageDiscriminator(num_classes=-2)


def test_eager_graph_and_xla_agree():
    motion_d = digan_tf.MotionDiscriminator(num_classes=2,
                                            **testing.TINY_DISCRIMINATOR)
    x, labels = _images(4, 7), np.array([0, 1, 1, 0])
    eager = motion_d(x, labels=labels).numpy()
    graph = tf.function(motion_d)(x, labels=labels).numpy()
    xla = tf.function(motion_d, jit_compile=True)(x, labels=labels).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-5)
    np.testing.assert_allclose(xla, eager, atol=1e-4)
