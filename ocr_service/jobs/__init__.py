"""Work off the request path: the Celery app (``celery_app``) and the one submit function (``dispatch``).

``dispatch.submit(attempt_id)`` sends a scan to Celery workers when ``OCR_BROKER_URL`` is set and
runs it on an in-process thread pool otherwise; either way the work is
``verification.service.process_attempt(attempt_id)``.
"""
