"""Small real files for tests, made with Pillow: images that decode, of an exact size when asked,
photos with GPS EXIF, decompression bombs, polyglots and the EICAR test file."""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import zlib

from PIL import Image, ImageDraw, ImageFilter

# Split so that this file is not itself reported by a virus scanner.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def _noise(side: int) -> Image.Image:
    return Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_bytes(size: int = 4096) -> bytes:
    """A real, random JPEG of exactly `size` bytes (padded with comment segments). Below the
    smallest JPEG Pillow writes, a JPEG header and random bytes: enough for a declaration."""
    base = _encode(_noise(8), "JPEG", quality=50)
    if size < len(base) + 4:
        return JPEG_HEAD + os.urandom(max(0, size - len(JPEG_HEAD)))
    side = 8
    while True:  # the largest noise image that fits, then comments to the byte
        bigger = _encode(_noise(side * 2), "JPEG", quality=50)
        if len(bigger) + 4 > size or side >= 512:
            break
        base, side = bigger, side * 2
    padding = b""
    missing = size - len(base)
    while missing > 0:
        body = min(missing, 65535 + 2) - 4
        if missing - (body + 4) in (1, 2, 3):  # leave room for one more whole segment
            body -= 4
        body = max(body, 0)
        padding += b"\xff\xfe" + struct.pack(">H", body + 2) + b"c" * body
        missing = size - len(base) - len(padding)
    data = base[:2] + padding + base[2:]
    assert len(data) == size, (len(data), size)
    return data


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(size: int = 4096) -> bytes:
    """A real, random PNG of exactly `size` bytes (padded with a private ancillary chunk)."""
    base = _encode(_noise(4), "PNG")
    if size < len(base) + 12:
        return PNG_HEAD + os.urandom(max(0, size - len(PNG_HEAD)))
    side = 4
    while True:
        bigger = _encode(_noise(side * 2), "PNG")
        if len(bigger) + 12 > size or side >= 256:
            break
        base, side = bigger, side * 2
    pad = _chunk(b"pdDg", b"p" * (size - len(base) - 12))
    iend = base.rindex(b"IEND") - 4
    return base[:iend] + pad + base[iend:]


def photo(
    width: int = 480, height: int = 360, *, seed: int = 1, fmt: str = "JPEG", **options: object
) -> bytes:
    """A structured picture (gradient and shapes): perceptual hashes see it as a photo."""
    return _encode(photo_image(width, height, seed=seed), fmt, **options)


def photo_image(width: int = 480, height: int = 360, *, seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(10, max(11, min(width, height) // 3))
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    return image


def jpeg_with_gps(width: int = 640, height: int = 480, *, orientation: int = 6) -> bytes:
    """A JPEG whose EXIF places it at the Eiffel Tower and says 'rotate 90° to display'."""
    image = photo_image(width, height, seed=7)
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = orientation  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    return _encode(image, "JPEG", exif=exif, quality=90)


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG of side x side 1-bit pixels, all zero: ~110 KB that would inflate to
    ~110 MB of scanlines and a 900 MP bitmap."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    rows = row * 1000
    parts = [compressor.compress(rows) for _ in range(side // 1000)]
    parts.append(compressor.compress(row * (side % 1000)))
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def corrupt_jpeg() -> bytes:
    """Starts and ends like a JPEG, but its tables and scan are garbage."""
    data = photo()
    return data[:20] + bytes(random.Random(9).randrange(256) for _ in range(3000)) + b"\xff\xd9"


def resized(data: bytes, scale: float, *, quality: int = 80) -> bytes:
    """The same picture, scaled and re-encoded (as a messenger app would send it back)."""
    image = Image.open(io.BytesIO(data))
    size = (round(image.width * scale), round(image.height * scale))
    return _encode(image.convert("RGB").resize(size, Image.Resampling.BICUBIC), "JPEG", quality=quality)


def heic(width: int = 320, height: int = 240) -> bytes:
    """An iPhone-style HEIC (pillow-heif's encoder)."""
    return _encode(photo_image(width, height, seed=21), "HEIF", quality=80)


def _ffmpeg(*args: str) -> bytes:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        target = os.path.join(workdir, "out.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, target], check=True)
        with open(target, "rb") as made:
            return made.read()


def mp4(seconds: int = 2, width: int = 320, height: int = 240) -> bytes:
    """A real MP4 (MPEG-4 part 2 video, ffmpeg's test pattern)."""
    source = f"testsrc=duration={seconds}:size={width}x{height}:rate=10"
    return _ffmpeg("-f", "lavfi", "-i", source, "-c:v", "mpeg4", "-pix_fmt", "yuv420p")


def audio_only_mp4() -> bytes:
    """An MP4 container (brand isom, so the magic says video/mp4) with no video stream."""
    return _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac")


def mp4_bytes(size: int = 4096) -> bytes:
    """A real MP4 of exactly `size` bytes: ffmpeg's clip, then a top-level `free` box of random
    padding (ISO BMFF readers skip it), so large uploads are valid videos of any length."""
    base = _small_mp4()
    if size < len(base) + 8:
        raise ValueError(f"an MP4 needs at least {len(base) + 8} bytes")
    pad = size - len(base)
    return base + struct.pack(">I", pad) + b"free" + os.urandom(pad - 8)


@functools.cache
def _small_mp4() -> bytes:
    return mp4(seconds=1, width=64, height=48)


def png_with_missing_rows(width: int, height: int, *, rows: int, noise: bool = False) -> bytes:
    """A structurally valid PNG (8-bit RGB, every chunk's CRC right, IEND present) whose image data
    holds only its first `rows` rows: the rest are missing. With `noise`, the rows are random, so
    the compressed data is large enough to pass any size bound and only counting finds the gap."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rng = random.Random(rows)
    line = 1 + width * 3
    raw = b"".join(b"\x00" + (rng.randbytes(line - 1) if noise else bytes(line - 1)) for _ in range(rows))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def phone_photo_image(width: int, height: int, *, seed: int = 18) -> Image.Image:
    """A fixed, seeded stand-in for a phone photo with photographic detail, not flat colour: a
    gradient, value noise from coarse to fine (natural images' falling spectrum), shapes with
    texture over them, a slight blur, sensor grain. As JPEG q90: 1080x1080 ~0.45 MB, 4032x3024
    ~4.6 MB, the sizes phones send."""
    rng = random.Random(seed)

    def noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
        return Image.frombytes(mode, (w, h), rng.randbytes(w * h * len(mode)))

    def octaves(image: Image.Image, levels: tuple[tuple[int, float], ...]) -> Image.Image:
        longest = max(width, height)
        for cells, weight in levels:
            layer = noise(max(2, cells * width // longest), max(2, cells * height // longest))
            image = Image.blend(image, layer.resize((width, height), Image.Resampling.BICUBIC), weight)
        return image

    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)))
    image = octaves(gradient.resize((width, height)).convert("RGB"), ((6, 0.45), (24, 0.3)))
    draw = ImageDraw.Draw(image)
    small, large = max(2, min(width, height) // 60), max(3, min(width, height) // 6)
    for _ in range(40):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(small, large)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        else:
            corners = [(x + rng.randrange(-r, r), y + rng.randrange(-r, r)) for _ in range(5)]
            draw.polygon(corners, fill=color)
    image = octaves(image, ((96, 0.2), (384, 0.16))).filter(ImageFilter.GaussianBlur(1.2))
    return Image.blend(image, noise(width, height, "L").convert("RGB"), 0.11)


def phone_photo(width: int, height: int, *, seed: int = 18, quality: int = 90) -> bytes:
    return _encode(phone_photo_image(width, height, seed=seed), "JPEG", quality=quality)


def icc_rgb_profile(
    description: str, primaries: tuple[tuple[float, float, float], ...], gamma: float
) -> bytes:
    """A matrix/TRC ICC v2 display profile: `primaries` are the red, green and blue colorants in
    D50-adapted XYZ, `gamma` a pure power curve."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    ascii_text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, test profile\0"),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(primaries[0])),
        (b"gXYZ", xyz(primaries[1])),
        (b"bXYZ", xyz(primaries[2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# Adobe RGB (1998): its colorants adapted to D50 and its 2.2 (563/256) gamma, as Adobe publishes them.
ADOBE_RGB_ICC = icc_rgb_profile(
    "Adobe RGB (1998) compatible",
    ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457)),
    563 / 256,
)
