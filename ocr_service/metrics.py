"""The service's Prometheus collectors, in one place so the app, the service and workers share them.

``/metrics`` (``app.py``) exposes the default registry of the serving process. In-process scans
count there directly; Celery workers run in other processes and count in their own registry
(scrape them separately, or rely on the API-side request metrics).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "ocr_http_requests_total", "HTTP requests by route template, method and status.", ["route", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "ocr_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["route", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
)
SCANS = Counter("ocr_scans_total", "Finished automatic scans by decision.", ["decision"])
SCAN_SECONDS = Histogram(
    "ocr_scan_duration_seconds", "Pipeline time of one scan.", buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
)
QUEUE_WAIT_SECONDS = Histogram(
    "ocr_queue_wait_seconds",
    "From upload (attempt queued) to the start of its scan.",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0),
)
QUALITY_CHECKS = Counter("ocr_quality_checks_total", "Live quality checks by outcome.", ["ok"])
