"""Personal data at rest (issue 11, finding 7): no name, number, address or birth date of a run is stored in clear.

A realistic run goes through the real app (an automatic verification that reads a card, a
manual case a reviewer approves with a corrected name, a declaration), then every file of the
data directory (SQLite database, its -wal and -shm, the blobs, the key file) is read as bytes
and searched for every value of the run; on PostgreSQL every column of every row is searched.
Migration 0009 is tested on a database at 0008 with plaintext rows.
"""

from __future__ import annotations

import importlib
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from ocr_service.auth import create_api_key
from ocr_service.crypto import Cipher, generate_key, set_cipher
from ocr_service.db import make_engine
from ocr_service.queue import dispatch
from tests.ocr_service.api_harness import (  # noqa: F401
    CLEAN,
    LABELS,
    claim_of,
    harness,
    harness_callback_url,
    harness_settings,
    make_settings,
)
from tests.ocr_service.declaration_fixtures import PDF_BYTES

MANUAL = "0002_front_clean.jpg"
MANUAL_TYPO = "依明·玉苏甬"  # what the applicant typed; the reviewer corrects it to the card's name


def needles_of(labels: list[dict], extra_names: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every name, number, address and birth date of the run, in each form it could be stored in."""
    needles: dict[str, bytes] = {}
    for label in labels:
        fields = label["fields"]
        number = fields["id_number"]
        printed = number.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
        birth = date.fromisoformat(fields["birth"])
        for what, value in (
            ("name", fields["name"]),
            ("claimed name", label["claim"]["name"]),
            ("address", fields["address"]),
            ("address start", fields["address"][:8]),
            ("number", number),
            ("number as printed", printed),
            ("number, spaced", f"{number[:6]} {number[6:14]} {number[14:]}"),
            ("birth date", birth.isoformat()),
            ("birth date, compact", birth.strftime("%Y%m%d")),
            ("birth date, printed", f"{birth.year}年{birth.month}月{birth.day}日"),
        ):
            needles[f"{what} of {label['file']} (utf-8)"] = value.encode("utf-8")
            needles[f"{what} of {label['file']} (utf-16)"] = value.encode("utf-16-le")
    for name in extra_names:
        needles[f"{name!r} (utf-8)"] = name.encode("utf-8")
        needles[f"{name!r} (utf-16)"] = name.encode("utf-16-le")
    return needles


def run_the_flow(harness) -> None:  # noqa: F811
    """Verification, attempt, identity; a manual case approved with a correction; a declaration."""
    with harness.database.session_scope() as session:
        _key, reviewer = create_api_key(session, "review tool", ["reviewer"])
        _key, second = create_api_key(session, "second reviewer", ["reviewer"])
    reviewer_header = {"Authorization": f"Bearer {reviewer}"}

    created = harness.create("subject-auto", claim_of(CLEAN))
    answer = harness.upload(created["id"], CLEAN)
    assert answer.status_code == 200 and answer.json()["status"] == "verified", answer.text

    claim = {"name": MANUAL_TYPO, "document_number": LABELS[MANUAL]["claim"]["id_number"]}
    manual = harness.create("subject-manual", claim, method="manual")
    harness.upload(manual["id"], MANUAL)
    answer = harness.upload(manual["id"], MANUAL, side="back")  # a manual resident ID takes both sides
    assert answer.json()["status"] == "in_review", answer.text
    assert dispatch.drain(30)  # the background read of the photos the reviewer is shown
    case = harness.request("POST", "/v1/review/cases/claim", key=None, headers=reviewer_header).json()["case"]
    fields = {"name": LABELS[MANUAL]["fields"]["name"], "document_number": claim["document_number"]}
    approved = harness.request(
        "POST", f"/v1/review/cases/{case['id']}/approve", key=None, headers=reviewer_header, json={"fields": fields}
    )
    assert approved.status_code == 200, approved.text
    if approved.json()["case"]["status"] == "awaiting_confirmation":  # four-eyes: the identity waits sealed
        approved = harness.request(
            "POST", f"/v1/review/cases/{case['id']}/confirm", key=None, headers={"Authorization": f"Bearer {second}"}
        )
    assert approved.json()["verification_status"] == "verified", approved.text

    declared = harness.request("POST", "/v1/declarations", json={"subject_id": "subject-auto", "kind": "tcm_expertise"})
    assert declared.status_code == 201, declared.text
    assert declared.json()["applicant"]["name"] == LABELS[CLEAN]["fields"]["name"]
    attached = harness.request(
        "POST",
        f"/v1/declarations/{declared.json()['id']}/attachments",
        files={"file": (f"{LABELS[CLEAN]['fields']['name']}_证书.pdf", PDF_BYTES, "application/pdf")},
    )
    assert attached.status_code == 201, attached.text
    assert LABELS[CLEAN]["fields"]["name"] in attached.json()["filename"]


def the_run_happened(harness) -> None:  # noqa: F811
    # the values really are stored (and read back): the test is not passing on an empty database
    identity = harness.request("GET", "/v1/subjects/subject-manual/identity").json()
    assert identity["name"] == LABELS[MANUAL]["fields"]["name"]
    identity = harness.request("GET", "/v1/subjects/subject-auto/identity").json()
    assert identity["name"] == LABELS[CLEAN]["fields"]["name"]


def test_no_name_number_address_or_birth_date_of_a_run_is_in_any_file_of_the_data_dir(harness):  # noqa: F811
    if not harness.database.url.startswith("sqlite"):
        pytest.skip("the PostgreSQL variant reads the rows (below)")
    run_the_flow(harness)
    the_run_happened(harness)
    needles = needles_of([LABELS[CLEAN], LABELS[MANUAL]], (MANUAL_TYPO,))
    hits, scanned, names, reads = [], 0, set(), 0
    # twice: while the app runs (the -wal and -shm hold the recent pages), then once the last
    # connection has checkpointed the log into ocr.db
    for moment in ("running", "closed"):
        if moment == "closed":
            harness.database.dispose()
        for path in (path for path in harness.settings.data_dir.rglob("*") if path.is_file()):
            content = path.read_bytes()
            scanned += len(content)
            names.add(path.name)
            reads += 1
            hits += [f"{what} in {path.name} ({moment})" for what, needle in needles.items() if needle in content]
    summary = f"{reads} file reads ({len(names)} files), {scanned} bytes, {len(needles)} needles, {len(hits)} hits"
    print(f"pii-at-rest grep: {summary}")
    assert {"ocr.db", "ocr.db-wal"} <= names and len(names) >= 5  # the database, its log and the blobs
    assert scanned > 100_000
    assert hits == []
    # SQLite stores text as UTF-8 here, so the UTF-8 search above is the one that matters
    engine = make_engine(harness.database.url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA encoding").scalar() == "UTF-8"
    finally:
        engine.dispose()


def test_no_row_of_a_postgresql_database_holds_a_value_of_the_run_in_clear(harness):  # noqa: F811
    if harness.database.url.startswith("sqlite"):
        pytest.skip("the SQLite variant greps the files (above)")
    run_the_flow(harness)
    the_run_happened(harness)
    needles = {
        what: needle.decode("utf-8")
        for what, needle in needles_of([LABELS[CLEAN], LABELS[MANUAL]], (MANUAL_TYPO,)).items()
        if what.endswith("(utf-8)")
    }
    hits, cells = [], 0
    with harness.database.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    cells += 1
                    stored = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    hits += [f"{what} in {table}.{column}" for what, n in needles.items() if n.encode() in stored]
    print(f"pii-at-rest rows: {cells} non-null cells, {len(needles)} needles, {len(hits)} hits")
    assert cells > 100
    assert hits == []


# --- migration 0009 ----------------------------------------------------------------------------------------

PLAIN_RESULT = {
    "fields": {"name": "陶超淼", "address": "山西省晋东南地区沁源县石桥乡张家村11组", "birth_date": "1976-09-04"}
}


def _insert_plaintext_rows(connection) -> None:
    now = "2026-01-01 00:00:00"
    connection.execute(
        text(
            "INSERT INTO api_keys (id, name, key_prefix, key_hash, scopes, created_at)"
            " VALUES ('k1', 'app', 'ocr_', :hash, 'client', :now)"
        ),
        {"hash": "a" * 64, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO verifications (id, client_key_id, subject_id, document_type, method, status, claim_name,"
            " claim_number_enc, claim_number_index, created_at, updated_at, decision_reasons)"
            " VALUES ('v1', 'k1', 's1', 'resident_id', 'auto', 'verified', '陶超淼', :enc, :index, :now, :now, '[]')"
        ),
        {"enc": b"\x01x", "index": "0" * 64, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO stored_images (id, verification_id, sha256, content_type, size_bytes, created_at)"
            " VALUES ('i1', 'v1', :sha, 'image/jpeg', 1, :now)"
        ),
        {"sha": "f" * 64, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO attempts (id, verification_id, image_id, side, status, reasons, result, created_at,"
            " task_attempts) VALUES ('a1', 'v1', 'i1', 'front', 'done', '[]', :result, :now, 1)"
        ),
        {"result": json.dumps(PLAIN_RESULT, ensure_ascii=False), "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO verified_identities (id, client_key_id, subject_id, verification_id, name, sex, ethnicity,"
            " birth_date, document_type, number_enc, number_index, method, verified_at, flagged)"
            " VALUES ('id1', 'k1', 's1', 'v1', '陶超淼', '男', '汉族', :birth, 'resident_id', :enc, :index, 'auto',"
            " :now, false)"
        ),
        {"birth": date(1976, 9, 4), "enc": b"\x01x", "index": "0" * 64, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO declarations (id, number, kind, status, client_key_id, subject_id, identity_id,"
            " verification_id, applicant_name, applicant_sex, applicant_ethnicity, document_type, number_enc,"
            " flagged, created_at, updated_at) VALUES ('d1', 'D-1', 'tcm_expertise', 'draft', 'k1', 's1', 'id1',"
            " 'v1', '陶超淼', '男', '汉族', 'resident_id', :enc, false, :now, :now)"
        ),
        {"enc": b"\x01x", "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO declaration_attachments (id, declaration_id, blob_id, content_type, size_bytes, sha256,"
            " filename, created_at) VALUES ('f1', 'd1', 'b1', 'application/pdf', 1, :sha, '陶超淼_证书.pdf', :now)"
        ),
        {"sha": "f" * 64, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO review_cases (id, verification_id, origin, reasons, status, created_at, decision_comment)"
            " VALUES ('c1', 'v1', 'manual_method', '[]', 'decided', :now, '证件照片属于陶超淼本人')"
        ),
        {"now": now},
    )
    connection.execute(
        text(
            "INSERT INTO review_audit_log (at, actor, action, details, prev_hash, entry_hash)"
            " VALUES (:now, 'reviewer:a', 'correction', :details, :prev, :hash)"
        ),
        {
            "now": now,
            "details": json.dumps({"field": "name", "from": "陶超", "to": "陶超淼"}),
            "prev": "0" * 64,
            "hash": "1" * 64,
        },
    )


# what each converted column holds in the rows above, as the models read it back
EXPECTED = {
    ("verifications", "claim_name"): "陶超淼",
    ("attempts", "result"): PLAIN_RESULT,
    ("verified_identities", "name"): "陶超淼",
    ("verified_identities", "sex"): "男",
    ("verified_identities", "ethnicity"): "汉族",
    ("verified_identities", "birth_date"): date(1976, 9, 4),
    ("declarations", "applicant_name"): "陶超淼",
    ("declarations", "applicant_sex"): "男",
    ("declarations", "applicant_ethnicity"): "汉族",
    ("declaration_attachments", "filename"): "陶超淼_证书.pdf",
    ("review_cases", "decision_comment"): "证件照片属于陶超淼本人",
    ("review_audit_log", "details"): {"field": "name", "from": "陶超", "to": "陶超淼"},
}


def _plaintext(value) -> bytes:
    if isinstance(value, dict):
        return "陶超淼".encode()
    return (value.isoformat() if isinstance(value, date) else value).encode()


def test_migration_0009_encrypts_every_personal_column_of_an_older_database_and_downgrade_decrypts(
    database_url: str, tmp_path: Path
):
    from alembic import command

    from ocr_service.db import Base, alembic_config

    migration = importlib.import_module("ocr_service.migrations.versions.0009_pii_at_rest")
    assert {(table, column) for table, column, *_ in migration.COLUMNS} == set(EXPECTED)
    set_cipher(Cipher.from_settings(make_settings(tmp_path, database_url, encryption_key=generate_key())))
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(connection), "0008_unit_reviewer_scope")
            connection.commit()
            _insert_plaintext_rows(connection)
            connection.commit()
            command.upgrade(alembic_config(connection), "0009_pii_at_rest")
            connection.commit()
            for (table, column), value in EXPECTED.items():
                raw = connection.execute(text(f'SELECT "{column}" FROM "{table}"')).scalar_one()
                assert isinstance(raw, bytes | memoryview) and _plaintext(value) not in bytes(raw), (table, column)
            # the models read every value back (decrypted with the associated data of its column)
            for (table, column), value in EXPECTED.items():
                assert connection.execute(select(Base.metadata.tables[table].c[column])).scalar_one() == value

            command.downgrade(alembic_config(connection), "0008_unit_reviewer_scope")
            connection.commit()
            for (table, column), value in EXPECTED.items():
                raw = connection.execute(text(f'SELECT "{column}" FROM "{table}"')).scalar_one()
                if isinstance(value, dict):
                    raw = json.loads(raw) if isinstance(raw, str) else raw
                assert (str(raw) if isinstance(value, date) else raw) == (
                    value.isoformat() if isinstance(value, date) else value
                ), (table, column)
    finally:
        engine.dispose()
        set_cipher(None)
