"""Labelled synthetic sample sets: the command line, the sample mixes and the ground truth.

Owns what each sample is meant to show (a recipe: side, capture defects, rotation,
background, identity features), the expected verdict for it, and the files on disk
(JPEG photos plus ``labels.jsonl``). Every sample draws from its own ``random.Random``
seeded with ``"<seed>:<index>"``, so a seed always gives byte-identical files.

    python -m samples.generate --seed 7 --count 400 --out DIR [--mix benchmark|committed|wild]

Mixes: ``committed`` is the fixed recipe list behind ``samples/set``; ``benchmark`` is the
generator's own conditions; ``wild`` adds the capture conditions that phone photos from
elsewhere show (issue 9): strongly coloured cloth, red digital backdrops, decoy papers
thick with digit strings, a hand with a thumb over the card, in-plane rotation at any angle,
perspective tilt up to 30 degrees, 1080x1440 portrait frames, flat crops (the image is the
card), greyscale stamped photocopies and screen recaptures with glare. ``wild`` is a new mix
rather than a change to ``benchmark`` so that every figure measured on ``benchmark`` (speed,
accuracy, the README) stays comparable; its labels add ``capture``, ``occlusion`` and
``frame`` to the keys every mix writes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from pipelines.reasons import Decision, Reason
from samples.hands import random_hand
from samples.identity import Identity, NameKind, random_identity
from samples.photo import CaptureKind, Degradation, PhotoSpec, jpeg_quality, photograph
from samples.render import render_back, render_front
from samples.scans import card_fraction_of_flat_crop, flat_crop, photocopy, stamp_for
from samples.surfaces import SURFACE_KINDS, WILD_SURFACE_KINDS

Mix = Literal["benchmark", "committed", "wild"]
MIXES: tuple[Mix, ...] = ("benchmark", "committed", "wild")
Category = Literal[
    "clean", "mild", "back", "blurry", "glare_on_field", "too_dark", "overexposed", "partial",
    "too_small", "strong_tilt", "no_card", "recapture", "photocopy",
]  # fmt: skip

CARD_PX_PER_MM = 12
DEFAULT_JPEG_QUALITY = {"benchmark": 90, "committed": 85, "wild": 88}
# The scan's reason for a copy of a card (issue 9 asks for it; not yet a pipelines.reasons member).
PHOTOCOPY_SUSPECTED = "photocopy_suspected"

# Severity bands. Mild defects are drawn at or below MILD_MAX (a person reads the card
# easily), severe ones at or above SEVERE_MIN; nothing is drawn in between, so the
# expected verdict never hinges on a borderline image.
MILD_MAX = {"blur": 0.3, "low_light": 0.3, "overexposure": 0.3, "noise": 0.35, "tilt": 0.4, "shadow": 0.6}
SEVERE_MIN = {"blur": 0.7, "low_light": 0.75, "overexposure": 0.75, "tilt": 0.63}
SEVERE_THRESHOLD = 0.5
MILD_TILT_DEG = 12.0  # tilts up to this are part of a clean shot and are not recorded
TILT_DEG_PER_SEVERITY = 60.0
TOO_SMALL_FRACTION = 0.25  # card narrower than a quarter of the photo
MILD_KINDS = ("blur", "noise", "jpeg", "low_light", "overexposure", "glare", "tilt", "shadow")
NEGATIVE_CATEGORIES: tuple[Category, ...] = (
    "blurry", "glare_on_field", "too_dark", "overexposed", "partial", "too_small", "strong_tilt",
    "no_card", "recapture",
)  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """What one sample must show; None leaves the choice to the sample's random draw."""

    category: Category
    rotation_deg: float | None = None
    background: str | None = None
    size: tuple[int, int] | None = None
    mild_kinds: tuple[str, ...] | None = None
    blur_type: Literal["gaussian", "motion"] | None = None
    tilt_deg: float | None = None
    name_kind: NameKind | None = None
    address_lines: int | None = None
    check_x: bool | None = None
    capture: CaptureKind | None = None  # wild mix only


@dataclass(frozen=True)
class Sample:
    file: str
    label: dict[str, Any]
    jpeg: bytes


# --- mixes -----------------------------------------------------------------------------


def _allocate(count: int, shares: dict[Category, float]) -> list[Category]:
    """Largest-remainder allocation so small sets still get every category their share allows."""
    raw = {c: count * s / sum(shares.values()) for c, s in shares.items()}
    counts = {c: math.floor(v) for c, v in raw.items()}
    for c in sorted(raw, key=lambda c: raw[c] - counts[c], reverse=True)[: count - sum(counts.values())]:
        counts[c] += 1
    return [c for c, n in counts.items() for _ in range(n)]


def benchmark_recipes(seed: int, count: int) -> list[Recipe]:
    """~55 % clean fronts, ~25 % mildly degraded readable fronts, ~8 % backs, ~12 % negatives."""
    shares: dict[Category, float] = {"clean": 55, "mild": 25, "back": 8}
    shares |= {c: 12 / len(NEGATIVE_CATEGORIES) for c in NEGATIVE_CATEGORIES}
    categories = _allocate(count, shares)
    random.Random(f"{seed}:order").shuffle(categories)
    return [Recipe(c) for c in categories]


LANDSCAPE = (1280, 960)
PORTRAIT = (960, 1280)

COMMITTED_RECIPES: tuple[Recipe, ...] = (
    # 13 clean fronts: quarter turns, arbitrary angles, mild tilt, identity edge cases
    Recipe("clean", 0.0, "wood", LANDSCAPE, name_kind="rare", address_lines=2),
    Recipe("clean", 90.0, "desk_dark", LANDSCAPE, name_kind="dotted"),
    Recipe("clean", 180.0, "fabric", LANDSCAPE, address_lines=3),
    Recipe("clean", 270.0, "keyboard", PORTRAIT, check_x=True),
    Recipe("clean", 17.0, "gradient", LANDSCAPE, tilt_deg=6.0),
    Recipe("clean", 0.0, "desk_light", LANDSCAPE, tilt_deg=11.0),
    Recipe("clean", 0.0, "paper", PORTRAIT, name_kind="common", address_lines=3),
    Recipe("clean", 334.0, "wood", LANDSCAPE, name_kind="rare"),
    Recipe("clean", 90.0, "gradient", PORTRAIT, address_lines=1),
    Recipe("clean", 0.0, "desk_dark", LANDSCAPE, tilt_deg=12.0, name_kind="tibetan"),
    Recipe("clean", 203.0, "fabric", LANDSCAPE),
    Recipe("clean", 0.0, "keyboard", LANDSCAPE, name_kind="dotted", address_lines=3),
    Recipe("clean", 270.0, "desk_light", LANDSCAPE, check_x=True),
    # 5 mildly degraded, still comfortably readable
    Recipe("mild", 0.0, "wood", LANDSCAPE, mild_kinds=("blur",), blur_type="gaussian"),
    Recipe("mild", 8.0, "desk_dark", LANDSCAPE, mild_kinds=("noise", "jpeg")),
    Recipe("mild", 0.0, "fabric", LANDSCAPE, mild_kinds=("low_light",)),
    Recipe("mild", 0.0, "keyboard", LANDSCAPE, mild_kinds=("glare",)),
    Recipe("mild", 180.0, "gradient", LANDSCAPE, mild_kinds=("tilt", "shadow")),
    # 2 backs
    Recipe("back", 0.0, "wood", LANDSCAPE),
    Recipe("back", 90.0, "desk_dark", LANDSCAPE),
    # negatives
    Recipe("no_card", background="paper", size=LANDSCAPE),
    Recipe("recapture", 0.0, "desk_light", LANDSCAPE),
    Recipe("blurry", 0.0, "wood", LANDSCAPE, blur_type="gaussian"),
    Recipe("blurry", 0.0, "desk_dark", LANDSCAPE, blur_type="motion"),
    Recipe("glare_on_field", 0.0, "fabric", LANDSCAPE),
    Recipe("partial", 0.0, "wood", LANDSCAPE),
    Recipe("too_small", 0.0, "desk_dark", LANDSCAPE),
    Recipe("too_dark", 0.0, "gradient", LANDSCAPE),
    Recipe("overexposed", 0.0, "desk_dark", LANDSCAPE),
    Recipe("strong_tilt", 0.0, "fabric", LANDSCAPE),
)


def committed_recipes(count: int) -> list[Recipe]:
    return [COMMITTED_RECIPES[i % len(COMMITTED_RECIPES)] for i in range(count)]


WILD_FLAT_CROP_EVERY = 8  # one clean front in eight is an album flat crop


def wild_recipes(seed: int, count: int) -> list[Recipe]:
    """~50 % clean fronts (one in eight a flat crop), ~18 % mildly degraded, ~6 % backs, ~6 %
    photocopies, ~6 % screen recaptures, ~14 % other negatives; conditions drawn per sample."""
    shares: dict[Category, float] = {"clean": 50, "mild": 18, "back": 6, "photocopy": 6, "recapture": 6}
    others = [c for c in NEGATIVE_CATEGORIES if c != "recapture"]
    shares |= {c: 14 / len(others) for c in others}
    categories = _allocate(count, shares)
    random.Random(f"{seed}:wild-order").shuffle(categories)
    recipes, clean_seen = [], 0
    for category in categories:
        capture: CaptureKind | None = None
        if category == "clean":
            capture = "flat_crop" if clean_seen % WILD_FLAT_CROP_EVERY == WILD_FLAT_CROP_EVERY // 2 else "photo"
            clean_seen += 1
        recipes.append(Recipe(category, capture=capture))
    return recipes


def recipes_for(mix: Mix, seed: int, count: int) -> list[Recipe]:
    if mix == "committed":
        return committed_recipes(count)
    return wild_recipes(seed, count) if mix == "wild" else benchmark_recipes(seed, count)


# --- drawing a sample's parameters -----------------------------------------------------


def _rotation(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.40:
        return 0.0
    if roll < 0.70:
        return rng.choice((90.0, 180.0, 270.0))
    if roll < 0.85:
        return round(rng.uniform(3, 20) * rng.choice((-1, 1)) % 360, 1)
    return round(rng.uniform(0, 360), 1)


def _background(rng: random.Random) -> str:
    # Mostly contrasting surfaces, as in real uploads; light desks and paper now and then.
    weights = {"wood": 20, "fabric": 15, "desk_dark": 20, "desk_light": 10, "paper": 10, "keyboard": 10, "gradient": 15}
    return rng.choices(SURFACE_KINDS, [weights[k] for k in SURFACE_KINDS])[0]


def _size(rng: random.Random, mix: Mix) -> tuple[int, int]:
    roll = rng.random()
    if roll < 0.18:
        return PORTRAIT
    if roll < 0.30 and mix == "benchmark":
        return (1600, 1200)
    return LANDSCAPE


def _mild(kind: str, rng: random.Random, recipe: Recipe, side: str) -> Degradation:
    if kind == "blur":
        blur_type = recipe.blur_type or rng.choice(("gaussian", "motion"))
        return Degradation("blur", rng.uniform(0.1, MILD_MAX["blur"]), {"type": blur_type})
    if kind == "jpeg":
        severity = rng.uniform(0.3, 1.0)
        return Degradation("jpeg", severity, {"quality": round(95 - 60 * severity)})
    if kind == "glare":
        return Degradation("glare", rng.uniform(0.2, 0.6), {"on_field": False, "field": None})
    if kind == "tilt":
        tilt = rng.uniform(14, MILD_MAX["tilt"] * TILT_DEG_PER_SEVERITY)
        return Degradation("tilt", tilt / TILT_DEG_PER_SEVERITY, {"tilt_deg": round(tilt, 1)})
    return Degradation(kind, rng.uniform(0.12, MILD_MAX[kind]))


def _severe(category: Category, rng: random.Random, recipe: Recipe, side: str) -> list[Degradation]:
    if category == "blurry":
        blur_type = recipe.blur_type or rng.choice(("gaussian", "motion"))
        return [Degradation("blur", rng.uniform(SEVERE_MIN["blur"], 1.0), {"type": blur_type})]
    if category == "glare_on_field":
        target = rng.choice(("name", "birth", "address", "id_number")) if side == "front" else "validity"
        return [Degradation("glare", rng.uniform(0.6, 1.0), {"on_field": True, "field": target})]
    if category == "too_dark":
        return [Degradation("low_light", rng.uniform(SEVERE_MIN["low_light"], 1.0))]
    if category == "overexposed":
        return [Degradation("overexposure", rng.uniform(SEVERE_MIN["overexposure"], 1.0))]
    if category == "partial":
        return [Degradation("partial", rng.uniform(0.15, 0.45))]
    if category == "too_small":
        fraction = rng.uniform(0.12, 0.21)
        return [Degradation("too_small", (TOO_SMALL_FRACTION - fraction) / 0.15, {"card_fraction": round(fraction, 3)})]
    if category == "strong_tilt":
        tilt = rng.uniform(SEVERE_MIN["tilt"] * TILT_DEG_PER_SEVERITY, 55)
        return [Degradation("tilt", tilt / TILT_DEG_PER_SEVERITY, {"tilt_deg": round(tilt, 1)})]
    if category == "recapture":
        return [Degradation("recapture", rng.uniform(0.5, 1.0))]
    return []


def photo_spec(recipe: Recipe, rng: random.Random, mix: Mix) -> PhotoSpec:
    side = "back" if recipe.category == "back" else "front"
    degradations: list[Degradation] = []
    if recipe.category == "mild":
        kinds = recipe.mild_kinds or tuple(rng.sample(MILD_KINDS, rng.choice((1, 1, 2))))
        degradations = [_mild(k, rng, recipe, side) for k in kinds]
    elif recipe.category not in ("clean", "back", "no_card"):
        degradations = _severe(recipe.category, rng, recipe, side)
        if rng.random() < 0.3 and recipe.category not in ("recapture",) and mix == "benchmark":
            extra = rng.choice(("noise", "jpeg", "shadow"))
            degradations.append(_mild(extra, rng, recipe, side))

    tilt = next((float(d.details["tilt_deg"]) for d in degradations if d.kind == "tilt"), None)
    if tilt is None:
        tilt = recipe.tilt_deg if recipe.tilt_deg is not None else rng.uniform(0, MILD_TILT_DEG)
    small = next((d for d in degradations if d.kind == "too_small"), None)
    # The committed set is also a demo: keep its cards at a comfortable size.
    low = 0.55 if mix == "committed" else 0.45
    fraction = float(small.details["card_fraction"]) if small else rng.uniform(low, 0.85)
    background = recipe.background or _background(rng)
    if recipe.category == "no_card" and recipe.background is None and rng.random() < 0.5:
        background = "paper"
    return PhotoSpec(
        side=side,
        size=recipe.size or _size(rng, mix),
        background=background,
        rotation_deg=recipe.rotation_deg if recipe.rotation_deg is not None else _rotation(rng),
        tilt_deg=round(tilt, 1),
        tilt_axis_deg=round(rng.uniform(0, 360), 1),
        card_fraction=round(fraction, 3),
        degradations=tuple(degradations),
    )


# --- the wild mix: conditions of phone photos from elsewhere (issue 9) -------------------

WILD_LANDSCAPE = (1280, 960)
WILD_PORTRAIT = (1080, 1440)
WILD_MAX_CLEAN_TILT_DEG = 30.0  # a normal capture; strong_tilt negatives start at SEVERE_MIN
WILD_HAND_SHARE = 0.3  # of photographed fronts
WILD_MILD_KINDS = tuple(k for k in MILD_KINDS if k != "tilt")  # every wild photo already draws a tilt
# Strong colours, digital backdrops and decoy papers weigh most: they are what broke the finder.
WILD_BACKGROUND_WEIGHTS = {
    "wood": 8, "fabric": 5, "desk_dark": 7, "desk_light": 5, "paper": 5, "keyboard": 3, "gradient": 3,
    "cloth": 26, "red_digital": 12, "papers": 26,
}  # fmt: skip


def _wild_rotation(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.25:
        base = 0.0
    elif roll < 0.55:
        base = rng.choice((90.0, 180.0, 270.0))
    else:
        return round(rng.uniform(0, 360), 1)
    return round((base + rng.uniform(-8, 8)) % 360, 1)


def _wild_background(rng: random.Random) -> str:
    return rng.choices(WILD_SURFACE_KINDS, [WILD_BACKGROUND_WEIGHTS[k] for k in WILD_SURFACE_KINDS])[0]


def _flat_crop_size(rng: random.Random, rotation: float) -> tuple[int, int]:
    long_side = rng.choice((640, 856, 1011, 1280))
    short_side = round(long_side * 54.0 / 85.6)
    return (short_side, long_side) if rotation % 180 == 90 else (long_side, short_side)


def wild_photo_spec(recipe: Recipe, rng: random.Random) -> PhotoSpec:
    side = "back" if recipe.category == "back" else "front"
    capture: CaptureKind = recipe.capture or ("photocopy" if recipe.category == "photocopy" else "photo")
    degradations: list[Degradation] = []
    if recipe.category == "mild":
        kinds = tuple(rng.sample(WILD_MILD_KINDS, rng.choice((1, 1, 2))))
        degradations = [_mild(k, rng, recipe, side) for k in kinds]
    elif recipe.category == "recapture":
        severity = rng.uniform(0.5, 1.0)
        degradations = [Degradation("recapture", severity, {"screen_glare": rng.random() < 0.6})]
    elif recipe.category not in ("clean", "back", "no_card", "photocopy"):
        degradations = _severe(recipe.category, rng, recipe, side)

    if capture == "flat_crop":
        rotation = rng.choice((0.0, 0.0, 0.0, 90.0, 180.0, 270.0))
        return PhotoSpec(
            side=side, size=_flat_crop_size(rng, rotation), background="none", rotation_deg=rotation,
            card_fraction=card_fraction_of_flat_crop(rng), capture="flat_crop",
        )  # fmt: skip
    if capture == "photocopy":
        rotation = round(rng.choice((0.0, 0.0, 180.0, 90.0)) + rng.uniform(-3, 3), 1) % 360
        return PhotoSpec(
            side=side, size=rng.choice((WILD_LANDSCAPE, WILD_PORTRAIT)), background="copy_sheet",
            rotation_deg=rotation, card_fraction=round(rng.uniform(0.45, 0.7), 3), capture="photocopy",
            stamp=stamp_for(rng),
        )  # fmt: skip

    tilt = next((float(d.details["tilt_deg"]) for d in degradations if d.kind == "tilt"), None)
    if tilt is None:
        tilt = rng.uniform(0, WILD_MAX_CLEAN_TILT_DEG)
    small = next((d for d in degradations if d.kind == "too_small"), None)
    fraction = float(small.details["card_fraction"]) if small else rng.uniform(0.45, 0.85)
    hand = None
    if side == "front" and recipe.category in ("clean", "mild") and rng.random() < WILD_HAND_SHARE:
        hand = random_hand(rng)
    return PhotoSpec(
        side=side,
        size=rng.choice((WILD_LANDSCAPE, WILD_PORTRAIT)),
        background=_wild_background(rng),
        rotation_deg=_wild_rotation(rng),
        tilt_deg=round(tilt, 1),
        tilt_axis_deg=round(rng.uniform(0, 360), 1),
        card_fraction=round(fraction, 3),
        degradations=tuple(degradations),
        hand=hand,
    )


def capture_label(spec: PhotoSpec) -> str:
    """photo, flat_crop, photocopy or screen: how the image was made."""
    return "screen" if spec.find("recapture") else spec.capture


def frame_label(width: int, height: int) -> str:
    return "portrait" if height > width else "landscape"


def _shoot(card: np.ndarray | None, rng: random.Random, spec: PhotoSpec) -> tuple[np.ndarray, np.ndarray | None]:
    if card is not None and spec.capture == "flat_crop":
        return flat_crop(card, rng, spec)
    if card is not None and spec.capture == "photocopy":
        return photocopy(card, rng, spec)
    return photograph(card, rng, spec)


# --- ground truth ----------------------------------------------------------------------


def expected_outcome(side: str, degradations: tuple[Degradation, ...]) -> tuple[Decision, list[Reason], bool]:
    """(decision, reasons, readable) for a front-side request, from what the photo shows."""
    if side == "none":
        return Decision.RETAKE, [Reason.NO_CARD], False
    reasons: list[Reason] = []
    for d in degradations:
        severe = d.severity >= SEVERE_THRESHOLD
        if d.kind == "blur" and severe:
            reasons.append(Reason.BLURRY)
        elif d.kind == "glare" and d.details.get("on_field"):
            reasons.append(Reason.GLARE_ON_FIELD)
        elif d.kind == "low_light" and severe:
            reasons.append(Reason.TOO_DARK)
        elif d.kind == "overexposure" and severe:
            reasons.append(Reason.OVEREXPOSED)
        elif d.kind == "partial":
            reasons.append(Reason.CARD_PARTLY_OUTSIDE)
        elif d.kind == "too_small":
            reasons.append(Reason.CARD_TOO_SMALL)
        elif d.kind == "tilt" and severe:
            reasons.append(Reason.STRONG_TILT)
    if reasons:
        return Decision.RETAKE, reasons, False
    if side == "back":
        return Decision.RETAKE, [Reason.WRONG_SIDE], True
    if any(d.kind == "recapture" for d in degradations):
        return Decision.REVIEW, [Reason.RECAPTURE_SUSPECTED], True
    return Decision.ACCEPT, [], True


def expected_for_spec(side: str, spec: PhotoSpec) -> tuple[Decision, list[str], bool]:
    """``expected_outcome`` plus the capture kinds it does not know: a photocopy goes to review."""
    decision, reasons, readable = expected_outcome(side, spec.degradations)
    if side == "front" and spec.capture == "photocopy" and decision == Decision.ACCEPT:
        return Decision.REVIEW, [PHOTOCOPY_SUSPECTED], True
    return decision, [str(r) for r in reasons], readable


def _file_tag(recipe: Recipe, spec: PhotoSpec) -> str:
    if recipe.category == "no_card":
        return spec.background
    kinds = [d.kind for d in spec.degradations]
    if spec.capture != "photo":
        kinds.insert(0, spec.capture.replace("_", ""))
    if spec.hand is not None:
        kinds.append("thumb")
    return "-".join(dict.fromkeys(kinds)) if kinds else "clean"


def _identity(recipe: Recipe, rng: random.Random) -> Identity:
    return random_identity(rng, name_kind=recipe.name_kind, address_lines=recipe.address_lines, check_x=recipe.check_x)


def make_sample(seed: int, index: int, recipe: Recipe, mix: Mix) -> Sample:
    rng = random.Random(f"{seed}:{index}")
    identity = _identity(recipe, rng)
    spec = wild_photo_spec(recipe, rng) if mix == "wild" else photo_spec(recipe, rng, mix)
    side = "none" if recipe.category == "no_card" else spec.side
    card = None
    if side == "front":
        card = render_front(identity, rng, px_per_mm=CARD_PX_PER_MM)
    elif side == "back":
        card = render_back(identity, rng, px_per_mm=CARD_PX_PER_MM)
    photo, corners = _shoot(card, rng, spec)

    quality = jpeg_quality(spec, DEFAULT_JPEG_QUALITY[mix])
    ok, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decision, reasons, readable = expected_for_spec(side, spec)
    fields = identity.front_fields() if side == "front" else identity.back_fields() if side == "back" else {}
    file = f"{index:04d}_{side}_{_file_tag(recipe, spec)}.jpg"
    label: dict[str, Any] = {
        "file": file,
        "seed": seed,
        "index": index,
        "side": side,
        "fields": fields,
        "identity": identity.front_fields() if card is not None else None,
        "corners": np.round(corners, 1).tolist() if corners is not None else None,
        "image_size": [photo.shape[1], photo.shape[0]],
        "rotation_deg": float(spec.rotation_deg) if card is not None else 0.0,
        "degradations": [d.label() for d in spec.degradations],
        "readable": readable,
        "expected_decision": str(decision),
        "expected_reasons": reasons,
        "claim": {"name": identity.name, "id_number": identity.id_number},
        "background": spec.background,
        "tilt_deg": spec.tilt_deg if card is not None else 0.0,
        "jpeg_quality": quality,
    }
    if mix == "wild":
        held = spec.hand is not None and card is not None
        label["background"] = "hand" if held else spec.background
        label["capture"] = capture_label(spec) if card is not None else "photo"
        label["occlusion"] = {**spec.hand.label(), "behind": spec.background} if held else None  # type: ignore[union-attr]
        label["frame"] = frame_label(photo.shape[1], photo.shape[0])
        if spec.stamp and card is not None:
            label["stamp"] = spec.stamp
    return Sample(file, label, encoded.tobytes())


def _make(args: tuple[int, int, Recipe, Mix]) -> Sample:
    return make_sample(*args)


def generate(seed: int, count: int, mix: Mix = "benchmark", jobs: int = 1) -> Iterator[Sample]:
    tasks = [(seed, i + 1, recipe, mix) for i, recipe in enumerate(recipes_for(mix, seed, count))]
    if jobs <= 1:
        yield from map(_make, tasks)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_make, tasks, chunksize=4)


def write_set(out: Path, seed: int, count: int, mix: Mix = "benchmark", jobs: int = 1) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    labels = []
    for sample in generate(seed, count, mix, jobs):
        (out / sample.file).write_bytes(sample.jpeg)
        labels.append(sample.label)
    with (out / "labels.jsonl").open("w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(json.dumps(label, ensure_ascii=False) + "\n")
    # what `ocr-service scan --manifest` reads: each photo with the claim the applicant typed
    with (out / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for label in labels:
            claim = label.get("claim") or {}
            entry = {"image": label["file"], **{k: v for k, v in claim.items() if v}}
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samples.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mix", choices=MIXES, default="benchmark")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (output is identical for any value)")
    args = parser.parse_args(argv)
    labels = write_set(args.out, args.seed, args.count, args.mix, args.jobs)
    total = sum((args.out / label["file"]).stat().st_size for label in labels)
    decisions: dict[str, int] = {}
    for label in labels:
        decisions[label["expected_decision"]] = decisions.get(label["expected_decision"], 0) + 1
    print(
        f"wrote {len(labels)} photos ({total / 1e6:.2f} MB) and labels.jsonl to {args.out}; {decisions}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
