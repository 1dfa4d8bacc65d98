"""Frames in [-1, 1] to uint8, and video files written frame by frame:
H.264 MP4 (PyAV) and looping GIF (Pillow). Writers stream, so a video of
any length needs memory for one chunk of frames only, and write to a
temporary name that is renamed when the file is complete."""

import contextlib

import numpy as np

from digan_tf.utils.atomic_files import atomic_path


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


class _VideoFileWriter:
    """Context manager: `append(frames)` any number of times with uint8
    [T, H, W, 3]; the file appears under `path` on a clean exit only."""

    def __init__(self, path, fps):
        self.path = path
        self.fps = fps
        self.frames_written = 0
        self._stack = contextlib.ExitStack()
        self._temporary = None

    def __enter__(self):
        self._temporary = self._stack.enter_context(atomic_path(self.path))
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            try:
                if exc_type is None:
                    if not self.frames_written:
                        raise ValueError(f"No frames for {self.path}.")
                    self._finish()
            finally:
                self._close()
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        return self._stack.__exit__(exc_type, exc, traceback)

    def append(self, frames):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be uint8 [T, H, W, 3]; "
                             f"got {frames.dtype} {frames.shape}.")
        for frame in frames:
            self._write(frame)
            self.frames_written += 1

    def _write(self, frame):
        raise NotImplementedError

    def _finish(self):
        """Completes the file after the last frame."""

    def _close(self):
        """Releases what `_write` opened, complete or not."""


class Mp4Writer(_VideoFileWriter):
    """H.264 (libx264, yuv420p) MP4; width and height must be even."""

    def __init__(self, path, fps):
        super().__init__(path, fps)
        self._container = self._stream = None

    def _write(self, frame):
        import av

        if self._container is None:
            self._container = av.open(self._temporary, mode="w", format="mp4")
            self._stream = self._container.add_stream(
                "libx264", rate=int(round(self.fps)))
            self._stream.height, self._stream.width = frame.shape[:2]
            self._stream.pix_fmt = "yuv420p"
        image = av.VideoFrame.from_ndarray(frame, format="rgb24")
        self._container.mux(self._stream.encode(image))

    def _finish(self):
        self._container.mux(self._stream.encode())

    def _close(self):
        if self._container is not None:
            self._container.close()


class GifWriter(_VideoFileWriter):
    """Looping GIF, one adaptive 256-colour palette per frame, written
    frame by frame (Pillow's own GIF saver keeps every frame in memory)."""

    def __init__(self, path, fps):
        super().__init__(path, fps)
        self._file = None
        self._duration = max(1, round(1000 / fps))

    def _write(self, frame):
        from PIL import GifImagePlugin
        from PIL import Image

        image = Image.fromarray(frame).convert(
            "P", palette=Image.Palette.ADAPTIVE, colors=256)
        if self._file is None:
            self._file = open(self._temporary, "wb")
            header, _ = GifImagePlugin.getheader(
                image, info={"loop": 0, "duration": self._duration})
            self._file.write(b"".join(header))
        self._file.write(b"".join(GifImagePlugin.getdata(
            image, duration=self._duration, include_color_table=True)))

    def _finish(self):
        self._file.write(b";")  # GIF trailer

    def _close(self):
        if self._file is not None:
            self._file.close()


def write_gif(path, frames, fps):
    """Writes uint8 frames [T, H, W, 3] as a looping GIF."""
    with GifWriter(path, fps) as writer:
        writer.append(frames)


def write_mp4(path, frames, fps):
    """Writes uint8 frames [T, H, W, 3] as H.264 MP4 (yuv420p)."""
    with Mp4Writer(path, fps) as writer:
        writer.append(frames)
