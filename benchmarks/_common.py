"""Shared helpers for the benchmark scripts: timing statistics, peak RSS, sample sets, tables.

Kept free of numpy/OpenCV/ONNX Runtime imports so a script can pin its CPU affinity before
any of those start their thread pools.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"  # git-ignored


# --------------------------------------------------------------------------- statistics


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    NaN for an empty input, so a table shows a gap instead of the script crashing.
    """
    data = sorted(values)
    if not data:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def timing_stats(values_ms: Sequence[float]) -> dict[str, float]:
    """Median, p90, p95, mean, min, max (all ms) and count of per-image latencies."""
    n = len(values_ms)
    return {
        "n": n,
        "median_ms": round(median(values_ms), 2),
        "p90_ms": round(percentile(values_ms, 90), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "mean_ms": round(sum(values_ms) / n, 2) if n else math.nan,
        "min_ms": round(min(values_ms), 2) if n else math.nan,
        "max_ms": round(max(values_ms), 2) if n else math.nan,
    }


def rate(hits: int, total: int) -> float:
    return hits / total if total else math.nan


# --------------------------------------------------------------------------- process


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(peak / divisor, 1)


def current_rss_mb() -> float:
    """Resident set size now, in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def pin_cpus(count: int) -> list[int]:
    """Restrict this process to the first ``count`` CPUs it may run on; returns the CPUs used.

    Call before importing numpy / OpenCV / ONNX Runtime so their thread pools size themselves
    to the pinned set. Raises if fewer CPUs are available.
    """
    available = sorted(os.sched_getaffinity(0))
    if len(available) < count:
        raise RuntimeError(f"need {count} CPUs, this process may use only {available}")
    cpus = available[:count]
    os.sched_setaffinity(0, cpus)
    return cpus


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan, math.nan, math.nan)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "git_rev": git_rev(),
    }


def git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = out.stdout.strip() or "unknown"
    return rev + ("-dirty" if dirty.stdout.strip() else "")


# --------------------------------------------------------------------------- sample sets

LABELS = "labels.jsonl"


def load_labels(directory: str | os.PathLike[str]) -> list[dict]:
    """The per-image records of a generated (or committed) sample set, in file order."""
    path = Path(directory) / LABELS
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from None
    return records


def ensure_generated(
    seed: int, count: int, mix: str, out_dir: str | os.PathLike[str], extra_args: Sequence[str] = ()
) -> Path:
    """A generated sample set in ``out_dir``, made by ``python -m samples.generate`` only when missing.

    A set is reused when its ``labels.jsonl`` exists and holds at least ``count`` records (a
    smaller run takes the first ``count``). Generation writes to a sibling temporary folder
    and renames it into place, so an interrupted run never leaves a half set to be reused.
    """
    out = Path(out_dir)
    labels = out / LABELS
    if labels.is_file():
        try:
            if len(load_labels(out)) >= count:
                return out
        except (OSError, ValueError):
            pass
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "samples.generate",
        "--seed",
        str(seed),
        "--count",
        str(count),
        "--out",
        str(tmp),
        "--mix",
        mix,
        *extra_args,
    ]
    print(f"generating {count} sample photos: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    if not (tmp / LABELS).is_file():
        raise RuntimeError(f"samples.generate wrote no {LABELS} in {tmp}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def load_bgr(path: str | os.PathLike[str]):
    """Decode a photo to BGR uint8 the way the service does (``pipelines.decode``), else cv2.imread."""
    try:
        from pipelines.decode import decode_file
    except ImportError:
        decode_file = None
    if decode_file is not None:
        return decode_file(path).image
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return image


# --------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, NaN/None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.1f}%"


def console():
    """A rich console: the terminal's width on a terminal, wide enough for any table in a file or pipe."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> None:
    """A rich table on stdout; the first column is left-aligned, the rest right-aligned.

    Cells are formatted with ``fmt`` unless already strings (which may carry rich markup).
    """
    from rich.table import Table

    table = Table(title=title, caption=caption, show_lines=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, str) else fmt(cell) for cell in row))
    console().print(table)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out
