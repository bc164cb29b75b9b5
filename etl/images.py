"""Turning a source image into the sample's JPEG: decode, orient, convert to RGB, resize, encode.

Every output is an RGB JPEG of exactly the planned size, encoded with fixed settings, so the same input gives
the same bytes. JPEG inputs are decoded at a reduced DCT scale (`draft`) when they are much larger than the
target, and a JPEG that is already RGB at the target size with no rotation is passed through untouched.
Anything that cannot be decoded raises `ImageProblem` with a one-line reason.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from dataclasses import dataclass
from typing import cast

from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_MODES = ("squash", "center-crop", "pad")
ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
PAD_COLOUR = (0, 0, 0)
# Decompression-bomb guard well above the largest real EOL images (the old code allowed 30,000²).
Image.MAX_IMAGE_PIXELS = 30_000 * 30_000


class ImageProblem(Exception):
    """An image that cannot be used; the message is the reason recorded in `image_errors`."""


@dataclass(frozen=True)
class Target:
    """The planned output: size, resize mode and JPEG quality."""

    width: int
    height: int
    resize: str = "center-crop"
    quality: int = 95

    def encode_options(self) -> dict:
        # Fixed encoder settings: same pixels, same bytes. 4:2:0 chroma subsampling, no optimisation pass
        # (its Huffman tables depend on nothing but the pixels either, but it costs time).
        return {"format": "JPEG", "quality": self.quality, "subsampling": 2, "optimize": False}


def _needed_size(size: tuple[int, int], target: Target) -> tuple[int, int]:
    """The smallest decoded size that still resizes to the target without upsampling more than needed."""
    width, height = size
    if target.resize == "squash":
        return target.width, target.height
    if target.resize == "center-crop":
        scale = max(target.width / width, target.height / height)
    else:
        scale = min(target.width / width, target.height / height)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Every mode to RGB: transparency over white, 16-bit and float scaled to 8 bits, CMYK and L converted."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        as_int = image.convert("I")
        _, high = cast(tuple[int, int], as_int.getextrema())
        scale = 255 / 65535 if high > 255 else 1.0
        return as_int.point(lambda value: value * scale).convert("L").convert("RGB")
    if mode == "F":
        return image.point(lambda value: value * 255 if value <= 1.0 else value).convert("L").convert("RGB")
    return image.convert("RGB")


def prepare(data: bytes, target: Target, timings: dict[str, float] | None = None) -> bytes:
    """The sample JPEG for the source image `data`; `timings`, if given, accumulates seconds per step
    (decode, resize, encode) for the write benchmark."""
    clock = time.perf_counter
    started = clock()
    if not data:
        raise ImageProblem("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            orientation = image.getexif().get(ORIENTATION_TAG, 1) if image.format in ("JPEG", "TIFF", "PNG",
                                                                                       "WEBP") else 1
            if (image.format == "JPEG" and image.mode == "RGB" and image.size == (target.width, target.height)
                    and orientation == 1):
                image.load()  # it must decode whole to be passed through
                return data
            if image.format == "JPEG":
                oriented = image.size[::-1] if orientation in SWAPPING_ORIENTATIONS else image.size
                needed = _needed_size(oriented, target)
                if orientation in SWAPPING_ORIENTATIONS:
                    needed = needed[::-1]
                image.draft("RGB" if image.mode in ("RGB", "CMYK", "YCbCr") else image.mode, needed)
            image.load()
            if orientation != 1:
                image = ImageOps.exif_transpose(image)
            image = _to_rgb(image)
            decoded = clock()
            size = (target.width, target.height)
            if target.resize == "squash":
                image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
            elif target.resize == "center-crop":
                image = ImageOps.fit(image, size, Image.Resampling.BICUBIC)
            else:
                image = ImageOps.pad(image, size, Image.Resampling.BICUBIC, color=PAD_COLOUR)
            resized = clock()
            out = io.BytesIO()
            image.save(out, **target.encode_options())
            if timings is not None:
                timings["decode"] = timings.get("decode", 0.0) + decoded - started
                timings["resize"] = timings.get("resize", 0.0) + resized - decoded
                timings["encode"] = timings.get("encode", 0.0) + clock() - resized
            return out.getvalue()
    except UnidentifiedImageError:
        raise ImageProblem("not an image Pillow can identify") from None
    except Image.DecompressionBombError as exc:
        raise ImageProblem(f"too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageProblem(f"cannot decode: {message}") from None
