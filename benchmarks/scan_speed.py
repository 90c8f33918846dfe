"""Speed benchmark: full scan vs. quality check vs. a naive full-photo OCR baseline.

Targets (the scan-speed issue):

* full scan of a 1280x960 photo: median <= 150 ms on one thread pinned to one core;
* at least 6x faster than the naive baseline (RapidOCR on the whole photo + a regex) in the
  same run;
* quality check alone (find_card + assess) on a 640x480 frame: median <= 15 ms;
* peak RSS of a scanning process <= 500 MB.

Every configuration runs in its own subprocess (this file with ``--worker CONFIG``) so its
peak RSS (``ru_maxrss``) and CPU affinity are its own. The photos are split into ``--rounds``
interleaved shares and every configuration runs on one share before any runs on the next, so
a change in machine load during the run hits all configurations alike (the naive/scan ratio
is "in the same run"). Photos are decoded once per image outside the timed region (decode
time is reported on its own line) and dropped after use, so the RSS is that of a process
scanning one photo at a time, not of a cache of 60 photos.

    python benchmarks/scan_speed.py                      # all configs, 60 photos
    python benchmarks/scan_speed.py --quick              # smoke run
    python benchmarks/scan_speed.py --json benchmarks/out/speed.json
    python benchmarks/scan_speed.py --baseline benchmarks/out/speed.json --configs scan-1t,naive-1t

The machine is shared and noisy: compare medians, not means or minima.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    OUT_DIR,
    ROOT,
    console,
    current_rss_mb,
    ensure_generated,
    fmt,
    fmt_pct,
    load_labels,
    machine_info,
    median,
    peak_rss_mb,
    pin_cpus,
    print_table,
    rate,
    timing_stats,
    write_json,
)

# name -> (kind, threads); threads is both the ONNX Runtime intra-op thread count and the
# number of CPUs the worker is pinned to.
CONFIGS: dict[str, tuple[str, int]] = {
    # the service's default: the decision fields only (the address is read when asked for)
    "scan-1t": ("scan", 1),
    "scan-2t": ("scan", 2),
    # with the address (ScanSettings(read_address=True)): what the address costs
    "scan-1t-addr": ("scan-addr", 1),
    "quality-1t": ("quality", 1),
    "naive-1t": ("naive", 1),
    "naive-2t": ("naive", 2),
}
PHOTO_SIZE = (1280, 960)  # (width, height) of the photos a full scan is timed on
FRAME_SIZE = (640, 480)  # live-preview frame for the quality check
MIX = "benchmark"

TARGET_SCAN_MS = 150.0
TARGET_SCAN_P95_MS = 600.0
TARGET_SCAN_MAX_MS = 1500.0
TARGET_QUALITY_MS = 15.0
TARGET_RSS_MB = 500.0
TARGET_SPEEDUP = 6.0

# The naive baseline's number: 6-digit division, birth date 18xx-20xx, sequence, check char.
ID_RE = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
_CJK_NAME_RE = re.compile(r"^[\u4e00-\u9fff·]{2,4}$")
_NON_CJK_RE = re.compile(r"[^\u4e00-\u9fff·]")
_LABELS = ("姓名", "性别", "民族", "出生", "住址", "公民身份号码", "签发机关", "有效期限")


# =========================================================================== naive baseline


def naive_fields(lines: list[tuple[float, float, str]]) -> tuple[str, str]:
    """(name, id_number) from full-photo OCR lines given as (top y, left x, text).

    The number is the first match of ``ID_RE`` over all text joined without spaces; the name
    is what follows 姓名 (on the same line or the next), else the first line of 2-4 CJK
    characters that is not a printed label.
    """
    ordered = [unicodedata.normalize("NFKC", t).replace(" ", "") for _, _, t in sorted(lines)]
    joined = "".join(ordered)
    found = ID_RE.search(joined)
    number = found.group(0).upper() if found else ""

    name = ""
    for i, text in enumerate(ordered):
        if "姓名" in text:
            rest = _NON_CJK_RE.sub("", text.split("姓名", 1)[1])
            if not rest and i + 1 < len(ordered):
                rest = _NON_CJK_RE.sub("", ordered[i + 1])
            if rest:
                name = rest
                break
    if not name:
        for text in ordered:
            if _CJK_NAME_RE.match(text) and not any(label in text for label in _LABELS):
                name = text
                break
    return name, number


# =========================================================================== worker


def _load_photo(path: Path, size: tuple[int, int]):
    """(BGR image at ``size``, decode ms, resized?). Decode goes through pipelines.decode when present."""
    import cv2

    t0 = time.perf_counter()
    try:
        from pipelines.decode import decode_file
    except ImportError:  # decode module still in progress: plain OpenCV
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot decode {path}") from None
    else:
        image = decode_file(path).image
    decode_ms = (time.perf_counter() - t0) * 1000
    resized = (image.shape[1], image.shape[0]) != size
    if resized:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, decode_ms, resized


def _select(records: list[dict], count: int) -> list[dict]:
    """The first ``count`` readable fronts (portrait side) photographed at exactly PHOTO_SIZE."""
    chosen = [
        r
        for r in records
        if r.get("side") == "front" and r.get("readable", True) and tuple(r.get("image_size", PHOTO_SIZE)) == PHOTO_SIZE
    ]
    return chosen[:count]


def photo_set(seed: int, count: int, jobs: int) -> Path:
    """benchmarks/out/speed-<seed>/, generated once with enough photos for ``count`` to be selected.

    The benchmark mix is ~80 % readable fronts and ~70 % of photos are 1280x960, so about half
    of a generated set qualifies; generate twice the count and grow it if that falls short.
    """
    generated = max(2 * count, 12)
    while True:
        directory = ensure_generated(seed, generated, MIX, OUT_DIR / f"speed-{seed}", extra_args=("--jobs", str(jobs)))
        if len(_select(load_labels(directory), count)) >= count or generated >= 8 * count:
            return directory
        generated *= 2


def run_worker(config: str, directory: Path, count: int, warmup: int, part: int, parts: int) -> dict[str, Any]:
    """Time one configuration on its share of the photos (every ``parts``-th, from ``part``); raw figures."""
    kind, threads = CONFIGS[config]
    cpus = pin_cpus(threads)  # before numpy / OpenCV / ONNX Runtime size their thread pools
    rss_start = current_rss_mb()

    records = _select(load_labels(directory), count)[part::parts]
    if not records:
        raise SystemExit(f"no readable 1280x960 front photos in {directory}")
    size = FRAME_SIZE if kind == "quality" else PHOTO_SIZE

    t0 = time.perf_counter()
    engine = None
    if kind == "quality":
        from pipelines.quality import check_frame

        def run(image, _record):
            return check_frame(image)[1]

    else:
        from pipelines.ocr import get_engine

        engine = get_engine("rapidocr", threads=threads)  # built once and warmed
        if kind in ("scan", "scan-addr"):
            from pipelines.scan import Claim, ScanSettings, scan

            scan_settings = ScanSettings(read_address=kind == "scan-addr")

            def run(image, record):
                fields = record.get("fields", {})
                return scan(image, engine, Claim(fields.get("name"), fields.get("id_number")), scan_settings)
        else:

            def run(image, _record):
                lines = [(min(y for _, y in d.box), min(x for x, _ in d.box), d.text) for d in engine.read_page(image)]
                return naive_fields(lines)

    load_ms = (time.perf_counter() - t0) * 1000
    rss_loaded = current_rss_mb()

    for record in records[:warmup]:
        image, _, _ = _load_photo(directory / record["file"], size)
        run(image, record)

    load_before = os.getloadavg()[0]
    raw: dict[str, Any] = {
        "latencies_ms": [],
        # process CPU time per image (all threads): wall >> CPU on one thread means the core
        # was taken away by another process
        "cpu_ms": [],
        "decode_ms": [],
        "stages_ms": {},
        "outcomes": Counter(),
        "files": [],
        "id_ok": [],
        "name_ok": [],
        "decision_ok": [],
        "misses": [],
    }
    resized = 0
    for record in records:
        image, dms, was_resized = _load_photo(directory / record["file"], size)
        raw["decode_ms"].append(round(dms, 2))
        resized += was_resized
        start, cpu_start = time.perf_counter(), time.process_time()
        out = run(image, record)
        raw["latencies_ms"].append(round((time.perf_counter() - start) * 1000, 2))
        raw["cpu_ms"].append(round((time.process_time() - cpu_start) * 1000, 2))
        raw["files"].append(record["file"])
        del image

        truth = record.get("fields", {})
        if kind == "quality":
            raw["outcomes"]["card found" if out.scores is not None else "no card"] += 1
            continue
        if kind in ("scan", "scan-addr"):
            for stage, ms in out.timings_ms.items():
                raw["stages_ms"].setdefault(stage, []).append(ms)
            decision = str(out.decision)
            raw["outcomes"][decision] += 1
            raw["decision_ok"].append(decision == str(record.get("expected_decision", "")))
            name = out.fields.value("name") if out.fields else ""
            number = out.fields.value("id_number") if out.fields else ""
        else:
            name, number = out
        raw["id_ok"].append(number == truth.get("id_number"))
        raw["name_ok"].append(name == truth.get("name"))
        if not (raw["id_ok"][-1] and raw["name_ok"][-1]):
            raw["misses"].append({"file": record["file"], "name": name, "id_number": number})

    raw.update(
        config=config,
        kind=kind,
        threads=threads,
        cpus=cpus,
        size=list(size),
        resized_to_size=resized,
        warmup=min(warmup, len(records)),
        load_ms=round(load_ms, 1),
        rss_start_mb=rss_start,
        rss_after_load_mb=rss_loaded,
        peak_rss_mb=peak_rss_mb(),
        loadavg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        engine=engine.name if engine is not None else None,
    )
    return raw


# =========================================================================== driver


def run_part(config: str, directory: Path, args: argparse.Namespace, part: int) -> dict[str, Any]:
    """One worker subprocess: ``config`` on photo share ``part`` of ``args.rounds``."""
    _, threads = CONFIGS[config]
    env = dict(os.environ)
    # Libraries that read a thread count from the environment get the pinned one.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=OUT_DIR, delete=False) as tmp:
        result_path = Path(tmp.name)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        config,
        "--dir",
        str(directory),
        "--count",
        str(args.count),
        "--warmup",
        str(args.warmup),
        "--part",
        f"{part}/{args.rounds}",
        "--result",
        str(result_path),
    ]
    print(f"[round {part + 1}/{args.rounds}] {config} on {threads} core(s) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=args.timeout)
        if proc.returncode != 0:
            return {"config": config, "error": f"worker exited {proc.returncode}"}
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except subprocess.TimeoutExpired:
        return {"config": config, "error": f"worker timed out after {args.timeout} s"}
    finally:
        result_path.unlink(missing_ok=True)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def summarize(config: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the rounds of one configuration into its figures (medians over all photos)."""
    errors = [p["error"] for p in parts if "error" in p]
    if errors:
        return {"config": config, "error": errors[0]}
    first = parts[0]

    def cat(key: str) -> list:
        return [x for p in parts for x in p[key]]

    latencies, n = cat("latencies_ms"), len(cat("latencies_ms"))
    stats = timing_stats(latencies)
    outcomes: Counter[str] = Counter()
    stages: dict[str, list[float]] = {}
    for p in parts:
        outcomes.update(p["outcomes"])
        for stage, values in p["stages_ms"].items():
            stages.setdefault(stage, []).extend(values)
    result: dict[str, Any] = {
        "config": config,
        "kind": first["kind"],
        "threads": first["threads"],
        "cpus": first["cpus"],
        "images": n,
        "rounds": len(parts),
        "size": first["size"],
        "resized_to_size": sum(p["resized_to_size"] for p in parts),
        "warmup_per_round": first["warmup"],
        "latency": stats,
        "images_per_s_per_core": round(1000 / stats["median_ms"] / first["threads"], 2) if n else None,
        "cpu": timing_stats(cat("cpu_ms")),
        "decode": timing_stats(cat("decode_ms")),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
        "rss_after_load_mb": max(p["rss_after_load_mb"] for p in parts),
        "load_ms": [p["load_ms"] for p in parts],
        "loadavg_1m": [p["loadavg_1m"] for p in parts],
        "wall_s": round(sum(p["wall_s"] for p in parts), 1),
        "outcomes": dict(outcomes),
        "engine": first["engine"],
        "files": cat("files"),
        "latencies_ms": latencies,
        "cpu_ms": cat("cpu_ms"),
    }
    if first["kind"] != "quality":
        result["id_exact"] = rate(sum(cat("id_ok")), n)
        result["name_exact"] = rate(sum(cat("name_ok")), n)
        result["misses"] = cat("misses")
    if first["kind"] in ("scan", "scan-addr"):
        result["stage_median_ms"] = {k: round(median(v), 2) for k, v in stages.items()}
        result["expected_decision_agreement"] = rate(sum(cat("decision_ok")), n)
    return result


def _mark(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a [/yellow]"
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def evaluate(results: dict[str, dict]) -> tuple[float | None, list[dict[str, Any]]]:
    """The naive-1t/scan-1t ratio and every target with its measured value and verdict."""

    def stat(name: str, key: str) -> float | None:
        r = results.get(name)
        return r["latency"].get(key) if r and "latency" in r else None

    def med(name: str) -> float | None:
        return stat(name, "median_ms")

    scan1, naive1, quality1 = med("scan-1t"), med("naive-1t"), med("quality-1t")
    ratio = naive1 / scan1 if scan1 and naive1 else None
    scan_rss = [r["peak_rss_mb"] for k, r in results.items() if k.startswith("scan-") and "peak_rss_mb" in r]
    targets = [
        {
            "target": f"scan-1t median <= {TARGET_SCAN_MS:.0f} ms",
            "value": scan1,
            "unit": "ms",
            "ok": None if scan1 is None else scan1 <= TARGET_SCAN_MS,
        },
        {
            "target": f"naive-1t / scan-1t >= {TARGET_SPEEDUP:.0f}x",
            "value": ratio,
            "unit": "x",
            "ok": None if ratio is None else ratio >= TARGET_SPEEDUP,
        },
        {
            "target": f"scan-1t p95 <= {TARGET_SCAN_P95_MS:.0f} ms",
            "value": stat("scan-1t", "p95_ms"),
            "unit": "ms",
            "ok": None if stat("scan-1t", "p95_ms") is None else stat("scan-1t", "p95_ms") <= TARGET_SCAN_P95_MS,
        },
        {
            "target": f"scan-1t slowest photo <= {TARGET_SCAN_MAX_MS:.0f} ms",
            "value": stat("scan-1t", "max_ms"),
            "unit": "ms",
            "ok": None if stat("scan-1t", "max_ms") is None else stat("scan-1t", "max_ms") <= TARGET_SCAN_MAX_MS,
        },
        {
            "target": f"naive-1t / scan-1t-addr >= {TARGET_SPEEDUP:.0f}x (info: address read too)",
            "value": naive1 / med("scan-1t-addr") if naive1 and med("scan-1t-addr") else None,
            "unit": "x",
            "ok": None if not (naive1 and med("scan-1t-addr")) else naive1 / med("scan-1t-addr") >= TARGET_SPEEDUP,
        },
        {
            "target": f"quality-1t median <= {TARGET_QUALITY_MS:.0f} ms",
            "value": quality1,
            "unit": "ms",
            "ok": None if quality1 is None else quality1 <= TARGET_QUALITY_MS,
        },
        {
            "target": f"scan peak RSS <= {TARGET_RSS_MB:.0f} MB",
            "value": max(scan_rss) if scan_rss else None,
            "unit": "MB",
            "ok": None if not scan_rss else max(scan_rss) <= TARGET_RSS_MB,
        },
    ]
    return ratio, targets


def report(results: dict[str, dict], baseline: dict | None, meta: dict[str, Any]) -> None:
    columns = [
        "config",
        "images",
        "median ms",
        "p90 ms",
        "images/s per core",
        "peak RSS MB",
        "ID exact",
        "name exact",
        "CPU ms",
    ]
    base_results = (baseline or {}).get("results", {})
    if baseline is not None:
        columns.append("median vs baseline")
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, f"[red]{r['error']}[/red]", *[""] * (len(columns) - 2)])
            continue
        row = [
            name,
            r["images"],
            r["latency"]["median_ms"],
            r["latency"]["p90_ms"],
            fmt(r["images_per_s_per_core"], 2),
            r["peak_rss_mb"],
            fmt_pct(r.get("id_exact")),
            fmt_pct(r.get("name_exact")),
            r["cpu"]["median_ms"],
        ]
        if baseline is not None:
            old = base_results.get(name, {}).get("latency", {}).get("median_ms")
            row.append(f"{r['latency']['median_ms'] / old:.2f}x" if old else "—")
        rows.append(row)
    size = f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} photos, quality on {FRAME_SIZE[0]}x{FRAME_SIZE[1]} frames"
    print_table(
        f"scan speed — {meta['set']}, {size}",
        columns,
        rows,
        caption=f"{meta['machine']['cpu']} · load {meta['machine']['loadavg']} · {meta['machine']['git_rev']}",
    )

    loads = {k: [x for pair in r["loadavg_1m"] for x in pair] for k, r in results.items() if "loadavg_1m" in r}
    print(
        "CPU ms: median process CPU time per image, all threads. Load average (1 min) while each config ran: "
        + ", ".join(f"{k} {min(v):.1f}-{max(v):.1f}" for k, v in loads.items())
    )
    ratio, targets = evaluate(results)
    if ratio is not None:
        print(f"naive-1t / scan-1t median = {ratio:.1f}x")
    s2, n2 = results.get("scan-2t", {}), results.get("naive-2t", {})
    if "latency" in s2 and "latency" in n2:
        print(f"naive-2t / scan-2t median = {n2['latency']['median_ms'] / s2['latency']['median_ms']:.1f}x")
    decode = [r["decode"]["median_ms"] for r in results.values() if "decode" in r and r.get("kind") != "quality"]
    if decode:
        print(f"JPEG decode (excluded from the timings above): median {median(decode):.1f} ms per 1280x960 photo")

    out = console()
    for t in targets:
        value = t["value"]
        shown = "—" if value is None else f"{value:.1f}{'' if t['unit'] == 'x' else ' '}{t['unit']}"
        out.print(f"  {_mark(t['ok'])}  {t['target']:<32} measured {shown}")

    stage_rows = []
    for name, r in results.items():
        stages = r.get("stage_median_ms")
        if stages:
            stage_rows.append([name, *(stages.get(s) for s in ("detect", "orient", "quality", "read", "total"))])
    if stage_rows:
        print_table(
            "scan: median ms per stage (ScanResult.timings_ms)",
            ["config", "detect", "orient", "quality", "read", "total"],
            stage_rows,
        )
    for name, r in results.items():
        if r.get("kind") in ("scan", "scan-addr"):
            agree = r.get("expected_decision_agreement")
            print(f"{name}: decisions {r['outcomes']} (agree with expected_decision: {fmt_pct(agree)})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--count", type=int, default=60, help="photos (1280x960 fronts) per configuration (default 60)")
    p.add_argument("--seed", type=int, default=7, help="generator seed of the photo set (default 7)")
    p.add_argument("--warmup", type=int, default=3, help="untimed scans before timing (default 3)")
    p.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated subset of {', '.join(CONFIGS)} (default all)",
    )
    p.add_argument("--json", type=Path, help="write the results to this JSON file")
    p.add_argument("--baseline", type=Path, help="a JSON file from an earlier --json run to compare medians with")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="split the photos into this many interleaved shares and run every config on each share\n"
        "in turn, so all configs see the same drift in machine load (default 3)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 6 photos, 1 warm-up, 1 round")
    p.add_argument("--dir", type=Path, help="photo set to use instead of benchmarks/out/speed-<seed>/")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration before giving up")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    # internal: one configuration in this process
    p.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    p.add_argument("--part", default="0/1", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.warmup, args.rounds = min(args.count, 6), min(args.warmup, 1), 1
    if args.rounds < 1 or args.count < args.rounds:
        p.error("--rounds must be between 1 and --count")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        part, parts = (int(x) for x in args.part.split("/"))
        result = run_worker(args.worker, args.dir, args.count, args.warmup, part, parts)
        write_json(args.result, result)
        return 0

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        print(f"unknown config(s) {unknown}; choose from {list(CONFIGS)}", file=sys.stderr)
        return 2
    cpus = len(os.sched_getaffinity(0))
    skipped = [c for c in configs if CONFIGS[c][1] > cpus]
    if skipped:
        print(f"skipping {skipped}: only {cpus} CPU(s) available", file=sys.stderr)
        configs = [c for c in configs if c not in skipped]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    directory = args.dir or photo_set(args.seed, args.count, jobs=cpus)
    available = len(_select(load_labels(directory), args.count))
    if available < args.count:
        print(
            f"warning: {directory} has only {available} readable 1280x960 fronts (asked for {args.count})",
            file=sys.stderr,
        )

    baseline = None
    if args.baseline:
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))

    meta = {
        "seed": args.seed,
        "set": f"{args.dir}" if args.dir else f"seed {args.seed}",
        "count": args.count,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "photo_dir": str(directory),
        "argv": sys.argv[1:],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
    }
    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for part in range(args.rounds):
        for config in configs:
            if not any("error" in r for r in rounds[config]):
                rounds[config].append(run_part(config, directory, args, part))
    results = {c: summarize(c, parts) for c, parts in rounds.items()}
    report(results, baseline, meta)

    ratio, targets = evaluate(results)
    if args.json:
        path = write_json(
            args.json, {"meta": meta, "results": results, "ratio_naive_scan_1t": ratio, "targets": targets}
        )
        print(f"results written to {path}")
    if any("error" in r for r in results.values()):
        return 1
    return 1 if args.strict and any(t["ok"] is False for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
