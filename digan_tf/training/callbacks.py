"""Keras callbacks of a training run: the monitor (non-finite losses, the
progress bar, TensorBoard scalars, checkpoints, sample videos, preemption)
and FVD/KVD measured during training."""

import io
import json
import math
import os

import keras
import tensorflow as tf
from PIL import Image

from digan_tf import run_dir as run_dirs
from digan_tf.evaluation import protocol
from digan_tf.generation import latents
from digan_tf.generation import rendering
from digan_tf.generation import video_writer
from digan_tf.utils.atomic_files import atomic_path
from digan_tf.utils.progress import ProgressBar


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; the message names the last good
    checkpoint."""


def _gif_summary(tag, frames, fps, step):
    """An animated GIF in TensorBoard's image dashboard."""
    from tensorboard.plugins.image import metadata

    buffer = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(buffer, format="GIF", save_all=True,
                   append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    height, width = frames.shape[1:3]
    tf.summary.write(
        tag, tf.constant([str(width), str(height), buffer.getvalue()]),
        step=step, metadata=metadata.create_summary_metadata(
            display_name=tag, description="EMA generator, fixed latents"))


class TrainingMonitor(keras.callbacks.Callback):
    """Per step: NaN/Inf check, the progress bar and the preemption check;
    every `log_every` steps: TensorBoard scalars (means since the last
    log); every `checkpoint_every`: a checkpoint; every `sample_every`:
    sample videos. Workers other than the chief (`chief=False`) take part
    in every checkpoint save (MultiWorkerMirroredStrategy saves are
    collective) but show no bar and render no samples.

    Args:
        manager: the run's `tf.train.CheckpointManager`.
        writer: the run's `tf.summary` writer.
        run_dir: where `samples/` go.
        total_steps, global_batch: ints, for the progress bar.
        log_every, checkpoint_every, sample_every: ints, in steps.
        num_samples: int, videos of the sample grid (fixed latents).
        seed: int, seed of the sample latents.
        clip_length: int, frames of each sample video.
        chief: bool, whether this worker writes.
    """

    def __init__(self, manager, writer, run_dir, total_steps, global_batch,
                 log_every, checkpoint_every, sample_every, num_samples,
                 seed, clip_length, chief=True):
        super().__init__()
        self.run_dir = run_dir
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.sample_every = sample_every
        self.num_samples = num_samples
        self.seed = seed
        self.clip_length = clip_length
        self.manager = manager
        self.writer = writer
        self.total_steps = total_steps
        self.global_batch = global_batch
        self.chief = chief
        self.preemption = None  # a PreemptionCheckpointHandler, from train()
        self.failure = None
        self.bar = None
        self.sample_latents = None
        self.last_sample_step = None

    def on_train_begin(self, logs=None):
        step = int(self.model.step.numpy())
        self.bar = ProgressBar(
            self.total_steps * self.global_batch, "img", "train",
            initial=step * self.global_batch,
            stream=None if self.chief else io.StringIO())
        generator = self.model.ema_generator
        self.sample_latents = latents.sample_latents(
            generator, self.num_samples, seed=self.seed)
        if step == 0:
            self.write_samples(0)

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        step = int(self.model.step.numpy())
        bad = [k for k in ("g_loss", "d_loss", "r1_penalty")
               if k in logs and not math.isfinite(logs[k])]
        if bad:
            last = self.manager.latest_checkpoint or "none"
            self.failure = NonFiniteLossError(
                f"{', '.join(f'{k}={logs[k]}' for k in bad)} at step {step}; "
                f"training stopped, last good checkpoint: {last}.")
            self.model.stop_training = True
            return
        self.bar.update(self.global_batch, extra=(
            f"kimg {logs.get('images_seen', 0) / 1000:.2f} "
            f"G {logs.get('g_loss', 0):.3f} D {logs.get('d_loss', 0):.3f}"))
        if step % self.log_every == 0 or step == self.total_steps:
            self.write_scalars(step, logs)
        if step % self.checkpoint_every == 0:
            self.manager.save(checkpoint_number=step)
        if step % self.sample_every == 0:
            self.write_samples(step)
        if self.preemption is not None:
            self.preemption.save_checkpoint_if_preempted()

    def on_train_end(self, logs=None):
        self.bar.close()
        step = int(self.model.step.numpy())
        if self.failure is None:
            self.save_checkpoint()
            if self.last_sample_step != step:
                self.write_samples(step)
        self.writer.flush()

    def save_checkpoint(self):
        """Saves the current step unless it is saved; returns the path."""
        step = int(self.model.step.numpy())
        path = os.path.join(self.manager.directory, f"ckpt-{step}")
        if self.manager.latest_checkpoint != path:
            self.manager.save(checkpoint_number=step)
        return path

    def write_scalars(self, step, logs):
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                group = "Loss" if name.endswith(("loss", "penalty")) else (
                    "Progress" if name == "images_seen" else "Logits")
                tf.summary.scalar(f"{group}/{name}", value)
            tf.summary.scalar("Progress/images_per_second", self.bar.rate())
        self.model.reset_metrics()

    def write_samples(self, step):
        """The fixed latent grid as GIF and MP4 files and in TensorBoard."""
        self.last_sample_step = step
        if not self.chief:
            return
        generator = self.model.ema_generator
        z, z_motion = self.sample_latents
        labels = rendering.labels_for(generator, len(z))
        timestamps = latents.clip_timestamps(self.clip_length)
        videos = video_writer.to_uint8(latents.render(
            generator, z, z_motion, timestamps, labels=labels))
        grid = video_writer.grid(videos)
        directory = os.path.join(self.run_dir, run_dirs.SAMPLES)
        os.makedirs(directory, exist_ok=True)
        fps = max(self.clip_length / 2, 1)
        video_writer.write_gif(os.path.join(directory, f"step-{step:07d}.gif"),
                               grid, fps)
        video_writer.write_mp4(os.path.join(directory, f"step-{step:07d}.mp4"),
                               grid, fps)
        with self.writer.as_default():
            _gif_summary("samples", grid, fps, step)



class MetricsCallback(keras.callbacks.Callback):
    """Measures `metrics` of the EMA generator on `num_videos` clips each
    time the images seen pass a multiple of `every_kimg` thousand; logs
    TensorBoard scalars `Metrics/<name>` and appends
    `{"step", "kimg", <name>: value}` lines to `<run_dir>/metrics.jsonl`.
    Real features are cached in `<run_dir>/feature_cache`.

    Args:
        data_dir: the prepared dataset the run trains on.
        metrics: comma-separated metric names (`evaluation.distances`).
        num_videos: int, clips per measure.
        every_kimg: float, thousands of videos between measures.
        run_dir: the run directory.
        writer: the run's `tf.summary` writer.
        i3d_weights: path of the I3D weights, or None (the packaged ones;
            random-init metrics only without them).
        seed: int, seed of the latents and real clips.
    """

    def __init__(self, data_dir, metrics, num_videos, every_kimg, run_dir,
                 writer, i3d_weights=None, seed=0):
        super().__init__()
        self.evaluator = protocol.Evaluator(
            data_dir, metrics, num_videos, i3d_weights=i3d_weights,
            cache_dir=os.path.join(run_dir, run_dirs.FEATURE_CACHE),
            seed=seed)
        self.interval = max(round(every_kimg * 1000), 1)
        self.log_path = os.path.join(run_dir, run_dirs.METRICS_LOG)
        self.writer = writer
        self.next_images = None

    def _next_multiple(self, images):
        return (images // self.interval + 1) * self.interval

    def on_train_begin(self, logs=None):
        self.next_images = self._next_multiple(
            int(self.model.images_seen.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        images = int(self.model.images_seen.numpy())
        if self.model.stop_training or images < self.next_images:
            return
        self.next_images = self._next_multiple(images)
        self.measure(int(self.model.step.numpy()), images)

    def measure(self, step, images):
        results = self.evaluator(self.model.ema_generator)
        values = {name: runs[0] for name, runs in results.items()}
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"Metrics/{name}", value)
        self.writer.flush()
        line = json.dumps({"step": step, "kimg": images / 1000, **values})
        previous = ""
        if os.path.exists(self.log_path):
            with open(self.log_path) as f:
                previous = f.read()
        with atomic_path(self.log_path) as temporary:
            with open(temporary, "w") as f:
                f.write(previous + line + "\n")
        print(f"step {step}: " + ", ".join(
            f"{name} {value:.3f}" for name, value in values.items()),
            flush=True)
