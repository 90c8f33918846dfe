"""The queue plumbing: the Celery app (``celery_app``), submitting work (``dispatch``) and its outbox sweeper.

``dispatch.submit(attempt_id)`` sends a scan to Celery workers when ``OCR_BROKER_URL`` is set and
runs it on an in-process thread pool otherwise; ``dispatch.submit_chunk(job_id, chunk_no)`` does
the same for a re-verification chunk on the ``batch`` queue. Tasks are sent by name
(``celery_app.SCAN_TASK``, ``celery_app.CHUNK_TASK``), and the in-process runners and the outbox
query are registered by the modules that own them (``verification.service``, ``jobs.reverify``):
this package imports nothing from ``verification`` or ``jobs``, so the dependency goes one way.
"""
