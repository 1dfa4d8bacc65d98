"""Two batches through one discriminator call, with the same minibatch-std
groups as two separate calls.

The authors' D step runs each discriminator on the generated and on the
real pairs in two calls. One call on both halves gives the same logits and
gradients with half the ops, each on twice the rows, which small layers
(16x16 and below) run faster. The only op that mixes samples is the
minibatch std (`discriminator_epilogue.minibatch_stddev`): with G groups,
sample n of a batch of N is in group n mod (N / G). `join` orders the two
halves so that the joint batch's groups are each half's own groups, side
by side: half a's sample g * (N / G) + m lands at g * (2N / G) + m, half
b's at g * (2N / G) + N / G + m.
"""

import tensorflow as tf


def group_count(batch, group_size, std_channels):
    """Minibatch-std groups of one half of `batch` samples, if the joint
    batch of 2 * `batch` has the same count (the std layer takes
    min(group_size, batch)); None when it would not, or `batch` is not
    static. Without std channels the halves never mix: one group."""
    if not std_channels:
        return 1
    if batch is None or batch < group_size:
        return None
    return group_size


def join(a, b, groups):
    """[2N, ...] from `a` and `b` [N, ...], interleaved by `groups`, in
    `a`'s dtype (the discriminator casts either to its own)."""
    shape = tf.shape(a)
    grouped = tf.concat([[groups, -1], shape[1:]], axis=0)
    joint = tf.concat([tf.reshape(a, grouped),
                       tf.reshape(tf.cast(b, a.dtype), grouped)], axis=1)
    return tf.reshape(joint, tf.concat([[-1], shape[1:]], axis=0))


def split(joint, groups):
    """(a, b): the inverse of `join`."""
    shape = tf.shape(joint)
    halves = tf.reshape(joint, tf.concat([[groups, 2, -1], shape[1:]],
                                         axis=0))
    half_shape = tf.concat([[-1], shape[1:]], axis=0)
    return (tf.reshape(halves[:, 0], half_shape),
            tf.reshape(halves[:, 1], half_shape))
