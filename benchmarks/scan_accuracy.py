"""Scan accuracy on a generated, fixed-seed set (not the committed sample set) and on the
labelled development photos from a second generator (``../shared/dev-photos``).

Prints, for each set: ID-number and name exact match on clean and on degraded-but-readable
fronts (read with no claim, so reading is measured rather than the claim echoed back), the
share of clean fronts accepted with their true claim and answered ``retake``, back-side field
accuracy, card-corner error, the decision confusion matrix against the expected decisions, and
false accepts: an accept while a read field is wrong, of a photo that must go to a person
(screen recapture, photocopy) or is not a front (back, no card, other document), or while the
claim differs by one name character or one digit. Then the same measures per condition class
(background, rotation bucket, tilt bucket, occlusion, capture kind, frame orientation), so a
regression shows where it is.

    python benchmarks/scan_accuracy.py                          # 400 photos, seed 4242, + dev photos
    python benchmarks/scan_accuracy.py --count 60 --seed 9 --mix wild --no-dev
    python benchmarks/scan_accuracy.py --dev-photos ../shared/dev-photos --only-dev
    python benchmarks/scan_accuracy.py --count 800 --seed 7 --json benchmarks/out/acc.json
    python benchmarks/scan_accuracy.py --calibrate              # also print quality-score distributions

``--mix wild`` generates the capture conditions of issue 9 (coloured cloth, red digital
backdrops, decoy papers, thumbs, any rotation, tilt to 30 degrees, portrait frames, flat crops,
photocopies, screens); ``benchmark`` (the default) is the generator's own mix, kept so that
earlier figures stay comparable. The dev photos are read in place, never copied.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import ensure_generated, load_labels, percentile, print_table  # noqa: E402
from pipelines.ocr import get_engine  # noqa: E402
from pipelines.reasons import Decision  # noqa: E402
from pipelines.scan import Claim, scan  # noqa: E402

DECISIONS = [d.value for d in Decision]
DEFAULT_DEV_PHOTOS = ROOT.parent / "shared" / "dev-photos"
CLASS_KEYS = ("background", "rotation", "tilt", "occlusion", "capture", "frame")
QUARTER_TURN_TOLERANCE_DEG = 15.0  # a card within this of a quarter turn counts as that turn


def change_one_name_char(name: str, rng: random.Random) -> str:
    pool = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    positions = [i for i, ch in enumerate(name) if ch != "·"]
    i = rng.choice(positions)
    replacement = rng.choice([c for c in pool if c != name[i]])
    return name[:i] + replacement + name[i + 1 :]


def change_one_digit(number: str, rng: random.Random) -> str:
    i = rng.randrange(17)
    digit = rng.choice([d for d in "0123456789" if d != number[i]])
    return number[:i] + digit + number[i + 1 :]


def corner_error(truth: list[list[float]], found: list[list[float]] | None) -> float:
    """Worst corner distance as a share of the card diagonal (inf when not found)."""
    if found is None:
        return math.inf
    diag = math.dist(truth[0], truth[2])
    return max(math.dist(a, b) for a, b in zip(truth, found, strict=True)) / diag


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}% ({n}/{d})" if d else "-"


# --- condition classes ---------------------------------------------------------------------


def rotation_bucket(rotation_deg: float | None) -> str:
    if rotation_deg is None:
        return "—"
    for turn in (0, 90, 180, 270, 360):
        if abs(rotation_deg % 360 - turn) <= QUARTER_TURN_TOLERANCE_DEG:
            return str(turn % 360)
    return "other"


def tilt_bucket(tilt_deg: float | None) -> str:
    if tilt_deg is None:
        return "—"
    if tilt_deg < 10:
        return "<10"
    if tilt_deg < 20:
        return "10-20"
    return "20-30" if tilt_deg <= 30 else ">30"


def occlusion_class(occlusion: Any) -> str:
    if not occlusion:
        return "none"
    return str(occlusion.get("type", "other")) if isinstance(occlusion, dict) else str(occlusion)


def frame_class(width: int, height: int) -> str:
    return "portrait" if height > width else "landscape"


# --- one labelled photo, from either label format ---------------------------------------------


@dataclass(frozen=True)
class PhotoCase:
    path: Path
    side: str  # front, back, none
    group: str  # clean / degraded (readable fronts that should be accepted) / other
    expected: str  # decision
    expected_reasons: list[str]
    truth: dict[str, Any]  # printed values
    claim: dict[str, str] | None  # the applicant's true claim
    corners: list[list[float]] | None
    classes: dict[str, str]
    degradation_kinds: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def generated_case(label: dict[str, Any], directory: Path) -> PhotoCase:
    """A record written by ``samples.generate`` (every mix; ``wild`` adds capture/occlusion/frame)."""
    degradations = label.get("degradations") or []
    side, expected = label["side"], label["expected_decision"]
    readable_front = side == "front" and expected == "accept"
    group = ("degraded" if degradations else "clean") if readable_front else "other"
    has_card = side != "none"
    recaptured = any(d["kind"] == "recapture" for d in degradations)
    width, height = label["image_size"]
    return PhotoCase(
        path=directory / label["file"],
        side=side,
        group=group,
        expected=expected,
        expected_reasons=list(label.get("expected_reasons") or []),
        truth=label.get("fields") or {},
        claim=label.get("claim") if has_card else None,
        corners=label.get("corners"),
        classes={
            "background": str(label.get("background", "—")),
            "rotation": rotation_bucket(label.get("rotation_deg") if has_card else None),
            "tilt": tilt_bucket(label.get("tilt_deg") if has_card else None),
            "occlusion": occlusion_class(label.get("occlusion")),
            "capture": label.get("capture") or ("screen" if recaptured else "photo"),
            "frame": label.get("frame") or frame_class(width, height),
        },
        degradation_kinds=[f"{d['kind']}-{'severe' if d['severity'] >= 0.5 else 'mild'}" for d in degradations]
        or ["clean"],
    )


def _dev_capture(label: dict[str, Any]) -> str:
    capture = label.get("capture")
    if isinstance(capture, str):
        return capture
    case = str(label.get("case", ""))
    if "screen" in case or "screen" in str(label.get("background", "")):
        return "screen"
    if "photocopy" in case:
        return "photocopy"
    if (label.get("card_area_frac") or 0) >= 0.85:
        return "flat_crop"
    return "photo"


def dev_case(label: dict[str, Any], directory: Path) -> PhotoCase:
    """A record of ``../shared/dev-photos/labels.jsonl`` (see its README)."""
    kind = label.get("kind") or "none"
    expected = label["expected_decision"]
    readable_front = kind == "front" and expected == "accept"
    group = "other"
    if readable_front and label.get("category") in ("clean", "degraded"):
        group = str(label["category"])
    truth = label.get("expected") or {}
    claim = None
    if truth.get("name") and truth.get("id_number"):
        claim = {"name": truth["name"], "id_number": truth["id_number"]}
    kinds = [str(d.get("type", "?")) + "-" + str(d.get("level", "")) for d in label.get("degradations") or []]
    return PhotoCase(
        path=directory / label["file"],
        side=kind,
        group=group,
        expected=expected,
        expected_reasons=list(label.get("decision_reasons") or []),
        truth=truth,
        claim=claim,
        corners=label.get("corners"),
        classes={
            "background": str(label.get("background") or "—"),
            "rotation": rotation_bucket(label.get("rotation_deg")),
            "tilt": tilt_bucket(label.get("tilt_deg")),
            "occlusion": occlusion_class(label.get("occlusion")),
            "capture": _dev_capture(label),
            "frame": frame_class(int(label["width"]), int(label["height"])),
        },
        degradation_kinds=kinds or ["clean"],
    )


# --- scanning -------------------------------------------------------------------------------


@dataclass
class PhotoOutcome:
    case: PhotoCase
    read_id: str = ""
    read_name: str = ""
    decision: str = "error"  # with the true claim (or no claim when there is none)
    reasons: list[str] = field(default_factory=list)
    corner_error: float | None = None
    back_fields: dict[str, bool] = field(default_factory=dict)
    false_accepts: list[str] = field(default_factory=list)
    probes: dict[str, bool] = field(default_factory=dict)  # probe kind -> accepted
    quality_scores: dict[str, float] | None = None
    error: str | None = None

    @property
    def number_ok(self) -> bool:
        return self.read_id == self.case.truth.get("id_number")

    @property
    def name_ok(self) -> bool:
        return self.read_name == self.case.truth.get("name")


def _accept_is_false(case: PhotoCase, result) -> str | None:
    """Why an accept of this photo is a false accept, or None when it is a right one."""
    if case.side != "front":
        return f"accepted a {case.side if case.side != 'none' else 'photo without a card'}"
    if case.expected == "review":
        return f"accepted a photo that needs a person ({', '.join(case.expected_reasons)})"
    f = result.fields
    if f is None or f.value("name") != case.truth.get("name") or f.value("id_number") != case.truth.get("id_number"):
        return "accepted a wrong read"
    return None


def scan_case(case: PhotoCase, engine, rng: random.Random) -> PhotoOutcome:
    outcome = PhotoOutcome(case)
    image = cv2.imread(str(case.path), cv2.IMREAD_COLOR)
    if image is None:
        outcome.error = "cannot decode"
        return outcome
    try:
        plain = scan(image, engine, None)  # 1. reading, no claim
        if plain.quality.scores is not None:
            outcome.quality_scores = dict(plain.quality.scores.__dict__)
        if plain.fields is not None:
            outcome.read_id = plain.fields.value("id_number") or ""
            outcome.read_name = plain.fields.value("name") or ""
            if plain.fields.side == "back" and case.side == "back":
                f = plain.fields
                vf = f.valid_from.isoformat() if f.valid_from else ""
                vu = "长期" if f.long_term else (f.valid_until.isoformat() if f.valid_until else "")
                outcome.back_fields = {
                    "authority": f.value("authority") == case.truth.get("authority"),
                    "valid_from": vf == case.truth.get("valid_from"),
                    "valid_until": vu == case.truth.get("valid_until"),
                }
        if case.group == "clean" and case.corners:
            outcome.corner_error = corner_error(case.corners, plain.corners)

        # 2. decision with the true claim
        claim = Claim(case.claim["name"], case.claim["id_number"]) if case.claim else None
        result = scan(image, engine, claim) if claim else plain
        outcome.decision = str(result.decision)
        outcome.reasons = [str(r) for r in result.reasons]
        if result.decision == Decision.ACCEPT and (why := _accept_is_false(case, result)):
            outcome.false_accepts.append(why)

        # 3. false-accept probes on readable fronts: one name character, one digit changed
        if case.side == "front" and case.expected == "accept" and case.claim:
            name, number = case.claim["name"], case.claim["id_number"]
            for kind, probe in (
                ("name-1char", Claim(change_one_name_char(name, rng), number)),
                ("number-1digit", Claim(name, change_one_digit(number, rng))),
            ):
                accepted = scan(image, engine, probe).decision == Decision.ACCEPT
                outcome.probes[kind] = accepted
                if accepted:
                    outcome.false_accepts.append(f"accepted with a {kind} claim")
    except Exception as exc:  # a pipeline under rewrite may raise; count it, keep measuring
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


# --- figures --------------------------------------------------------------------------------


def _share(outcomes: Iterable[PhotoOutcome], test: Callable[[PhotoOutcome], bool]) -> tuple[int, int]:
    items = list(outcomes)
    return sum(1 for o in items if test(o)), len(items)


def summary_rows(outcomes: list[PhotoOutcome]) -> list[list[str]]:
    clean = [o for o in outcomes if o.case.group == "clean"]
    degraded = [o for o in outcomes if o.case.group == "degraded"]
    probes = Counter(k for o in outcomes for k, v in o.probes.items() if v)
    probe_total = Counter(k for o in outcomes for k in o.probes)
    backs = [o for o in outcomes if o.case.side == "back" and "authority" in o.case.truth]
    false_accepts = sum(len(o.false_accepts) for o in outcomes)
    rows = [
        ["ID number exact, clean fronts", pct(*_share(clean, lambda o: o.number_ok)), ">= 99.5%"],
        ["name exact, clean fronts", pct(*_share(clean, lambda o: o.name_ok)), ">= 99%"],
        ["ID number exact, degraded readable fronts", pct(*_share(degraded, lambda o: o.number_ok)), ">= 97%"],
        ["name exact, degraded readable fronts", pct(*_share(degraded, lambda o: o.name_ok)), ">= 95%"],
        ["clean fronts auto-accepted (true claim)", pct(*_share(clean, lambda o: o.decision == "accept")), ">= 97%"],
        ["clean fronts answered retake", pct(*_share(clean, lambda o: o.decision == "retake")), "<= 1%"],
        ["false accepts (all probes)", str(false_accepts), "0"],
        ["  of which one-char name probes", f"{probes['name-1char']}/{probe_total['name-1char']}", "0"],
        ["  of which one-digit number probes", f"{probes['number-1digit']}/{probe_total['number-1digit']}", "0"],
        [
            "  of which review/non-front/wrong read accepted",
            str(sum(1 for o in outcomes for f in o.false_accepts if "claim" not in f)),
            "0",
        ],
    ]
    if backs:
        for key in ("authority", "valid_from", "valid_until"):
            hits = _share(backs, lambda o, k=key: o.back_fields.get(k, False))
            rows.append([f"back: {key.replace('_', '-')} exact", pct(*hits), ""])
    errors = [o.corner_error for o in clean if o.corner_error is not None]
    if errors:
        finite = [e for e in errors if math.isfinite(e)]
        rows += [
            ["corner error / diagonal, clean: median", f"{100 * percentile(finite, 50):.2f}%", ""],
            ["corner error / diagonal, clean: p90", f"{100 * percentile(finite, 90):.2f}%", ""],
            ["clean photos with corners within 2%", pct(sum(e <= 0.02 for e in errors), len(errors)), "all"],
        ]
    crashed = sum(1 for o in outcomes if o.error)
    if crashed:
        rows.append(["photos the scan raised on", str(crashed), "0"])
    return rows


def class_rows(outcomes: list[PhotoOutcome], key: str) -> list[list[str]]:
    groups: dict[str, list[PhotoOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.case.classes[key]].append(o)
    order = {"0": 0, "90": 1, "180": 2, "270": 3, "other": 4, "<10": 0, "10-20": 1, "20-30": 2, ">30": 3}
    rows = []
    for value in sorted(groups, key=lambda v: (order.get(v, 9), v)):
        members = groups[value]
        clean = [o for o in members if o.case.group == "clean"]
        rows.append(
            [
                value,
                str(len(members)),
                str(len(clean)),
                _pct_short(*_share(clean, lambda o: o.number_ok)),
                _pct_short(*_share(clean, lambda o: o.name_ok)),
                _pct_short(*_share(clean, lambda o: o.decision == "retake")),
                _pct_short(*_share(clean, lambda o: o.decision == "accept")),
                str(sum(len(o.false_accepts) for o in members)),
            ]
        )
    return rows


def _pct_short(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}%" if d else "-"


CLASS_COLUMNS = [
    "photos", "clean fronts", "number exact", "name exact", "retake", "accepted (true claim)", "false accepts",
]  # fmt: skip
CLASS_TITLES = {
    "background": "background",
    "rotation": f"rotation bucket (quarter turns ±{QUARTER_TURN_TOLERANCE_DEG:.0f}°)",
    "tilt": "tilt bucket (degrees)",
    "occlusion": "occlusion",
    "capture": "capture kind",
    "frame": "frame orientation",
}


def report(title: str, outcomes: list[PhotoOutcome], show_errors: int) -> dict[str, Any]:
    rows = summary_rows(outcomes)
    print_table(title, ["measure", "value", "target"], rows)
    confusion: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        confusion[o.case.expected][o.decision] += 1
    columns = DECISIONS + (["error"] if any(o.error for o in outcomes) else [])
    matrix_rows = [[exp] + [str(confusion[exp][got]) for got in columns] for exp in DECISIONS if confusion[exp]]
    print_table("Decision confusion (rows expected, columns decided; true claim)", ["expected", *columns], matrix_rows)
    tables = {}
    for key in CLASS_KEYS:
        tables[key] = class_rows(outcomes, key)
        print_table(f"Per class: {CLASS_TITLES[key]}", [key, *CLASS_COLUMNS], tables[key])

    problems = []
    for o in outcomes:
        c = o.case
        if o.error:
            problems.append(f"{c.name}: scan raised {o.error}")
        elif c.group != "other" and not (o.number_ok and o.name_ok):
            problems.append(
                f"{c.name}: read {o.read_name!r} {o.read_id!r}, printed {c.truth.get('name')!r} "
                f"{c.truth.get('id_number')!r} ({o.decision}, {o.reasons})"
            )
        elif o.decision != c.expected:
            problems.append(f"{c.name}: expected {c.expected} {c.expected_reasons}, got {o.decision} {o.reasons}")
    if problems[:show_errors]:
        print("\nFirst misreads / misdecisions:")
        for line in problems[:show_errors]:
            print("  " + line)
    false_accepts = [f"{o.case.name}: {why}" for o in outcomes for why in o.false_accepts]
    if false_accepts:
        print("\nFALSE ACCEPTS:")
        for line in false_accepts:
            print("  " + line)
    return {
        "count": len(outcomes),
        "rows": rows,
        "confusion": {k: dict(v) for k, v in confusion.items()},
        "classes": {key: [[key, *CLASS_COLUMNS], *tables[key]] for key in CLASS_KEYS},
        "false_accepts": false_accepts,
    }


def print_calibration(outcomes: list[PhotoOutcome]) -> None:
    keys = ["sharpness", "glare_on_field", "glare_on_card", "brightness", "clipped", "coverage", "side_ratio",
            "corner_skew_deg", "moire"]  # fmt: skip
    calib: dict[str, list[dict]] = defaultdict(list)
    for o in outcomes:
        if o.quality_scores is not None:
            for kind in o.case.degradation_kinds:
                calib[kind].append(o.quality_scores)
    rows = []
    for kind, entries in sorted(calib.items()):
        for key in keys:
            values = [e[key] for e in entries if key in e]
            if values:
                spread = [min(values), *(percentile(values, q) for q in (10, 50, 90)), max(values)]
                rows.append([kind, key, str(len(values)), *(f"{v:.3f}" for v in spread)])
    print_table("Quality scores by degradation kind", ["kind", "score", "n", "min", "p10", "p50", "p90", "max"], rows)


def run(cases: list[PhotoCase], engine, seed: int) -> tuple[list[PhotoOutcome], float]:
    rng = random.Random(seed)
    started = time.perf_counter()
    outcomes = [scan_case(case, engine, rng) for case in cases]
    return outcomes, time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--mix", choices=("benchmark", "wild"), default="benchmark", help="generated mix to measure")
    ap.add_argument("--out", type=Path, default=None, help="where the generated set lives (cached)")
    ap.add_argument("--dev-photos", type=Path, default=DEFAULT_DEV_PHOTOS, help="labelled photos from elsewhere")
    ap.add_argument("--only-dev", action="store_true", help="measure only the dev photos")
    ap.add_argument("--no-dev", action="store_true", help="measure only the generated set")
    ap.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    ap.add_argument("--calibrate", action="store_true", help="print quality-score distributions by label")
    ap.add_argument("--show-errors", type=int, default=15, help="list up to N misreads/misdecisions")
    args = ap.parse_args()
    if args.only_dev and args.no_dev:
        ap.error("--only-dev and --no-dev exclude each other")

    engine = get_engine("rapidocr", threads=1)
    figures: dict[str, Any] = {"seed": args.seed}
    if not args.only_dev:
        prefix = "acc" if args.mix == "benchmark" else f"acc-{args.mix}"
        out_dir = args.out or ROOT / "benchmarks" / "out" / f"{prefix}-{args.seed}-{args.count}"
        ensure_generated(args.seed, args.count, args.mix, out_dir)
        cases = [generated_case(label, out_dir) for label in load_labels(out_dir)[: args.count]]
        outcomes, elapsed = run(cases, engine, args.seed)
        title = f"Scan accuracy — {len(cases)} generated photos, {args.mix} mix, seed {args.seed} ({elapsed:.0f} s)"
        figures["generated"] = {"mix": args.mix, **report(title, outcomes, args.show_errors)}
        if args.calibrate:
            print_calibration(outcomes)

    if not args.no_dev:
        dev_dir = args.dev_photos if args.dev_photos.exists() else (ROOT / args.dev_photos).resolve()
        if not (dev_dir / "labels.jsonl").is_file():
            print(f"\ndev photos: no labels.jsonl in {dev_dir}; skipping the dev-photo tables")
        else:
            cases = [dev_case(label, dev_dir) for label in load_labels(dev_dir)]
            outcomes, elapsed = run(cases, engine, args.seed)
            title = f"Scan accuracy — {len(cases)} dev photos in {dev_dir} ({elapsed:.0f} s)"
            figures["dev_photos"] = report(title, outcomes, args.show_errors)
            if args.calibrate:
                print_calibration(outcomes)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
