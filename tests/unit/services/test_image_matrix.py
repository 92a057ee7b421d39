"""The variants are right, not only fast (issue 18): every kind of image phones and apps send,
made here as real files, through the real decoder; checked on the variants' pixels and bytes."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
import pyvips
from PIL import Image, ImageOps

from infra.media.images import VipsImageProcessor, jpeg_shrink
from infra.media.video import FfmpegVideoProber
from services.ingest.inspection import Derived
from tests.media_files import ADOBE_RGB_ICC, heic, jpeg_with_gps, mp4, photo_image

RED, GREEN, BLUE, WHITE = (220, 30, 30), (30, 200, 40), (30, 40, 210), (245, 245, 245)
PATCH = (200, 60, 40)  # an sRGB colour that Display P3 and Adobe RGB encode quite differently
# Lossy all the way (JPEG q95 in, WebP q82 out) on flat areas: a few levels per channel.
TOLERANCE = 8


def _processor() -> VipsImageProcessor:
    return VipsImageProcessor(max_pixels=50_000_000)  # the shipped limit


async def derive(tmp_path: Path, data: bytes) -> Derived:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return await _processor().derive(str(path), str(tmp_path))


def variant(derived: Derived, name: str = "display") -> Image.Image:
    rendition = next(r for r in derived.renditions if r.name == name)
    image = Image.open(rendition.path)
    image.load()
    return image


def near(pixel: object, expected: tuple[int, ...], tolerance: int = TOLERANCE) -> bool:
    """Each channel of `pixel` (a Pillow getpixel tuple) within `tolerance` of `expected`."""
    assert isinstance(pixel, tuple), pixel
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, at = [], 12
    while at < len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append(kind)
        if kind == b"VP8X":
            flags = data[at + 8]
            assert flags & 0b00101100 == 0, "VP8X says ICC, EXIF or XMP follows"
        at += 8 + size + (size & 1)
    return chunks


def assert_no_metadata(derived: Derived) -> None:
    for rendition in derived.renditions:
        data = Path(rendition.path).read_bytes()
        assert set(webp_chunks(data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}, rendition.name
        image = Image.open(io.BytesIO(data))
        assert not image.info.get("exif") and not image.info.get("icc_profile") and not image.info.get("xmp")


# --- orientation --------------------------------------------------------------------------------

# What EXIF orientation N asks a viewer to do to the stored pixels (Pillow's exif_transpose), and
# its inverse, which the test applies to an upright picture to store it as a camera would.
_TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_marked(width: int = 240, height: int = 160) -> Image.Image:
    """White, with a red top-left corner and a green top-right one: two adjacent corners pin
    down every rotation and mirror."""
    image = Image.new("RGB", (width, height), WHITE)
    image.paste(RED, (0, 0, width // 4, height // 4))
    image.paste(GREEN, (width - width // 4, 0, width, height // 4))
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
async def test_every_exif_orientation_comes_out_upright(tmp_path: Path, orientation: int) -> None:
    upright = upright_marked()
    transpose = _TO_STORED[orientation]
    stored = upright if transpose is None else upright.transpose(transpose)
    assert ImageOps.exif_transpose(_with_orientation(stored, orientation)).size == upright.size
    exif = Image.Exif()
    exif[0x0112] = orientation

    derived = await derive(tmp_path, encode(stored, "JPEG", quality=95, exif=exif))

    assert (derived.width, derived.height) == (240, 160)
    out = variant(derived)
    assert out.size == (240, 160)
    assert near(out.getpixel((10, 10)), RED), out.getpixel((10, 10))
    assert near(out.getpixel((229, 10)), GREEN), out.getpixel((229, 10))
    assert near(out.getpixel((10, 149)), WHITE) and near(out.getpixel((229, 149)), WHITE)
    assert_no_metadata(derived)


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return Image.open(io.BytesIO(encode(image, "JPEG", exif=exif)))


# --- colour ------------------------------------------------------------------------------------


def _patch_in(profile: str, expected_encoded: tuple[int, int, int]) -> bytes:
    """A flat PATCH (sRGB) re-encoded into another RGB space, its profile embedded, as JPEG."""
    srgb = (pyvips.Image.black(64, 48, bands=3) + list(PATCH)).cast("uchar").copy(interpretation="srgb")
    encoded = srgb.icc_transform(profile, input_profile="srgb", intent="relative")
    # The source really is in the other space: its numbers are not sRGB's.
    assert near(tuple(int(v) for v in encoded.getpoint(5, 5)), expected_encoded, 2)
    data: bytes = encoded.jpegsave_buffer(Q=95)
    assert b"ICC_PROFILE" in data
    return data


@pytest.mark.parametrize(
    ("space", "encoded"),
    [
        pytest.param("p3", (187, 71, 49), id="display-p3"),
        pytest.param("adobe", (173, 62, 45), id="adobe-rgb"),
    ],
)
async def test_embedded_icc_profiles_are_converted_to_srgb(
    tmp_path: Path, space: str, encoded: tuple[int, int, int]
) -> None:
    profile = "p3"  # libvips' built-in Display P3
    if space == "adobe":
        profile = str(tmp_path / "adobe.icc")
        Path(profile).write_bytes(ADOBE_RGB_ICC)
    data = _patch_in(profile, encoded)

    derived = await derive(tmp_path, data)

    out = variant(derived).convert("RGB")
    assert near(out.getpixel((32, 24)), PATCH), out.getpixel((32, 24))  # converted, not dropped
    assert_no_metadata(derived)  # sRGB is the web's default: no profile needed in the variant


async def test_a_cmyk_jpeg_becomes_rgb_of_the_same_hue(tmp_path: Path) -> None:
    image = Image.new("RGB", (64, 48), RED).convert("CMYK")

    derived = await derive(tmp_path, encode(image, "JPEG", quality=95))

    out = variant(derived)
    assert out.mode == "RGB"
    r, g, b = out.getpixel((32, 24))  # type: ignore[misc]
    # Through a CMYK profile, not Pillow's naive formula: the hue holds, the exact values not.
    assert r > 150 and r - g > 100 and r - b > 100, (r, g, b)
    assert_no_metadata(derived)


async def test_a_16_bit_png_is_reduced_to_8_bits_faithfully(tmp_path: Path) -> None:
    deep = (pyvips.Image.black(64, 48, bands=3) + [v * 257 for v in PATCH]).cast("ushort")
    data = deep.copy(interpretation="rgb16").pngsave_buffer()
    assert data[24] == 16  # IHDR bit depth

    derived = await derive(tmp_path, data)

    assert near(variant(derived).convert("RGB").getpixel((32, 24)), PATCH)
    assert_no_metadata(derived)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
async def test_transparency_survives(tmp_path: Path, fmt: str) -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((*BLUE, 255), (100, 0, 200, 100))  # right half opaque blue, left half clear
    options = {"lossless": True} if fmt == "WEBP" else {}

    derived = await derive(tmp_path, encode(image, fmt, **options))

    for name in ("display", "thumb-small"):
        out = variant(derived, name)
        assert out.mode == "RGBA"
        w, h = out.size
        assert out.getpixel((w // 8, h // 2))[3] < 10  # type: ignore[index]
        opaque = out.getpixel((w - w // 8, h // 2))
        assert opaque[3] > 245 and near(opaque[:3], BLUE), opaque  # type: ignore[index]
    assert_no_metadata(derived)


# --- shapes and encodings ----------------------------------------------------------------------


async def test_a_progressive_jpeg(tmp_path: Path) -> None:
    data = encode(photo_image(800, 600, seed=4), "JPEG", quality=90, progressive=True)

    derived = await derive(tmp_path, data)

    assert (derived.width, derived.height) == (800, 600)
    assert [(r.name, r.width, r.height) for r in derived.renditions] == [
        ("display", 800, 600),
        ("thumb-large", 640, 480),
        ("thumb-small", 160, 120),
    ]


async def test_a_12000_by_2000_panorama_is_decoded_at_a_quarter_scale(tmp_path: Path) -> None:
    data = encode(photo_image(12000, 2000, seed=6), "JPEG", quality=85)
    path = tmp_path / "upload"
    path.write_bytes(data)

    plan = _processor().plan(str(path))
    derived = await derive(tmp_path, data)

    assert plan.shrink == 4  # DCT scaling: 3000x500 decoded, still over 2048 wide
    assert (derived.width, derived.height) == (12000, 2000)
    assert [(r.width, r.height) for r in derived.renditions] == [(2048, 341), (640, 107), (160, 27)]


@pytest.mark.parametrize(("size", "shrink"), [((6000, 4000), 2), ((12000, 2000), 4)])
async def test_a_large_jpeg_is_decoded_at_the_planned_scale_upright_and_in_srgb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], shrink: int
) -> None:
    loads: list[dict[str, object]] = []
    new_from_file = pyvips.Image.new_from_file

    def spy(path: str, **options: object) -> pyvips.Image:
        loads.append(options)
        return new_from_file(path, **options)

    monkeypatch.setattr(pyvips.Image, "new_from_file", staticmethod(spy))
    # Stored as a camera held sideways would (orientation 6), in Display P3 with its profile.
    upright = upright_marked(*size)
    upright.paste(PATCH, (size[0] // 2 - 200, size[1] // 2 - 200, size[0] // 2 + 200, size[1] // 2 + 200))
    stored = pyvips.Image.new_from_memory(
        upright.transpose(Image.Transpose.ROTATE_90).tobytes(), size[1], size[0], 3, "uchar"
    ).copy(interpretation="srgb")
    p3 = Image.open(io.BytesIO(stored.icc_transform("p3", input_profile="srgb").jpegsave_buffer(Q=90)))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(p3, "JPEG", quality=90, exif=exif, icc_profile=p3.info["icc_profile"])

    derived = await derive(tmp_path, data)

    assert any(load.get("shrink") == shrink for load in loads), loads  # the plan's, not libvips'
    assert (derived.width, derived.height) == size
    assert [max(r.width, r.height) for r in derived.renditions] == [2048, 640, 160]
    out = variant(derived).convert("RGB")
    w, h = out.size
    assert near(out.getpixel((4, 4)), RED) and near(out.getpixel((w - 5, 4)), GREEN)
    assert near(out.getpixel((w // 2, h // 2)), PATCH), out.getpixel((w // 2, h // 2))  # converted
    assert_no_metadata(derived)


def test_the_decode_scale_is_the_smallest_serving_2048_px() -> None:
    assert jpeg_shrink(6000, 4000) == 2  # 3000x2000: a square 2048 box would have said 1
    assert jpeg_shrink(4000, 6000) == 2
    assert jpeg_shrink(4032, 3024) == 1  # 2016 px at half scale would not cover 2048
    assert jpeg_shrink(16384, 3000) == 8
    assert jpeg_shrink(1080, 1080) == 1


async def test_a_1x1_image(tmp_path: Path) -> None:
    derived = await derive(tmp_path, encode(Image.new("RGB", (1, 1), RED), "PNG"))

    assert [(r.width, r.height) for r in derived.renditions] == [(1, 1)] * 3
    assert near(variant(derived).getpixel((0, 0)), RED)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
async def test_an_animation_gives_its_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (120, 90), colour) for colour in (RED, GREEN, BLUE)]
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3

    derived = await derive(tmp_path, data)

    out = variant(derived)
    assert out.size == (120, 90) and getattr(out, "n_frames", 1) == 1  # a still
    assert near(out.convert("RGB").getpixel((60, 45)), RED)  # the first frame, not a later one
    assert_no_metadata(derived)


async def test_a_heic_photo(tmp_path: Path) -> None:
    derived = await derive(tmp_path, heic(640, 480))

    assert derived.format == "HEIF"
    assert [(r.width, r.height) for r in derived.renditions] == [(640, 480), (640, 480), (160, 120)]
    assert_no_metadata(derived)


async def test_an_mp4_poster_frame(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(mp4(seconds=2, width=320, height=240))
    prober = FfmpegVideoProber(max_pixels=50_000_000)
    poster = await prober.poster(str(tmp_path / "clip.mp4"), str(tmp_path), at_ms=1000)

    derived = await _processor().derive(poster, str(tmp_path))

    assert [(r.width, r.height) for r in derived.renditions] == [(320, 240), (320, 240), (160, 120)]
    assert_no_metadata(derived)


async def test_no_metadata_survives_from_a_photo_full_of_it(tmp_path: Path) -> None:
    source = Image.open(io.BytesIO(jpeg_with_gps(orientation=1)))
    exif = source.getexif()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encode(source, "JPEG", quality=90, exif=exif, xmp=xmp, icc_profile=ADOBE_RGB_ICC, comment=b"hi")
    reread = Image.open(io.BytesIO(data))
    assert reread.info.get("exif") and reread.info.get("xmp") and reread.info.get("icc_profile")

    derived = await derive(tmp_path, data)

    assert_no_metadata(derived)
    for rendition in derived.renditions:
        raw = Path(rendition.path).read_bytes()
        assert b"TestCam" not in raw and b"xmpmeta" not in raw and b"GPS" not in raw
