"""tf.data pipelines over prepared shards: training frame pairs and whole
clips.

Videos are cut into non-overlapping clips of N consecutive frames, sampled
uniformly over clips as the authors do (long videos weigh more). A training
sample draws two frame indices `floor(Beta(2,1) * N)` and
`floor(Beta(1,2) * N)`, orders them and returns the two frames (the same
horizontal flip on both) and `dt = (i2 - i1) / (N - 1)` (design.md section 5).
Only the two selected JPEGs are decoded. Paths go through tf.io.gfile, so
gs:// and other TensorFlow file systems work.
"""

import tensorflow as tf

from digan_tf.data import tfrecord_format
from digan_tf.generation import latents
from digan_tf.utils import validation

AUTOTUNE = tf.data.AUTOTUNE


def _video_dataset(data_dir, clip_length, seed, input_context, shuffle):
    """Clips [N] of JPEG strings with their labels, per input pipeline."""
    files = tfrecord_format.shard_files(data_dir)
    deterministic = seed is not None or not shuffle
    dataset = tf.data.Dataset.from_tensor_slices(files)
    pipelines = input_context.num_input_pipelines if input_context else 1
    shard_records = pipelines > 1 and len(files) < pipelines
    if pipelines > 1 and not shard_records:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
        num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if shard_records:  # fewer files than workers: split records instead
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    dataset = dataset.map(tfrecord_format.parse_example,
                          num_parallel_calls=AUTOTUNE,
                          deterministic=deterministic)

    def clips(video):
        count = video["num_frames"] // clip_length
        frames = tf.reshape(video["frames"][: count * clip_length],
                            (count, clip_length))
        labels = tf.fill((count,), video["label"])
        return tf.data.Dataset.from_tensor_slices((frames, labels))

    return dataset.flat_map(clips)


def _decode(jpeg):
    return tf.io.decode_jpeg(jpeg, channels=3)


def _to_unit_range(frame):
    return tf.cast(frame, tf.float32) / 127.5 - 1.0


def sample_frame_pair(clip, seed):
    """Frame indices, `dt` and flip of one training sample from a clip of
    JPEG strings [N] and a stateless `seed` [2]."""
    clip_length = tf.shape(clip)[0]
    u = tf.random.stateless_uniform((5,), seed)
    times = latents.ordered_beta_pair(u[:4])
    n = tf.cast(clip_length, tf.float32)
    indices = tf.minimum(tf.cast(tf.floor(times * n), tf.int32),
                         clip_length - 1)
    first, second = indices[0], indices[1]
    dt = tf.cast(second - first, tf.float32) / tf.cast(clip_length - 1,
                                                       tf.float32)
    return first, second, dt, u[4] < 0.5


def frame_pair_dataset(data_dir, batch_size, clip_length=16, seed=None,
                       input_context=None, conditional=False, flip=True,
                       shuffle_buffer=512):
    """Endless batches of `(frame_1, frame_2, dt[, label])`.

    Frames are float32 [B, R, R, 3] in [-1, 1], `dt` float32 [B], labels
    int64 [B] (with `conditional`). `batch_size` is the global batch; with
    an `input_context` (from `strategy.distribute_datasets_from_function`)
    each pipeline reads its own shards and yields per-replica batches.
    A `seed` makes the order and every random draw deterministic.
    """
    batch_size = validation.check_int("batch_size", batch_size, 1)
    clip_length = validation.check_int("clip_length", clip_length, 2)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if conditional:
        tfrecord_format.check_has_labels(
            tfrecord_format.read_manifest(data_dir), data_dir)
    dataset = _video_dataset(data_dir, clip_length, seed, input_context,
                             shuffle=True)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    if input_context is not None and seed is not None:
        seeds = seeds.skip(input_context.input_pipeline_id * 1_000_003)

    def to_pair(clip_and_label, element_seed):
        clip, label = clip_and_label
        first, second, dt, flipped = sample_frame_pair(clip, element_seed)
        frames = tf.stack([_decode(clip[first]), _decode(clip[second])])
        frames = tf.cond(flipped, lambda: tf.reverse(frames, axis=[2]),
                         lambda: frames) if flip else frames
        frames = _to_unit_range(frames)
        pair = (frames[0], frames[1], dt)
        return pair + (label,) if conditional else pair

    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        to_pair, num_parallel_calls=AUTOTUNE,
        deterministic=seed is not None)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def clip_dataset(data_dir, clip_length=16, batch_size=None, seed=None,
                 shuffle=False, repeat=False, input_context=None):
    """Whole clips `(frames, label)`: uint8 [N, R, R, 3] and int64, for
    evaluation and sample grids; batched when `batch_size` is given."""
    clip_length = validation.check_int("clip_length", clip_length, 1)
    dataset = _video_dataset(data_dir, clip_length, seed, input_context,
                             shuffle=shuffle)
    if shuffle:
        dataset = dataset.shuffle(64, seed=seed)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(
        lambda clip, label: (tf.map_fn(_decode, clip,
                                       fn_output_signature=tf.uint8), label),
        num_parallel_calls=AUTOTUNE, deterministic=seed is not None or
        not shuffle)
    if batch_size:
        dataset = dataset.batch(batch_size, drop_remainder=repeat)
    return dataset.prefetch(AUTOTUNE)
