"""One discriminator call on generated and real samples (the D step's
`DIGAN._discriminate_both`) against the authors' two calls."""

import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from digan_tf.training import joint_batch
from tests import testing


def test_join_places_each_half_in_its_own_groups():
    a = tf.range(8) * 10
    b = tf.range(8) * 10 + 1
    joint = joint_batch.join(a, b, 4).numpy()
    # Groups of a batch of 16 with G = 4: n mod 4. a's groups (n mod 2)
    # must be groups 0 and 1, b's groups 2 and 3.
    for group in range(4):
        members = joint[group::4]
        half, index = (a, group) if group < 2 else (b, group - 2)
        assert members.tolist() == half.numpy()[index::2].tolist()
    back = joint_batch.split(tf.constant(joint), 4)
    assert [x.numpy().tolist() for x in back] == [a.numpy().tolist(),
                                                  b.numpy().tolist()]


def _both_ways(discriminator, batch, labels=None):
    """Logits and weight gradients of one joint call and of two calls."""
    rng = np.random.default_rng(batch)
    shape = (batch, 32, 32, discriminator.input_channels)
    fake = tf.constant(rng.standard_normal(shape), tf.float32)
    real = tf.constant(rng.standard_normal(shape), tf.float32)
    fake_labels = real_labels = None
    if labels:
        fake_labels = tf.constant(rng.integers(0, labels, batch))
        real_labels = tf.constant(rng.integers(0, labels, batch))
    results = []
    for call in (digan_tf.DIGAN._discriminate_both,
                 lambda d, f, r, fl, rl: (d(f, labels=fl), d(r, labels=rl))):
        with tf.GradientTape() as tape:
            fake_logits, real_logits = call(discriminator, fake, real,
                                            fake_labels, real_labels)
            # Different weights per sample and half, as a loss has.
            loss = (tf.reduce_sum(tf.sin(3.0 * fake_logits))
                    + tf.reduce_sum(tf.cos(2.0 * real_logits)))
        results.append((fake_logits.numpy(), real_logits.numpy(),
                        tape.gradient(loss, discriminator.trainable_variables)))
    return results


@pytest.mark.parametrize("batch", [8, 2])
def test_one_call_gives_the_two_calls_logits_and_gradients(batch):
    # 8: one joint call with the groups of each half; 2 (below the group
    # size 4): two calls, since a joint batch of 4 would form one group.
    discriminator = digan_tf.ImageDiscriminator(**testing.TINY_DISCRIMINATOR)
    joint, separate = _both_ways(discriminator, batch)
    np.testing.assert_allclose(joint[0], separate[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joint[1], separate[1], rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(joint[2], separate[2]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert joint_batch.group_count(batch, 4, 1) == (4 if batch >= 4 else None)


def test_one_call_keeps_each_samples_label():
    discriminator = digan_tf.MotionDiscriminator(
        num_classes=3, **testing.TINY_DISCRIMINATOR)
    joint, separate = _both_ways(discriminator, 4, labels=3)
    np.testing.assert_allclose(joint[0], separate[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joint[1], separate[1], rtol=1e-5, atol=1e-6)
