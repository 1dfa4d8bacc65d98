"""FVD/KVD during training: a Keras callback that measures the EMA
generator every --metrics_every_kimg thousand videos."""

import json
import os

import keras
import tensorflow as tf

from digan_tf import evaluation
from digan_tf.atomic_files import atomic_path


class MetricsCallback(keras.callbacks.Callback):
    """Measures --metrics of the EMA generator on --metrics_videos clips
    each time the images seen pass a multiple of --metrics_every_kimg; logs
    TensorBoard scalars `Metrics/<name>` and appends
    `{"step", "kimg", <name>: value}` lines to `<run_dir>/metrics.jsonl`.
    Real features are cached in `<run_dir>/feature_cache`.

    Args:
        config: the `TrainConfig`.
        data_dir: the prepared dataset the run trains on.
        writer: the run's `tf.summary` writer.
    """

    def __init__(self, config, data_dir, writer):
        super().__init__()
        self.evaluator = evaluation.Evaluator(
            data_dir, config.metrics, config.metrics_videos,
            i3d_weights=config.i3d_weights or None,
            cache_dir=os.path.join(config.run_dir, "feature_cache"),
            seed=config.seed)
        self.interval = max(round(config.metrics_every_kimg * 1000), 1)
        self.log_path = os.path.join(config.run_dir, "metrics.jsonl")
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
