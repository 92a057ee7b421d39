"""FfmpegVideoProber: ffprobe checks the container and reads size and duration; ffmpeg grabs a
poster frame. Both run as subprocesses (off the event loop), with a time limit."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from services.ingest.inspection import MediaRefused, VideoFacts


class FfmpegVideoProber:
    def __init__(
        self, *, ffprobe: str = "ffprobe", ffmpeg: str = "ffmpeg", max_pixels: int, timeout_s: float = 120
    ) -> None:
        self._ffprobe = ffprobe
        self._ffmpeg = ffmpeg
        self._max_pixels = max_pixels
        self._timeout_s = timeout_s

    async def _run(self, *args: str) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self._timeout_s)
        except TimeoutError:
            # Overload or a file crafted to stall the demuxer: retried, then dead-lettered.
            process.kill()
            await process.wait()
            raise
        return process.returncode or 0, out, err

    async def probe(self, path: str) -> VideoFacts:
        code, out, _ = await self._run(
            self._ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path
        )
        if code != 0:
            raise MediaRefused("video container is corrupt or not readable")
        report: dict[str, Any] = json.loads(out or b"{}")
        video = [stream for stream in report.get("streams", []) if stream.get("codec_type") == "video"]
        if not video:
            raise MediaRefused("no video stream in the container")
        width, height = int(video[0].get("width") or 0), int(video[0].get("height") or 0)
        if width <= 0 or height <= 0:
            raise MediaRefused("video stream has no picture size")
        if width * height > self._max_pixels:
            raise MediaRefused(f"video frames of {width}x{height} pixels are over the limit")
        duration = report.get("format", {}).get("duration") or video[0].get("duration")
        try:
            duration_ms = round(float(duration) * 1000)
        except (TypeError, ValueError):
            raise MediaRefused("video has no duration") from None
        if duration_ms <= 0:
            raise MediaRefused("video has no duration")
        return VideoFacts(width=width, height=height, duration_ms=duration_ms)

    async def poster(self, path: str, workdir: str, *, at_ms: int) -> str:
        target = os.path.join(workdir, "poster.png")
        for offset in (at_ms, 0):  # a clip whose frames stop early: its first frame
            code, _, _ = await self._run(
                self._ffmpeg, "-v", "error", "-y", "-ss", f"{offset / 1000:.3f}", "-i", path,
                "-frames:v", "1", "-f", "image2", target,
            )  # fmt: skip
            if code == 0 and await asyncio.to_thread(_has_bytes, target):
                return target
        raise MediaRefused("no frame could be decoded from the video")


def _has_bytes(path: str) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0
