"""Frames in [-1, 1] to uint8, GIF (Pillow) and MP4 (H.264 via PyAV)."""

import numpy as np

from digan_tf.atomic_files import atomic_path


def to_uint8(frames):
    """Maps generator output (about [-1, 1]) to uint8, clipping outliers."""
    frames = np.asarray(frames, np.float32)
    return np.clip(np.rint((frames + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(videos, columns=None):
    """Tiles videos [N, T, H, W, 3] into one video [T, rows*H, cols*W, 3]."""
    count, frames, height, width, channels = videos.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    padded = np.zeros((rows * columns,) + videos.shape[1:], videos.dtype)
    padded[:count] = videos
    tiles = padded.reshape(rows, columns, frames, height, width, channels)
    return tiles.transpose(2, 0, 3, 1, 4, 5).reshape(
        frames, rows * height, columns * width, channels
    )


def write_gif(path, frames, fps):
    """Writes uint8 frames [T, H, W, 3] as a looping GIF."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as temporary:
        images[0].save(
            temporary, save_all=True, append_images=images[1:],
            duration=max(1, round(1000 / fps)), loop=0,
        )


def write_mp4(path, frames, fps):
    """Writes uint8 frames [T, H, W, 3] as H.264 MP4 (yuv420p)."""
    import av

    height, width = frames.shape[1:3]
    with atomic_path(path) as temporary:
        with av.open(temporary, mode="w") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            for frame in frames:
                image = av.VideoFrame.from_ndarray(frame, format="rgb24")
                container.mux(stream.encode(image))
            container.mux(stream.encode())
