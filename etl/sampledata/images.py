"""Photograph-like JPEGs and the hostile files that break naive pipelines."""

from __future__ import annotations

import io
import random
from typing import Any

from PIL import Image, ImageDraw, ImageOps

# name → (bytes, the reason an ingest must reject the file, or None if it must be catalogued)
HostileImages = dict[str, tuple[bytes, str | None]]

_BACKGROUNDS: dict[tuple[int, int], list[Image.Image]] = {}
BACKGROUND_VARIANTS = 6


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    """A blurred coloured gradient with sensor noise; a few per size are made and then reused (they are slow)."""
    pool = _BACKGROUNDS.setdefault((width, height), [])
    if len(pool) < BACKGROUND_VARIANTS:
        gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize((width, height))
        colour = ImageOps.colorize(gradient, black=tuple(rng.randrange(0, 90) for _ in range(3)),
                                   white=tuple(rng.randrange(120, 256) for _ in range(3)))
        noise = Image.effect_noise((width, height), rng.uniform(10, 30)).convert("RGB")
        pool.append(Image.blend(colour, noise, 0.12))
        return pool[-1]
    return pool[rng.randrange(len(pool))]


def _photo(rng: random.Random, width: int, height: int) -> Image.Image:
    """A photograph-like picture: a noisy gradient background and an organism-like cluster of blobs."""
    picture = _background(rng, width, height).copy()
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.randint(3, 7)):
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=tuple(rng.randrange(0, 256) for _ in range(3)))
    return picture


def _encode(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(rng: random.Random, size: tuple[int, int]) -> bytes:
    """The bytes of a photograph-like JPEG of `size` (width, height), drawn from `rng`."""
    return _encode(_photo(rng, *size), quality=85)


def hostile_images(rng: random.Random) -> HostileImages:
    """Files that break naive pipelines: name → (bytes, reason an ingest must reject it or None)."""
    photo = _photo(rng, 320, 240)
    good = _encode(photo, quality=85)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    return {
        "truncated": (good[: len(good) * 6 // 10], None),
        "zero-byte": (b"", "empty file"),
        "cmyk": (_encode(photo.convert("CMYK"), quality=85), None),
        "grayscale": (_encode(photo.convert("L"), quality=85), None),
        "16-bit": (_encode(photo.convert("L").convert("I;16"), "PNG"), None),
        "palette-transparency": (_encode(palette, "PNG"), None),
        "rgba": (_encode(rgba, "PNG"), None),
        "la": (_encode(photo.convert("LA"), "PNG"), None),
        "png-named-jpg": (_encode(photo, "PNG"), None),
        "exif-rotated": (_encode(photo, quality=85, exif=exif.tobytes()), None),
        "not-an-image": (b"<html>404 Not Found</html>\n", "not an image"),
    }
