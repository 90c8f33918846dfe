"""The hosted capture page in Chromium with a fake camera: how fast the applicant gets feedback and a result.

Starts the app under uvicorn (embedded SQLite, in-process scans, a temporary data dir), then
for each run creates a verification and a capture link and opens the page in headless Chromium
whose camera plays a ``.y4m`` made from the sample photos: a dark card (15 frames at 5 fps, the
hint 光线太暗) then the clean card 0001 (the page takes it by itself). Per run, from the page's
own figures (``window.captureStats``):

* first hint: ms from navigation start to the first hint shown;
* hints/s: hints shown per second while checking (one frame in flight at a time);
* live check, round trip: the page's ms from grabbing a frame to the answer;
* live check, server: ``elapsed_ms`` of each answer (decode + check of the 960 px frame);
* upload to result: ms from sending the full-resolution still to showing the decision.

    python benchmarks/capture_page.py            # 5 runs
    python benchmarks/capture_page.py --runs 10
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import OUT_DIR, machine_info, median, percentile, print_table, write_json

CHROMIUM = "/usr/bin/chromium"
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "set"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path):
    import uvicorn

    from ocr_service.app import create_app
    from ocr_service.auth import create_api_key
    from ocr_service.config import Settings
    from ocr_service.crypto import generate_key

    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'ocr.db'}",
        encryption_key=generate_key(),
        result_wait_seconds=20.0,
        rate_limit_per_minute_key=10_000,
        rate_limit_per_minute_subject=10_000,
        log_level="WARNING",
    )
    app = create_app(settings)
    with app.state.db.session_scope() as session:
        _key, secret = create_api_key(session, "benchmark", ["client"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}", secret


def claim() -> dict[str, str]:
    import json

    for line in (SAMPLES / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        if label["file"] == "0001_front_clean.jpg":
            return {"name": label["claim"]["name"], "document_number": label["claim"]["id_number"]}
    raise SystemExit("0001_front_clean.jpg has no label")


def one_run(playwright, stream: Path, api, index: int) -> dict:
    body = {"subject_id": f"bench-{index}", "document_type": "resident_id", "method": "auto", "claim": claim()}
    verification_id = api.post("/v1/verifications", json=body).json()["id"]
    link = api.post(f"/v1/verifications/{verification_id}/capture-sessions").json()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={stream}",
        ],
    )
    try:
        page = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"]).new_page()
        page.goto(link["url"])
        page.wait_for_selector("#result[data-status]", timeout=120_000)
        figures = page.evaluate("() => window.captureStats")
        status = page.get_attribute("#result", "data-status")
    finally:
        browser.close()
    times = figures["hintTimes"]
    checking_s = (times[-1] - times[0]) / 1000 if len(times) > 1 else float("nan")
    return {
        "status": status,
        "captured": figures["captured"],
        "first_hint_ms": figures["firstHintMs"],
        "hints": figures["hints"],
        "hints_per_s": (len(times) - 1) / checking_s if checking_s else float("nan"),
        "round_trip_ms": figures["checkMs"],
        "server_ms": figures["serverMs"],
        "upload_to_result_ms": figures["resultMs"] - figures["uploadStartedMs"],
        "video": figures.get("video"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import httpx
    from playwright.sync_api import sync_playwright

    from samples.video import camera_stream

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        stream = camera_stream(
            tmp_path / "dark-then-clean.y4m",
            [(SAMPLES / "0028_front_low_light.jpg", 15), (SAMPLES / "0001_front_clean.jpg", 40)],
        )
        server, base, secret = start_server(tmp_path / "data")
        runs = []
        try:
            with (
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as api,
                sync_playwright() as playwright,
            ):
                for index in range(args.runs):
                    runs.append(one_run(playwright, stream, api, index))
        finally:
            server.should_exit = True
            from ocr_service.queue import dispatch

            dispatch.drain(60)

    rows = [
        [
            str(i + 1),
            run["status"],
            run["captured"],
            run["first_hint_ms"],
            run["hints_per_s"],
            median(run["round_trip_ms"]),
            median(run["server_ms"]),
            percentile(run["server_ms"], 95),
            run["upload_to_result_ms"],
        ]
        for i, run in enumerate(runs)
    ]
    all_server = [ms for run in runs for ms in run["server_ms"]]
    summary = [
        "median",
        "",
        "",
        median(r["first_hint_ms"] for r in runs),
        median(r["hints_per_s"] for r in runs),
        median(ms for r in runs for ms in r["round_trip_ms"]),
        median(all_server),
        percentile(all_server, 95),
        median(r["upload_to_result_ms"] for r in runs),
    ]
    print_table(
        "Capture page, headless Chromium, fake camera (dark card, then 0001 clean), 390×844",
        [
            "run",
            "result",
            "shot",
            "first hint ms",
            "hints/s",
            "check round trip ms",
            "live check server ms",
            "server p95 ms",
            "upload→result ms",
        ],
        [*rows, summary],
        caption=f"camera {runs[0]['video'] if runs else '?'}; frames sent at 960 px; {len(all_server)} frames checked",
    )
    out = write_json(OUT_DIR / "capture_page.json", {"machine": machine_info(), "runs": runs})
    print(f"raw figures: {out}")


if __name__ == "__main__":
    main()
