"""The synthetic sample generator: valid identities, honest labels, deterministic output."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

import samples
from pipelines.divisions import is_known
from pipelines.idnumber import check_character
from pipelines.reasons import Decision, Reason
from samples import fonts
from samples.generate import (
    COMMITTED_RECIPES,
    NEGATIVE_CATEGORIES,
    PHOTOCOPY_SUSPECTED,
    WILD_FLAT_CROP_EVERY,
    Recipe,
    Sample,
    _identity,
    benchmark_recipes,
    expected_outcome,
    make_sample,
    wild_photo_spec,
    wild_recipes,
)
from samples.hands import covers_a_field, random_hand
from samples.identity import (
    DOTTED_FATHER,
    DOTTED_GIVEN_FEMALE,
    DOTTED_GIVEN_MALE,
    GIVEN_FEMALE,
    GIVEN_MALE,
    RARE_FEMALE,
    RARE_MALE,
    SURNAMES,
    address_line_count,
    address_lines,
    random_identity,
)
from samples.photo import Degradation, PhotoSpec, photograph
from samples.render import VALUE_EM_MM, load_layout, render_front
from samples.scans import photocopy
from samples.surfaces import WILD_SURFACE_KINDS, make_surface

COMMITTED_SET = Path(samples.__file__).parent / "set"
PX_PER_MM = 8  # small card renders keep the geometry tests fast


@pytest.fixture(scope="module")
def identities():
    rng = random.Random(11)
    return [random_identity(rng) for _ in range(300)]


def test_identities_carry_a_valid_check_character(identities):
    for person in identities:
        assert check_character(person.id_number[:17]) == person.id_number[17]


def test_identities_use_real_division_codes(identities):
    assert all(is_known(person.division_code) for person in identities)


def test_sequence_parity_matches_the_printed_sex(identities):
    for person in identities:
        assert (int(person.id_number[16]) % 2 == 1) == (person.sex == "男")


def test_number_encodes_the_printed_birth_date(identities):
    for person in identities:
        assert person.id_number[6:14] == person.birth.strftime("%Y%m%d")
        assert date(1940, 1, 1) <= person.birth <= date(2008, 12, 31)


def test_validity_starts_after_sixteen_and_follows_the_age_rules(identities):
    for person in identities:
        age = (
            person.valid_from.year
            - person.birth.year
            - ((person.valid_from.month, person.valid_from.day) < (person.birth.month, person.birth.day))
        )
        assert age >= 16
        if person.valid_until is None:
            assert age >= 46
        else:
            years = person.valid_until.year - person.valid_from.year
            assert years == (10 if age <= 25 else 20)


def test_identities_cover_rare_and_dotted_names(identities):
    names = [p.name for p in identities]
    assert any("·" in n for n in names)
    assert any(set(n) & set(RARE_MALE + RARE_FEMALE) for n in names)
    assert max(len(n) for n in names) <= 10


def test_a_requested_x_check_character_is_honoured():
    person = random_identity(random.Random(3), check_x=True)
    assert person.id_number.endswith("X")


def test_long_addresses_wrap_to_three_lines_that_fit_the_address_box():
    font = fonts.load(fonts.cjk_font_file(), VALUE_EM_MM * 10)
    box = load_layout("front").fields["address"].value
    rng = random.Random(5)
    for lines in (1, 2, 3):
        for _ in range(20):
            person = random_identity(rng, address_lines=lines)
            printed = address_lines(person.address)
            assert len(printed) == lines
            assert "".join(printed) == person.address
            assert max(font.getlength(line) for line in printed) <= box.w * 10


def _renders_as_notdef(font, char: str) -> bool:
    def mask(text: str) -> bytes:
        img = Image.new("L", (80, 80))
        ImageDraw.Draw(img).text((8, 8), text, font=font, fill=255)
        return img.tobytes()

    return mask(char) == mask("\U0010fffd")


def test_every_name_character_has_a_glyph_in_the_value_font():
    font = fonts.load(fonts.cjk_font_file(), 48)
    pool = set(SURNAMES + GIVEN_MALE + GIVEN_FEMALE + RARE_MALE + RARE_FEMALE + "·")
    pool |= set("".join(DOTTED_GIVEN_MALE + DOTTED_GIVEN_FEMALE + DOTTED_FATHER))
    assert [c for c in sorted(pool) if _renders_as_notdef(font, c)] == []


def test_missing_fonts_name_the_package_to_install(monkeypatch):
    missing = ((fonts.FontFile(Path("/nonexistent/wqy-zenhei.ttc")), "fonts-wqy-zenhei"),)
    monkeypatch.setattr(fonts, "_CJK_CANDIDATES", missing)
    with pytest.raises(fonts.FontNotFoundError, match="fonts-wqy-zenhei"):
        fonts.cjk_font_file()


def test_the_same_seed_gives_identical_files():
    recipe = COMMITTED_RECIPES[4]
    first = make_sample(7, 3, recipe, "benchmark")
    again = make_sample(7, 3, recipe, "benchmark")
    other = make_sample(8, 3, recipe, "benchmark")
    assert (first.file, first.jpeg, first.label) == (again.file, again.jpeg, again.label)
    assert other.jpeg != first.jpeg


def _card_and_photo(rotation: float, tilt: float = 6.0, **kw):
    rng = random.Random(int(rotation * 10 + tilt))
    card = render_front(random_identity(rng), rng, px_per_mm=PX_PER_MM)
    spec = PhotoSpec(
        background="desk_dark", size=(800, 600), rotation_deg=rotation, tilt_deg=tilt, tilt_axis_deg=40, **kw
    )
    photo, corners = photograph(card, rng, spec)
    return card, photo, corners


def _agreement(card: np.ndarray, photo: np.ndarray, corners: np.ndarray, within: np.ndarray | None = None) -> float:
    """Correlation between the photo and the card render warped onto the given corners
    (optionally only where ``within`` is true)."""
    h, w = card.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    matrix = cv2.getPerspectiveTransform(src, np.float32(corners))
    size = (photo.shape[1], photo.shape[0])
    expected = cv2.warpPerspective(cv2.cvtColor(card, cv2.COLOR_BGR2GRAY), matrix, size).astype(np.float32)
    inside = cv2.warpPerspective(np.ones((h, w), np.uint8), matrix, size)
    inside = cv2.erode(inside, np.ones((9, 9), np.uint8)).astype(bool)
    if within is not None:
        inside &= within
    seen = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.corrcoef(expected[inside], seen[inside])[0, 1])


@pytest.mark.parametrize("rotation", [0.0, 90.0, 180.0, 270.0, 37.0])
def test_label_corners_are_where_the_card_is(rotation):
    card, photo, corners = _card_and_photo(rotation)
    assert _agreement(card, photo, corners) > 0.9
    shifted = corners + 0.04 * np.linalg.norm(corners[1] - corners[0])
    assert _agreement(card, photo, shifted) < 0.6


@pytest.mark.parametrize(
    ("rotation", "photo_corner"),
    [(0.0, "top_left"), (90.0, "top_right"), (180.0, "bottom_right"), (270.0, "bottom_left")],
)
def test_the_first_corner_is_the_cards_own_top_left(rotation, photo_corner):
    _card, _photo, corners = _card_and_photo(rotation, tilt=0.0)
    centre = corners.mean(axis=0)
    dx, dy = corners[0] - centre
    expected = {"top_left": (-1, -1), "top_right": (1, -1), "bottom_right": (1, 1), "bottom_left": (-1, 1)}
    assert (np.sign(dx), np.sign(dy)) == expected[photo_corner]
    # clockwise on screen (y down): the signed area is positive
    x, y = corners[:, 0], corners[:, 1]
    assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def test_a_photo_without_a_card_has_no_corners():
    photo, corners = photograph(None, random.Random(1), PhotoSpec(background="paper", size=(640, 480)))
    assert corners is None
    assert photo.shape == (480, 640, 3)


def test_partly_framed_cards_reach_outside_the_photo():
    spec_kw = {"degradations": (Degradation("partial", 0.3),)}
    _card, _photo, corners = _card_and_photo(0.0, **spec_kw)
    outside = (corners[:, 0] < 0) | (corners[:, 0] > 800) | (corners[:, 1] < 0) | (corners[:, 1] > 600)
    assert outside.any()


def test_expected_decisions_follow_what_the_photo_shows():
    blur = Degradation("blur", 0.8, {"type": "gaussian"})
    mild_blur = Degradation("blur", 0.2, {"type": "gaussian"})
    glare = Degradation("glare", 0.7, {"on_field": True, "field": "name"})
    assert expected_outcome("front", ()) == (Decision.ACCEPT, [], True)
    assert expected_outcome("front", (mild_blur,)) == (Decision.ACCEPT, [], True)
    assert expected_outcome("front", (blur,)) == (Decision.RETAKE, [Reason.BLURRY], False)
    assert expected_outcome("front", (glare,))[1] == [Reason.GLARE_ON_FIELD]
    assert expected_outcome("back", ()) == (Decision.RETAKE, [Reason.WRONG_SIDE], True)
    assert expected_outcome("none", ()) == (Decision.RETAKE, [Reason.NO_CARD], False)
    recapture = (Degradation("recapture", 0.6),)
    assert expected_outcome("front", recapture) == (Decision.REVIEW, [Reason.RECAPTURE_SUSPECTED], True)


def test_the_benchmark_mix_has_the_requested_shares():
    counts = Counter(r.category for r in benchmark_recipes(7, 400))
    assert counts["clean"] == 220
    assert counts["mild"] == 100
    assert counts["back"] == 32
    assert 400 - 220 - 100 - 32 == 48 == sum(v for k, v in counts.items() if k not in ("clean", "mild", "back"))
    assert benchmark_recipes(7, 400) == benchmark_recipes(7, 400)
    assert all(isinstance(r, Recipe) for r in benchmark_recipes(7, 10))


def _committed_labels() -> list[dict]:
    lines = (COMMITTED_SET / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_the_committed_set_is_complete_and_under_five_megabytes():
    labels = _committed_labels()
    assert len(labels) == 30
    files = [COMMITTED_SET / label["file"] for label in labels]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) + (COMMITTED_SET / "labels.jsonl").stat().st_size < 5_000_000
    assert sorted(p.name for p in COMMITTED_SET.glob("*.jpg")) == sorted(label["file"] for label in labels)


def test_the_committed_set_covers_the_required_cases():
    labels = _committed_labels()
    fronts = [x for x in labels if x["side"] == "front"]
    clean = [x for x in fronts if not x["degradations"]]
    reasons = Counter(r for x in labels for r in x["expected_reasons"])
    assert len(clean) >= 13
    assert {0.0, 90.0, 180.0, 270.0} <= {x["rotation_deg"] for x in clean}
    assert any(x["rotation_deg"] % 90 for x in clean)
    assert any("·" in x["fields"]["name"] for x in clean)
    assert any(set(x["fields"]["name"]) & set(RARE_MALE + RARE_FEMALE) for x in clean)
    assert any(x["fields"]["id_number"].endswith("X") for x in clean)
    assert any(address_line_count(x["fields"]["address"]) == 3 for x in clean)
    assert sum(x["expected_decision"] == "accept" for x in fronts) >= 18
    assert reasons["blurry"] == 2 and reasons["wrong_side"] == 2
    for reason in (
        "no_card",
        "recapture_suspected",
        "glare_on_field",
        "card_partly_outside",
        "card_too_small",
        "too_dark",
    ):
        assert reasons[reason] >= 1, reason
    for label in labels:
        if label["side"] != "none":
            assert label["identity"]["id_number"] == label["claim"]["id_number"]
            assert len(label["corners"]) == 4


# --- the wild mix: capture conditions of phone photos from elsewhere (issue 9) ----------


def _wild_spec(seed: int, index: int, recipe: Recipe) -> PhotoSpec:
    """The spec make_sample(seed, index, recipe, "wild") draws, without rendering anything."""
    rng = random.Random(f"{seed}:{index}")
    _identity(recipe, rng)
    return wild_photo_spec(recipe, rng)


def _wild_sample(recipe: Recipe, wanted) -> tuple[Sample, np.ndarray]:
    """The first wild sample (seed 5) whose drawn spec satisfies ``wanted``, and its decoded photo."""
    index = next(i for i in range(1, 500) if wanted(_wild_spec(5, i, recipe)))
    sample = make_sample(5, index, recipe, "wild")
    photo = cv2.imdecode(np.frombuffer(sample.jpeg, np.uint8), cv2.IMREAD_COLOR)
    return sample, photo


def _edge_angle(corners) -> float:
    """Direction of the card's own top edge in the photo, clockwise degrees in [0, 360)."""
    (x0, y0), (x1, y1) = corners[0], corners[1]
    return math.degrees(math.atan2(y1 - y0, x1 - x0)) % 360


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_the_wild_mix_has_the_requested_shares_and_one_flat_crop_in_eight():
    recipes = wild_recipes(7, 400)
    counts = Counter(r.category for r in recipes)
    assert (counts["clean"], counts["mild"], counts["back"]) == (200, 72, 24)
    assert counts["photocopy"] == counts["recapture"] == 24
    assert sum(counts[c] for c in NEGATIVE_CATEGORIES if c != "recapture") == 56
    assert sum(r.capture == "flat_crop" for r in recipes) == 200 // WILD_FLAT_CROP_EVERY
    assert wild_recipes(7, 400) == recipes


def test_wild_specs_span_every_capture_condition():
    specs = [_wild_spec(3, i, Recipe("clean", capture="photo")) for i in range(1, 301)]
    assert {s.size for s in specs} == {(1280, 960), (1080, 1440)}
    rotations = [s.rotation_deg for s in specs]
    assert sum(min(_angle_gap(r, q) for q in (0, 90, 180, 270)) > 20 for r in rotations) > 60
    for turn in (0, 90, 180, 270):  # every quarter turn is drawn (give or take a few degrees)
        assert sum(_angle_gap(r, turn) < 10 for r in rotations) > 10, turn
    tilts = [s.tilt_deg for s in specs]
    assert max(tilts) <= 30 and sum(t >= 20 for t in tilts) > 60
    backgrounds = Counter(s.background for s in specs)
    assert backgrounds["cloth"] > 40 and backgrounds["red_digital"] > 15 and backgrounds["papers"] > 40
    assert 60 < sum(s.hand is not None for s in specs) < 120
    assert all(s.degradations == () for s in specs)  # a clean wild photo stays clean at any tilt


def test_a_portrait_wild_photo_is_1080_by_1440_and_labels_every_condition():
    sample, photo = _wild_sample(Recipe("clean", capture="photo"), lambda s: s.size == (1080, 1440) and not s.hand)
    assert photo.shape == (1440, 1080, 3)
    label = sample.label
    assert label["frame"] == "portrait" and label["image_size"] == [1080, 1440]
    assert label["capture"] == "photo" and label["occlusion"] is None
    assert label["background"] in WILD_SURFACE_KINDS
    assert 0 <= label["tilt_deg"] <= 30 and 0 <= label["rotation_deg"] < 360
    assert label["expected_decision"] == "accept"


def test_wild_rotation_labels_match_the_corners():
    def arbitrary(s: PhotoSpec) -> bool:
        return min(_angle_gap(s.rotation_deg, q) for q in (0, 90, 180, 270)) > 25 and s.tilt_deg < 8

    sample, _photo = _wild_sample(Recipe("clean", capture="photo"), arbitrary)
    label = sample.label
    assert _angle_gap(_edge_angle(label["corners"]), label["rotation_deg"]) < 6
    for rotation in (56.0, 123.0, 269.0):
        _card, _photo, corners = _card_and_photo(rotation, tilt=0.0)
        assert _angle_gap(_edge_angle(corners), rotation) < 0.5


def test_a_thumb_covers_the_portrait_and_no_field():
    rng = random.Random(21)
    hand = next(h for h in (random_hand(rng) for _ in range(50)) if h.thumb_edge == "right")
    assert not covers_a_field(hand.thumb) and not any(covers_a_field(f) for f in hand.fingers)
    card, photo, corners = _card_and_photo(30.0, tilt=8.0, hand=hand)
    to_photo = cv2.getPerspectiveTransform(
        np.float32([[0, 0], [85.6, 0], [85.6, 54.0], [0, 54.0]]), np.float32(corners)
    )
    boxes = [f.value for f in load_layout("front").fields.values()]
    fields = np.zeros(photo.shape[:2], np.uint8)
    for box in boxes:
        quad = cv2.perspectiveTransform(np.float32([box.corners_mm()]), to_photo)[0]
        cv2.fillConvexPoly(fields, np.round(quad).astype(np.int32), 1)
    assert _agreement(card, photo, corners, fields.astype(bool)) > 0.9
    # just behind the thumb's tip the photo shows skin, not the card
    tip = np.array(hand.thumb.tip_mm) - 5 * np.array(
        [math.cos(math.radians(hand.thumb.direction_deg)), math.sin(math.radians(hand.thumb.direction_deg))]
    )
    x, y = cv2.perspectiveTransform(np.float32([[tip]]), to_photo)[0, 0]
    b, g, r = photo[int(y), int(x)].astype(int)
    assert r > g > b and r - b > 40
    label = hand.label()
    assert (label["type"], label["side"], label["over"]) == ("thumb", "right", "portrait")


def test_a_held_card_is_labelled_with_its_thumb_and_the_surface_behind():
    sample, _photo = _wild_sample(Recipe("clean", capture="photo"), lambda s: s.hand is not None)
    label = sample.label
    assert label["background"] == "hand"
    assert label["occlusion"]["type"] == "thumb" and label["occlusion"]["behind"] in WILD_SURFACE_KINDS
    assert label["expected_decision"] == "accept" and "thumb" in label["file"]


def test_strong_cloth_and_red_digital_backgrounds_are_saturated():
    for kind in ("cloth", "red_digital"):
        surface = make_surface(kind, (320, 240), random.Random(4))
        hsv = cv2.cvtColor(np.clip(surface, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV)
        assert np.median(hsv[..., 1]) > 120, kind
    red = make_surface("red_digital", (320, 240), random.Random(4))
    assert (red[..., 2] > red[..., 1] + 60).mean() > 0.9


def test_decoy_papers_are_pale_sheets_covered_in_print():
    papers = make_surface("papers", (800, 600), random.Random(6))
    grey = papers.mean(axis=2)
    assert (grey > 200).mean() > 0.4
    ink = (grey < 110).mean()
    assert 0.01 < ink < 0.3


def test_a_flat_crop_is_the_card_itself():
    sample, photo = _wild_sample(Recipe("clean", capture="flat_crop"), lambda s: True)
    label = sample.label
    assert label["capture"] == "flat_crop" and label["background"] == "none"
    h, w = photo.shape[:2]
    turned = label["rotation_deg"] % 180 == 90
    assert abs((h / w if turned else w / h) - 85.6 / 54.0) < 0.01
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    corners = np.array(label["corners"])
    assert abs(cv2.contourArea(corners.astype(np.float32)) / (w * h)) > 0.8
    assert min(np.linalg.norm(frame - c, axis=1).min() for c in corners) < 0.06 * w
    assert label["expected_decision"] == "accept"


def test_a_photocopy_is_greyscale_stamped_and_goes_to_review():
    sample, photo = _wild_sample(Recipe("photocopy"), lambda s: True)
    label = sample.label
    assert label["capture"] == "photocopy" and label["stamp"]
    assert label["expected_decision"] == "review" and label["expected_reasons"] == [PHOTOCOPY_SUSPECTED]
    spread = photo.max(axis=2).astype(int) - photo.min(axis=2).astype(int)
    assert np.percentile(spread, 99.9) <= 4

    rng_seed = "stamp"
    card = render_front(random_identity(random.Random(2)), random.Random(2), px_per_mm=PX_PER_MM)
    spec = PhotoSpec(size=(800, 600), rotation_deg=0.0, card_fraction=0.6, capture="photocopy", stamp="复印无效")
    stamped, corners = photocopy(card, random.Random(rng_seed), spec)
    plain, _ = photocopy(card, random.Random(rng_seed), PhotoSpec(**{**spec.__dict__, "stamp": None}))
    darker = plain.astype(int)[..., 0] - stamped.astype(int)[..., 0] > 40
    assert darker.sum() > 500
    ys, xs = np.nonzero(darker)
    assert cv2.pointPolygonTest(np.float32(corners), (float(xs.mean()), float(ys.mean())), False) >= 0


def test_a_screen_recapture_is_labelled_screen_and_goes_to_review():
    def glare(s: PhotoSpec) -> bool:
        return bool(s.find("recapture") and s.find("recapture").details.get("screen_glare"))

    sample, _photo = _wild_sample(Recipe("recapture"), glare)
    label = sample.label
    assert label["capture"] == "screen"
    assert label["expected_decision"] == "review" and label["expected_reasons"] == ["recapture_suspected"]
    assert label["degradations"][0]["screen_glare"] is True


def test_the_older_mixes_write_no_wild_keys_and_the_committed_set_is_reproduced():
    sample = make_sample(20261123, 1, COMMITTED_RECIPES[0], "committed")
    assert sample.jpeg == (COMMITTED_SET / sample.file).read_bytes()
    assert sample.label == _committed_labels()[0]
    assert not {"capture", "occlusion", "frame"} & set(make_sample(7, 3, COMMITTED_RECIPES[4], "benchmark").label)
