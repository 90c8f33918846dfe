"""Tests for pipelines.decode: every input is built here with Pillow, numpy or by hand."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import pickle
import struct
import time
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from pipelines.decode import DecodedImage, DecodeLimits, ImageDecodeError, decode_file, decode_image
from pipelines.reasons import ImageErrorCode

ORIENTATION = 0x0112

# --- builders ------------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def photo_like_rgb(width: int, height: int) -> Image.Image:
    """Smooth gradient plus a little noise: compresses like a photo, unlike pure noise."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 50, height, dtype=np.float32)[:, None, None]
    pixels = x + y + rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def stripes_rgb(width: int = 96, height: int = 72) -> Image.Image:
    """Left third red, middle third green, right third blue (RGB)."""
    img = Image.new("RGB", (width, height))
    third = width // 3
    img.paste((255, 0, 0), (0, 0, third, height))
    img.paste((0, 255, 0), (third, 0, 2 * third, height))
    img.paste((0, 0, 255), (2 * third, 0, width, height))
    return img


def red_top_left(width: int = 160, height: int = 100) -> Image.Image:
    """Grey image with a red block in the stored top-left corner."""
    img = Image.new("RGB", (width, height), (128, 128, 128))
    img.paste((255, 0, 0), (0, 0, width // 4, height // 4))
    return img


def with_orientation(img: Image.Image, fmt: str, orientation: int, **params) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encode(img, fmt, exif=exif, **params)


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


@functools.cache
def blank_one_bit_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG, compressed row by row so building it never holds the pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def pillow_images_allocated() -> int:
    return Image.core.get_stats()["new_count"]


def expect_error(code: ImageErrorCode, data: bytes, limits: DecodeLimits | None = None) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, limits or DecodeLimits())
    assert caught.value.code is code, str(caught.value)
    assert caught.value.message_zh and caught.value.message_en
    return caught.value


def assert_bgr(result: DecodedImage, width: int, height: int) -> np.ndarray:
    image = result.image
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)
    assert image.flags.c_contiguous
    assert image.flags.writeable
    return image


def patch_mean(image: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    return image[rows, cols].reshape(-1, 3).mean(axis=0)


# --- not an image / wrong size -------------------------------------------------------------


def test_zero_bytes_are_an_empty_file():
    expect_error(ImageErrorCode.EMPTY_FILE, b"")


def test_random_bytes_are_not_an_image():
    data = np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    expect_error(ImageErrorCode.NOT_AN_IMAGE, data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("姓名 张三\n公民身份号码 110101199003077777\n".encode(), id="text"),
        pytest.param(b"BMW 320i, 2019, one owner\n" * 50, id="text-starting-with-BM"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 20, id="pdf"),
        pytest.param(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', id="svg"),
        pytest.param(b"<!DOCTYPE html><html><body>hi</body></html>", id="html"),
        pytest.param(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(500), id="mp4-video"),
        pytest.param(b"PK\x03\x04" + bytes(500), id="zip"),
    ],
)
def test_files_that_are_not_images_are_refused_as_not_an_image(data):
    expect_error(ImageErrorCode.NOT_AN_IMAGE, data)


def test_a_10x10_image_is_too_small():
    expect_error(ImageErrorCode.IMAGE_TOO_SMALL, encode(noise_rgb(10, 10), "PNG"))


def test_an_image_with_one_short_side_is_too_small():
    expect_error(ImageErrorCode.IMAGE_TOO_SMALL, encode(noise_rgb(2000, 40), "PNG"))


def test_the_minimum_side_is_configurable():
    data = encode(noise_rgb(100, 100), "PNG")
    expect_error(ImageErrorCode.IMAGE_TOO_SMALL, data, DecodeLimits(min_side=101))
    assert decode_image(data, DecodeLimits(min_side=100)).image.shape == (100, 100, 3)


# --- size limits and decompression bombs ---------------------------------------------------


def test_more_than_20_mb_of_bytes_is_too_large():
    data = b"\xff\xd8\xff\xe0" + bytes(20 * 1024 * 1024)
    error = expect_error(ImageErrorCode.FILE_TOO_LARGE, data)
    assert str(20 * 1024 * 1024) in error.detail


def test_a_real_image_over_a_small_byte_limit_is_too_large():
    data = encode(noise_rgb(200, 200), "PNG")
    expect_error(ImageErrorCode.FILE_TOO_LARGE, data, DecodeLimits(max_bytes=len(data) - 1))
    assert decode_image(data, DecodeLimits(max_bytes=len(data))).original_size == (200, 200)


def test_a_20000x20000_png_is_refused_without_decoding_it():
    data = blank_one_bit_png(20_000, 20_000)
    assert len(data) < 1_000_000  # the whole point of a bomb: tiny file, 400 million pixels
    allocated_before = pillow_images_allocated()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = expect_error(ImageErrorCode.TOO_MANY_PIXELS, data)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 50 * 1024 * 1024
    assert pillow_images_allocated() == allocated_before  # Pillow never created the image
    assert error.message_zh == "图片尺寸过大，请上传普通照片"


def test_a_png_just_over_the_pixel_limit_is_refused_by_our_guard_before_decoding():
    # 42 MP: over our 40 MP limit but under Pillow's own warning threshold (~89 MP).
    data = blank_one_bit_png(7_000, 6_000)
    allocated_before = pillow_images_allocated()
    error = expect_error(ImageErrorCode.TOO_MANY_PIXELS, data)
    assert pillow_images_allocated() == allocated_before
    assert "7000x6000" in error.detail


@pytest.mark.parametrize(
    "warnings_as_errors",
    [
        pytest.param(False, marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")),
        pytest.param(True, marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")),
    ],
)
def test_a_png_over_pillows_warning_threshold_is_refused_whatever_the_warning_filters(warnings_as_errors):
    # 100 MP: Pillow warns (it raises only above ~179 MP); a service run with -W error turns
    # that warning into an exception, which must still come out as TOO_MANY_PIXELS.
    allocated_before = pillow_images_allocated()
    expect_error(ImageErrorCode.TOO_MANY_PIXELS, blank_one_bit_png(10_000, 10_000))
    assert pillow_images_allocated() == allocated_before


def test_a_jpeg_header_declaring_60000x60000_pixels_is_refused_before_decoding():
    data = bytearray(encode(noise_rgb(64, 64), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)  # height, width
    allocated_before = pillow_images_allocated()
    expect_error(ImageErrorCode.TOO_MANY_PIXELS, bytes(data))
    assert pillow_images_allocated() == allocated_before


def test_the_pixel_limit_is_configurable():
    data = encode(noise_rgb(100, 100), "PNG")
    expect_error(ImageErrorCode.TOO_MANY_PIXELS, data, DecodeLimits(max_pixels=9_999))
    assert decode_image(data, DecodeLimits(max_pixels=10_000)).original_size == (100, 100)


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        DecodeLimits(max_bytes=0)
    with pytest.raises(ValueError):
        DecodeLimits(min_side=-1)


# --- damaged files -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_an_image_cut_in_half_is_truncated(fmt):
    data = encode(noise_rgb(300, 200), fmt)
    expect_error(ImageErrorCode.TRUNCATED_IMAGE, data[: len(data) // 2])


@pytest.mark.parametrize(("fmt", "keep"), [("JPEG", 10), ("PNG", 20), ("PNG", 40), ("WEBP", 30), ("BMP", 30)])
def test_an_image_cut_inside_its_header_is_truncated_not_foreign(fmt, keep):
    data = encode(noise_rgb(300, 200), fmt)
    expect_error(ImageErrorCode.TRUNCATED_IMAGE, data[:keep])


def test_a_png_with_a_corrupted_header_checksum_is_reported_as_damaged():
    data = bytearray(encode(noise_rgb(100, 100), "PNG"))
    data[29] ^= 0xFF  # last byte of the IHDR CRC
    expect_error(ImageErrorCode.TRUNCATED_IMAGE, bytes(data))


def test_a_jpeg_missing_only_its_end_marker_is_refused_rather_than_half_grey():
    data = encode(noise_rgb(300, 200), "JPEG")
    expect_error(ImageErrorCode.TRUNCATED_IMAGE, data[:-2])


def test_trailing_bytes_after_a_complete_jpeg_are_ignored():
    data = encode(noise_rgb(300, 200), "JPEG") + b"appended by some upload client"
    assert decode_image(data).image.shape == (200, 300, 3)


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("BMP", {}), ("WEBP", {"lossless": True}), ("JPEG", {"quality": 95})],
)
def test_accepted_formats_decode_to_bgr_with_the_right_channel_order(fmt, params):
    result = decode_image(encode(stripes_rgb(), fmt, **params))
    image = assert_bgr(result, 96, 72)
    assert result.format == fmt
    assert result.original_size == (96, 72)
    assert result.exif_orientation == 1
    red, green, blue = (patch_mean(image, slice(20, 50), slice(c, c + 16)) for c in (8, 40, 72))
    np.testing.assert_allclose(red, [0, 0, 255], atol=6)  # BGR
    np.testing.assert_allclose(green, [0, 255, 0], atol=6)
    np.testing.assert_allclose(blue, [255, 0, 0], atol=6)


def test_lossless_formats_are_decoded_exactly():
    source = noise_rgb(80, 70)
    result = decode_image(encode(source, "PNG"))
    np.testing.assert_array_equal(result.image, cv2.cvtColor(np.asarray(source), cv2.COLOR_RGB2BGR))
    assert result.notes == ()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(encode(noise_rgb(100, 100), "GIF"), "GIF", id="gif"),
        pytest.param(encode(noise_rgb(100, 100), "TIFF"), "TIFF", id="tiff-little-endian"),
        pytest.param(b"MM\x00*" + bytes(200), "TIFF", id="tiff-big-endian"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), "HEIC", id="heic"),
        pytest.param(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(200), "AVIF", id="avif"),
        pytest.param(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(200), "JPEG 2000", id="jp2"),
        pytest.param(b"8BPS\x00\x01" + bytes(200), "PSD", id="psd"),
    ],
)
def test_other_image_formats_are_unsupported(data, name):
    error = expect_error(ImageErrorCode.UNSUPPORTED_FORMAT, data)
    assert name in error.detail


def test_an_unsupported_format_is_refused_without_being_parsed():
    # A GIF declaring 60000x60000 must not even reach Pillow's GIF parser.
    data = b"GIF89a" + struct.pack("<HH", 60_000, 60_000) + bytes(100)
    expect_error(ImageErrorCode.UNSUPPORTED_FORMAT, data)


def test_an_animated_webp_uses_its_first_frame():
    frames = [Image.new("RGB", (80, 80), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    result = decode_image(data)
    np.testing.assert_allclose(patch_mean(assert_bgr(result, 80, 80), slice(None), slice(None)), [0, 0, 255])
    assert "animated: first of 3 frames used" in result.notes


def test_an_animated_png_uses_its_first_frame():
    frames = [Image.new("RGB", (80, 80), colour) for colour in ((0, 255, 0), (255, 0, 0))]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    result = decode_image(data)
    np.testing.assert_array_equal(assert_bgr(result, 80, 80)[40, 40], [0, 255, 0])
    assert result.format == "PNG"
    assert "animated: first of 2 frames used" in result.notes


def test_a_multi_picture_jpeg_from_a_phone_is_reported_as_jpeg_and_uses_the_first_picture():
    first, second = Image.new("RGB", (100, 80), (255, 0, 0)), Image.new("RGB", (50, 40), (0, 0, 255))
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=95)
    result = decode_image(data)
    image = assert_bgr(result, 100, 80)
    assert result.format == "JPEG"
    assert image[40, 50, 2] > 240 and image[40, 50, 0] < 15
    assert any("MPO" in note for note in result.notes)


# --- colour layouts ------------------------------------------------------------------------


def test_a_cmyk_jpeg_becomes_bgr_with_red_staying_red():
    img = Image.new("CMYK", (100, 80), (0, 255, 255, 0))  # red
    img.paste((255, 255, 0, 0), (50, 0, 100, 80))  # blue
    data = encode(img, "JPEG", quality=95)
    assert b"Adobe" in data  # stored with the Adobe (inverted) CMYK convention
    result = decode_image(data)
    image = assert_bgr(result, 100, 80)
    b, g, r = patch_mean(image, slice(20, 60), slice(10, 40))
    assert r > 230 and g < 25 and b < 25
    b, g, r = patch_mean(image, slice(20, 60), slice(60, 90))
    assert b > 230 and g < 25 and r < 25
    assert "converted from CMYK" in result.notes


def test_a_16_bit_png_is_scaled_to_8_bit_keeping_the_gradient():
    columns = np.arange(256, dtype=np.uint16) * 257  # 0 .. 65535
    source = Image.fromarray(np.tile(columns, (70, 1)))
    assert source.mode == "I;16"
    result = decode_image(encode(source, "PNG"))
    image = assert_bgr(result, 256, 70)
    np.testing.assert_array_equal(image[35, :, 0], np.arange(256))  # not clipped at 255
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    assert "16-bit scaled to 8-bit" in result.notes


def test_an_rgba_png_with_a_transparent_background_is_flattened_on_white():
    img = Image.new("RGBA", (100, 80), (0, 0, 0, 0))  # transparent *black*: must not come out black
    img.paste((0, 0, 255, 255), (30, 20, 70, 60))
    img.paste((255, 0, 0, 128), (0, 70, 100, 80))  # half-transparent red strip
    result = decode_image(encode(img, "PNG"))
    image = assert_bgr(result, 100, 80)
    np.testing.assert_array_equal(image[5, 5], [255, 255, 255])
    np.testing.assert_array_equal(image[40, 50], [255, 0, 0])  # blue in BGR
    np.testing.assert_allclose(image[75, 50], [127, 127, 255], atol=2)  # red at 50 % over white
    assert "alpha flattened on white" in result.notes


def test_an_opaque_rgba_png_is_not_reported_as_flattened():
    img = noise_rgb(80, 80).convert("RGBA")
    result = decode_image(encode(img, "PNG"))
    np.testing.assert_array_equal(result.image, cv2.cvtColor(np.asarray(img), cv2.COLOR_RGBA2BGR))
    assert result.notes == ()


def test_a_palette_png_with_a_transparent_index_is_flattened_on_white():
    img = Image.new("P", (100, 80), 0)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (30, 20, 70, 60))
    result = decode_image(encode(img, "PNG", transparency=0))
    image = assert_bgr(result, 100, 80)
    np.testing.assert_array_equal(image[5, 5], [255, 255, 255])
    np.testing.assert_array_equal(image[40, 50], [0, 255, 0])
    assert "converted from palette" in result.notes
    assert "alpha flattened on white" in result.notes


def test_a_palette_png_without_transparency_keeps_its_colours():
    img = stripes_rgb().quantize(colors=3)
    assert img.mode == "P"
    result = decode_image(encode(img, "PNG"))
    image = assert_bgr(result, 96, 72)
    np.testing.assert_array_equal(image[36, 10], [0, 0, 255])
    np.testing.assert_array_equal(image[36, 85], [255, 0, 0])
    assert result.notes == ("converted from palette",)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_greyscale_image_becomes_three_equal_channels(fmt):
    grey = Image.fromarray(np.tile(np.arange(0, 250, 2, dtype=np.uint8), (70, 1)), "L")
    result = decode_image(encode(grey, fmt))
    image = assert_bgr(result, 125, 70)
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 1], image[..., 2])
    assert abs(int(image[35, 100, 0]) - 200) <= 3
    assert "converted from greyscale" in result.notes


def test_a_greyscale_png_with_alpha_is_flattened_on_white():
    img = Image.new("LA", (80, 80), (0, 0))
    img.paste((60, 255), (20, 20, 60, 60))
    result = decode_image(encode(img, "PNG"))
    image = assert_bgr(result, 80, 80)
    np.testing.assert_array_equal(image[5, 5], [255, 255, 255])
    np.testing.assert_array_equal(image[40, 40], [60, 60, 60])


def test_a_one_bit_png_becomes_black_and_white():
    img = Image.new("1", (80, 80), 0)
    img.paste(1, (0, 0, 40, 80))
    image = assert_bgr(decode_image(encode(img, "PNG")), 80, 80)
    np.testing.assert_array_equal(image[40, 10], [255, 255, 255])
    np.testing.assert_array_equal(image[40, 70], [0, 0, 0])


# --- EXIF orientation ----------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "params"), [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"quality": 95})])
def test_exif_orientation_6_turns_the_image_clockwise_and_swaps_its_shape(fmt, params):
    result = decode_image(with_orientation(red_top_left(160, 100), fmt, 6, **params))
    image = assert_bgr(result, width=100, height=160)
    assert result.original_size == (160, 100)
    assert result.exif_orientation == 6
    assert "EXIF orientation 6 applied" in result.notes
    b, g, r = patch_mean(image, slice(5, 30), slice(80, 95))  # stored top-left -> top-right
    assert r > 220 and g < 40 and b < 40
    for corner in (image[5, 5], image[155, 5], image[155, 95]):
        np.testing.assert_allclose(corner, [128, 128, 128], atol=12)


def test_exif_orientation_3_turns_the_image_upside_down():
    result = decode_image(with_orientation(red_top_left(160, 100), "JPEG", 3, quality=95))
    image = assert_bgr(result, width=160, height=100)
    assert result.exif_orientation == 3
    b, g, r = patch_mean(image, slice(80, 95), slice(125, 155))  # stored top-left -> bottom-right
    assert r > 220 and g < 40 and b < 40
    np.testing.assert_allclose(image[5, 5], [128, 128, 128], atol=12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exif_transpose(orientation):
    data = with_orientation(noise_rgb(90, 70, seed=orientation), "PNG", orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    result = decode_image(data)
    height, width = expected.shape[:2]
    np.testing.assert_array_equal(assert_bgr(result, width, height), cv2.cvtColor(expected, cv2.COLOR_RGB2BGR))
    assert result.exif_orientation == orientation


def test_an_out_of_range_exif_orientation_is_ignored():
    result = decode_image(with_orientation(red_top_left(), "JPEG", 9))
    assert_bgr(result, 160, 100)
    assert result.exif_orientation == 1
    assert "EXIF orientation invalid, ignored" in result.notes


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_malformed_exif_does_not_cost_the_applicant_the_upload():
    jpeg = encode(red_top_left(), "JPEG")
    app1 = b"Exif\x00\x00MM\x00*\x00\x00\xff\xff\xff\x00garbage"
    data = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    result = decode_image(data)
    assert_bgr(result, 160, 100)
    assert result.exif_orientation == 1


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ImageErrorCode))
def test_every_error_code_has_a_chinese_and_an_english_message(code):
    error = ImageDecodeError(code, "detail")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message_zh)
    assert error.message_en.isascii() and error.message_en.strip()
    assert str(error) == f"{code.value}: detail"


def test_an_error_survives_pickling_between_worker_processes():
    error = pickle.loads(pickle.dumps(ImageDecodeError(ImageErrorCode.TRUNCATED_IMAGE, "cut")))
    assert error.code is ImageErrorCode.TRUNCATED_IMAGE
    assert error.detail == "cut"


@pytest.mark.parametrize(
    "data",
    [
        "SECRET 110101199003077777 张三".encode() * 10,
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", b"SECRET") + b"SECRET" * 10,
        b"\xff\xd8\xff\xe0SECRET" * 10,
    ],
)
def test_the_error_detail_never_quotes_the_file(data):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    assert b"SECRET" not in str(caught.value).encode()
    assert "SECRET" not in repr(caught.value.detail)


@pytest.mark.parametrize(
    ("raised", "code"),
    [(ValueError("boom"), ImageErrorCode.TRUNCATED_IMAGE), (MemoryError(), ImageErrorCode.TOO_MANY_PIXELS)],
)
def test_unexpected_failures_inside_pillow_become_error_codes(monkeypatch, raised, code):
    def broken_load(self):
        raise raised

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    expect_error(code, encode(noise_rgb(80, 80), "PNG"))


def _valid_small_files() -> list[bytes]:
    img = photo_like_rgb(64, 64)
    return [
        encode(img, "JPEG"),
        encode(img, "PNG"),
        encode(img, "WEBP"),
        encode(img, "BMP"),
        encode(img.convert("P"), "PNG", transparency=3),
        with_orientation(img, "JPEG", 6),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(_valid_small_files()),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_damaged_variants_of_valid_files_never_raise_anything_but_decode_errors(base, edits, cut):
    data = bytearray(base)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data) + 1]
    try:
        result = decode_image(bytes(data))
    except ImageDecodeError as error:
        assert error.message_zh and error.message_en
    else:
        assert result.image.dtype == np.uint8 and result.image.ndim == 3 and result.image.shape[2] == 3
        assert result.image.flags.c_contiguous


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=2_000))
def test_arbitrary_bytes_never_raise_anything_but_decode_errors(data):
    with contextlib.suppress(ImageDecodeError):
        decode_image(data)


# --- decode_file ---------------------------------------------------------------------------


def test_decode_file_reads_a_real_jpeg(tmp_path):
    path = tmp_path / "card.jpg"
    path.write_bytes(with_orientation(red_top_left(), "JPEG", 6))
    result = decode_file(path)
    assert_bgr(result, 100, 160)
    assert result.format == "JPEG"
    assert decode_file(str(path)).exif_orientation == 6


def test_decode_file_on_a_missing_path_is_unreadable(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        decode_file(tmp_path / "missing.jpg")
    assert caught.value.code is ImageErrorCode.UNREADABLE_FILE
    assert caught.value.message_zh == "无法读取文件"


def test_decode_file_on_a_directory_is_unreadable(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        decode_file(tmp_path)
    assert caught.value.code is ImageErrorCode.UNREADABLE_FILE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_decode_file_on_a_named_pipe_is_unreadable_and_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ImageDecodeError) as caught:
        decode_file(fifo)
    assert caught.value.code is ImageErrorCode.UNREADABLE_FILE


def test_decode_file_on_an_empty_file_is_empty(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ImageDecodeError) as caught:
        decode_file(path)
    assert caught.value.code is ImageErrorCode.EMPTY_FILE


def test_decode_file_refuses_a_big_file_before_reading_it(tmp_path):
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(2 * 1024**3)  # sparse: 2 GiB on paper, nothing on disk
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError) as caught:
            decode_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code is ImageErrorCode.FILE_TOO_LARGE
    assert peak < 1024 * 1024


def test_decode_file_applies_the_same_limits_as_decode_image(tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(encode(noise_rgb(10, 10), "PNG"))
    with pytest.raises(ImageDecodeError) as caught:
        decode_file(path)
    assert caught.value.code is ImageErrorCode.IMAGE_TOO_SMALL


# --- speed ---------------------------------------------------------------------------------


def test_a_1280x960_jpeg_decodes_quickly():
    data = encode(photo_like_rgb(1280, 960), "JPEG", quality=90)
    decode_image(data)
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        decode_image(data)
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[3] < 0.05  # ~6 ms on a laptop; generous for shared CI runners


# --- decoding bounded by what the scan needs (issue 11, finding 4) ---------------------------


def test_a_large_jpeg_is_reduced_while_it_is_decoded_and_never_exceeds_the_long_side():
    data = encode(photo_like_rgb(4000, 3000), "JPEG", quality=85)
    result = decode_image(data, DecodeLimits(long_side=1000))
    height, width = result.image.shape[:2]
    assert max(width, height) <= 1000
    assert max(width, height) >= 750  # reduced to the bound, not far below it
    assert width / height == pytest.approx(4 / 3, rel=0.01)
    assert result.original_size == (4000, 3000)
    assert any("1/4 scale" in note for note in result.notes), result.notes
    assert result.image.flags.c_contiguous


def test_a_jpeg_reduced_at_decode_still_shows_the_same_picture():
    data = encode(stripes_rgb(3000, 1800), "JPEG", quality=95)
    image = decode_image(data, DecodeLimits(long_side=600)).image
    h, w = image.shape[:2]
    # BGR: red, green, blue thirds survive the reduction
    assert patch_mean(image, slice(h // 4, 3 * h // 4), slice(0, w // 4))[2] > 200
    assert patch_mean(image, slice(h // 4, 3 * h // 4), slice(w // 3 + 20, 2 * w // 3 - 20))[1] > 200
    assert patch_mean(image, slice(h // 4, 3 * h // 4), slice(3 * w // 4, w))[0] > 200


def test_a_square_jpeg_just_under_twice_the_bound_is_still_reduced():
    # 1990 // 1000 == 1: a "scale at least the bound" rule would decode all 4 MP; 1/2 (995) is close enough
    data = encode(photo_like_rgb(1990, 1990), "JPEG", quality=80)
    result = decode_image(data, DecodeLimits(long_side=1000, max_decoded_pixels=1_000_000))
    assert max(result.image.shape[:2]) <= 1000
    assert any("1/2 scale" in note for note in result.notes), result.notes


def test_exif_rotation_and_reduction_together_keep_the_bound_and_the_turn():
    data = with_orientation(red_top_left(2400, 1600), "JPEG", 6, quality=95)
    image = decode_image(data, DecodeLimits(long_side=600)).image
    h, w = image.shape[:2]
    assert h > w and max(h, w) <= 600
    assert patch_mean(image, slice(0, h // 8), slice(w - w // 8, w))[2] > 180  # red now top-right


def test_a_png_over_the_long_side_is_downscaled_after_decoding():
    data = encode(stripes_rgb(2000, 1000), "PNG")
    result = decode_image(data, DecodeLimits(long_side=500))
    assert_bgr(result, 500, 250)
    assert result.original_size == (2000, 1000)
    assert any("downscaled" in note for note in result.notes), result.notes


def test_a_huge_small_png_over_the_decoded_pixel_cap_is_refused_before_decoding():
    # the finding: 116 KB of PNG declaring 6300x6300 (under the 40 MP guard) cost 316 MB per request
    data = blank_one_bit_png(6_300, 6_300)
    assert len(data) < 200_000
    allocated_before = pillow_images_allocated()
    error = expect_error(ImageErrorCode.TOO_MANY_PIXELS, data, DecodeLimits(max_decoded_pixels=16_000_000))
    assert pillow_images_allocated() == allocated_before
    assert "6300x6300" in error.detail


def test_the_decoded_pixel_cap_can_name_its_own_code():
    data = blank_one_bit_png(3_000, 2_000)
    limits = DecodeLimits(max_decoded_pixels=4_000_000, over_decoded_pixels=ImageErrorCode.FRAME_TOO_LARGE)
    error = expect_error(ImageErrorCode.FRAME_TOO_LARGE, data, limits)
    assert error.message_zh


def test_a_jpeg_reduced_under_the_decoded_pixel_cap_is_accepted():
    # 12 MP as stored, 3 MP once reduced: the cap is on what is decoded, not on what is declared
    data = encode(photo_like_rgb(4000, 3000), "JPEG", quality=80)
    result = decode_image(data, DecodeLimits(long_side=1920, max_decoded_pixels=4_000_000))
    assert max(result.image.shape[:2]) <= 1920


def test_without_a_long_side_nothing_is_reduced():
    data = encode(photo_like_rgb(1200, 800), "JPEG", quality=80)
    assert_bgr(decode_image(data, DecodeLimits()), 1200, 800)


def test_the_new_limits_must_be_positive():
    with pytest.raises(ValueError):
        DecodeLimits(long_side=0)
    with pytest.raises(ValueError):
        DecodeLimits(max_decoded_pixels=0)


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_a_truncated_jpeg_is_still_refused_when_decoded_at_an_eighth(keep):
    data = encode(photo_like_rgb(4000, 3000), "JPEG", quality=85)
    expect_error(ImageErrorCode.TRUNCATED_IMAGE, data[: int(len(data) * keep)], DecodeLimits(long_side=500))
