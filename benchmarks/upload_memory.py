"""Server memory under a burst of huge-dimension uploads (issue 11, finding 4).

Starts the real service (``ocr-service serve``: uvicorn, SQLite in a temporary data dir, scans
on the in-process pool) and sends bursts of ``--concurrency`` simultaneous requests, one burst
per scenario:

* ``quality png``  — ``POST /v1/quality`` with the finding's file: a ~116 KB RGB PNG of
  6300 x 6300 (39.7 MP, under the 40 MP guard);
* ``quality jpeg`` — ``POST /v1/quality`` with a 40 MP JPEG (a sample card photo enlarged to
  7300 x 5475, a few MB);
* ``upload jpeg``  — ``POST /v1/verifications/{id}/images`` with the same 40 MP JPEG, each on a
  fresh verification (so each upload is also scanned in the background);
* ``upload png``   — the upload route with the 6300 x 6300 PNG.

The server's resident set is sampled from ``/proc/<pid>/status`` every 10 ms; the table shows
the peak during each burst (and its background scans), the RSS once the burst and its scans
are done and the process idled ``--settle`` seconds, and the request latencies. Target: peak
RSS < 1.5 GB throughout.

    python benchmarks/upload_memory.py                     # this checkout, limits as configured
    python benchmarks/upload_memory.py --no-limits         # same code, the limits set out of the way
    python benchmarks/upload_memory.py --source /tmp/base  # another checkout (git worktree) as baseline

``--no-limits`` raises every decode bound to the 40 MP guard and allows 64 decodes at once; the
only thing it cannot turn off is the heap trim after a burst, so for the true "before" run the
code of the commit before the change with ``--source`` (``git worktree add /tmp/base <ref>``).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import OUT_DIR, ROOT, load_labels, machine_info, percentile, print_table, write_json
from benchmarks.api_load import free_port, stop, wait_ready

SAMPLE_SET = ROOT / "samples" / "set"
TARGET_PEAK_MB = 1536  # 1.5 GB
NO_LIMITS = {
    "OCR_DECODE_LONG_SIDE": "100000",
    "OCR_MAX_DECODED_PIXELS": "40000000",
    "OCR_QUALITY_MAX_PIXELS": "40000000",
    "OCR_QUALITY_LONG_SIDE": "100000",
    "OCR_DECODE_SLOTS": "64",
    "OCR_DECODE_WAIT_SECONDS": "300",
}


# --------------------------------------------------------------------------- inputs


def finding_png(width: int = 6_300, height: int = 6_300) -> bytes:
    """An all-black 8-bit RGB PNG built row by row: 119 MB of pixels in ~116 KB of file, like the finding's."""
    import struct
    import zlib

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + 3 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def forty_mp_jpeg() -> tuple[bytes, dict]:
    """A committed card photo (front, accept) enlarged to 7300 x 5475 = 39.97 MP, and its claim."""
    from PIL import Image

    label = next(
        lb for lb in load_labels(SAMPLE_SET) if lb["side"] == "front" and lb.get("expected_decision") == "accept"
    )
    with Image.open(SAMPLE_SET / label["file"]) as img:
        big = img.convert("RGB").resize((7300, 5475), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=85)
    claim = {"name": label["claim"]["name"], "document_number": label["claim"]["id_number"]}
    return buffer.getvalue(), claim


# --------------------------------------------------------------------------- the server

_CREATE_KEY = """
from ocr_service import db
from ocr_service.auth import create_api_key
db.upgrade({url!r})
database = db.Database({url!r})
with database.session_scope() as session:
    print(create_api_key(session, "upload-memory benchmark", ["client"])[1])
database.dispose()
"""


def create_client_key(source: Path, env: dict[str, str], database_url: str) -> str:
    """A client key made by the server's own code (its migrations may differ from this checkout's)."""
    done = subprocess.run(
        [sys.executable, "-c", _CREATE_KEY.format(url=database_url)],
        env=env, cwd=source, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def start_server(source: Path, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from ocr_service.cli import app; app()", "serve", "--host", "127.0.0.1"]
    log = log_path.open("wb")
    # cwd: ``python -c`` puts the working directory first on sys.path, so the server runs that checkout
    return subprocess.Popen(
        [*cmd, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=source, start_new_session=True
    )


# --------------------------------------------------------------------------- sampling


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples VmRSS of one process every ``interval`` seconds; ``peak()`` since the last ``reset()``."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = _status_kib(self.pid, "VmRSS")
            except OSError:
                return
            with self._lock:
                self._peak = max(self._peak, rss)

    def now_mb(self) -> float:
        return _status_kib(self.pid, "VmRSS") / 1024

    def reset(self) -> None:
        with self._lock:
            self._peak = _status_kib(self.pid, "VmRSS")

    def peak_mb(self) -> float:
        with self._lock:
            return self._peak / 1024


# --------------------------------------------------------------------------- scenarios


def _error_code(response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""


def burst(http, count: int, send) -> tuple[list[float], Counter]:
    """``count`` requests released together; latencies (ms) and "status code" counts."""
    barrier = threading.Barrier(count)

    def one(i: int) -> tuple[float, str]:
        barrier.wait()
        started = time.perf_counter()
        response = send(i)
        elapsed = (time.perf_counter() - started) * 1000
        code = _error_code(response) if response.status_code >= 400 else ""
        return elapsed, f"{response.status_code} {code}".strip()

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    return [r[0] for r in results], Counter(r[1] for r in results)


def wait_scans_done(http, verification_ids: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pending = list(verification_ids)
    while pending and time.monotonic() < deadline:
        still = []
        for vid in pending:
            body = http.get(f"/v1/verifications/{vid}").json()
            attempts = body.get("attempts") or []
            if attempts and attempts[-1].get("status") in ("queued", "running"):
                still.append(vid)
        pending = still
        if pending:
            time.sleep(0.5)
    return not pending


def run(args: argparse.Namespace) -> dict:
    import httpx

    png = finding_png()
    jpeg, claim = forty_mp_jpeg()
    print(f"inputs: PNG 6300x6300 {len(png) >> 10} KB, JPEG 7300x5475 {len(jpeg) >> 20} MB", flush=True)

    source = Path(args.source).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="upload-memory-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    env.update(
        {
            "OCR_DATA_DIR": str(tmp / "data"),
            "OCR_LOG_LEVEL": "WARNING",
            "OCR_RESULT_WAIT_SECONDS": "0",  # the upload answers after its decode; the scan is measured by RSS
            "OCR_RATE_LIMIT_PER_MINUTE_KEY": "10000000",
            "OCR_RATE_LIMIT_PER_MINUTE_SUBJECT": "10000000",
            "OCR_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "PYTHONPATH": str(source),
        }
    )
    if args.no_limits:
        env.update(NO_LIMITS)
    (tmp / "data").mkdir()
    secret = create_client_key(source, env, f"sqlite:///{tmp / 'data' / 'ocr.db'}")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = start_server(source, env, port, tmp / "serve.log")
    rows = []
    try:
        wait_ready(base_url, serve)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=600) as http, RssSampler(serve.pid) as rss:
            # one warm-up request of each kind: models loaded, first-call allocations made
            http.post("/v1/quality", files={"image": ("w.jpg", (SAMPLE_SET / "0001_front_clean.jpg").read_bytes())})
            time.sleep(args.settle)
            start_mb = rss.now_mb()
            print(f"server RSS after warm-up: {start_mb:.0f} MB", flush=True)
            scenarios = [
                ("quality png", "/v1/quality", png, "image/png"),
                ("quality jpeg", "/v1/quality", jpeg, "image/jpeg"),
                ("upload jpeg", "upload", jpeg, "image/jpeg"),
                ("upload png", "upload", png, "image/png"),
            ]
            for name, route, data, content_type in scenarios:
                ids: list[str] = []
                if route == "upload":
                    for _ in range(args.concurrency):
                        created = http.post(
                            "/v1/verifications",
                            json={
                                "subject_id": f"mem-{uuid.uuid4().hex}",
                                "document_type": "resident_id",
                                "method": "auto",
                                "claim": claim,
                            },
                        )
                        created.raise_for_status()
                        ids.append(created.json()["id"])

                    def send(i, data=data, content_type=content_type, ids=ids):
                        return http.post(
                            f"/v1/verifications/{ids[i]}/images",
                            files={"image": ("photo", data, content_type)},
                            data={"side": "front"},
                        )
                else:

                    def send(i, data=data, content_type=content_type):
                        return http.post("/v1/quality", files={"image": ("frame", data, content_type)})

                before_mb = rss.now_mb()
                rss.reset()
                started = time.perf_counter()
                latencies, codes = burst(http, args.concurrency, send)
                drained = wait_scans_done(http, ids, args.drain_timeout) if ids else True
                wall = time.perf_counter() - started
                peak_mb = rss.peak_mb()
                time.sleep(args.settle)
                after_mb = rss.now_mb()
                row = {
                    "scenario": name,
                    "requests": args.concurrency,
                    "answers": ", ".join(f"{n}x {c}" for c, n in codes.most_common()),
                    "rss_before_mb": round(before_mb),
                    "peak_rss_mb": round(peak_mb),
                    "rss_after_mb": round(after_mb),
                    "median_ms": round(percentile(latencies, 50)),
                    "p90_ms": round(percentile(latencies, 90)),
                    "wall_s": round(wall, 1),
                    "scans_drained": drained,
                }
                rows.append(row)
                print(row, flush=True)
            hwm_mb = _status_kib(serve.pid, "VmHWM") / 1024
    finally:
        stop(serve)
    return {
        "source": str(source),
        "limits": "off (--no-limits)" if args.no_limits else "as configured",
        "concurrency": args.concurrency,
        "rows": rows,
        "process_peak_rss_mb": round(hwm_mb),
        "target_peak_rss_mb": TARGET_PEAK_MB,
        "target_met": hwm_mb < TARGET_PEAK_MB,
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=20, help="simultaneous requests per burst")
    parser.add_argument("--no-limits", action="store_true", help="set the decode bounds out of the way")
    parser.add_argument("--source", default=str(ROOT), help="checkout whose code the server runs")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before 'RSS after'")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait for background scans")
    parser.add_argument("--out", default=None, help="JSON results (default benchmarks/out/upload_memory*.json)")
    args = parser.parse_args(argv)

    result = run(args)
    print_table(
        f"Server memory, {args.concurrency} concurrent huge-dimension requests per burst ({result['limits']})",
        ["scenario", "answers", "RSS before MB", "peak RSS MB", "RSS after MB", "median ms", "p90 ms", "wall s"],
        [
            [
                r["scenario"],
                r["answers"],
                r["rss_before_mb"],
                r["peak_rss_mb"],
                r["rss_after_mb"],
                r["median_ms"],
                r["p90_ms"],
                r["wall_s"],
            ]
            for r in result["rows"]
        ],
        caption=(
            f"target: peak RSS < 1.5 GB ({TARGET_PEAK_MB} MB) -- process peak (VmHWM) "
            f"{result['process_peak_rss_mb']} MB: {'met' if result['target_met'] else 'NOT met'}"
        ),
    )
    suffix = "_nolimits" if args.no_limits else ""
    if Path(args.source).resolve() != ROOT:
        suffix += "_source"
    out = write_json(args.out or OUT_DIR / f"upload_memory{suffix}.json", result)
    print(f"written {out}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
