"""PillowImageProcessor: decode, verify, sanitise and derive images with Pillow (HEIC through
pillow-heif). Runs in a thread: decoding is CPU work that must not stall the event loop."""

from __future__ import annotations

import asyncio
import os
import warnings

import blurhash
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from services.ingest.inspection import Derived, ImageFacts, MediaRefused, Rendition

register_heif_opener()

# name → longest edge. "display" is what Media.url serves instead of the original.
RENDITIONS = (("display", 2048), ("thumb-large", 640), ("thumb-small", 160))
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError)


class PillowImageProcessor:
    def __init__(self, *, max_pixels: int, webp_quality: int = 82) -> None:
        self._max_pixels = max_pixels
        self._quality = webp_quality

    async def inspect(self, path: str) -> ImageFacts:
        return await asyncio.to_thread(self._inspect, path)

    async def derive(self, path: str, workdir: str) -> Derived:
        return await asyncio.to_thread(self._derive, path, workdir)

    def _open(self, path: str) -> Image.Image:
        """Open (headers only) and refuse too many pixels before a single one is decoded."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaRefused("image declares too many pixels (decompression bomb)") from exc
        except _DECODE_ERRORS as exc:
            raise MediaRefused("image is corrupt or not decodable") from exc
        width, height = image.size
        if width * height > self._max_pixels:
            image.close()
            raise MediaRefused(
                f"image is {width}x{height} pixels, over the limit of {self._max_pixels} "
                "(decompression bomb?)"
            )
        return image

    def _inspect(self, path: str) -> ImageFacts:
        with self._open(path) as image:
            facts = ImageFacts(width=image.width, height=image.height, format=image.format or "")
            try:
                image.verify()  # structure and checksums, without decoding
            except _DECODE_ERRORS as exc:
                raise MediaRefused("image is corrupt") from exc
        with self._open(path) as image:
            try:
                image.load()  # every pixel of the first frame: truncated data fails here
            except _DECODE_ERRORS as exc:
                raise MediaRefused("image is corrupt or truncated") from exc
        return facts

    def _derive(self, path: str, workdir: str) -> Derived:
        with self._open(path) as opened:
            try:
                # The upright size, from the full-size header (draft may have scaled the pixels).
                width, height = opened.size
                orientation = opened.getexif().get(0x0112, 1)
                if orientation in (5, 6, 7, 8):
                    width, height = height, width
                # JPEG can decode straight at a reduced scale: no full-size bitmap for big photos.
                opened.draft("RGB", (RENDITIONS[0][1], RENDITIONS[0][1]))
                upright = ImageOps.exif_transpose(opened)
                mode = "RGBA" if "A" in upright.getbands() or "transparency" in upright.info else "RGB"
                pixels = upright.convert(mode)
            except _DECODE_ERRORS as exc:
                raise MediaRefused("image is corrupt or truncated") from exc
        # Pixels only from here: EXIF (GPS included), XMP, IPTC and comments stay behind.
        pixels.info = {}
        renditions = []
        current = pixels
        for name, edge in RENDITIONS:
            current = current.copy()
            current.thumbnail((edge, edge), Image.Resampling.LANCZOS)
            target = os.path.join(workdir, f"{name}.webp")
            current.save(target, "WEBP", quality=self._quality, method=4)
            renditions.append(Rendition(name, target, current.width, current.height))
        return Derived(
            width=width,
            height=height,
            renditions=tuple(renditions),
            blurhash=_blurhash(current),
            phash=dhash(pixels),
        )


def _blurhash(image: Image.Image) -> str:
    small = image.convert("RGB")
    small.thumbnail((32, 32))
    width, raw = small.width, small.tobytes()
    rows = [
        [list(raw[(y * width + x) * 3 : (y * width + x) * 3 + 3]) for x in range(width)]
        for y in range(small.height)
    ]
    return str(blurhash.encode(rows, components_x=4, components_y=3))


def dhash(image: Image.Image) -> str:
    """64-bit difference hash: survives resizing and recompression, not cropping."""
    gray = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    value = 0
    for y in range(8):
        for x in range(8):
            value = value << 1 | (gray.getpixel((x, y)) > gray.getpixel((x + 1, y)))  # type: ignore[operator]
    return f"{value:016x}"
