"""Real-name verification: a case (``Verification``), its uploads and scans, and the identity it yields.

``models`` holds the tables, ``service`` is the only code that writes them, ``routes`` is the
HTTP surface and ``tasks`` the Celery entry point.
"""
