"""One training process for the multi-worker tests and benchmark.

Trains the tiny DIGAN of the training tests (SGD, minibatch std off) for
--steps on one fixed global batch, under MultiWorkerMirroredStrategy when
TF_CONFIG is set and on one device otherwise. Each input pipeline feeds its
slice of that global batch, so one process and N workers see the same
samples and must make the same updates. Writes the final variables and the
seconds per step after --warmup_steps to --output (.npz).

  python tests/fixed_batch_worker.py --output=w.npz --steps=2 --eager
"""

import argparse
import os
import time

import digan_tf  # noqa: F401  (before TensorFlow: oneDNN)

# isort: split

import keras
import numpy as np
import tensorflow as tf
import testing

from digan_tf.training import distribution
from digan_tf.utils.atomic_files import atomic_path


class StepTimer(keras.callbacks.Callback):
    """Wall time of the steps after the first `warmup` (tracing)."""

    def __init__(self, warmup):
        super().__init__()
        self.warmup = warmup
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def seconds_per_step(self):
        timed = self.ends[self.warmup - 1:] if self.warmup else self.ends
        return (timed[-1] - timed[0]) / max(len(timed) - 1, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", required=True)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup_steps", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--eager", action="store_true")
    args = parser.parse_args()

    strategy = distribution.make_strategy(
        "multi_worker" if os.environ.get("TF_CONFIG") else "default")
    with strategy.scope():
        model = testing.tiny_digan(mbstd_num_channels=0, sgd=True)
    model.run_eagerly = args.eager
    global_batch = testing.frame_pair_batch(args.batch_size)

    def worker_slice(context):
        size = context.get_per_replica_batch_size(args.batch_size)
        start = context.input_pipeline_id * size
        return tf.data.Dataset.from_tensors(
            tuple(part[start:start + size] for part in global_batch)
        ).repeat()

    timer = StepTimer(args.warmup_steps)
    model.fit(strategy.distribute_datasets_from_function(worker_slice),
              steps_per_epoch=args.steps, epochs=1, verbose=0,
              shuffle=False, callbacks=[timer])
    variables = (model.generator.trainable_variables
                 + model.image_discriminator.variables
                 + model.motion_discriminator.variables
                 + model.ema_generator.variables
                 + [model.step, model.g_optimizer.iterations,
                    model.d_optimizer.iterations])
    with atomic_path(args.output) as path:
        np.savez(path, seconds_per_step=timer.seconds_per_step(),
                 **{f"v{i:04d}": np.asarray(v.numpy())
                    for i, v in enumerate(variables)})


if __name__ == "__main__":
    main()
