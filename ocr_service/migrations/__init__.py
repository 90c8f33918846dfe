"""Alembic migrations of the service's schema (applied by ``ocr-service db upgrade`` and on ``serve``).

New revision, against a database at head::

    alembic -c ocr_service/migrations/alembic.ini revision --autogenerate -m "what changed"

then read the generated file: it is code that runs on production data.
"""
