"""The files TF Serving reads besides the SavedModel: warm-up requests, a
model config with version labels, batching parameters.

- `assets.extra/tf_serving_warmup_requests`: a TFRecord file of
  `tensorflow.serving.PredictionLog` messages that the server runs once at
  load, so the first user request does not pay for tracing. The messages
  are encoded here from their field numbers (PredictionLog.predict_log = 6,
  PredictLog.request = 1, PredictRequest.model_spec = 1 and inputs = 2,
  ModelSpec.name = 1 and signature_name = 3) around TensorFlow's own
  `TensorProto`, so the package needs no `tensorflow-serving-api`.
- `models.config` beside the versions: the model, its base path and the
  version labels `stable` (the previous version, or the only one) and
  `canary` (the newest).
- `batching_parameters.txt`: server-side batching that never merges more
  videos than `ServingLimits.max_batch`.
"""

import os

import numpy as np
import tensorflow as tf

from digan_tf.utils.atomic_files import atomic_path

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name, signature_name, inputs):
    """A serialized `PredictionLog` holding one `PredictRequest`."""
    model_spec = _field(1, model_name) + _field(3, signature_name)
    request = _field(1, model_spec)
    for key, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(2, _field(1, key) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_requests(generator, frames):
    """{signature: inputs} of a few representative requests: one video of
    `frames` frames through every signature."""
    z_content = np.zeros((1, generator.z_dim), np.float32)
    z_motion = np.zeros((1, generator.motion_dim), np.float32)
    timestamps = (np.arange(frames, dtype=np.float32)
                  * np.float32(generator.time_step))[None]
    labels = ({"labels": np.zeros([1], np.int64)}
              if generator.num_classes else {})
    psi = {"truncation_psi": np.ones([1], np.float32)}
    latent = dict(z_content=z_content, z_motion=z_motion,
                  timestamps=timestamps, **labels)
    seeded = dict(seed=np.zeros([1], np.int64),
                  num_frames=np.int32(frames), **labels)
    return {
        "serving_default": latent,
        "generate": {**latent, **psi},
        "generate_from_seed": seeded,
        "generate_from_seed_full": {
            **seeded, "start_time": np.float32(0.0),
            "time_step": np.float32(generator.time_step), **psi},
        "generate_from_style": dict(
            w=np.zeros((1, generator.w_dim), np.float32),
            z_motion=z_motion, timestamps=timestamps),
    }


def write_warmup(saved_model_dir, model_name, requests):
    """Writes `requests` ({signature: inputs}) as the warm-up file."""
    path = os.path.join(saved_model_dir, WARMUP_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests.items():
            writer.write(prediction_log(model_name, signature, inputs))
    return path


def models_config(model_name, versions):
    """TF Serving's model config (text proto) for the model in
    `/models/<model_name>` with `versions` [ints] on disk."""
    canary = versions[-1]
    stable = versions[-2] if len(versions) > 1 else canary
    served = sorted({stable, canary})
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "/models/{model_name}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      specific {\n"
        + "".join(f"        versions: {v}\n" for v in served)
        + "      }\n"
        "    }\n"
        f'    version_labels {{ key: "stable" value: {stable} }}\n'
        f'    version_labels {{ key: "canary" value: {canary} }}\n'
        "  }\n"
        "}\n")


def batching_parameters(limits):
    """`--batching_parameters_file` contents: merged batches of at most
    `limits.max_batch` videos (what the signatures accept)."""
    sizes = sorted({min(2 ** i, limits.max_batch)
                    for i in range(limits.max_batch.bit_length() + 1)})
    return (
        f"max_batch_size {{ value: {limits.max_batch} }}\n"
        "batch_timeout_micros { value: 2000 }\n"
        "max_enqueued_batches { value: 16 }\n"
        "num_batch_threads { value: 2 }\n"
        + "".join(f"allowed_batch_sizes: {s}\n" for s in sizes)
        + "pad_variable_length_inputs: false\n")


def write_server_files(base_path, model_name, versions, limits):
    """`models.config` and `batching_parameters.txt` in `base_path` (the
    model's folder of versions), written atomically."""
    for name, text in ((MODELS_CONFIG, models_config(model_name, versions)),
                       (BATCHING_PARAMETERS, batching_parameters(limits))):
        with atomic_path(os.path.join(base_path, name)) as temporary:
            with open(temporary, "w") as f:
                f.write(text)
