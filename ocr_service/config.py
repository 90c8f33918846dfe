"""The one settings object: every knob comes from an ``OCR_``-prefixed environment variable.

Nested thresholds use ``__``: ``OCR_QUALITY__MIN_SHARPNESS=10``. ``ocr-service config`` prints
the effective values with secrets hidden.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.decode import DecodeLimits
from pipelines.quality import QualityThresholds
from pipelines.reasons import ImageErrorCode
from pipelines.scan import ScanSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCR_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("./data")
    # --- persistence -----------------------------------------------------------------
    # Empty: SQLite (WAL) at {data_dir}/ocr.db. PostgreSQL: postgresql+psycopg://user@host/db
    database_url: str = ""
    # --- work queue --------------------------------------------------------------------
    # Empty: the embedded in-process worker pool. redis://127.0.0.1:6379/0: Celery workers.
    broker_url: str = ""
    result_wait_seconds: float = Field(3.0, ge=0, le=60)
    inprocess_workers: int = Field(2, ge=1, le=32)
    # Seconds a message may stay unacknowledged without a heartbeat before Redis hands it to
    # another worker. Every worker refreshes the messages it holds every third of this
    # (``celery_app.UnackedHeartbeat``), so a scan (seconds) or a batch chunk (minutes) is never
    # redelivered while it runs, and a killed worker's scan restarts within about 1.2x this.
    celery_visibility_timeout: int = Field(30, ge=1)
    # How long a task keeps retrying a transient database or Redis error (exponential back-off,
    # at most 10 s apart) before it gives up and leaves the attempt to the outbox sweeper.
    task_retry_window_seconds: float = Field(300.0, ge=0)
    # How often every worker and API process checks the broker: the first answer after an outage
    # (or from a restarted Redis) re-publishes every queued attempt (``dispatch.RequeueSweeper``).
    outbox_poll_seconds: float = Field(2.0, gt=0, le=60)
    # Prepended to every Redis key of the queue (kombu ``global_keyprefix``), so several
    # deployments -- or concurrent test runs -- can share one Redis database without seeing
    # each other's tasks. Empty: plain queue names (``live``, ``batch``).
    broker_key_prefix: str = ""
    # --- personal data -----------------------------------------------------------------
    # base64 of 32 random bytes; when empty the key is read from (or, for the embedded
    # default, generated into) encryption_key_file.
    encryption_key: str = ""
    encryption_key_file: Path | None = None
    retention_days: int = Field(90, ge=1)
    # --- the flow ----------------------------------------------------------------------
    # Failed automatic attempts per subject and episode before manual review (the seeds: "too many");
    # an episode ends when the subject withdraws a manual request.
    max_failed_attempts: int = Field(5, ge=1, le=50)
    # Automatic scans of one subject in any 24 hours, over all its episodes: withdrawing a manual
    # request restarts the failure count above (003: 撤回后可重新自动认证), so this is what keeps a
    # subject from having the pipeline run without end. 15 = three full episodes a day.
    max_daily_attempts: int = Field(15, ge=1, le=500)
    rate_limit_per_minute_key: int = 600
    rate_limit_per_minute_subject: int = 30
    # Callbacks are always signed: with no secret, deliveries are refused (logged), never sent unsigned.
    webhook_secret: str = ""
    # Comma-separated hosts (as written in the callback URL) that may be called over plain http;
    # empty: https only. For a receiver inside the same private network without TLS.
    webhook_allow_http_hosts: str = ""
    # Callbacks to private, loopback or link-local addresses (10/8, 127/8, 169.254/16, fc00::/7 ...),
    # checked when the URL is set and after DNS resolution at delivery. Off: a client key's URL
    # must never reach the cloud metadata service or the service's own network.
    webhook_allow_private_targets: bool = False
    webhook_max_retries: int = 5
    # --- API keys (issue 11) -----------------------------------------------------------------
    # Lifetime of a new (or newly rotated) key; 0: keys never expire. A year makes forgotten keys
    # die on their own while leaving a partner a comfortable window to rotate.
    api_key_days: int = Field(365, ge=0, le=10 * 365)
    # Default hours a rotated key's old secret keeps working (`keys rotate --grace-hours`).
    api_key_rotation_grace_hours: int = Field(24, ge=0, le=30 * 24)
    # First retry delay for a failed callback; doubles per retry (1+2+4+8+16 s over 5 retries
    # rides out a receiver restart without holding events for long).
    webhook_backoff_seconds: float = Field(1.0, ge=0)
    ocr_engine: Literal["rapidocr", "paddle"] = "rapidocr"
    # One ONNX Runtime thread per worker process gives the best throughput on small CPUs
    # (benchmarks/scan_speed.py); raise it only for a single-worker, latency-bound setup.
    ocr_threads: int = Field(1, ge=1, le=64)
    max_upload_bytes: int = 20 * 1024 * 1024
    # JSON request bodies (create a verification, review decisions, declarations) are a few KB;
    # 1 MB leaves room for long notes and is refused before parsing, not after 20 MB were parsed.
    max_json_bytes: int = Field(1024 * 1024, ge=1024)
    # Declaration attachments (PDF/JPEG/PNG): a scanned multi-page certificate is a few MB;
    # the request body is still capped by max_upload_bytes.
    declaration_max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1)
    # Exam projects: with none of a kind open and none set up for the current (Beijing) year, a
    # declaration of that kind seeds "<kind>-<year>" open the whole year, so a deployment that has not
    # set up projects keeps working. Off: the admin API (/v1/declarations/admin/projects) must create them.
    declaration_default_projects: bool = True
    # --- the printed notice and its public check page (issue 12) -------------------------------
    # Where the public reaches this service (scheme, host, optional path prefix), e.g.
    # https://rc.example.gov.cn: the notice's QR code holds {public_base_url}/check/{code}, and a
    # phone scanning it needs an absolute address. Empty: the address the notice was requested at
    # (right on one machine; behind a proxy or a mini-program backend, set it).
    public_base_url: str = ""
    # Check-page requests (found or not) per client address per minute. A clerk checks a notice
    # or two a minute; 20 leaves a queue room while a guesser gets 20 tries a minute against
    # 16 random hex characters (2^64 codes).
    public_check_per_minute: int = Field(20, ge=1, le=10_000)
    # --- the hosted capture page (issue 14) ------------------------------------------------
    # Lifetime of a capture link (POST /v1/verifications/{id}/capture-sessions). Long enough to find
    # the card and retake a few times; short, because the link alone opens that verification's uploads.
    capture_session_minutes: int = Field(30, ge=1, le=24 * 60)
    # Live-check frames per capture link per minute. The page sends about 4 a second (240 a minute);
    # 600 leaves room for a faster phone and stops a script from using the link as a free quality API.
    capture_frames_per_minute: int = Field(600, ge=1, le=10_000)
    # --- work-unit confirmation codes (issue 11) ----------------------------------------------
    # Wrong codes within the window, counted per subject, per work unit (across every subject and
    # client key: the guess-with-fresh-subject-ids attack) and per client key (across units).
    # Reaching any limit locks that counter. 5 per subject leaves room for typos; 20 per unit lets
    # a unit's applicants mistype on a busy morning; 50 per client key covers an app's many
    # applicants. Against a 10-character code (31^10 values) even the unit's budget is hopeless.
    unit_code_window_seconds: int = Field(900, ge=1, le=24 * 3600)
    unit_code_max_failures_per_subject: int = Field(5, ge=1, le=1000)
    unit_code_max_failures_per_unit: int = Field(20, ge=1, le=10_000)
    unit_code_max_failures_per_client: int = Field(50, ge=1, le=100_000)
    # The first lockout's length (the window's); each further lockout of the same counter doubles
    # it up to the maximum. A unit that keeps being guessed at is locked 4 h at a time, which
    # bounds how long a guesser can keep its applicants out once they stop.
    unit_code_lockout_seconds: int = Field(900, ge=1, le=24 * 3600)
    unit_code_lockout_max_seconds: int = Field(4 * 3600, ge=1, le=7 * 24 * 3600)
    # Decompression-bomb guard: a 40 MP photo is already larger than any phone camera's.
    max_pixels: int = 40_000_000
    # --- decoding bounded by what the scan needs (issue 11: a 116 KB 6300x6300 PNG cost 316 MB) ---
    # Longer side of the frame a photo is decoded to. The scan rectifies the card to 856x540
    # (10 px/mm) and the capture check wants the card's long side >= 1/4 of the frame's
    # (quality.min_coverage 0.25), so at 3000 px the smallest accepted card still spans >= 750 px
    # and a normally framed one (half the frame or more) >= 1500 px: more than the rectified card
    # uses. A 40 MP JPEG is decoded at 1/2 scale (libjpeg DCT scaling), never at full size.
    decode_long_side: int = Field(3000, ge=640)
    # Pixels decoded at full size when the format cannot be reduced while decoding (PNG, WebP,
    # BMP): 16 MP is a 4608x3456 photo, more than any screenshot (iPad Pro 2732x2048 = 5.6 MP) or
    # a 600 dpi scan of a card (2000x1300); a 40 MP PNG would hold ~360 MB while decoding.
    # Over it: 422 ``too_many_pixels``.
    max_decoded_pixels: int = Field(16_000_000, ge=1)
    # The live quality check (/v1/quality) finds the card on a 400 px copy and judges a
    # 428x270 half-size card, so a camera preview frame (<= 1920x1080, 2 MP) is all it needs.
    # A JPEG is reduced to quality_long_side while decoding; any other format over
    # quality_max_pixels is refused with 422 ``frame_too_large``.
    quality_max_pixels: int = Field(4_000_000, ge=1)
    quality_long_side: int = Field(1920, ge=320)
    # Decodes (and the quality check on the decoded frame) that run at once in the API process;
    # the others wait up to decode_wait_seconds, then get 503 ``server_busy`` with Retry-After.
    # 2 = the cores of the reference machine: a decode is CPU-bound, more at once only adds
    # frames in memory (benchmarks/upload_memory.py). A decode takes 15-300 ms, so 10 s of
    # waiting covers a burst of ~40 large uploads before anyone is turned away.
    decode_slots: int = Field(2, ge=1, le=64)
    decode_wait_seconds: float = Field(10.0, ge=0, le=300)
    quality: QualityThresholds = QualityThresholds()
    min_readable_confidence: float = ScanSettings.min_readable_confidence
    min_field_confidence: float = ScanSettings.min_field_confidence
    reject_confidence: float = ScanSettings.reject_confidence
    confident_char_threshold: float = ScanSettings.confident_char_threshold
    # Read the address too (OCR_READ_ADDRESS=true). Off by default: no decision and no consumer
    # uses it, it is personal data we then need not keep, and its lines cost more recognition
    # time than all other fields together (benchmarks/scan_speed.py scan-1t vs scan-1t-addr).
    read_address: bool = ScanSettings.read_address
    # --- manual review (issue 4) ----------------------------------------------------------
    # A claimed case is held this long unless the open case page renews it (every minute);
    # 15 min covers a careful look at a foreign passport without stranding a closed tab's case.
    review_lease_minutes: int = Field(15, ge=1, le=240)
    # Console sessions end after this long without a request (the console shows personal data).
    review_session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    # An approval that overrides a failed automatic check (mismatch, invalid number) needs a
    # second reviewer's confirmation.
    review_four_eyes: bool = True
    # A case a reviewer releases is not handed back to that same reviewer for this long: "Release"
    # then "Take next" must move on. Other reviewers may claim it at once. One lease's length.
    review_release_cooldown_minutes: int = Field(15, ge=0, le=24 * 60)
    # An admin's assignment of a case to a named reviewer holds this long (a working shift), so a
    # case assigned to someone who is away goes back to everyone instead of waiting for them.
    review_assignment_hours: int = Field(8, ge=1, le=7 * 24)
    # The sign-in form's server-signed CSRF token is refused after this long (the page then
    # offers a fresh form): a working day's tab left open, not a token harvested for later.
    review_signin_token_max_age_minutes: int = Field(60, ge=1, le=24 * 60)
    # --- console sign-in throttling (issue 11) ----------------------------------------------
    # Wrong passwords for one username before it is locked (whether or not the account exists),
    # and from one client address across usernames before the address is locked. 5 leaves room
    # for typos; 20 lets a shared office address survive a few colleagues' typos.
    review_signin_max_failures: int = Field(5, ge=1, le=100)
    review_signin_max_failures_per_address: int = Field(20, ge=1, le=1000)
    # The first lockout's length; each further lockout of the same username/address doubles it,
    # up to the maximum: a reviewer who mistyped waits a minute, a guesser who keeps on gets
    # about 5 tries an hour per username once the lock reaches an hour.
    review_signin_lockout_seconds: int = Field(60, ge=1, le=24 * 3600)
    review_signin_lockout_max_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    # --- behind a reverse proxy (issue 11) ---------------------------------------------------
    # Comma-separated IPs/CIDRs of the proxies whose X-Forwarded-Proto/-For are believed (console
    # cookies get Secure when the proxy says https; `serve` hands the same list to uvicorn, which
    # then reports the client's own address). Empty: no proxy is trusted, the headers are ignored.
    trusted_proxies: str = ""
    # Always mark console cookies Secure, whatever the request looks like: for a TLS proxy that
    # is not in trusted_proxies. Plain-http sign-in then stops working, as it should.
    cookie_secure: bool = False
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"not an absolute http(s) address without query or fragment: {value!r}")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for entry in _split_list(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR network: {entry!r}") from None
        return value

    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in _split_list(self.trusted_proxies))

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'ocr.db').resolve()}"

    @property
    def effective_key_file(self) -> Path:
        return self.encryption_key_file or self.data_dir / "secret.key"

    def scan_settings(self) -> ScanSettings:
        return ScanSettings(
            quality=self.quality,
            min_readable_confidence=self.min_readable_confidence,
            min_field_confidence=self.min_field_confidence,
            reject_confidence=self.reject_confidence,
            confident_char_threshold=self.confident_char_threshold,
            read_address=self.read_address,
        )

    def decode_limits(self) -> DecodeLimits:
        """Limits for a photo that is scanned (uploads, the scan itself, the reviewer's card view)."""
        return DecodeLimits(
            max_bytes=self.max_upload_bytes,
            max_pixels=self.max_pixels,
            max_decoded_pixels=self.max_decoded_pixels,
            long_side=self.decode_long_side,
        )

    def quality_decode_limits(self) -> DecodeLimits:
        """Limits for one camera frame sent to the live quality check."""
        return DecodeLimits(
            max_bytes=self.max_upload_bytes,
            max_pixels=self.max_pixels,
            max_decoded_pixels=self.quality_max_pixels,
            over_decoded_pixels=ImageErrorCode.FRAME_TOO_LARGE,
            long_side=self.quality_long_side,
        )

    def public_dump(self) -> dict:
        """Effective settings for display: the key and secrets hidden, URL passwords masked."""
        data = self.model_dump(mode="json")
        for name in ("encryption_key", "webhook_secret"):
            if data.get(name):
                data[name] = "***"
        for name in ("database_url", "broker_url"):
            url = data.get(name) or ""
            if "@" in url and "//" in url:
                scheme, rest = url.split("//", 1)
                credentials, host = rest.rsplit("@", 1)
                if ":" in credentials:
                    data[name] = f"{scheme}//{credentials.split(':', 1)[0]}:***@{host}"
        return data


def _split_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


@lru_cache(maxsize=1)
def _settings_from_environment() -> Settings:
    return Settings()


_process_settings: Settings | None = None


def get_settings() -> Settings:
    """This process's settings: the ones ``create_app`` installed, else read from the environment once."""
    return _process_settings or _settings_from_environment()


def set_settings(settings: Settings | None) -> None:
    """Install (or, with None, forget) the process-wide settings, like ``db.set_database``.

    ``create_app(settings)`` calls it so that code off the request path (the in-process scan
    pool, webhooks) runs with the same settings as the app that queued the work.
    """
    global _process_settings
    _process_settings = settings
