"""The generator as a TensorFlow SavedModel for TF Serving.

Two signatures, both returning `video` uint8 [B, T, R, R, 3]:

- `serving_default(z_content, z_motion, timestamps[, labels]
  [, truncation_psi])`: the caller draws the latent codes;
- `generate_from_seed(seed, num_frames[, labels][, start_time]
  [, time_step][, truncation_psi])`: latent codes drawn with stateless
  random ops from one int64 seed per video, so a seed gives the same video
  in any process on any machine (`digan_tf.generation.latents.latents_from_seeds`).

Inputs in brackets with a default (`truncation_psi` = [1.0], `start_time`
= 0, `time_step` = the training frame spacing) are stored as
`SignatureDef.defaults`, which TF Serving fills in when a request leaves
them out; `labels` exist for conditional models only.

Frames are generated in chunks of timestamps (a `tf.map_fn` loop), so
activation memory does not grow with the number of frames, and every
request is checked inside the graph against `ServingLimits`: a request
over a limit fails with INVALID_ARGUMENT and a message that states it.
"""

import dataclasses

import tensorflow as tf

from digan_tf.generation import latents
from digan_tf.utils import validation


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """What one request may ask for.

    Attributes:
        max_batch: videos per request.
        max_frames: frames per video.
        max_pixels: output pixels per request, videos x frames x R x R
            (the uint8 response holds 3 bytes per pixel).
        frames_per_chunk: frames generated at once per video; activation
            memory is about max_batch x frames_per_chunk x R x R x 4 x the
            widest layer's channels, whatever the video length.
    """

    max_batch: int = 16
    max_frames: int = 4096
    max_pixels: int = 2 ** 25
    frames_per_chunk: int = 16

    def __post_init__(self):
        for field in dataclasses.fields(self):
            validation.check_int(field.name, getattr(self, field.name),
                                 1)


def frames_to_uint8(frames):
    """In-graph twin of `video_writer.to_uint8` (same rounding: half to
    even), so in-process and served videos are equal."""
    return tf.cast(tf.clip_by_value(tf.round((frames + 1.0) * 127.5), 0.0,
                                    255.0), tf.uint8)


def _between_one_and(count, maximum, what, limit):
    """Assertions that 1 <= `count` <= `maximum` (`what`: "videos")."""
    return [tf.debugging.assert_positive(
                count, message=f"too few {what}: at least 1"),
            tf.debugging.assert_less_equal(
                count, maximum, message=f"too many {what}: {limit}")]


class GeneratorSignatures(tf.Module):
    """Tracks a `Generator` and defines the serving functions on it.

    `signatures()` gives what `tf.saved_model.save` needs; `video(...)` is
    the same computation for in-process use (`bin/generate`).

    Args:
        generator: a `digan_tf.Generator` (its EMA weights, for a run).
        limits: `ServingLimits`.
        jit_compile: compile each chunk with XLA.
    """

    def __init__(self, generator, limits=ServingLimits(), jit_compile=False):
        super().__init__(name="digan_generator")
        # Track the tf.Variables behind the Keras variables, not the Keras
        # model: a Keras variable saves a copy of itself, which TF1 session
        # loaders (TF Serving's) restore while the functions read the
        # original, left uninitialized.
        object.__setattr__(self, "generator", generator)
        self.generator_variables = [v.value for v in generator.weights]
        self.limits = limits
        self._chunk = tf.function(self._render_chunk, jit_compile=jit_compile,
                                  reduce_retracing=True)
        g = generator
        latent = [tf.TensorSpec([None, g.z_dim], tf.float32, "z_content"),
                  tf.TensorSpec([None, g.motion_dim], tf.float32, "z_motion"),
                  tf.TensorSpec([None, None], tf.float32, "timestamps")]
        seeded = [tf.TensorSpec([None], tf.int64, "seed"),
                  tf.TensorSpec([], tf.int32, "num_frames")]
        labels = [tf.TensorSpec([None], tf.int64, "labels")]
        options = [tf.TensorSpec([], tf.float32, "start_time"),
                   tf.TensorSpec([], tf.float32, "time_step"),
                   tf.TensorSpec([None], tf.float32, "truncation_psi")]
        one = tf.constant([1.0])
        start, step = tf.constant(0.0), tf.constant(g.time_step, tf.float32)
        if g.num_classes:
            def from_latents(z_content, z_motion, timestamps, labels,
                             truncation_psi=one):
                return self.video(z_content, z_motion, timestamps, labels,
                                  truncation_psi)

            def from_seed(seed, num_frames, labels, start_time=start,
                          time_step=step, truncation_psi=one):
                return self._video_from_seed(seed, num_frames, labels,
                                             start_time, time_step,
                                             truncation_psi)
        else:
            labels = []

            def from_latents(z_content, z_motion, timestamps,
                             truncation_psi=one):
                return self.video(z_content, z_motion, timestamps, None,
                                  truncation_psi)

            def from_seed(seed, num_frames, start_time=start, time_step=step,
                          truncation_psi=one):
                return self._video_from_seed(seed, num_frames, None,
                                             start_time, time_step,
                                             truncation_psi)
        self.serving_default = tf.function(
            from_latents, input_signature=latent + labels + options[2:])
        self.generate_from_seed = tf.function(
            from_seed, input_signature=seeded + labels + options)

    def signatures(self):
        """{signature key: tf.function}, `serving_default` first. (Passing
        the tf.functions, not concrete functions, is what stores the
        Python default values as `SignatureDef.defaults`.)"""
        return {"serving_default": self.serving_default,
                "generate_from_seed": self.generate_from_seed}

    def video(self, z_content, z_motion, timestamps, labels=None,
              truncation_psi=None):
        """{"video": uint8 [B, T, R, R, 3]} after the request checks."""
        if truncation_psi is None:
            truncation_psi = tf.ones([1])
        batch = tf.shape(z_content)[0]
        frames = tf.shape(timestamps)[1]
        resolution = self.generator.resolution
        checks = self._check_request(batch, frames, resolution, z_motion,
                                     timestamps, labels, truncation_psi)
        with tf.control_dependencies(checks):
            # Balanced chunks: n = ceil(T / max) of equal size, so padding
            # wastes less than one frame per chunk.
            limit = self.limits.frames_per_chunk
            count = (frames + limit - 1) // limit
            size = (frames + count - 1) // count
            padded = tf.pad(timestamps, [[0, 0], [0, count * size - frames]])
            chunks = tf.transpose(tf.reshape(padded, [batch, count, size]),
                                  [1, 0, 2])
        rendered = tf.map_fn(
            lambda t: self._chunk(z_content, z_motion, t, labels,
                                  truncation_psi),
            chunks, parallel_iterations=1,
            fn_output_signature=tf.TensorSpec(
                [None, None, resolution, resolution, 3], tf.uint8))
        video = tf.reshape(tf.transpose(rendered, [1, 0, 2, 3, 4, 5]),
                           [batch, count * size, resolution, resolution, 3])
        return {"video": video[:, :frames]}

    def _render_chunk(self, z_content, z_motion, timestamps, labels,
                      truncation_psi):
        return frames_to_uint8(self.generator(
            z_content, z_motion, timestamps, labels=labels,
            truncation_psi=truncation_psi))

    def _video_from_seed(self, seed, num_frames, labels, start_time,
                         time_step, truncation_psi):
        check = tf.debugging.assert_positive(
            num_frames, message="num_frames must be >= 1")
        with tf.control_dependencies([check]):
            times = start_time + time_step * tf.cast(tf.range(num_frames),
                                                     tf.float32)
        z_content, z_motion = latents.latents_from_seeds(
            seed, self.generator.z_dim, self.generator.motion_dim)
        timestamps = tf.tile(times[None], [tf.shape(seed)[0], 1])
        return self.video(z_content, z_motion, timestamps, labels,
                          truncation_psi)

    def _check_request(self, batch, frames, resolution, z_motion, timestamps,
                       labels, truncation_psi):
        """Assertions that fail the request with INVALID_ARGUMENT."""
        limits = self.limits
        pixels = (tf.cast(batch, tf.int64) * tf.cast(frames, tf.int64)
                  * resolution * resolution)
        checks = [
            *_between_one_and(batch, limits.max_batch, "videos", (
                f"at most {limits.max_batch} per request "
                "(ServingLimits.max_batch)")),
            *_between_one_and(frames, limits.max_frames, "frames", (
                f"at most {limits.max_frames} per video "
                "(ServingLimits.max_frames)")),
            tf.debugging.assert_less_equal(
                pixels, tf.constant(limits.max_pixels, tf.int64), message=(
                    f"too many pixels: videos x frames x {resolution} x "
                    f"{resolution} must be at most {limits.max_pixels} "
                    "(ServingLimits.max_pixels)")),
            tf.debugging.assert_equal(
                tf.shape(z_motion)[0], batch,
                message="z_motion must have one row per z_content row"),
            tf.debugging.assert_equal(
                tf.shape(timestamps)[0], batch,
                message="timestamps must have one row per video"),
            tf.debugging.assert_equal(
                tf.reduce_any(tf.equal(tf.size(truncation_psi),
                                       tf.stack([1, batch]))), True,
                message="truncation_psi must hold 1 value or one per video"),
        ]
        if labels is not None:
            classes = self.generator.num_classes
            checks += [
                tf.debugging.assert_equal(
                    tf.shape(labels)[0], batch,
                    message="labels must hold one class per video"),
                tf.debugging.assert_non_negative(
                    labels, message=f"labels must be in [0, {classes})"),
                tf.debugging.assert_less(
                    labels, tf.constant(classes, tf.int64),
                    message=f"labels must be in [0, {classes})"),
            ]
        return checks
