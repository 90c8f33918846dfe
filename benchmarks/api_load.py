"""HTTP load on loopback: N concurrent clients against ``ocr-service serve``, embedded and distributed.

Each client repeats one applicant's cycle: create a verification, upload a committed sample
photo of a card front (``samples/set``), and — when the upload answers 202 — poll the
verification until its scan is decided, as the mini-program does. The loop is closed, so the
offered load adapts to what the service can scan and the run measures capacity, not how
fast a queue can grow.

Modes:

* ``embedded`` — ``ocr-service serve`` alone: SQLite (WAL) in a temporary data dir, scans on
  the in-process pool (``OCR_INPROCESS_WORKERS``).
* ``distributed`` — ``serve`` plus ``--workers`` Celery worker processes (``ocr-service
  worker``, concurrency 1 each) on Redis, with PostgreSQL (a fresh database created for the
  run on the local trust-auth server, dropped afterwards).

After the run the clients stop, the queue drains, and the database is checked: every
accepted upload (200/202) must have exactly one attempt, done, with a stored result.

    python benchmarks/api_load.py                       # both modes, 20 clients, 60 s each
    python benchmarks/api_load.py --duration 30 --clients 20 --mode distributed --workers 1,2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    OUT_DIR,
    ROOT,
    load_labels,
    machine_info,
    peak_rss_mb,
    percentile,
    print_table,
    write_json,
)

SAMPLE_SET = ROOT / "samples" / "set"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379"
REDIS_DB = 13  # a database number of its own; flushed at the start of a distributed run


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ocr_service_bin() -> str:
    candidate = Path(sys.executable).with_name("ocr-service")
    return str(candidate) if candidate.exists() else "ocr-service"


def start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    # own process group: a stop takes the uvicorn/celery children with it
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_ready(base_url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"serve not ready after {timeout:.0f} s")


def wait_workers(broker_url: str, count: int, timeout: float = 90) -> None:
    """Until ``count`` Celery workers answer a ping."""
    from celery import Celery

    app = Celery(broker=broker_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1.0) or []
            if len(replies) >= count:
                return
            time.sleep(0.5)
    finally:
        app.close()
    raise RuntimeError(f"fewer than {count} workers answered after {timeout:.0f} s")


# --------------------------------------------------------------------------- databases


def create_postgres_database() -> str:
    from sqlalchemy import create_engine, text

    name = f"ocr_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def create_client_key(database_url: str) -> str:
    from ocr_service import db
    from ocr_service.auth import create_api_key

    db.upgrade(database_url)
    database = db.Database(database_url)
    try:
        with database.session_scope() as session:
            _key, secret = create_api_key(session, "api-load benchmark", ["client"])
    finally:
        database.dispose()
    return secret


# --------------------------------------------------------------------------- clients


@dataclass
class Sample:
    path: Path
    name: str
    id_number: str
    data: bytes = b""


@dataclass
class ClientStats:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"create": [], "upload": [], "cycle": []})
    codes: Counter = field(default_factory=Counter)  # "upload 202", "create 201", ...
    errors: Counter = field(default_factory=Counter)  # "upload 503 queue_unavailable", "upload timeout"
    accepted: list[str] = field(default_factory=list)  # verification ids with a 200/202 upload
    decisions: Counter = field(default_factory=Counter)
    cycles: int = 0


def load_samples(count: int) -> list[Sample]:
    labels = [
        lb
        for lb in load_labels(SAMPLE_SET)
        if lb["side"] == "front" and lb.get("expected_decision") == "accept" and lb.get("claim")
    ]
    samples = [Sample(SAMPLE_SET / lb["file"], lb["claim"]["name"], lb["claim"]["id_number"]) for lb in labels[:count]]
    for sample in samples:
        sample.data = sample.path.read_bytes()
    if not samples:
        raise SystemExit(f"no front/accept samples with a claim in {SAMPLE_SET}")
    return samples


def _error_code(response) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return response.json()["error"]["code"]
    return ""


def run_client(
    base_url: str,
    secret: str,
    samples: list[Sample],
    deadline: float,
    stats: ClientStats,
    seed: int,
    poll_interval: float,
) -> None:
    import httpx

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        while time.monotonic() < deadline:
            sample = rng.choice(samples)
            cycle_start = time.perf_counter()
            try:
                start_t = time.perf_counter()
                response = http.post(
                    "/v1/verifications",
                    json={
                        "subject_id": f"load-{uuid.uuid4().hex}",
                        "document_type": "resident_id",
                        "method": "auto",
                        "claim": {"name": sample.name, "document_number": sample.id_number},
                    },
                )
                stats.latencies_ms["create"].append((time.perf_counter() - start_t) * 1000)
                stats.codes[f"create {response.status_code}"] += 1
                if response.status_code != 201:
                    stats.errors[f"create {response.status_code} {_error_code(response)}"] += 1
                    continue
                verification_id = response.json()["id"]

                start_t = time.perf_counter()
                response = http.post(
                    f"/v1/verifications/{verification_id}/images",
                    files={"image": (sample.path.name, sample.data, "image/jpeg")},
                    data={"side": "front"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                stats.latencies_ms["upload"].append((time.perf_counter() - start_t) * 1000)
                stats.codes[f"upload {response.status_code}"] += 1
                if response.status_code not in (200, 202):
                    stats.errors[f"upload {response.status_code} {_error_code(response)}"] += 1
                    continue
                stats.accepted.append(verification_id)
                body = response.json()
                decision = body.get("decision")
                while decision is None and body.get("attempt_status") in ("queued", "running"):
                    time.sleep(poll_interval)
                    poll = http.get(f"/v1/verifications/{verification_id}")
                    stats.codes[f"poll {poll.status_code}"] += 1
                    if poll.status_code != 200:
                        stats.errors[f"poll {poll.status_code} {_error_code(poll)}"] += 1
                        break
                    attempt = poll.json()["attempts"][-1]
                    decision = attempt.get("decision")
                    body = {"attempt_status": attempt["status"]}
                stats.decisions[decision or "none"] += 1
                stats.latencies_ms["cycle"].append((time.perf_counter() - cycle_start) * 1000)
                stats.cycles += 1
            except httpx.HTTPError as exc:
                stats.errors[f"transport {type(exc).__name__}"] += 1


# --------------------------------------------------------------------------- consistency


def check_consistency(database_url: str, accepted: list[str], drain_timeout: float) -> dict:
    """Wait until no attempt is queued/running, then: one done attempt with a result per accepted upload."""
    from sqlalchemy import func, select

    from ocr_service import db
    from ocr_service.verification.models import Attempt, AttemptStatus

    database = db.Database(database_url)
    unfinished_statuses = [AttemptStatus.QUEUED, AttemptStatus.RUNNING]
    start_t = time.monotonic()
    try:
        while True:
            with database.session_scope() as session:
                unfinished = session.scalar(
                    select(func.count()).select_from(Attempt).where(Attempt.status.in_(unfinished_statuses))
                )
            if not unfinished or time.monotonic() - start_t > drain_timeout:
                break
            time.sleep(0.5)
        drain_s = time.monotonic() - start_t
        per_verification: dict[str, list[tuple[str, bool]]] = {}
        with database.session_scope() as session:
            for verification_id, status, has_result in session.execute(
                select(Attempt.verification_id, Attempt.status, Attempt.result.is_not(None))
            ):
                per_verification.setdefault(verification_id, []).append((str(status), bool(has_result)))
            total_attempts = session.scalar(select(func.count()).select_from(Attempt))
    finally:
        database.dispose()
    accepted_set = set(accepted)
    lost = [v for v in accepted_set if not per_verification.get(v)]
    duplicated = [v for v in accepted_set if len(per_verification.get(v, [])) > 1]
    not_done = [
        v for v in accepted_set if any(status != "done" or not has for status, has in per_verification.get(v, []))
    ]
    return {
        "accepted_uploads": len(accepted),
        "attempts_in_db": total_attempts,
        "unfinished_after_drain": unfinished,
        "drain_s": round(drain_s, 1),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "not_done_or_no_result": len(not_done),
        "ok": not lost and not duplicated and not not_done and unfinished == 0 and total_attempts == len(accepted),
    }


# --------------------------------------------------------------------------- one mode


def run_mode(mode: str, args: argparse.Namespace, samples: list[Sample], workers: int = 0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"api-load-{mode}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    env.update(
        {
            "OCR_DATA_DIR": str(tmp / "data"),
            "OCR_LOG_LEVEL": "WARNING",
            "OCR_RESULT_WAIT_SECONDS": str(args.result_wait),
            # one key drives all the load; the per-key limit is not what is measured
            "OCR_RATE_LIMIT_PER_MINUTE_KEY": "10000000",
            "OCR_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
    )
    procs: list[subprocess.Popen] = []
    database_url = ""
    try:
        if mode == "distributed":
            import redis

            database_url = create_postgres_database()
            broker_url = f"{REDIS_URL}/{REDIS_DB}"
            redis.Redis.from_url(broker_url).flushdb()
            env["OCR_DATABASE_URL"] = database_url
            env["OCR_BROKER_URL"] = broker_url
        else:
            database_url = f"sqlite:///{tmp / 'data' / 'ocr.db'}"
            env["OCR_INPROCESS_WORKERS"] = str(args.inprocess_workers)
        secret = create_client_key(database_url)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        serve = start([_ocr_service_bin(), "serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp / "serve.log")
        procs.append(serve)
        if mode == "distributed":
            for i in range(workers):
                procs.append(start([_ocr_service_bin(), "worker", "--concurrency", "1"], env, tmp / f"worker{i}.log"))
            wait_workers(env["OCR_BROKER_URL"], workers)
        wait_ready(base_url, serve)

        stats = [ClientStats() for _ in range(args.clients)]
        started = time.monotonic()
        deadline = started + args.duration
        threads = [
            threading.Thread(
                target=run_client,
                args=(base_url, secret, samples, deadline, s, i, args.poll_interval),
                daemon=True,
            )
            for i, s in enumerate(stats)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        consistency = check_consistency(database_url, [v for s in stats for v in s.accepted], args.drain_timeout)
    finally:
        for proc in reversed(procs):
            stop(proc)
        if mode == "distributed" and database_url and not args.keep:
            with contextlib.suppress(Exception):
                drop_postgres_database(database_url)
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)

    merged = ClientStats()
    for s in stats:
        for k, values in s.latencies_ms.items():
            merged.latencies_ms[k].extend(values)
        merged.codes.update(s.codes)
        merged.errors.update(s.errors)
        merged.decisions.update(s.decisions)
        merged.accepted.extend(s.accepted)
        merged.cycles += s.cycles
    requests = sum(n for code, n in merged.codes.items())
    return {
        "mode": mode,
        "workers": f"{workers} workers" if mode == "distributed" else f"{args.inprocess_workers} threads",
        "clients": args.clients,
        "elapsed_s": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 2),
        "cycles": merged.cycles,
        "cycles_per_s": round(merged.cycles / elapsed, 2),
        "latency_ms": {
            k: {q: round(percentile(v, q), 1) for q in (50, 95, 99)} for k, v in merged.latencies_ms.items()
        },
        "codes": dict(sorted(merged.codes.items())),
        "uploads_202": merged.codes.get("upload 202", 0),
        "errors": dict(merged.errors),
        "decisions": dict(merged.decisions),
        "consistency": consistency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "distributed", "both"], default="both")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per mode")
    parser.add_argument(
        "--workers",
        default="2",
        help="Celery worker processes in distributed mode; a comma list (1,2) runs once per count",
    )
    parser.add_argument("--inprocess-workers", type=int, default=2, help="scan threads (embedded mode)")
    parser.add_argument("--result-wait", type=float, default=3.0, help="OCR_RESULT_WAIT_SECONDS for serve")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between status polls after a 202")
    parser.add_argument("--samples", type=int, default=8, help="distinct sample photos to upload")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, logs and PostgreSQL database")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "api_load.json")
    args = parser.parse_args(argv)

    samples = load_samples(args.samples)
    worker_counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    runs = [("embedded", 0)] if args.mode in ("embedded", "both") else []
    if args.mode in ("distributed", "both"):
        runs += [("distributed", n) for n in worker_counts]
    results = [run_mode(mode, args, samples, workers) for mode, workers in runs]

    rows = []
    for r in results:
        up, cy = r["latency_ms"]["upload"], r["latency_ms"]["cycle"]
        c = r["consistency"]
        rows.append(
            [
                r["mode"],
                str(r["workers"]),
                r["requests_per_s"],
                r["cycles_per_s"],
                up[50],
                up[95],
                up[99],
                cy[50],
                cy[95],
                str(r["uploads_202"]),
                ", ".join(f"{k}: {n}" for k, n in r["errors"].items()) or "none",
                f"{c['accepted_uploads']} / {c['attempts_in_db']} / lost {c['lost']} / dup {c['duplicated']}"
                + (" ok" if c["ok"] else " FAIL"),
            ]
        )
    print_table(
        f"API load: {args.clients} clients x {args.duration:.0f} s on loopback",
        [
            "mode",
            "scanners",
            "req/s",
            "scans/s",
            "upload p50 ms",
            "p95",
            "p99",
            "cycle p50 ms",
            "p95",
            "202s",
            "errors",
            "accepted / attempts / lost / dup",
        ],
        rows,
        caption=(
            "cycle = create + upload + poll until decided; req/s counts every HTTP request (polls included); "
            f"{machine_info()['cpus_available']} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
        ),
    )
    out = write_json(
        args.out, {"machine": machine_info(), "args": vars(args) | {"out": str(args.out)}, "results": results}
    )
    print(f"wrote {out} (peak RSS of the load generator {peak_rss_mb()} MiB)")
    return 0 if all(r["consistency"]["ok"] and not r["errors"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
