"""The pipeline on 35 published ID-card specimens and competition images (../shared/external-eval).

Our generator did not make these, so they show how the layout reader copes with other
renderings: real specimen layouts, photocopy composites, rotated mock-ups, passports.
Read in place; never copied into the repository.

    python benchmarks/external_eval.py [--dir ../shared/external-eval] [--verbose]

What a good result looks like (from the set's README): names and numbers read on the fronts;
specimens with a bad check character or a birth date that disagrees with the number are not
accepted and say why; passports and non-mainland cards are not taken for a resident ID.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import print_table  # noqa: E402
from pipelines.decode import ImageDecodeError, decode_file  # noqa: E402
from pipelines.idnumber import normalize_id_number  # noqa: E402
from pipelines.matching import normalize_name  # noqa: E402
from pipelines.ocr import get_engine  # noqa: E402
from pipelines.reasons import Decision  # noqa: E402
from pipelines.scan import scan  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "external-eval"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    labels_path = args.dir / "labels.jsonl"
    if not labels_path.exists():
        print(f"no external evaluation set at {args.dir}; nothing to do")
        return 0
    engine = get_engine("rapidocr", threads=1)
    rows = []
    tally = Counter()
    for line in labels_path.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        try:
            image = decode_file(args.dir / "images" / label["file"]).image
        except ImageDecodeError as exc:
            rows.append([label["file"], label["kind"], f"error {exc.code}", "", "", ""])
            continue
        result = scan(image, engine, None)
        kind = label["kind"]
        name = result.fields.value("name") if result.fields and result.fields.side == "front" else ""
        number = result.fields.value("id_number") if result.fields and result.fields.side == "front" else ""
        name_ok = number_ok = ""
        if kind == "front":
            tally["fronts"] += 1
            want_name = normalize_name(str(label.get("name", "")))
            want_number = normalize_id_number(str(label.get("id_number", "")))
            name_ok = "yes" if name == want_name else "no"
            number_ok = "yes" if number == want_number else "no"
            tally["name_ok"] += name_ok == "yes"
            tally["number_ok"] += number_ok == "yes"
            checksum_bad = "BAD" in str(label.get("id_checksum", ""))
            if checksum_bad:
                tally["bad_checksum"] += 1
                tally["bad_checksum_not_accepted"] += result.decision != Decision.ACCEPT
        else:
            tally[f"{kind}s"] += 1
            tally[f"{kind}_not_accepted"] += result.decision != Decision.ACCEPT
        tally["accepted"] += result.decision == Decision.ACCEPT
        rows.append(
            [
                label["file"][:34],
                kind,
                f"{result.decision} {','.join(map(str, result.reasons))}"[:46],
                f"{name} {name_ok}",
                f"{number} {number_ok}",
                f"{result.timings_ms.get('total', 0):.0f}",
            ]
        )
    print_table(
        "External evaluation set", ["image", "kind", "decision + reasons", "name read", "number read", "ms"], rows
    )
    fronts = tally["fronts"]
    summary = [
        ["fronts: name exact", f"{tally['name_ok']}/{fronts}"],
        ["fronts: number exact", f"{tally['number_ok']}/{fronts}"],
        ["bad-checksum specimens not accepted", f"{tally['bad_checksum_not_accepted']}/{tally['bad_checksum']}"],
        ["passports not accepted", f"{tally['passport_not_accepted']}/{tally['passports']}"],
        ["other documents not accepted", f"{tally['other_not_accepted']}/{tally['others']}"],
        ["backs not accepted as fronts", f"{tally['back_not_accepted']}/{tally['backs']}"],
    ]
    print_table("Summary", ["measure", "value"], summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
