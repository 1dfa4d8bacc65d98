"""A curve as a PNG with Pillow only (no plotting library is a
dependency): loss curves of `bin/project`."""

import numpy as np
from PIL import Image
from PIL import ImageDraw

from digan_tf.utils.atomic_files import atomic_path


def write_curve(path, values, title, width=640, height=360, log_y=True):
    """Draws `values` against their index, y on a log scale by default,
    with the first, last and extreme values written on the axes."""
    values = np.asarray(values, np.float64)
    shown = np.log10(np.maximum(values, 1e-12)) if log_y else values
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 70, width - 20, 30, height - 40
    draw.rectangle([left, top, right, bottom], outline="black")
    low, high = float(shown.min()), float(shown.max())
    span = (high - low) or 1.0
    x = left + (right - left) * np.arange(len(shown)) / max(len(shown) - 1, 1)
    y = bottom - (bottom - top) * (shown - low) / span
    draw.line(list(zip(x.tolist(), y.tolist())), fill=(31, 119, 180), width=2)
    draw.text((left, 8), title, fill="black")
    draw.text((4, top), f"{values.max():.3g}", fill="black")
    draw.text((4, bottom - 10), f"{values.min():.3g}", fill="black")
    draw.text((left, bottom + 8), "0", fill="black")
    draw.text((right - 40, bottom + 8), f"{len(values) - 1}", fill="black")
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
