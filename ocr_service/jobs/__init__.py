"""Batch jobs: re-verification of stored cases (``reverify``), its Celery task (``reverify_tasks``) and routes.

The queue plumbing they run on (the Celery app, submitting, the outbox sweeper) is ``ocr_service.queue``.
"""
