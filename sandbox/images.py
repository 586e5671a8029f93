"""Deterministic product pictures for the replica marketplaces.

Every catalog listing carries an ``image_seed`` (hex). :func:`image_bytes` turns a seed into a JPEG
(600x600 by default): a garment silhouette (t-shirt, shirt, jacket, dress, trousers or a compressed
bale) with colours, a pattern and a placement drawn from the seed, on a background gradient. The same
seed always gives the same bytes, so evidence tests can compare digests.

A relisted item's seed is ``"{parent_seed}~{variant}"``: it renders the parent's picture lightly
altered — cropped by a few percent, colour/brightness nudged, re-encoded at another JPEG quality — the
way a seller re-uploads a photo. Its perceptual hash (``imagehash.phash``) stays within a few bits of
the parent's (measured ≤ 10) while unrelated seeds are far apart (typically ≥ 20), which is what the
relist detector in the audit relies on.

Every platform module serves the pictures by including :func:`image_route` in its ``routes(state)``:
``GET /{host-key}/img/{seed}.jpg`` (contract: ``{root}/{key}/img/{image_seed}.jpg``). Shopee's
``image`` hashes are these seeds too.

Knobs (module constants, no settings): :data:`SIZE` (pixels), :data:`CACHE_SIZE` (rendered JPEGs kept
in memory). To add a garment kind, write a ``_draw_<kind>(draw, box, colour)`` function and add it to
:data:`_SHAPES`; to add a pattern, add a function to :data:`_PATTERNS`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import imagehash
from PIL import Image, ImageDraw, ImageEnhance, ImageFont
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sandbox.state import SandboxState

log = logging.getLogger(__name__)

SIZE = 600
CACHE_SIZE = 1024
PARENT_QUALITY = 88
MAX_CROP = 0.03  # zoom per side for a relisted picture
MAX_VARIANT_DISTANCE = 8  # phash bits a relisted picture may differ from its parent
VARIANT_ATTEMPTS = 5
SEED_RE = re.compile(r"^[0-9A-Za-z]{1,64}(?:~[0-9A-Za-z_-]{1,32})?$")

RGB = tuple[int, int, int]
Ink = int | tuple[int, ...]  # an "L" mask value or an RGB colour
Box = tuple[int, int, int, int]

_CAPTIONS = ("BAL", "IMPORT", "KOREA", "JAPAN", "GRADE A", "PRELOVED", "THRIFT", "ORI", "SALE", "NEW")


def _rng(seed: str, salt: str = "") -> random.Random:
    digest = hashlib.sha256(f"{salt}|{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _colour(rng: random.Random, lo: int = 0, hi: int = 255) -> RGB:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def is_valid_seed(seed: str) -> bool:
    """True for ``hex`` or ``hex~variant`` seeds (what the catalog generates)."""
    return bool(SEED_RE.match(seed))


def _shade(colour: Ink, delta: int) -> Ink:
    if isinstance(colour, int):  # a mask: accents stay inside the silhouette
        return colour
    return tuple(min(255, max(0, c + delta)) for c in colour)


# -- garment silhouettes -----------------------------------------------------------------------------
def _draw_tshirt(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = [
        (x0 + 0.25 * w, y0 + 0.08 * h),
        (x0 + 0.40 * w, y0),
        (x0 + 0.60 * w, y0),
        (x0 + 0.75 * w, y0 + 0.08 * h),
        (x1, y0 + 0.30 * h),
        (x0 + 0.85 * w, y0 + 0.42 * h),
        (x0 + 0.78 * w, y0 + 0.35 * h),
        (x0 + 0.78 * w, y1),
        (x0 + 0.22 * w, y1),
        (x0 + 0.22 * w, y0 + 0.35 * h),
        (x0 + 0.15 * w, y0 + 0.42 * h),
        (x0, y0 + 0.30 * h),
    ]
    draw.polygon(body, fill=colour)


def _draw_shirt(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = [
        (x0 + 0.30 * w, y0),
        (x0 + 0.70 * w, y0),
        (x0 + 0.95 * w, y0 + 0.20 * h),
        (x1, y1 - 0.05 * h),
        (x0 + 0.85 * w, y1 - 0.05 * h),
        (x0 + 0.80 * w, y0 + 0.40 * h),
        (x0 + 0.80 * w, y1),
        (x0 + 0.20 * w, y1),
        (x0 + 0.20 * w, y0 + 0.40 * h),
        (x0 + 0.15 * w, y1 - 0.05 * h),
        (x0, y1 - 0.05 * h),
        (x0 + 0.05 * w, y0 + 0.20 * h),
    ]
    draw.polygon(body, fill=colour)
    dark = _shade(colour, -70)
    draw.line([(x0 + 0.5 * w, y0 + 0.05 * h), (x0 + 0.5 * w, y1)], fill=dark, width=max(2, w // 80))


def _draw_jacket(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rounded_rectangle((x0 + 0.18 * w, y0, x1 - 0.18 * w, y1), radius=w // 12, fill=colour)
    draw.rounded_rectangle((x0, y0 + 0.05 * h, x0 + 0.22 * w, y1 - 0.08 * h), radius=w // 16, fill=colour)
    draw.rounded_rectangle((x1 - 0.22 * w, y0 + 0.05 * h, x1, y1 - 0.08 * h), radius=w // 16, fill=colour)
    dark = _shade(colour, -90)
    draw.polygon([(x0 + 0.38 * w, y0), (x0 + 0.5 * w, y0 + 0.35 * h), (x0 + 0.62 * w, y0)], fill=dark)


def _draw_dress(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.polygon(
        [
            (x0 + 0.35 * w, y0),
            (x0 + 0.65 * w, y0),
            (x0 + 0.68 * w, y0 + 0.35 * h),
            (x1, y1),
            (x0, y1),
            (x0 + 0.32 * w, y0 + 0.35 * h),
        ],
        fill=colour,
    )


def _draw_trousers(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.polygon(
        [
            (x0 + 0.15 * w, y0),
            (x1 - 0.15 * w, y0),
            (x1, y1),
            (x0 + 0.58 * w, y1),
            (x0 + 0.5 * w, y0 + 0.30 * h),
            (x0 + 0.42 * w, y1),
            (x0, y1),
        ],
        fill=colour,
    )


def _draw_bale(draw: ImageDraw.ImageDraw, box: Box, colour: Ink) -> None:
    """A compressed bale of used clothes wrapped in plastic with straps (the typical 'bal' photo)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.rectangle((x0, y0 + 0.1 * h, x1, y1), fill=colour)
    strap = _shade(colour, 90)
    for frac in (0.3, 0.7):
        draw.rectangle((x0 + frac * w - w // 40, y0 + 0.1 * h, x0 + frac * w + w // 40, y1), fill=strap)
    draw.rectangle((x0, y0 + 0.5 * h, x1, y0 + 0.5 * h + h // 25), fill=strap)


_SHAPES: dict[str, Callable[[ImageDraw.ImageDraw, Box, Ink], None]] = {
    "tshirt": _draw_tshirt,
    "shirt": _draw_shirt,
    "jacket": _draw_jacket,
    "dress": _draw_dress,
    "trousers": _draw_trousers,
    "bale": _draw_bale,
}


# -- patterns (drawn on a layer, then masked by the silhouette) ---------------------------------------
def _pattern_stripes(draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB) -> None:
    step = rng.randint(30, 90)
    width = rng.randint(8, step // 2)
    vertical = rng.random() < 0.5
    offset = rng.randint(0, step)
    for p in range(-step + offset, SIZE + step, step):
        box = (p, 0, p + width, SIZE) if vertical else (0, p, SIZE, p + width)
        draw.rectangle(box, fill=colour)


def _pattern_checks(draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB) -> None:
    step = rng.randint(40, 110)
    ox, oy = rng.randint(0, step), rng.randint(0, step)
    for i, x in enumerate(range(-step + ox, SIZE + step, step)):
        for j, y in enumerate(range(-step + oy, SIZE + step, step)):
            if (i + j) % 2 == 0:
                draw.rectangle((x, y, x + step, y + step), fill=colour)


def _pattern_dots(draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB) -> None:
    for _ in range(rng.randint(6, 18)):
        r = rng.randint(15, 60)
        x, y = rng.randint(0, SIZE), rng.randint(0, SIZE)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _pattern_blocks(draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB) -> None:
    for _ in range(rng.randint(2, 5)):
        x, y = rng.randint(0, SIZE - 100), rng.randint(0, SIZE - 100)
        draw.rectangle((x, y, x + rng.randint(60, 260), y + rng.randint(60, 260)), fill=colour)


def _pattern_plain(draw: ImageDraw.ImageDraw, rng: random.Random, colour: RGB) -> None:
    return None


_PATTERNS: dict[str, Callable[[ImageDraw.ImageDraw, random.Random, RGB], None]] = {
    "stripes": _pattern_stripes,
    "checks": _pattern_checks,
    "dots": _pattern_dots,
    "blocks": _pattern_blocks,
    "plain": _pattern_plain,
}


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()


def render_parent(seed: str) -> Image.Image:
    """The picture for an original (non-relisted) seed, as an RGB image of SIZE x SIZE."""
    rng = _rng(seed, "parent")
    top, bottom = _colour(rng, 120, 255), _colour(rng, 0, 200)
    img = Image.new("RGB", (SIZE, SIZE), top)
    draw = ImageDraw.Draw(img)
    # A diagonal-ish background gradient in a random direction (big low-frequency structure for phash).
    horizontal = rng.random() < 0.5
    for i in range(0, SIZE, 4):
        t = i / SIZE
        c = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.rectangle((i, 0, i + 4, SIZE) if horizontal else (0, i, SIZE, i + 4), fill=c)

    # Garment placement: size and position vary, so silhouettes of the same kind still differ.
    kind = rng.choice(sorted(_SHAPES))
    scale = rng.uniform(0.45, 0.8)
    gw = int(SIZE * scale)
    gh = int(gw * rng.uniform(0.9, 1.2))
    gh = min(gh, SIZE - 20)
    x0 = rng.randint(10, SIZE - gw - 10)
    y0 = rng.randint(10, SIZE - gh - 10)
    box: Box = (x0, y0, x0 + gw, y0 + gh)
    base = _colour(rng)
    mask = Image.new("L", (SIZE, SIZE), 0)
    _SHAPES[kind](ImageDraw.Draw(mask), box, 255)
    layer = Image.new("RGB", (SIZE, SIZE), base)
    pattern_name = rng.choice(sorted(_PATTERNS))
    _PATTERNS[pattern_name](ImageDraw.Draw(layer), rng, _colour(rng))
    img.paste(layer, (0, 0), mask)

    # Some sellers stamp a word on the photo.
    if rng.random() < 0.6:
        word = rng.choice(_CAPTIONS)
        size = rng.randint(36, 72)
        tx, ty = rng.randint(10, SIZE - size * len(word) // 2 - 10), rng.randint(10, SIZE - size - 10)
        draw = ImageDraw.Draw(img)
        draw.text((tx, ty), word, fill=_colour(rng), font=_font(size))
    return img


def _encode(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _alter(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """Crop (mostly a zoom, a little shift), then nudge brightness and saturation."""
    zoom = rng.uniform(0.01, MAX_CROP) * strength
    shift_x, shift_y = (rng.uniform(-0.006, 0.006) * strength for _ in range(2))
    crop = [zoom + shift_x, zoom + shift_y, zoom - shift_x, zoom - shift_y]
    box = (
        int(SIZE * crop[0]),
        int(SIZE * crop[1]),
        SIZE - int(SIZE * crop[2]),
        SIZE - int(SIZE * crop[3]),
    )
    img = img.crop(box).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(1 + rng.uniform(-0.06, 0.06) * strength)
    return ImageEnhance.Color(img).enhance(1 + rng.uniform(-0.15, 0.15) * strength)


def _variant_quality(seed: str) -> int:
    return _rng(seed, "quality").randint(70, 82)


def render(seed: str) -> Image.Image:
    """The picture for ``seed``; a ``parent~variant`` seed gets the parent's picture, lightly altered.

    A few pictures are so flat that any crop flips many phash bits; for those the alteration is retried
    (deterministically, weaker each time) until the re-encoded variant is within :data:`MAX_VARIANT_DISTANCE`
    of the parent, so the "relisted = near-identical image" promise holds for every seed.
    """
    parent, sep, _variant = seed.partition("~")
    img = render_parent(parent)
    if not sep:
        return img
    # Start from the parent as served: a re-upload carries the original's JPEG artefacts.
    served = Image.open(io.BytesIO(_encode(img, PARENT_QUALITY))).convert("RGB")
    parent_hash = imagehash.phash(served)
    quality = _variant_quality(seed)
    altered = served
    for attempt in range(VARIANT_ATTEMPTS):
        strength = 1.0 / (1 + attempt)
        altered = _alter(served, _rng(seed, f"variant{attempt}"), strength)
        reencoded = Image.open(io.BytesIO(_encode(altered, quality)))
        if parent_hash - imagehash.phash(reencoded) <= MAX_VARIANT_DISTANCE:
            return altered
    log.debug("variant %s kept only the re-encode after %d attempts", seed, VARIANT_ATTEMPTS)
    return served


@lru_cache(maxsize=CACHE_SIZE)
def image_bytes(seed: str) -> bytes:
    """JPEG bytes for ``seed`` (cached). Raises ``ValueError`` for a seed that is not ``hex[~variant]``."""
    if not is_valid_seed(seed):
        raise ValueError(f"not an image seed: {seed!r}")
    quality = PARENT_QUALITY if "~" not in seed else _variant_quality(seed)
    return _encode(render(seed), quality)


def image_route(state: SandboxState) -> Route:
    """``GET /img/{seed}.jpg`` for a platform's routes (mounted under ``/{host-key}`` by the app)."""

    async def serve(request: Request) -> Response:
        seed = str(request.path_params["seed"])
        state.record_request(request.url.path, request.headers.get("user-agent", ""))
        if not is_valid_seed(seed):
            return Response(b"not found", status_code=404, media_type="text/plain")
        body = image_bytes(seed)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(
            body,
            media_type="image/jpeg",
            headers={"cache-control": "public, max-age=86400", "etag": etag},
        )

    return Route("/img/{seed}.jpg", serve, methods=["GET"], name="image")
