"""The training configuration: one frozen dataclass, validated on creation
with messages that name the flag. `bin/train` fills it from flags; the
factories in `training` turn it into plain constructor arguments."""

import dataclasses
import math
import os

from digan_tf.evaluation import distances as video_metrics
from digan_tf.evaluation.i3d_weights import packaged_path
from digan_tf.utils import validation

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DEMO_DATA = "demo"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs (see `bin/train --helpfull`).

    `data_dir="demo"` trains on the built-in moving-shapes dataset, rendered
    into the run dir at `resolution` and `clip_length`.
    """

    data_dir: str
    run_dir: str
    resolution: int = 128
    fmaps: float = 1.0
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    motion_dim: int = 512
    fourier_scale: float = math.sqrt(10.0)
    batch_size: int = 64
    clip_length: int = 16
    total_kimg: float = 25000.0
    max_steps: int = 0
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    adam_epsilon: float = 1e-8
    r1_gamma: float = 1.0
    r1_interval: int = 16
    g_reg_interval: int = 4
    ema_kimg: float = 0.0
    ema_rampup: float = 0.05
    augment: bool = True
    conditional: bool = False
    strategy: str = "default"
    mixed_precision: str = "float32"
    jit_compile: bool = False
    run_eagerly: bool = False
    intra_op_threads: int = 0
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    num_samples: int = 8
    demo_videos: int = 256
    metrics: str = ""
    metrics_every_kimg: float = 100.0
    metrics_videos: int = 512
    i3d_weights: str = ""
    init_from: str = ""

    def __post_init__(self):
        validation.check_power_of_two("resolution", self.resolution, 32)
        validation.check_float("fmaps", self.fmaps, exclusive_minimum=0.0)
        if int(32768 * self.fmaps) // self.resolution < 1:
            raise ValueError(f"`fmaps`={self.fmaps} gives no channels at "
                             f"`resolution`={self.resolution}.")
        for name in ("channel_max", "z_dim", "w_dim", "motion_dim"):
            validation.check_int(name, getattr(self, name), 1)
        validation.check_float("fourier_scale", self.fourier_scale,
                               exclusive_minimum=0.0)
        validation.check_int("batch_size", self.batch_size, 1)
        validation.check_int("clip_length", self.clip_length, 2)
        validation.check_float("total_kimg", self.total_kimg,
                               exclusive_minimum=0.0)
        validation.check_int("max_steps", self.max_steps, 0)
        for name in ("g_lr", "d_lr", "adam_epsilon"):
            validation.check_float(name, getattr(self, name),
                                   exclusive_minimum=0.0)
        for name in ("adam_beta1", "adam_beta2"):
            value = validation.check_float(name, getattr(self, name),
                                           0.0)
            if value >= 1.0:
                raise ValueError(f"`{name}` must be < 1; got {value}.")
        validation.check_float("r1_gamma", self.r1_gamma, 0.0)
        validation.check_int("r1_interval", self.r1_interval, 1)
        validation.check_int("g_reg_interval", self.g_reg_interval, 0)
        validation.check_float("ema_kimg", self.ema_kimg, 0.0)
        validation.check_float("ema_rampup", self.ema_rampup, 0.0)
        for name, allowed in (("strategy", STRATEGIES),
                              ("mixed_precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}; got "
                                 f"{getattr(self, name)!r}.")
        validation.check_int("seed", self.seed, 0)
        validation.check_int("intra_op_threads", self.intra_op_threads, 0)
        for name in ("log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "num_samples", "demo_videos"):
            validation.check_int(name, getattr(self, name), 1)
        if self.metrics:
            video_metrics.parse_metric_names(
                self.metrics, have_weights=bool(
                    self.i3d_weights or packaged_path()))
        validation.check_float("metrics_every_kimg",
                               self.metrics_every_kimg, exclusive_minimum=0.0)
        validation.check_int("metrics_videos", self.metrics_videos, 2)
        if not self.data_dir:
            raise ValueError("`data_dir` is required (a prepared dataset, or "
                             f"'{DEMO_DATA}').")
        if not self.run_dir:
            raise ValueError("`run_dir` is required.")
        if self.init_from and not os.path.isfile(self.init_from):
            raise FileNotFoundError(
                f"`init_from`: no such file '{self.init_from}'.")

    @property
    def total_steps(self):
        """Steps to train: --total_kimg of videos, capped by --max_steps."""
        steps = math.ceil(self.total_kimg * 1000 / self.batch_size)
        return min(steps, self.max_steps) if self.max_steps else steps

    def to_json(self):
        return dataclasses.asdict(self)
