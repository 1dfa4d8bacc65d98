"""Finding videos in a folder and decoding them to R x R RGB frames.

A video is a file FFmpeg decodes (any container/codec, through PyAV) or a
folder of numbered PNG/JPEG frames (the layout of the Sky and TaiChi
datasets). Frames are resized on the short side and center-cropped to R x R
(design.md section 5).
"""

import io
import os
import re

from PIL import Image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg",
                    ".mpeg", ".flv", ".wmv", ".ogv", ".3gp", ".ts")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DecodeError(Exception):
    """A video that cannot be read; the message says why."""


def _natural_key(name):
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", name)]


def find_videos(input_dir):
    """Sorted paths (relative to `input_dir`) of video files and of frame
    folders (folders that hold frame images and no sub-folders)."""
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs.sort()
        frames = [f for f in files if f.lower().endswith(FRAME_EXTENSIONS)]
        if frames and not dirs:
            found.append(os.path.relpath(root, input_dir))
        found.extend(
            os.path.relpath(os.path.join(root, f), input_dir)
            for f in files if f.lower().endswith(VIDEO_EXTENSIONS)
        )
    return sorted(found, key=_natural_key)


def _square(image, resolution):
    """Center square crop, resized to resolution x resolution."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.convert("RGB").resize(
        (resolution, resolution), Image.BILINEAR,
        box=(left, top, left + side, top + side),
    )


def _decode_file(path, resolution):
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DecodeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield _square(frame.to_image(), resolution)
    except (av.FFmpegError, OSError, ValueError) as error:
        raise DecodeError(f"{type(error).__name__}: {error}") from error


def _decode_folder(path, resolution):
    names = sorted((f for f in os.listdir(path)
                    if f.lower().endswith(FRAME_EXTENSIONS)), key=_natural_key)
    for name in names:
        try:
            with Image.open(os.path.join(path, name)) as image:
                yield _square(image, resolution)
        except OSError as error:
            raise DecodeError(f"frame {name}: {error}") from error


def decode_frames(path, resolution):
    """Frames of the video file or frame folder at `path`, one at a time,
    as R x R RGB PIL images (centre square, resized), as bin/prepare_data
    stores them.

    Raises:
        DecodeError: the file or a frame cannot be decoded.
    """
    decode = _decode_folder if os.path.isdir(path) else _decode_file
    return decode(path, resolution)


def decode_jpeg_frames(path, resolution, quality=95):
    """All frames of the video at `path` as R x R JPEG bytes.

    Raises:
        DecodeError: the file or a frame cannot be decoded, or it has no
            frames.
    """
    frames = []
    for image in decode_frames(path, resolution):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        frames.append(buffer.getvalue())
    if not frames:
        raise DecodeError("no frames could be decoded")
    return frames
