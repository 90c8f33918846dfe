"""Schema-driven fuzzing of the whole HTTP API (issue 11): schemathesis generates requests from the
OpenAPI document (valid and invalid bodies, query values, headers, path ids) for every operation,
sends them through the real app on a temporary SQLite data dir with a key holding every scope, and
the test fails on any 5xx.

The number of examples per operation is bounded (``OCR_FUZZ_EXAMPLES``, default 25) so CI stays
short; a longer run is the same test with a larger value, e.g.
``OCR_FUZZ_EXAMPLES=200 bash scripts/test.sh tests/ocr_service/test_api_fuzz.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.ocr_service.api_harness import make_settings, reset_process_singletons

FUZZ_EXAMPLES = int(os.environ.get("OCR_FUZZ_EXAMPLES", "25"))
ALL_SCOPES = ("client", "reviewer", "admin", "identity:full", "unit_reviewer")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key

    reset_process_singletons()
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{tmp_path / 'data' / 'ocr.db'}"
    app = create_app(make_settings(tmp_path, database_url, log_level="WARNING"))
    with app.state.db.session_scope() as session:
        _key, secret = create_api_key(session, "fuzz: every scope", ALL_SCOPES)
    yield app, secret
    reset_process_singletons()


# The committed document (test_api.py checks it equals what the app serves), loaded at collection
# so every operation is its own test case.
schema = schemathesis.openapi.from_path(Path(__file__).resolve().parents[2] / "docs" / "openapi.json")


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a CI failure reproduces locally
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(case, fuzz_app: tuple[object, str]) -> None:
    app, secret = fuzz_app
    response = case.call(app=app, headers={"Authorization": f"Bearer {secret}"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])
