"""Untrusted upload bytes -> a BGR uint8 array, or one specific ``ImageErrorCode``.

This module is the only place that parses image files. Everything after it (card
detection, capture checks, OCR) receives a C-contiguous ``(H, W, 3)`` BGR ``uint8`` array,
the layout OpenCV and the OCR engine expect, already turned upright. Every way an upload
can be bad ends in ``ImageDecodeError`` carrying a stable code and the applicant-facing
Chinese message; no input may crash the process or the batch it arrived in.

Why it is careful:

* Decompression bombs. A few kilobytes of PNG can declare 20000 x 20000 pixels; decoding
  it would allocate gigabytes. Files are opened lazily, the declared size is checked
  against ``DecodeLimits.max_pixels`` before any pixel is decoded, and Pillow's own
  ``DecompressionBombError`` (or its warning, if a caller's warning filters turn it into
  an error) is reported as the same code. ``Image.MAX_IMAGE_PIXELS`` and
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` are process-global and are never changed here.
* Memory. The declared-size guard alone still let a 116 KB PNG of 6300 x 6300 (under 40 MP)
  cost 316 MB per request. ``DecodeLimits.long_side`` bounds what comes out: a JPEG is
  reduced while it is decoded (libjpeg's DCT scaling, 1/2, 1/4 or 1/8, via Pillow's
  ``draft``), so a 40 MP phone photo never exists at full size, and anything still longer is
  resized down after decoding. Formats that cannot be reduced while decoding (PNG, WebP,
  BMP) are decoded at full size, so ``DecodeLimits.max_decoded_pixels`` caps what may be
  decoded at all, checked after the reduction is chosen and before any pixel is decoded.
* Phone cameras store pixels in sensor orientation and record the rotation in EXIF
  (Orientation 6 for a phone held upright). The rotation is applied here, once, so the
  card is upright for every later step, and reported in ``DecodedImage``.
* Only JPEG (including multi-picture MPO JPEGs from some phones), PNG, WebP and BMP are
  parsed. Other image formats that applicants plausibly send (HEIC/AVIF from iPhones,
  GIF, TIFF, JPEG 2000, JPEG XL, PSD) are recognised by their signature and refused as
  ``UNSUPPORTED_FORMAT`` without being handed to a parser; anything else is
  ``NOT_AN_IMAGE``.
* Pixel layouts are normalised: CMYK (Adobe-inverted JPEGs are handled by Pillow), 16-bit
  greyscale (scaled, not clipped), greyscale, palette, and anything with transparency
  (flattened on white, so a transparent background does not turn black).

A damaged file in a supported format (cut short, bad checksum, corrupt stream) is
reported as ``TRUNCATED_IMAGE``; the message asks the applicant to upload again.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.reasons import ImageErrorCode, message_en, message_zh

__all__ = [
    "DecodeLimits",
    "DecodedImage",
    "ImageDecodeError",
    "decode_file",
    "decode_image",
]


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # as declared by the file's header: the decompression-bomb guard
    min_side: int = 64
    # Pixels actually decoded (after any reduction at decode): None, as many as max_pixels allows.
    max_decoded_pixels: int | None = None
    over_decoded_pixels: ImageErrorCode = ImageErrorCode.TOO_MANY_PIXELS  # the code for the cap above
    # The decoded image's longer side is at most this (reduced at decode, then resized); None: as stored.
    long_side: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "min_side", "max_decoded_pixels", "long_side"):
            value = getattr(self, name)
            if value is None and name in ("max_decoded_pixels", "long_side"):
                continue
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeLimits.{name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = DecodeLimits()


class ImageDecodeError(Exception):
    """An upload that cannot become an image; ``code`` is stable, ``detail`` is for logs."""

    def __init__(self, code: ImageErrorCode, detail: str) -> None:
        super().__init__(code, detail)  # args kept so the error pickles across processes
        self.code = ImageErrorCode(code)
        self.detail = detail

    @property
    def message_zh(self) -> str:
        return message_zh(self.code)

    @property
    def message_en(self) -> str:
        return message_en(self.code)

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}"


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields make generated __eq__/__hash__ unusable
class DecodedImage:
    image: np.ndarray  # (H, W, 3) BGR uint8, C-contiguous, upright (EXIF orientation applied)
    format: str  # 'JPEG', 'PNG', 'WEBP', 'BMP'
    original_size: tuple[int, int]  # (width, height) as stored, before orientation
    exif_orientation: int  # EXIF Orientation tag that was applied; 1 when absent or invalid
    notes: tuple[str, ...] = ()  # what was done to the pixels, for logs and quality checks


# --- format identification ---------------------------------------------------------------

_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")  # JPEG's opener also yields MPO

# Signatures strong enough that a parse failure means "damaged file", not "some other file".
_DAMAGED_IF_UNPARSABLE = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)

_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

_UNSUPPORTED_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"8BPS", "PSD"),
)

# ISO-BMFF major brands of still images (the MP4 family shares the 'ftyp' box).
_HEIF_BRANDS = {
    b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
    b"hevc": "HEIC", b"hevx": "HEIC", b"hevm": "HEIC", b"hevs": "HEIC",
    b"mif1": "HEIF", b"mif2": "HEIF", b"msf1": "HEIF",
    b"avif": "AVIF", b"avis": "AVIF",
}  # fmt: skip


def _sniff(head: bytes) -> tuple[str | None, str | None]:
    """(damaged-if-unparsable format, unsupported format) named by the leading bytes."""
    for signature, name in _DAMAGED_IF_UNPARSABLE:
        if head.startswith(signature):
            return name, None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP", None
    # b"BM" alone is too weak (plenty of text starts with it); add the DIB header size.
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP", None
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if head.startswith(signature):
            return None, name
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return None, _HEIF_BRANDS[head[8:12]]
    return None, None


_BYTES_REPR = re.compile(r"""b(['"]).*?(?<!\\)\1""")


def _describe(exc: BaseException) -> str:
    """Exception summary for ``detail``: byte strings quoted from the file are blanked."""
    text = _BYTES_REPR.sub("b'…'", str(exc))
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _looks_truncated(exc: BaseException) -> bool:
    return isinstance(exc, OSError | EOFError) and "truncated" in str(exc).lower()


# --- pixel conversion ----------------------------------------------------------------------

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_MODE_NAMES = {"P": "palette", "PA": "palette", "LA": "greyscale", "La": "greyscale"}

# EXIF Orientation -> the operations that make the stored pixels upright
# (the same mapping as PIL.ImageOps.exif_transpose, done with OpenCV on the final array).
_ORIENTATION_OPS = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.transpose(a),
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), 0),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _flatten_alpha(img: Image.Image, notes: list[str]) -> Image.Image:
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    alpha_min = rgba.getextrema()[3][0]
    if alpha_min == 255:  # declared transparency that no pixel uses
        return rgba.convert("RGB")
    flat = Image.new("RGB", rgba.size, _WHITE)
    flat.paste(rgba, mask=rgba)  # out = rgb * a + white * (1 - a)
    notes.append("alpha flattened on white")
    return flat


def _to_bgr(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Loaded Pillow image in any supported mode -> (H, W, 3) BGR uint8, stored orientation."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img)
        if wide.dtype.itemsize == 2:
            grey = (wide >> 8).astype(np.uint8)
        else:  # 'I' (int32) holding 16-bit samples
            grey = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        notes.append("16-bit scaled to 8-bit")
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)

    if mode in _ALPHA_MODES or "transparency" in img.info:
        if mode not in ("RGBA", "RGB"):
            notes.append(f"converted from {_MODE_NAMES.get(mode, mode)}")
        img = _flatten_alpha(img, notes)
    elif mode == "L":
        notes.append("converted from greyscale")
        return cv2.cvtColor(np.asarray(img), cv2.COLOR_GRAY2BGR)
    elif mode == "1":
        notes.append("converted from 1-bit")
        return cv2.cvtColor(np.asarray(img.convert("L")), cv2.COLOR_GRAY2BGR)
    elif mode != "RGB":
        notes.append(f"converted from {_MODE_NAMES.get(mode, mode)}")
        img = img.convert("RGB")
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


# A JPEG is reduced at decode to the smallest DCT scale whose longer side is still at least
# this share of ``long_side``, then resized to ``long_side``. With 1.0 a square JPEG just under
# twice the bound (5999 x 5999 for 3000) could not be reduced at all and would decode 36 MP;
# with 3/4 the worst case decodes 1.5 x the bound per side, and a reduced image is never
# upscaled (a card in it keeps at least 3/4 of the resolution the bound allows).
_REDUCE_FLOOR = 0.75


def _choose_reduction(img: Image.Image, limits: DecodeLimits) -> int:
    """The DCT scale (1, 2, 4, 8) to decode a JPEG at; 1 when not a JPEG or no bound is set."""
    if limits.long_side is None or img.format not in ("JPEG", "MPO"):
        return 1
    long = max(img.size)
    for scale in (8, 4, 2):
        if long / scale >= limits.long_side * _REDUCE_FLOOR:
            return scale
    return 1


def _downscale(bgr: np.ndarray, long_side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    ratio = long_side / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def _read_orientation(img: Image.Image, notes: list[str]) -> int:
    try:
        value = img.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
    except Exception as exc:  # malformed EXIF must not cost the applicant the upload
        notes.append(f"EXIF unreadable, orientation ignored ({type(exc).__name__})")
        return 1
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    notes.append("EXIF orientation invalid, ignored")
    return 1


# --- public API ----------------------------------------------------------------------------


def decode_image(data: bytes | bytearray | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode untrusted upload bytes; raises ``ImageDecodeError`` and nothing else for bad input."""
    size = len(data)
    if size == 0:
        raise ImageDecodeError(ImageErrorCode.EMPTY_FILE, "0 bytes")
    if size > limits.max_bytes:
        raise ImageDecodeError(ImageErrorCode.FILE_TOO_LARGE, f"{size} bytes exceeds the limit of {limits.max_bytes}")
    head = bytes(data[:32])
    damaged_if_unparsable, unsupported = _sniff(head)
    if unsupported is not None:
        raise ImageDecodeError(ImageErrorCode.UNSUPPORTED_FORMAT, f"{unsupported} is not accepted")

    try:
        img = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(ImageErrorCode.TOO_MANY_PIXELS, _describe(exc)) from None
    except Exception as exc:
        if damaged_if_unparsable:
            raise ImageDecodeError(
                ImageErrorCode.TRUNCATED_IMAGE,
                f"{damaged_if_unparsable} header could not be parsed ({_describe(exc)})",
            ) from None
        detail = "no supported image signature"
        if not isinstance(exc, UnidentifiedImageError):
            detail += f" ({_describe(exc)})"
        raise ImageDecodeError(ImageErrorCode.NOT_AN_IMAGE, detail) from None

    with img:
        return _decode_opened(img, limits)


def _decode_opened(img: Image.Image, limits: DecodeLimits) -> DecodedImage:
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageDecodeError(
            ImageErrorCode.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels exceeds the limit of {limits.max_pixels}",
        )
    if min(width, height) < limits.min_side:
        raise ImageDecodeError(
            ImageErrorCode.IMAGE_TOO_SMALL,
            f"{width}x{height} has a side shorter than {limits.min_side}",
        )

    notes: list[str] = []
    fmt = img.format or "unknown"
    scale = _choose_reduction(img, limits)
    if scale > 1 and img.draft(None, (width // scale, height // scale)) is not None:
        notes.append(f"decoded at 1/{scale} scale")
    decoded_w, decoded_h = img.size  # what will be decoded: reduced by draft, else as stored
    if limits.max_decoded_pixels is not None and decoded_w * decoded_h > limits.max_decoded_pixels:
        raise ImageDecodeError(
            limits.over_decoded_pixels,
            f"{width}x{height} {fmt} would decode {decoded_w}x{decoded_h} = {decoded_w * decoded_h} pixels,"
            f" over the limit of {limits.max_decoded_pixels}",
        )
    try:
        frames = getattr(img, "n_frames", 1)
        if fmt == "MPO":
            fmt = "JPEG"
            notes.append(f"multi-picture JPEG (MPO): first of {frames} images used")
        elif frames > 1:
            notes.append(f"animated: first of {frames} frames used")
        img.load()  # the first frame only
        orientation = _read_orientation(img, notes)
        bgr = _to_bgr(img, notes)
        img.close()  # Pillow's copy of the pixels is not needed past this point
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(ImageErrorCode.TOO_MANY_PIXELS, _describe(exc)) from None
    except MemoryError:
        raise ImageDecodeError(
            ImageErrorCode.TOO_MANY_PIXELS, f"out of memory decoding {width}x{height} {fmt}"
        ) from None
    except Exception as exc:
        kind = "truncated" if _looks_truncated(exc) else "corrupt"
        raise ImageDecodeError(ImageErrorCode.TRUNCATED_IMAGE, f"{kind} {fmt} data ({_describe(exc)})") from None

    if limits.long_side is not None and max(bgr.shape[:2]) > limits.long_side:
        before = bgr.shape[1::-1]
        bgr = _downscale(bgr, limits.long_side)
        notes.append(f"downscaled from {before[0]}x{before[1]} to {bgr.shape[1]}x{bgr.shape[0]}")
    if orientation != 1:
        bgr = _ORIENTATION_OPS[orientation](bgr)
        notes.append(f"EXIF orientation {orientation} applied")
    if not bgr.flags.c_contiguous:  # not expected from OpenCV; the contract is cheap to keep
        bgr = np.ascontiguousarray(bgr)
    return DecodedImage(
        image=bgr,
        format=fmt,
        original_size=(width, height),
        exif_orientation=orientation,
        notes=tuple(notes),
    )


def decode_file(path: str | os.PathLike[str], limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode an image file; its size is checked with ``fstat`` before any byte is read."""
    # O_NONBLOCK: opening a FIFO must not hang the worker; it is refused as not regular below.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ImageDecodeError(ImageErrorCode.UNREADABLE_FILE, f"cannot open: {_describe(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageDecodeError(ImageErrorCode.UNREADABLE_FILE, "not a regular file")
        if info.st_size > limits.max_bytes:
            raise ImageDecodeError(
                ImageErrorCode.FILE_TOO_LARGE,
                f"{info.st_size} bytes exceeds the limit of {limits.max_bytes}",
            )
        with open(fd, "rb", closefd=False) as f:
            data = f.read(info.st_size + 1)
            if len(data) > info.st_size:  # grew since fstat: read on, but never past the limit
                data += f.read(limits.max_bytes + 1 - len(data))
    except OSError as exc:
        raise ImageDecodeError(ImageErrorCode.UNREADABLE_FILE, f"cannot read: {_describe(exc)}") from None
    finally:
        os.close(fd)
    return decode_image(data, limits)
