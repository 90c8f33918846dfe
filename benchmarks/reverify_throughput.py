"""Re-verification throughput, and what a running batch does to a live scan's latency.

One run, one machine, PostgreSQL (a fresh database, dropped afterwards) and Redis (a key
prefix of its own):

1. ``--cases`` stored cases are inserted (``tests/ocr_service/reverify_cases.seed_cases``:
   a few committed sample photos reused, each case with its own encrypted blob).
2. One live worker (``ocr-service worker --queues live``) runs for the whole benchmark. Live
   latency idle: ``--live-scans`` uploads, one after the other, each timed from submit to the
   attempt being recorded (the same path as an API upload after the photo is stored).
3. For each batch worker count in ``--workers`` (default 1,2): that many ``ocr-service worker
   --queues batch --nice 10`` processes, a job over every stored case, live uploads timed
   continuously while it runs, cases/s from the job's own started/finished times.

Prints a table (median, p90 live latency; cases/s; cases/s per worker process; peak RSS of the
worker processes) and writes benchmarks/out/reverify_throughput.json.

    python benchmarks/reverify_throughput.py                   # 1,000 cases, 1 and 2 batch workers
    python benchmarks/reverify_throughput.py --cases 200 --workers 1,2
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import OUT_DIR, machine_info, percentile, print_table, write_json
from benchmarks.api_load import create_postgres_database, drop_postgres_database

REDIS_URL = "redis://127.0.0.1:6379/14"
BATCH_NICE = 10


def process_group_peak_rss_mb(pgid: int) -> float:
    """The largest peak RSS (VmHWM) of any process in a worker's process group (main or pool child)."""
    peak = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            continue
    return round(peak, 1)


def live_scan_ms(settings) -> float:
    """One applicant upload scanned by the live worker, submit to recorded, in ms."""
    from ocr_service.queue import dispatch
    from ocr_service.verification.service import wait_for_attempt
    from tests.ocr_service.worker_process import upload_sample

    upload = upload_sample(settings, "0005_front_clean.jpg")
    started = time.perf_counter()
    dispatch.submit(upload.attempt_id, settings)
    assert wait_for_attempt(upload.attempt_id, 60), "live scan did not finish in 60 s"
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="batch worker process counts to measure")
    parser.add_argument("--live-scans", type=int, default=15, help="idle live scans (the baseline)")
    parser.add_argument("--chunk-size", type=int, default=25)
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]

    from ocr_service.db import session_scope, utcnow
    from ocr_service.jobs import reverify
    from ocr_service.logs import configure_logging
    from tests.ocr_service.reverify_cases import seed_cases
    from tests.ocr_service.worker_process import RedisNamespace, WorkerProcess, installed, service_settings, worker_env

    configure_logging("WARNING", True)
    selection = reverify.Selection(until=(utcnow() - timedelta(days=1)).date())
    tmp = Path(tempfile.mkdtemp(prefix="reverify-bench-"))
    database_url = create_postgres_database()
    broker = RedisNamespace(REDIS_URL, f"reverify-bench-{secrets.token_hex(4)}:")
    results: dict = {"machine": machine_info(), "cases": args.cases, "runs": []}
    rows = []
    try:
        settings = service_settings(tmp, database_url, broker)
        with installed(settings):
            started = time.monotonic()
            # Stored two days ago; the job selects up to yesterday, so the live uploads the
            # benchmark makes (stored cases too, once scanned) stay out of the batch.
            seed_cases(args.cases, created_at=utcnow() - timedelta(days=2))
            print(f"seeded {args.cases} stored cases in {time.monotonic() - started:.1f} s", file=sys.stderr)
            live = WorkerProcess(worker_env(settings), tmp / "live.log", "--queues", "live")
            try:
                live.wait_for(r'"worker_process_ready"', 90)
                live_scan_ms(settings)  # warm-up
                idle = [live_scan_ms(settings) for _ in range(args.live_scans)]
                live_rss = process_group_peak_rss_mb(live.proc.pid)
                rows.append(_row("live scan, idle", idle, None, None, live_rss))
                results["live_idle_ms"] = idle
                for count in worker_counts:
                    batch = [
                        WorkerProcess(
                            worker_env(settings),
                            tmp / f"batch{count}-{i}.log",
                            "--queues",
                            "batch",
                            "--nice",
                            str(BATCH_NICE),
                        )
                        for i in range(count)
                    ]
                    try:
                        for worker in batch:
                            worker.wait_for(r'"worker_process_ready"', 90)
                        with session_scope() as session:
                            job = reverify.create_job(
                                session, selection, created_by="bench", chunk_size=args.chunk_size
                            )
                            reverify.start_job(session, job.id)
                        during: list[float] = []
                        stop = threading.Event()

                        def sample_live(during=during, stop=stop) -> None:
                            while not stop.is_set():
                                during.append(live_scan_ms(settings))
                                stop.wait(0.2)

                        sampler = threading.Thread(target=sample_live, daemon=True)
                        sampler.start()
                        finished = reverify.wait_until_finished(job.id, timeout=3600)
                        stop.set()
                        sampler.join(60)
                        elapsed = (finished.finished_at - finished.started_at).total_seconds()
                        cases_per_s = finished.finished_cases / elapsed
                        batch_rss = max(process_group_peak_rss_mb(w.proc.pid) for w in batch)
                    finally:
                        for worker in batch:
                            worker.stop()
                    assert finished.total == args.cases and finished.finished_cases == args.cases, finished
                    rows.append(
                        _row(
                            f"live scan, during batch x{count}",
                            during,
                            cases_per_s,
                            cases_per_s / count,
                            max(batch_rss, process_group_peak_rss_mb(live.proc.pid)),
                        )
                    )
                    results["runs"].append(
                        {
                            "batch_workers": count,
                            "cases": finished.finished_cases,
                            "failed": finished.failed,
                            "seconds": round(elapsed, 1),
                            "cases_per_s": round(cases_per_s, 2),
                            "live_during_ms": during,
                            "live_p50_ratio": round(percentile(during, 50) / percentile(idle, 50), 2),
                            "batch_worker_peak_rss_mb": batch_rss,
                        }
                    )
            finally:
                live.stop()
    finally:
        broker.delete_keys()
        drop_postgres_database(database_url)
    idle_median = percentile(results["live_idle_ms"], 50)
    print_table(
        f"Re-verification throughput over {args.cases} stored cases, and live-scan latency",
        ["", "n", "median ms", "p90 ms", "median vs idle", "cases/s", "cases/s per core", "peak RSS MB"],
        [[*r[:4], f"{r[2] / idle_median:.2f}x", *r[4:]] for r in rows],
        caption=f"{os.cpu_count()} CPUs; one live worker; batch workers at nice {BATCH_NICE}, one process and "
        "one ONNX thread each (per core = per batch worker process); RSS = largest worker process",
    )
    write_json(OUT_DIR / "reverify_throughput.json", results)
    return 0


def _row(label: str, latencies: list[float], rate: float | None, per: float | None, rss: float) -> list:
    return [
        label,
        len(latencies),
        round(percentile(latencies, 50)),
        round(percentile(latencies, 90)),
        f"{rate:.2f}" if rate else "",
        f"{per:.2f}" if per else "",
        f"{rss:.0f}",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
