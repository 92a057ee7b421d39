"""VipsImageProcessor: decode, verify, sanitise and derive images.

Library choice, measured on this project's photos (docs/processing.md, "Decode path"): libvips
(pyvips, the `pyvips-binary` wheels) decodes and resizes a 12 MP JPEG in about 100 ms of CPU where
Pillow takes about 235 ms, and makes the thumbnails from the display variant in a third of
Pillow's time; Pillow's libwebp encodes the same pixels to the same bytes about 8 % faster than
the wheels' build. So libvips decodes (shrink-on-load, EXIF orientation, embedded ICC profiles
converted to sRGB) and resizes, Pillow encodes WebP, and pillow-heif decodes HEIC, which the
libvips wheels cannot.

Hostile input: the pixel limit is checked on the header; a PNG whose compressed data cannot hold
the rows its header declares is refused before any pixel is decoded; the other formats fail on
truncation while they are decoded at the reduced scale; and every decode first reserves its
pixels' bytes from the worker's DecodeBudget, so concurrent messages cannot exhaust memory.

All the CPU work runs on the given executor (threads: libvips, libwebp and pillow-heif release the
GIL), never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

import blurhash
import pyvips
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from infra.media.budget import DecodeBudget, OverBudget
from services.ingest.inspection import Derived, MediaRefused, Rendition

register_heif_opener()
# Loaders libvips itself marks as unfit for untrusted input (ImageMagick, MATLAB, ...) are off.
pyvips.block_untrusted_set(True)
pyvips.cache_set_max(0)  # every upload is a new file: libvips' operation cache would only hold memory

# name → longest edge. "display" is what Media.url serves instead of the original.
RENDITIONS = (("display", 2048), ("thumb-large", 640), ("thumb-small", 160))
WEBP_QUALITY = 82
WEBP_METHOD = 4  # libwebp's effort, 0 (fast) to 6
DEFAULT_BUDGET_BYTES = 1 << 30
# The memory model of a decode (DecodePlan.cost_bytes), from peak resident sizes measured on
# 6 MP PNGs and 12 MP JPEGs: display-variant bytes per pixel, and a fixed part.
DISPLAY_BYTES_PER_PIXEL = 12
FIXED_DECODE_BYTES = 16 << 20

_VIPS_LOADERS = {"jpegload": "JPEG", "pngload": "PNG", "gifload": "GIF", "webpload": "WEBP"}
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4, "double": 8}
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError)
# zlib's deflate never expands more than 1032:1, so fewer compressed bytes than this fraction
# of the declared rows cannot hold them.
_DEFLATE_MAX_RATIO = 1032

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DecodePlan:
    """What the header says, before a pixel is decoded."""

    format: str  # JPEG, PNG, GIF, WEBP, HEIF
    width: int  # as stored
    height: int
    upright_width: int  # EXIF orientation applied
    upright_height: int
    bands: int
    sample_bytes: int
    shrink: int  # JPEG DCT scaling: 1, 2, 4 or 8
    has_icc: bool

    @property
    def cost_bytes(self) -> int:
        """Bytes this decode may hold at its peak, as measured (docs/processing.md, "Concurrency
        and memory"): the bitmap at the decode scale (its worst case: libvips often streams),
        three times over for HEIC (pillow-heif's bitmap, its raw bytes, libvips' copy); the
        display variant's pixels about four times (libvips', Pillow's, libwebp's YUV planes and
        working memory); and a fixed part for decoder and encoder state."""
        decoded = (
            math.ceil(self.width / self.shrink)
            * math.ceil(self.height / self.shrink)
            * self.bands
            * self.sample_bytes
        )
        if self.format == "HEIF":
            decoded *= 3
        edge = RENDITIONS[0][1]
        scale = min(1.0, edge / max(self.width, self.height))
        display = math.ceil(self.width * scale) * math.ceil(self.height * scale)
        return decoded + DISPLAY_BYTES_PER_PIXEL * display + FIXED_DECODE_BYTES


def jpeg_shrink(width: int, height: int, edge: int = RENDITIONS[0][1]) -> int:
    """The largest DCT scale-down (1/2, 1/4, 1/8) whose result still covers `edge` on the longest
    side: the smallest decode that serves the largest variant. A 6000x4000 photo decodes at 1/2;
    a 4032x3024 one at 1/1 (its half, 2016 px, would not cover 2048)."""
    longest = max(width, height)
    target = min(edge, longest)
    for factor in (8, 4, 2):
        if longest // factor >= target:
            return factor
    return 1


class VipsImageProcessor:
    def __init__(
        self,
        *,
        max_pixels: int,
        budget: DecodeBudget | None = None,
        executor: Executor | None = None,
        webp_quality: int = WEBP_QUALITY,
        webp_method: int = WEBP_METHOD,
    ) -> None:
        return_freed_memory()
        self._max_pixels = max_pixels
        self.budget = budget or DecodeBudget(DEFAULT_BUDGET_BYTES)
        self._executor = executor
        self._quality = webp_quality
        self._method = webp_method

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def derive(self, path: str, workdir: str) -> Derived:
        plan = await self._run(self.plan, path)
        try:
            async with self.budget.hold(plan.cost_bytes):
                display = await self._run(self._decode, path, plan)
                # The display encode is the longest piece of work: the thumbnails, blurhash and
                # dHash run beside it on another core.
                (rendition, _), (thumbs, blur, phash) = await asyncio.gather(
                    self._run(self._encode, display, "display", workdir),
                    self._run(self._small, display, workdir),
                )
        except OverBudget as exc:
            raise MediaRefused("image needs more memory to decode than this worker allows") from exc
        return Derived(
            width=plan.upright_width,
            height=plan.upright_height,
            renditions=(rendition, *thumbs),
            blurhash=blur,
            phash=phash,
            format=plan.format,
        )

    def plan(self, path: str) -> DecodePlan:
        """Read the header; refuse too many pixels and truncated PNG data before decoding."""
        with open(path, "rb") as head:
            magic = head.read(12)
        plan = self._plan_heif(path) if magic[4:8] == b"ftyp" else self._plan_vips(path)
        if plan.width * plan.height > self._max_pixels:
            raise MediaRefused(
                f"image is {plan.width}x{plan.height} pixels, over the limit of {self._max_pixels} "
                "(decompression bomb?)"
            )
        if plan.format == "PNG":
            check_png_complete(path)
        return plan

    def _plan_vips(self, path: str) -> DecodePlan:
        try:
            header = pyvips.Image.new_from_file(path, access="sequential", fail_on="truncated")
        except pyvips.Error as exc:
            raise MediaRefused("image is corrupt or not decodable") from exc
        fields = set(header.get_fields())
        loader = header.get("vips-loader") if "vips-loader" in fields else ""
        kind = _VIPS_LOADERS.get(loader)
        if kind is None:
            raise MediaRefused("image format is not one of JPEG, PNG, GIF, WebP or HEIC")
        width, height = header.width, header.height
        orientation = header.get("orientation") if "orientation" in fields else 1
        upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        return DecodePlan(
            format=kind,
            width=width,
            height=height,
            upright_width=upright[0],
            upright_height=upright[1],
            bands=max(3, header.bands),
            sample_bytes=_SAMPLE_BYTES.get(header.format, 8),
            shrink=jpeg_shrink(width, height) if kind == "JPEG" else 1,
            has_icc="icc-profile-data" in fields,
        )

    def _plan_heif(self, path: str) -> DecodePlan:
        with self._open_pillow(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
            upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
            return DecodePlan(
                format="HEIF",
                width=width,
                height=height,
                upright_width=upright[0],
                upright_height=upright[1],
                bands=4,
                sample_bytes=1,
                shrink=1,
                has_icc=bool(image.info.get("icc_profile")),
            )

    def _open_pillow(self, path: str) -> Image.Image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaRefused("image declares too many pixels (decompression bomb)") from exc
        except _PILLOW_ERRORS as exc:
            raise MediaRefused("image is corrupt or not decodable") from exc

    def _decode(self, path: str, plan: DecodePlan) -> pyvips.Image:
        """The display-size bitmap: upright, sRGB, 8-bit RGB or RGBA, nothing else attached."""
        edge = RENDITIONS[0][1]
        colour = {"output_profile": "srgb"} if plan.has_icc else {}
        try:
            if plan.format == "HEIF":
                thumb = self._heif_to_vips(path).thumbnail_image(edge, size="down", **colour)
            elif plan.shrink > 1:
                # Shrink-on-load: the JPEG decodes at plan.shrink (DCT scaling), then the resize.
                # Asked for explicitly: libvips' thumbnail keeps a factor of two for its own
                # resize, so it would decode 6000x4000 at full scale and 12000x2000 at half.
                # JPEG fails on any libjpeg warning: a scan cut short and closed with an end
                # marker only warns ("premature end of data segment") and would decode as grey.
                loaded = pyvips.Image.new_from_file(
                    path, shrink=plan.shrink, access="sequential", fail_on="warning"
                )
                thumb = loaded.thumbnail_image(edge, size="down", **colour)
            else:
                # The rest stream through the resize; the first frame of an animation.
                fail_on = "warning" if plan.format == "JPEG" else "truncated"
                thumb = pyvips.Image.thumbnail(path, edge, size="down", fail_on=fail_on, **colour)
            return _srgb8(thumb).copy_memory()
        except pyvips.Error as exc:
            raise MediaRefused("image is corrupt or truncated") from exc

    def _heif_to_vips(self, path: str) -> pyvips.Image:
        with self._open_pillow(path) as opened:
            try:
                upright = ImageOps.exif_transpose(opened)
                icc = upright.info.get("icc_profile")
                mode = "RGBA" if "A" in upright.getbands() else "RGB"
                pixels = upright.convert(mode)
            except _PILLOW_ERRORS as exc:
                raise MediaRefused("image is corrupt or truncated") from exc
        image = pyvips.Image.new_from_memory(
            pixels.tobytes(), pixels.width, pixels.height, len(mode), "uchar"
        ).copy(interpretation="srgb")
        if icc:
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
        return image

    def _encode(self, image: pyvips.Image, name: str, workdir: str) -> tuple[Rendition, Image.Image]:
        pixels = _to_pillow(image)
        target = os.path.join(workdir, f"{name}.webp")
        # A new Pillow image from raw pixels: no EXIF, GPS, XMP, ICC or comment can follow it.
        pixels.save(target, "WEBP", quality=self._quality, method=self._method)
        return Rendition(name, target, pixels.width, pixels.height), pixels

    def _small(self, display: pyvips.Image, workdir: str) -> tuple[list[Rendition], str, str]:
        renditions = []
        encoded: list[Image.Image] = []
        for name, edge in RENDITIONS[1:]:
            thumb = display.thumbnail_image(edge, size="down")
            rendition, pixels = self._encode(thumb, name, workdir)
            renditions.append(rendition)
            encoded.append(pixels)
        return renditions, _blurhash(encoded[-1]), dhash(encoded[0])


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the system at once. By default it raises its
    mmap threshold after each large free (up to 32 MiB), after which bitmaps come from the
    threads' heaps and stay resident when freed: resident memory would creep past what the
    decoding budget accounts for. Fixed at 1 MiB, each bitmap is its own mapping."""
    global _heap_bounded
    if _heap_bounded or not sys.platform.startswith("linux"):
        return
    _heap_bounded = True
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_heap_bounded = False


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """Any decoded image (grey, 16-bit, CMYK without a profile) as 8-bit sRGB, alpha kept."""
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands > 4:
        image = image.extract_band(0, n=4)
    return image


def _to_pillow(image: pyvips.Image) -> Image.Image:
    mode = "RGBA" if image.bands == 4 else "RGB"
    # Over libvips' bytes, not a copy of them (read-only: it is only encoded).
    return Image.frombuffer(mode, (image.width, image.height), image.write_to_memory(), "raw", mode, 0, 1)


def check_png_complete(path: str) -> None:
    """Refuse a PNG whose image data cannot hold every row its header declares, without decoding
    a pixel: first by size (deflate expands at most 1032:1), then by inflating the data into a
    small window and counting the bytes. Memory: one window, whatever the image's size."""
    try:
        header, chunks = _png_chunks(path)
    except (OSError, struct.error, ValueError) as exc:
        raise MediaRefused("PNG structure is corrupt") from exc
    expected = _png_raw_size(*header)
    compressed = sum(length for _, length in chunks)
    if compressed * _DEFLATE_MAX_RATIO < expected:
        raise MediaRefused("PNG is truncated: its data cannot hold the rows it declares")
    inflater = zlib.decompressobj()
    produced = 0
    window = 1 << 20
    try:
        with open(path, "rb") as source:
            for offset, length in chunks:
                source.seek(offset)
                remaining = length
                while remaining and produced < expected:
                    data = source.read(min(remaining, window))
                    remaining -= len(data)
                    out = inflater.decompress(data, window)
                    produced += len(out)
                    while inflater.unconsumed_tail and produced < expected:
                        out = inflater.decompress(inflater.unconsumed_tail, window)
                        produced += len(out)
                if produced >= expected:
                    break
    except zlib.error as exc:
        raise MediaRefused("PNG image data is corrupt") from exc
    if produced < expected:
        raise MediaRefused("PNG is truncated: rows are missing")


def _png_chunks(path: str) -> tuple[tuple[int, int, int, int, int], list[tuple[int, int]]]:
    """IHDR's (width, height, bit depth, colour type, interlace) and every IDAT's (offset, length)."""
    header: tuple[int, int, int, int, int] | None = None
    idat: list[tuple[int, int]] = []
    size = os.path.getsize(path)
    with open(path, "rb") as source:
        if source.read(8) != b"\x89PNG\r\n\x1a\n":
            raise ValueError("not a PNG")
        while True:
            length, kind = struct.unpack(">I4s", source.read(8))
            start = source.tell()
            if start + length + 4 > size:
                raise ValueError("chunk runs past the end of the file")
            if kind == b"IHDR":
                width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", source.read(13))
                header = (width, height, depth, colour, interlace)
            elif kind == b"IDAT":
                idat.append((start, length))
            elif kind == b"IEND":
                break
            source.seek(start + length + 4)
    if header is None or not idat:
        raise ValueError("no IHDR or no IDAT")
    return header, idat


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_raw_size(width: int, height: int, depth: int, colour: int, interlace: int) -> int:
    """Bytes of filtered scanlines the IDAT stream must inflate to (a filter byte per row)."""
    if colour not in _CHANNELS:
        raise MediaRefused("PNG colour type is invalid")
    bits = _CHANNELS[colour] * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    return sum(
        rows((width - x + dx - 1) // dx if width > x else 0, (height - y + dy - 1) // dy if height > y else 0)
        for x, y, dx, dy in _ADAM7
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
