"""Test photos built with the sample generator (real renders, simulated phone captures)."""

from __future__ import annotations

import random

import numpy as np

from samples.identity import Identity, random_identity
from samples.photo import Degradation, PhotoSpec, photograph
from samples.render import render_back, render_front


def card_photo(
    seed: int,
    *,
    side: str = "front",
    rotation: float = 0.0,
    tilt: float = 4.0,
    background: str = "desk_dark",
    degradations: tuple[Degradation, ...] = (),
    card_fraction: float = 0.7,
    size: tuple[int, int] = (1280, 960),
) -> tuple[np.ndarray, np.ndarray | None, Identity]:
    rng = random.Random(seed)
    identity = random_identity(rng)
    card = None
    if side == "front":
        card = render_front(identity, rng)
    elif side == "back":
        card = render_back(identity, rng)
    spec = PhotoSpec(
        side=side if side != "none" else "front",
        size=size,
        background=background,
        rotation_deg=rotation,
        tilt_deg=tilt,
        tilt_axis_deg=30.0,
        card_fraction=card_fraction,
        degradations=degradations,
    )
    photo, corners = photograph(card, rng, spec)
    return photo, corners, identity
