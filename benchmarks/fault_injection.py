"""Fault injection under load: distributed mode through a killed worker, a Redis restart, a database cut.

One deployment on loopback -- ``ocr-service serve``, ``--live-workers`` live workers and one
batch worker, a Redis of its own on a spare port (AOF, ``appendfsync everysec``), PostgreSQL
(a fresh database) reached by serve and workers through a TCP proxy this script cuts -- and
``--clients`` closed-loop clients (``api_load.run_client``: create, upload, poll) running
throughout. The faults, one after the other, each followed by its recovery:

* ``worker_kill``  -- a live worker SIGKILLed (whole process group) while it scans; restarted.
* ``redis_down``   -- Redis SIGKILLed, kept down ``--redis-down`` s, started again on its AOF.
* ``db_cut``       -- the proxy refuses and resets every PostgreSQL connection ``--db-cut`` s.
* ``batch_kill``   -- a re-verification job over every stored case; its worker SIGKILLed mid-job.

Per fault it prints the requests the clients made in the fault's window (from its start until
it has recovered), their status codes, the accepted uploads lost (no finished attempt) and
duplicated (more than one attempt, or a scan run more than once), and the time to recovery:
from the end of the fault (the kill, Redis answering, the proxy back) until every attempt that
existed then is finished (for ``batch_kill``: until the killed chunk is back in the queue; the
job is then awaited and its count checked).

    .venv/bin/python benchmarks/fault_injection.py                   # 10 clients, default faults
    .venv/bin/python benchmarks/fault_injection.py --faults worker_kill,db_cut --db-cut 20
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import OUT_DIR, machine_info, print_table, write_json
from benchmarks.api_load import (
    ClientStats,
    _ocr_service_bin,
    create_client_key,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    load_samples,
    run_client,
    start,
    stop,
    wait_ready,
)
from tests.ocr_service.fault_tools import RedisServer, TcpProxy, wait_until

FAULTS = ("worker_kill", "redis_down", "db_cut", "batch_kill")


class Deployment:
    """serve + live workers + a batch worker on a Redis of its own, PostgreSQL behind a proxy."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from sqlalchemy import make_url

        self.args = args
        self.tmp = tmp
        self.database_url = create_postgres_database()
        url = make_url(self.database_url)
        self.proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
        self.redis = RedisServer(tmp / "redis").start()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
        self.env.update(
            {
                "OCR_DATA_DIR": str(tmp / "data"),
                "OCR_DATABASE_URL": proxied,
                "OCR_BROKER_URL": self.redis.url,
                "OCR_LOG_LEVEL": "INFO",
                "OCR_RESULT_WAIT_SECONDS": "3",
                "OCR_RATE_LIMIT_PER_MINUTE_KEY": "10000000",
                "OCR_RATE_LIMIT_PER_MINUTE_SUBJECT": "10000000",
                "OCR_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            }
        )
        os.environ["OCR_ENCRYPTION_KEY"] = self.env["OCR_ENCRYPTION_KEY"]  # create_client_key runs here
        self.secret = create_client_key(self.database_url)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.serve = start(
            [_ocr_service_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port)], self.env, tmp / "serve.log"
        )
        self.live = [self._worker("live", i) for i in range(args.live_workers)]
        self.batch = self._worker("batch", 0)
        wait_ready(self.base_url, self.serve)
        for i in range(len(self.live)):
            self._wait_worker(tmp / f"live{i}.log")
        self._wait_worker(tmp / "batch0.log")

    def _worker(self, queue: str, index: int) -> subprocess.Popen:
        cmd = [_ocr_service_bin(), "worker", "--queues", queue, "--concurrency", "1", "--loglevel", "info"]
        return start(cmd, self.env, self.tmp / f"{queue}{index}.log")

    def _wait_worker(self, log: Path) -> None:
        wait_until(lambda: b" ready." in log.read_bytes(), 120, 0.3, what=f"{log.name} ready")

    def restart_worker(self, queue: str, index: int) -> None:
        (self.tmp / f"{queue}{index}.log").rename(self.tmp / f"{queue}{index}.{time.time_ns()}.log")
        proc = self._worker(queue, index)
        if queue == "live":
            self.live[index] = proc
        else:
            self.batch = proc

    def close(self) -> None:
        for proc in [self.serve, *self.live, self.batch]:
            stop(proc)
        self.redis.stop()
        self.proxy.close()
        if not self.args.keep:
            with contextlib.suppress(Exception):
                drop_postgres_database(self.database_url)


# --------------------------------------------------------------------------- database checks


def _database(url: str):
    from ocr_service import db

    return db.Database(url)


def unfinished_before(database, when: datetime) -> int:
    from sqlalchemy import func, select

    from ocr_service.verification.models import Attempt, AttemptStatus

    with database.session_scope() as session:
        return session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.status.in_([AttemptStatus.QUEUED, AttemptStatus.RUNNING]), Attempt.created_at <= when)
        )


def scanning(log: Path) -> bool:
    """The worker has started a scan it has not finished (PostgreSQL shows no ``running`` row until it commits)."""
    text = log.read_text(errors="replace")
    return text.count('"scan_task_started"') > text.count('"scan_task_finished"')


def tally(database, accepted: set[str], drain_s: float = 300) -> dict[str, int]:
    """Lost: accepted upload without a finished attempt. Duplicated: more than one attempt, or scanned twice.

    Uploads accepted late in the window may still be queued: they get ``drain_s`` to finish first.
    """
    from sqlalchemy import select

    from ocr_service.verification.models import Attempt, AttemptStatus

    def read() -> dict[str, list[tuple[AttemptStatus, int]]]:
        rows: dict[str, list[tuple[AttemptStatus, int]]] = {}
        with database.session_scope() as session:
            for verification_id, status, runs in session.execute(
                select(Attempt.verification_id, Attempt.status, Attempt.task_attempts).where(
                    Attempt.verification_id.in_(list(accepted))
                )
            ):
                rows.setdefault(verification_id, []).append((status, runs))
        return rows

    unfinished = (AttemptStatus.QUEUED, AttemptStatus.RUNNING)
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: not any(s in unfinished for v in read().values() for s, _ in v), drain_s, 0.5, what="drained"
        )
    attempts = read()
    lost = sum(1 for v in accepted if not any(s == AttemptStatus.DONE for s, _ in attempts.get(v, [])))
    duplicated = sum(1 for v in accepted if len(attempts.get(v, [])) > 1 or any(r > 1 for _, r in attempts.get(v, [])))
    return {"lost": lost, "duplicated": duplicated}


# --------------------------------------------------------------------------- clients


class Load:
    def __init__(self, dep: Deployment, clients: int) -> None:
        self.stats = [ClientStats() for _ in range(clients)]
        samples = load_samples(8)
        self.deadline = time.monotonic() + 24 * 3600
        self.threads = [
            threading.Thread(
                target=self._client, args=(dep.base_url, dep.secret, samples, s, i), daemon=True, name=f"client{i}"
            )
            for i, s in enumerate(self.stats)
        ]
        for t in self.threads:
            t.start()

    def _client(self, base_url, secret, samples, stats, seed) -> None:
        while time.monotonic() < self.deadline:
            with contextlib.suppress(Exception):  # a few seconds at a time, so stop() is seen
                run_client(base_url, secret, samples, min(self.deadline, time.monotonic() + 2), stats, seed, 0.5)

    def snapshot(self) -> tuple[Counter, set[str]]:
        codes: Counter = Counter()
        accepted: set[str] = set()
        for s in self.stats:
            for _ in range(5):
                with contextlib.suppress(RuntimeError):
                    codes.update(dict(s.codes))
                    codes.update({f"! {k}": v for k, v in dict(s.errors).items() if k.startswith("transport")})
                    accepted.update(list(s.accepted))
                    break
        return codes, accepted

    def stop(self) -> None:
        self.deadline = 0
        for t in self.threads:
            t.join(120)  # a client may be in a 60 s request


# --------------------------------------------------------------------------- the faults


def worker_kill(dep: Deployment, database, args) -> float:
    wait_until(lambda: scanning(dep.tmp / "live0.log"), 60, 0.02, what="a scan in flight")
    os.killpg(dep.live[0].pid, signal.SIGKILL)
    dep.live[0].wait(10)
    ended = datetime.now(UTC)
    t0 = time.monotonic()
    dep.restart_worker("live", 0)
    wait_until(lambda: unfinished_before(database, ended) == 0, 900, 0.2, what="recovery")
    return time.monotonic() - t0


def redis_down(dep: Deployment, database, args) -> float:
    dep.redis.kill()
    time.sleep(args.redis_down)  # the fault's length is the parameter, not a wait on a condition
    dep.redis.start()
    ended = datetime.now(UTC)
    t0 = time.monotonic()
    wait_until(lambda: unfinished_before(database, ended) == 0, 900, 0.2, what="recovery")
    return time.monotonic() - t0


def db_cut(dep: Deployment, database, args) -> float:
    dep.proxy.cut()
    time.sleep(args.db_cut)  # the fault's length
    dep.proxy.restore()
    ended = datetime.now(UTC)
    t0 = time.monotonic()
    wait_until(lambda: unfinished_before(database, ended) == 0, 900, 0.2, what="recovery")
    return time.monotonic() - t0


def batch_kill(dep: Deployment, database, args) -> float:
    from ocr_service import config, db
    from ocr_service.config import Settings
    from ocr_service.jobs import reverify

    settings = Settings(database_url=dep.database_url, broker_url=dep.redis.url, data_dir=dep.tmp / "data")
    config.set_settings(settings)
    db.set_database(database)
    with database.session_scope() as session:
        # the cases of one sample's region: a job of a few dozen cases, a minute or two of work
        region = load_samples(1)[0].id_number[:6]
        selection = reverify.Selection(region=region)
        job = reverify.create_job(session, selection, created_by="fault-injection", chunk_size=5)
        total = reverify.start_job(session, job.id, settings)

    def done_cases() -> int:
        with database.session_scope() as session:
            return reverify.get_progress(session, job.id).finished_cases

    if total:
        wait_until(lambda: done_cases() >= 3, 300, 0.1, what="the job under way")
    killed_log = dep.tmp / "batch0.log"
    os.killpg(dep.batch.pid, signal.SIGKILL)
    dep.batch.wait(10)
    t0 = time.monotonic()
    in_flight = chunk_in_flight(killed_log)
    dep.restart_worker("batch", 0)
    # recovered: the killed chunk is back in the batch queue (it then runs after the chunks queued
    # before it), or running again, or nothing was in flight
    wait_until(lambda: in_flight is None or requeued(dep, in_flight), 900, 0.1, what="the killed chunk requeued")
    took = time.monotonic() - t0
    finished = reverify.wait_until_finished(job.id, 1800, database)
    counted = f"{finished.done + finished.failed} of {finished.total} cases counted once"
    print(f"  batch job: {finished.status}, {counted}, {time.monotonic() - t0:.0f} s after the kill", file=sys.stderr)
    return took


def chunk_in_flight(log: Path) -> str | None:
    """The task id of the chunk the worker started and did not finish."""
    import json

    started, finished = {}, set()
    for line in log.read_text(errors="replace").splitlines():
        if '"reverify_chunk_' not in line or "{" not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line[line.index("{") :])
            if record.get("event") == "reverify_chunk_started":
                started[record["chunk_no"]] = record["task_id"]
            elif record.get("event") == "reverify_chunk_finished":
                finished.add(record["chunk_no"])
    left = [task_id for chunk, task_id in started.items() if chunk not in finished]
    return left[-1] if left else None


def requeued(dep: Deployment, task_id: str) -> bool:
    import redis

    client = redis.Redis.from_url(dep.redis.url, socket_connect_timeout=1, socket_timeout=2)
    try:
        if any(task_id.encode() in raw for raw in client.lrange("batch", 0, -1)):
            return True
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()
    log = dep.tmp / "batch0.log"
    return log.exists() and task_id in log.read_text(errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--live-workers", type=int, default=2)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--redis-down", type=float, default=30.0, help="seconds Redis stays down")
    parser.add_argument("--db-cut", type=float, default=20.0, help="seconds the database stays cut")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of plain load before each fault")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and database")
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")

    tmp = Path(tempfile.mkdtemp(prefix="fault-injection-"))
    dep = Deployment(args, tmp)
    database = _database(dep.database_url)
    load = Load(dep, args.clients)
    rows, results = [], []
    try:
        for name in faults:
            time.sleep(args.settle)  # plain load between faults: the window starts at the fault
            codes_before, accepted_before = load.snapshot()
            t_start = time.monotonic()
            recovery_s = globals()[name](dep, database, args)
            codes_after, accepted_after = load.snapshot()
            window = codes_after - codes_before
            counts = tally(database, accepted_after - accepted_before)
            requests = sum(v for k, v in window.items() if not k.startswith("!"))
            codes = ", ".join(f"{k} x{v}" for k, v in sorted(window.items()) if not k.endswith((" 200", " 201")))
            result = {
                "fault": name,
                "window_s": round(time.monotonic() - t_start, 1),
                "requests": requests,
                "codes": dict(window),
                "accepted": len(accepted_after - accepted_before),
                **counts,
                "recovery_s": round(recovery_s, 1),
            }
            results.append(result)
            rows.append(
                [name, requests, codes or "-", result["accepted"], counts["lost"], counts["duplicated"], recovery_s]
            )
            print(f"{name}: {result}", file=sys.stderr)
    finally:
        load.stop()
        database.dispose()
        dep.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(
        f"Fault injection: {args.clients} clients, {args.live_workers} live + 1 batch worker, PostgreSQL, Redis AOF",
        ["fault", "requests", "codes other than 200/201", "accepted", "lost", "duplicated", "recovery s"],
        rows,
        caption="recovery: from the end of the fault until every attempt that existed then is finished",
    )
    write_json(OUT_DIR / "fault_injection.json", {"machine": machine_info(), "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
