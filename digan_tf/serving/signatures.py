"""The generator as a TensorFlow SavedModel for TF Serving.

Five signatures, all returning `video` uint8 [B, T, R, R, 3]; each takes
exactly the inputs it lists, none optional, so every client and server
(TF Serving, `tf.saved_model.load`, TF1 sessions, TF's C++ loader) can call
it without filling in defaults:

- `serving_default`: `z_content` [B, z], `z_motion` [B, m], `timestamps`
  [B, T] (+ `labels` [B]);
- `generate`: the same + `truncation_psi` [1 or B];
- `generate_from_seed`: `seed` int64 [B], `num_frames` int32 [] (+ `labels`);
- `generate_from_seed_full`: the same + `start_time` [], `time_step` [],
  `truncation_psi`;
- `generate_from_style`: `w` [B, w_dim] (a style, e.g. fitted to a real
  video by `bin/project`; it already holds the class), `z_motion`,
  `timestamps`.

`labels` exist for conditional models only. The seed signatures draw the
latent codes with stateless random ops from one seed per video, so a seed
gives the same video in any process on any machine
(`digan_tf.generation.latents.latents_from_seeds`); frames are at
`start_time + i * time_step` (0 and the training spacing in the minimal
one).

R is the generator's resolution, or `view.output_size(resolution)` for an
export rendered at another `CoordinateView` (`bin/export
--resolution_scale`, `--field_of_view`).

Every request is checked inside the graph before anything of its size is
allocated, against `ServingLimits`: batch, frames and output pixels between
1 and their limits, rows that agree, labels in range, finite latents,
timestamps and truncation. A bad request fails with INVALID_ARGUMENT and a
message that says what is wrong. Frames are generated in chunks of
timestamps (a `tf.map_fn` loop), so activation memory does not grow with
the number of frames.
"""

import dataclasses
import inspect

import tensorflow as tf

from digan_tf.generation import latents
from digan_tf.layers.coordinate_view import TRAINED
from digan_tf.utils import validation

SIGNATURES = ("serving_default", "generate", "generate_from_seed",
              "generate_from_seed_full", "generate_from_style")


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


def _named(function, specs):
    """`function(*args)` with parameters named after the `specs`, so that
    the loaded model's attributes take them by keyword too."""
    signature = inspect.Signature([
        inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for spec in specs])

    def named(*args, **kwargs):
        return function(*signature.bind(*args, **kwargs).args)

    named.__signature__ = signature
    return named


class GeneratorSignatures(tf.Module):
    """Tracks a `Generator` and defines the serving functions on it.

    `signatures()` gives what `tf.saved_model.save` needs; `video(...)` is
    the same computation for in-process use (`bin/generate`).

    Args:
        generator: a `digan_tf.Generator` (its EMA weights, for a run).
        limits: `ServingLimits`; its pixel limit counts output pixels.
        jit_compile: compile each chunk with XLA.
        view: the `CoordinateView` every request renders (R becomes
            `view.output_size(generator.resolution)`): a scaled or widened
            export.
    """

    def __init__(self, generator, limits=ServingLimits(), jit_compile=False,
                 view=TRAINED):
        super().__init__(name="digan_generator")
        view.check(generator)
        self.view = view
        self.output_size = view.output_size(generator.resolution)
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
        styled = [tf.TensorSpec([None, g.w_dim], tf.float32, "w"),
                  *latent[1:]]
        seeded = [tf.TensorSpec([None], tf.int64, "seed"),
                  tf.TensorSpec([], tf.int32, "num_frames")]
        labels = ([tf.TensorSpec([None], tf.int64, "labels")]
                  if g.num_classes else [])
        psi = [tf.TensorSpec([None], tf.float32, "truncation_psi")]
        times = [tf.TensorSpec([], tf.float32, "start_time"),
                 tf.TensorSpec([], tf.float32, "time_step")]
        step = float(g.time_step)

        def split(args, count):
            """(the first `count` args, labels or None, the rest)."""
            head, rest = list(args[:count]), list(args[count:])
            return head, (rest.pop(0) if labels else None), rest

        def from_latents(*args):
            (z, m, t), label, rest = split(args, 3)
            return self.video(z, m, t, label, *rest)

        def from_seed(*args):
            (seed, frames), label, rest = split(args, 2)
            start, spacing, truncation = rest or (0.0, step, None)
            return self._video_from_seed(seed, frames, label, start,
                                         spacing, truncation)

        for name, function, specs in (
                ("serving_default", from_latents, latent + labels),
                ("generate", from_latents, latent + labels + psi),
                ("generate_from_seed", from_seed, seeded + labels),
                ("generate_from_seed_full", from_seed,
                 seeded + labels + times + psi),
                ("generate_from_style", self.video_from_style, styled)):
            setattr(self, name, tf.function(_named(function, specs),
                                            input_signature=specs))

    def signatures(self):
        """{signature key: tf.function}, `serving_default` first."""
        return {name: getattr(self, name) for name in SIGNATURES}

    def video(self, z_content, z_motion, timestamps, labels=None,
              truncation_psi=None):
        """{"video": uint8 [B, T, R, R, 3]} after the request checks."""
        if truncation_psi is None:
            truncation_psi = tf.ones([1])
        return self._video(z_content, z_motion, timestamps, labels,
                           truncation_psi, from_style=False)

    def video_from_style(self, w, z_motion, timestamps):
        """`video` from styles `w` [B, w_dim] instead of content codes."""
        return self._video(w, z_motion, timestamps, None, tf.ones([1]),
                           from_style=True)

    def _video(self, codes, z_motion, timestamps, labels, truncation_psi,
               from_style):
        batch = tf.shape(codes)[0]
        frames = tf.shape(timestamps)[1]
        resolution = self.output_size
        checks = self._check_request(
            batch, frames, codes, "w" if from_style else "z_content",
            z_motion, timestamps, labels, truncation_psi)
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
            lambda t: self._chunk(codes, z_motion, t, labels,
                                  truncation_psi, from_style),
            chunks, parallel_iterations=1,
            fn_output_signature=tf.TensorSpec(
                [None, None, resolution, resolution, 3], tf.uint8))
        video = tf.reshape(tf.transpose(rendered, [1, 0, 2, 3, 4, 5]),
                           [batch, count * size, resolution, resolution, 3])
        return {"video": video[:, :frames]}

    def _render_chunk(self, codes, z_motion, timestamps, labels,
                      truncation_psi, from_style):
        view = dict(resolution_scale=self.view.resolution_scale,
                    field_of_view=self.view.field_of_view)
        if from_style:
            return frames_to_uint8(self.generator.synthesize(
                codes, z_motion, timestamps, **view))
        return frames_to_uint8(self.generator(
            codes, z_motion, timestamps, labels=labels,
            truncation_psi=truncation_psi, **view))

    def _video_from_seed(self, seed, num_frames, labels, start_time,
                         time_step, truncation_psi):
        # The sizes are checked before `num_frames` allocates anything.
        checks = self._check_sizes(tf.shape(seed)[0], num_frames)
        checks.append(tf.debugging.assert_all_finite(
            tf.stack([start_time, time_step]),
            "start_time and time_step must be finite"))
        with tf.control_dependencies(checks):
            times = start_time + time_step * tf.cast(tf.range(num_frames),
                                                     tf.float32)
        z_content, z_motion = latents.latents_from_seeds(
            seed, self.generator.z_dim, self.generator.motion_dim)
        timestamps = tf.tile(times[None], [tf.shape(seed)[0], 1])
        return self.video(z_content, z_motion, timestamps, labels,
                          truncation_psi)

    def _check_sizes(self, batch, frames):
        """Assertions on the batch, frame and pixel counts of a request."""
        limits = self.limits
        resolution = self.output_size
        pixels = (tf.cast(batch, tf.int64) * tf.cast(frames, tf.int64)
                  * resolution * resolution)
        return [
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
        ]

    def _check_request(self, batch, frames, codes, codes_name, z_motion,
                       timestamps, labels, truncation_psi):
        """Assertions that fail the request with INVALID_ARGUMENT;
        `codes` are the content codes or styles (`codes_name`)."""
        checks = self._check_sizes(batch, frames) + [
            tf.debugging.assert_all_finite(
                codes, f"{codes_name} must be finite (no NaN or Inf)"),
            tf.debugging.assert_all_finite(
                z_motion, "z_motion must be finite (no NaN or Inf)"),
            tf.debugging.assert_all_finite(
                timestamps, "timestamps must be finite (no NaN or Inf)"),
            tf.debugging.assert_all_finite(
                truncation_psi, "truncation_psi must be finite"),
            tf.debugging.assert_equal(
                tf.shape(z_motion)[0], batch,
                message=f"z_motion must have one row per {codes_name} row"),
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
