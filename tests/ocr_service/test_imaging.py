"""ocr_service.imaging: bounded decodes in the API process and the process-wide cap on how many run at once.

Issue 11, finding 4: a 116 KB PNG of 6300x6300 cost 316 MB per ``/v1/quality`` request and 8 at once
took the server to 3.28 GB.
"""

# The fixtures come from the shared harness module: imported here, used as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import io
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from ocr_service.config import Settings
from ocr_service.errors import ApiError
from ocr_service.imaging import DecodeSlots, decode_slots
from ocr_service.verification.models import StoredImage
from tests.ocr_service.api_harness import CLEAN, harness, harness_callback_url, harness_settings, photo

WAIT = 30.0  # generous bound for a condition that normally holds within milliseconds


def big_small_png(width: int = 6_300, height: int = 6_300) -> bytes:
    """The finding's file: a valid all-black 1-bit PNG of width x height in ~100 KB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def big_jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((width, height)).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


# --- the slots ------------------------------------------------------------------------------------


def test_no_more_than_the_configured_number_of_decodes_run_at_once_and_the_rest_wait():
    slots = DecodeSlots(2, wait_seconds=WAIT)
    lock = threading.Condition()
    inside = 0
    most_inside = 0
    finished = 0
    release = threading.Event()
    errors: list[BaseException] = []

    def upload() -> None:
        nonlocal inside, most_inside, finished
        try:
            with slots.held():
                with lock:
                    inside += 1
                    most_inside = max(most_inside, inside)
                    lock.notify_all()
                assert release.wait(WAIT)
                with lock:
                    inside -= 1
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            with lock:
                finished += 1
                lock.notify_all()

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    with lock:
        assert lock.wait_for(lambda: inside == 2 and slots.waiting == 4, WAIT), (inside, slots.waiting)
    assert slots.in_use == 2
    release.set()
    with lock:
        assert lock.wait_for(lambda: finished == 6, WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    assert most_inside == 2  # the four others waited instead of failing
    assert slots.in_use == 0 and slots.waiting == 0


def test_a_wait_longer_than_the_bound_is_a_503_with_retry_after():
    slots = DecodeSlots(1, wait_seconds=0.05)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with slots.held():
            holding.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(WAIT)
        with pytest.raises(ApiError) as caught, slots.held():
            pass
    finally:
        release.set()
        holder.join(WAIT)
    error = caught.value
    assert (error.code, error.status) == ("server_busy", 503)
    assert error.message_zh == "系统繁忙，请稍后重试"
    assert int(error.headers["Retry-After"]) >= 1
    assert slots.in_use == 0 and slots.waiting == 0
    with slots.held():  # and the slot is usable again
        assert slots.in_use == 1


def test_the_process_shares_one_set_of_slots_per_configuration():
    settings = Settings(decode_slots=3, decode_wait_seconds=7)
    assert decode_slots(settings) is decode_slots(settings.model_copy())
    assert decode_slots(settings).slots == 3
    assert decode_slots(Settings(decode_slots=1)).slots == 1


def test_the_settings_bound_what_each_route_decodes():
    settings = Settings()
    assert settings.decode_limits().long_side == settings.decode_long_side
    assert settings.decode_limits().max_decoded_pixels == settings.max_decoded_pixels
    quality = settings.quality_decode_limits()
    assert quality.max_decoded_pixels == settings.quality_max_pixels < settings.max_decoded_pixels
    assert quality.long_side == settings.quality_long_side < settings.decode_long_side


# --- over HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def harness_settings() -> dict:
    # for every harness test in this module: one slot and a short wait, so a held slot shows at once
    return {"decode_slots": 1, "decode_wait_seconds": 0.05, "max_upload_bytes": 20 * 1024 * 1024}


def test_the_quality_check_refuses_a_frame_over_its_own_pixel_cap(harness):
    response = harness.request("POST", "/v1/quality", files={"image": ("f.png", big_small_png(), "image/png")})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "frame_too_large"
    assert error["message_zh"] == "画面尺寸过大，请使用相机预览画面检测"


def test_the_quality_check_reduces_a_full_size_jpeg_instead_of_refusing_it(harness):
    response = harness.request("POST", "/v1/quality", files={"image": ("f.jpg", big_jpeg(4000, 3000), "image/jpeg")})
    assert response.status_code == 200, response.text
    assert max(response.json()["frame_size"]) <= harness.settings.quality_long_side


def test_an_upload_of_a_huge_small_png_is_refused_and_nothing_is_stored(harness):
    created = harness.create("user-mem-1")
    response = harness.upload(created["id"], big_small_png())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "too_many_pixels"
    assert harness.count(StoredImage) == 0


def test_a_quality_check_that_waits_too_long_for_a_slot_is_a_503(harness):
    slots = decode_slots(harness.settings)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with slots.held():
            holding.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(WAIT)
        busy = harness.request("POST", "/v1/quality", files={"image": ("f.jpg", photo(CLEAN), "image/jpeg")})
    finally:
        release.set()
        holder.join(WAIT)
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"]["code"] == "server_busy"
    assert int(busy.headers["Retry-After"]) >= 1
    again = harness.request("POST", "/v1/quality", files={"image": ("f.jpg", photo(CLEAN), "image/jpeg")})
    assert again.status_code == 200, again.text
