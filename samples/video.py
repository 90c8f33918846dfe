"""Camera streams made of sample photos: a ``.y4m`` file Chromium's fake camera plays.

``write_y4m`` writes 4:2:0 frames (BT.601, studio range, the ``C420jpeg`` chroma siting), which
``--use-file-for-fake-video-capture`` loops as the camera; the browser tests and
``benchmarks/capture_page.py`` build theirs from ``samples/set`` at run time (nothing large is
committed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb and Cr planes (Cb and Cr at half size) of an even-sized RGB image, in studio range.

    Chromium reads a y4m as limited range (Y 16-235, chroma 16-240): full-range planes would come
    out of the fake camera brighter and clipped, and a dark photo would no longer look dark.
    """
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + (219 / 255) * (0.299 * r + 0.587 * g + 0.114 * b)
    cb = 128 + (224 / 255) * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = 128 + (224 / 255) * (0.5 * r - 0.418688 * g - 0.081312 * b)

    def half(plane: np.ndarray) -> np.ndarray:
        h, w = plane.shape
        return plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    def u8(plane: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(plane), 0, 255).astype(np.uint8)

    return u8(y), u8(half(cb)), u8(half(cr))


def load_frame(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A photo as an RGB frame of ``size`` (width, height)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int = 5) -> Path:
    """Write RGB frames (all the same even size) as a raw 4:2:0 YUV4MPEG2 stream."""
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    assert w % 2 == 0 and h % 2 == 0, "4:2:0 needs an even width and height"
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in (first, *frames):
            assert frame.shape[:2] == (h, w)
            out.write(b"FRAME\n")
            for plane in yuv420(frame):
                out.write(plane.tobytes())
    return path


def camera_stream(
    path: Path, scenes: Sequence[tuple[Path, int]], size: tuple[int, int] = (1280, 960), fps: int = 5
) -> Path:
    """A stream showing each photo for its number of frames, in order (the camera loops it)."""
    cache: dict[Path, np.ndarray] = {}

    def frames():
        for photo, count in scenes:
            if photo not in cache:
                cache[photo] = load_frame(photo, size)
            for _ in range(count):
                yield cache[photo]

    return write_y4m(path, frames(), fps)
