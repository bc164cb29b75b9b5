"""Turning a source image into the sample's JPEG: decode, orient, convert to RGB, resize, encode.

Every output is an RGB JPEG of exactly the planned size, encoded with fixed settings, so the same input gives
the same bytes with the same codec stack (`CODEC_STACK`, recorded in each plan and each shard's manifest).

Two decode paths, chosen per image by its bytes alone (so always the same one for the same file):

- the fast path, for baseline or progressive YCbCr JPEGs without an EXIF rotation, resized by center-crop or
  squash: libjpeg-turbo (through simplejpeg) decodes at the largest power-of-two DCT scale (1/2, 1/4, 1/8)
  that keeps the image at least as large as needed, OpenCV resamples the exact centred box (bilinear, after
  a Gaussian anti-alias blur scaled to the remaining reduction, which is under 2×);
- Pillow for everything else: PNG, CMYK, grey, 16-bit, palette, transparency, EXIF orientation, pad mode,
  and any JPEG the fast path refuses (truncated or corrupt files get Pillow's verdict).

Both encode with libjpeg-turbo through simplejpeg (4:2:0, no optimisation pass). A JPEG that is already YCbCr
at the target size with no rotation is passed through untouched once it decodes whole. Anything that cannot
be decoded raises `ImageProblem` with a one-line reason.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import time
import warnings
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_MODES = ("squash", "center-crop", "pad")
ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
PAD_COLOUR = (0, 0, 0)
# Decompression-bomb guard well above the largest real EOL images (the old code allowed 30,000²).
Image.MAX_IMAGE_PIXELS = 30_000 * 30_000
# The fast path's steps: bump when its arithmetic changes, so that a plan cannot mix outputs of two versions.
RESIZE_VERSION = 2
# Anti-alias blur before the bilinear resample: sigma = ANTIALIAS × sqrt(ratio² - 1) per axis (ratio < 2).
ANTIALIAS = 0.3
cv2.setNumThreads(1)  # one image per worker process: OpenCV's own threads would only contend


def codec_stack() -> str:
    """The libraries and the fast path's version that decide every output byte, as recorded in plans and
    shard manifests: `tol-resize/2 simplejpeg/1.9.0 opencv/5.0.0 pillow/13.0.0`."""
    import PIL

    return (f"tol-resize/{RESIZE_VERSION} simplejpeg/{simplejpeg.__version__} opencv/{cv2.__version__} "
            f"pillow/{PIL.__version__}")


CODEC_STACK = codec_stack()


class ImageProblem(Exception):
    """An image that cannot be used; the message is the reason recorded in `image_errors`."""


@dataclass(frozen=True)
class Target:
    """The planned output: size, resize mode and JPEG quality."""

    width: int
    height: int
    resize: str = "center-crop"
    quality: int = 95

    def encode(self, pixels: np.ndarray) -> bytes:
        """Fixed encoder settings: same pixels, same bytes. 4:2:0 chroma subsampling, no optimisation pass."""
        return cast(bytes, simplejpeg.encode_jpeg(np.ascontiguousarray(pixels), quality=self.quality,
                                                  colorspace="RGB", colorsubsampling="420"))


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


def dct_scale(size: tuple[int, int], needed: tuple[int, int]) -> int:
    """The largest power-of-two reduction (1, 2, 4 or 8) that keeps `size` at least `needed` on both axes:
    libjpeg-turbo's SIMD scaled IDCTs, and the reductions Pillow's `draft` makes."""
    for reduction in (8, 4, 2):
        if size[0] // reduction >= needed[0] and size[1] // reduction >= needed[1]:
            return reduction
    return 1


def center_crop_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, top, width, height) of the largest centred box of `size` with `target`'s aspect ratio, in
    fractional pixels, as `ImageOps.fit` takes it."""
    width, height = size
    if width * target[1] > height * target[0]:  # wider than the target: crop the sides
        kept = height * target[0] / target[1]
        return (width - kept) / 2, 0.0, kept, float(height)
    kept = width * target[1] / target[0]
    return 0.0, (height - kept) / 2, float(width), kept


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of JPEG `data` read from its APP1 segment, 1 when it has none or it cannot
    be read; the segments are walked up to the first scan, nothing is decoded."""
    position, end = 2, len(data)
    while position + 4 <= end and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker == 0xDA:  # start of scan: no EXIF after this
            return 1
        length = int.from_bytes(data[position + 2:position + 4], "big")
        segment = data[position + 4:position + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            return _tiff_orientation(segment[6:])
        position += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of the first IFD of a TIFF header (EXIF), 1 if absent or malformed."""
    if tiff[:2] == b"II":
        order = "<"
    elif tiff[:2] == b"MM":
        order = ">"
    else:
        return 1
    try:
        (offset,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        for entry in range(count):
            tag, kind, _n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * entry)
            if tag == ORIENTATION_TAG:
                value = (struct.unpack_from(order + "H", tiff, offset + 2 + 12 * entry + 8)[0] if kind == 3
                         else struct.unpack_from(order + "I", tiff, offset + 2 + 12 * entry + 8)[0])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


@functools.lru_cache(maxsize=64)  # about 19 MB at 224x224
def _sampling_maps(shape: tuple[int, int], box: tuple[float, float, float, float],
                   size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point maps (OpenCV's 1/32-pixel `CV_16SC2` form) from each output pixel's centre to the source
    position it samples, for a box of a (height, width) `shape` region: the same for every image of one
    geometry, so they are computed once per geometry."""
    left, top, box_width, box_height = box
    scale_x, scale_y = box_width / size[0], box_height / size[1]
    xs = (left + (np.arange(size[0]) + 0.5) * scale_x - 0.5).astype(np.float32)
    ys = (top + (np.arange(size[1]) + 0.5) * scale_y - 0.5).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(xs, (size[1], size[0])))
    map_y = np.ascontiguousarray(np.broadcast_to(ys[:, None], (size[1], size[0])))
    fixed, fractions = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    fixed.flags.writeable = fractions.flags.writeable = False
    return fixed, fractions


def _resample(pixels: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """The `box` (left, top, width, height; fractional) of `pixels` resampled to `size` (width, height):
    bilinear at the box's exact position, after a Gaussian blur on each axis that is reduced, its sigma growing
    from 0 at no reduction (what is left after DCT scaling is under 2×). Exact positions matter: a crop
    rounded to whole pixels cost up to 2.5 dB PSNR against a Lanczos reference; bicubic sampling gained
    0.2 dB for three times the cost (OpenCV's cubic remap is not vectorised)."""
    left, top, box_width, box_height = box
    scale_x, scale_y = box_width / size[0], box_height / size[1]
    # Only the box and a margin for the filters are blurred and sampled.
    x0, y0 = max(0, int(left) - 4), max(0, int(top) - 4)
    x1 = min(pixels.shape[1], math.ceil(left + box_width) + 4)
    y1 = min(pixels.shape[0], math.ceil(top + box_height) + 4)
    pixels = pixels[y0:y1, x0:x1]
    sigmas = [ANTIALIAS * math.sqrt(ratio * ratio - 1) if ratio > 1 else 0.0 for ratio in (scale_x, scale_y)]
    if max(sigmas) > 0.05:
        pixels = cv2.GaussianBlur(pixels, (0, 0), sigmaX=max(sigmas[0], 0.01), sigmaY=max(sigmas[1], 0.01))
    fixed, fractions = _sampling_maps((y1 - y0, x1 - x0), (left - x0, top - y0, box_width, box_height), size)
    return cast(np.ndarray, cv2.remap(pixels, fixed, fractions, cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE))


def _fast(data: bytes, target: Target, timings: dict[str, float] | None) -> bytes | None:
    """The fast path's output, or None when the image is not for it (see the module's docstring)."""
    if target.resize == "pad" or data[:2] != b"\xff\xd8":
        return None
    try:
        height, width, colourspace, _subsampling = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colourspace != "YCbCr" or jpeg_orientation(data) != 1:
        return None
    clock = time.perf_counter
    started = clock()
    size = (target.width, target.height)
    try:
        if (width, height) == size:
            simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)  # it must decode whole to pass
            return data
        reduction = dct_scale((width, height), _needed_size((width, height), target))
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, min_width=-(-width // reduction),
                                        min_height=-(-height // reduction))
    except ValueError:
        return None  # truncated or corrupt: Pillow gives the reason
    decoded = clock()
    whole = (pixels.shape[1], pixels.shape[0])
    box = (center_crop_box(whole, size) if target.resize == "center-crop"
           else (0.0, 0.0, float(whole[0]), float(whole[1])))
    pixels = _resample(pixels, box, size)
    resized = clock()
    out = target.encode(pixels)
    if timings is not None:
        timings["decode"] = timings.get("decode", 0.0) + decoded - started
        timings["resize"] = timings.get("resize", 0.0) + resized - decoded
        timings["encode"] = timings.get("encode", 0.0) + clock() - resized
    return out


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
    if not data:
        raise ImageProblem("empty file (0 bytes)")
    fast = _fast(data, target, timings)
    if fast is not None:
        return fast
    return _pillow(data, target, timings)


def _pillow(data: bytes, target: Target, timings: dict[str, float] | None) -> bytes:
    """The Pillow path: every format and mode Pillow reads, EXIF orientation, every resize mode."""
    clock = time.perf_counter
    started = clock()
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
            out = target.encode(np.asarray(image))
            if timings is not None:
                timings["decode"] = timings.get("decode", 0.0) + decoded - started
                timings["resize"] = timings.get("resize", 0.0) + resized - decoded
                timings["encode"] = timings.get("encode", 0.0) + clock() - resized
            return out
    except UnidentifiedImageError:
        raise ImageProblem("not an image Pillow can identify") from None
    except Image.DecompressionBombError as exc:
        raise ImageProblem(f"too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageProblem(f"cannot decode: {message}") from None
