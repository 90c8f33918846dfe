"""How many photos the API process decodes at once, and handing their memory back afterwards.

``pipelines.decode`` bounds what one decode may cost (issue 11, finding 4); this module bounds
how many run together. The route threads (up to 40 under uvicorn) each decoding a large photo
at once was what took the server to 3.28 GB: a ``DecodeSlots`` lets ``decode_slots`` of them
hold a decoded frame at a time. The others wait, in arrival order as far as the OS allows, up
to ``decode_wait_seconds``; then the request ends with 503 ``server_busy`` and Retry-After, so
a burst slows down instead of failing, and only a sustained overload is turned away.

After a slot is released the C heap is trimmed (glibc ``malloc_trim``): decoded frames are
allocated by Pillow and OpenCV with ``malloc``, and glibc keeps freed arenas mapped, so without
it the process stayed at 1.7 GB after the burst (benchmarks/upload_memory.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ocr_service.config import Settings
from ocr_service.errors import ApiError

__all__ = ["DecodeSlots", "decode_slots", "release_memory"]


class DecodeSlots:
    """A bounded number of decodes at once; a wait longer than ``wait_seconds`` is a 503."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._in_use = 0
        self._waiting = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            self._waiting += 1
        try:
            acquired = self._semaphore.acquire(timeout=self.wait_seconds)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise server_busy(self.wait_seconds)
        with self._lock:
            self._in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use -= 1
                last = self._in_use == 0
            self._semaphore.release()
            if last:  # trimming while another decode runs would only hand back what it reuses next
                release_memory()


def server_busy(wait_seconds: float) -> ApiError:
    error = ApiError(
        "server_busy",
        503,
        "too many photos are being processed; retry after the time in Retry-After",
        "系统繁忙，请稍后重试",
    )
    error.headers["Retry-After"] = str(max(1, math.ceil(wait_seconds)))
    return error


_slots: DecodeSlots | None = None
_slots_lock = threading.Lock()


def decode_slots(settings: Settings) -> DecodeSlots:
    """This process's slots; made anew only when the settings ask for a different number or wait."""
    global _slots
    with _slots_lock:
        wanted = (settings.decode_slots, settings.decode_wait_seconds)
        if _slots is None or (_slots.slots, _slots.wait_seconds) != wanted:
            _slots = DecodeSlots(*wanted)
        return _slots


def _load_malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def release_memory() -> None:
    """Give freed C-heap pages back to the OS (glibc only; elsewhere nothing to do)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
