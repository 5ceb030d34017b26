"""Reading video files and resizing frames.

KTH ships AVI clips. An AVI is a RIFF file: a header list (``hdrl``) with the main header (``avih``) and one
stream list per stream (``strh`` stream header, ``strf`` BITMAPINFOHEADER), then the ``movi`` list whose
``##db``/``##dc`` chunks are the frames. Uncompressed frames (8-bit paletted or grey, 24-bit BGR, 32-bit BGRA;
rows bottom-up and padded to 4 bytes unless the height is negative) are decoded here in numpy, with no
dependency. Compressed clips are decoded by the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships
(``pip install imageio-ffmpeg``); without it the error names the codec and the package.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.errors import ForecastError

UNCOMPRESSED = {0, 3, int.from_bytes(b"Y800", "little"), int.from_bytes(b"GREY", "little")}


@dataclass
class AviInfo:
    width: int
    height: int
    bit_count: int
    compression: int
    frames: int
    palette: np.ndarray | None  # (n, 3) RGB for 8-bit paletted frames
    frame_chunks: list[tuple[int, int]]  # (offset, size) of each video frame's data

    @property
    def codec(self) -> str:
        if self.compression in (0, 3):
            return "uncompressed"
        raw = self.compression.to_bytes(4, "little")
        return raw.decode("ascii", "replace")

    @property
    def uncompressed(self) -> bool:
        return self.compression in UNCOMPRESSED


def _chunks(data: bytes, start: int, end: int):
    """Yield (fourcc, payload_start, size, list_type) for each chunk in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        list_type = data[pos + 8 : pos + 12] if fourcc in (b"LIST", b"RIFF") else None
        yield fourcc, pos + 8, size, list_type
        pos += 8 + size + (size & 1)


def parse_avi(path: str | os.PathLike) -> tuple[AviInfo, bytes]:
    """Parse an AVI file's structure (the whole file is read: KTH clips are a few MB)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ForecastError(f"cannot read video {path}: {exc.strerror or exc}") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"AVI ":
        raise ForecastError(f"{path} is not an AVI file (no RIFF/AVI header)")
    info = {"frames": 0, "strf": None}
    frame_chunks: list[tuple[int, int]] = []
    video_stream = None
    stream_index = -1

    def walk(start: int, end: int, in_movi: bool) -> None:
        nonlocal video_stream, stream_index
        for fourcc, payload, size, list_type in _chunks(data, start, end):
            if payload + size > len(data):
                raise ForecastError(f"{path} is truncated (chunk {fourcc!r} runs past the end of the file)")
            if fourcc == b"LIST":
                if list_type == b"strl":
                    stream_index += 1
                walk(payload + 4, payload + size, in_movi or list_type == b"movi")
            elif fourcc == b"avih":
                info["frames"] = struct.unpack_from("<I", data, payload + 16)[0]
            elif fourcc == b"strh" and data[payload : payload + 4] == b"vids" and video_stream is None:
                video_stream = stream_index
            elif fourcc == b"strf" and stream_index == video_stream and info["strf"] is None:
                info["strf"] = (payload, size)
            elif in_movi and video_stream is not None:
                tag = f"{video_stream:02d}".encode()
                if fourcc[:2] == tag and fourcc[2:] in (b"db", b"dc") and size > 0:
                    frame_chunks.append((payload, size))

    walk(12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0]), False)
    if info["strf"] is None:
        raise ForecastError(f"{path} has no video stream (no strf header)")
    payload, size = info["strf"]
    _, width, height, _, bit_count, compression, _, _, _, clr_used, _ = struct.unpack_from(
        "<IiiHHIIiiII", data, payload
    )
    palette = None
    if bit_count == 8:
        n = clr_used or 256
        raw = np.frombuffer(data, np.uint8, count=4 * n, offset=payload + 40).reshape(n, 4)
        palette = raw[:, 2::-1].copy()  # RGBQUAD is B, G, R, reserved
    avi = AviInfo(
        width, height, bit_count, compression, info["frames"] or len(frame_chunks), palette, frame_chunks
    )
    return avi, data


def _decode_uncompressed(info: AviInfo, data: bytes, path: Path) -> np.ndarray:
    """All frames as (T, H, W, 3) RGB uint8."""
    width, height = info.width, abs(info.height)
    bytes_per_pixel = info.bit_count // 8
    if info.bit_count not in (8, 24, 32):
        raise ForecastError(f"{path}: uncompressed {info.bit_count}-bit frames are not supported")
    stride = (width * bytes_per_pixel + 3) & ~3
    frames = np.empty((len(info.frame_chunks), height, width, 3), np.uint8)
    for i, (offset, size) in enumerate(info.frame_chunks):
        if size < stride * height:
            raise ForecastError(f"{path}: frame {i} has {size} bytes, expected {stride * height}")
        rows = np.frombuffer(data, np.uint8, count=stride * height, offset=offset).reshape(height, stride)
        pixels = rows[:, : width * bytes_per_pixel].reshape(height, width, bytes_per_pixel)
        if info.bit_count == 8:
            rgb = (
                info.palette[pixels[..., 0]]
                if info.compression in (0, 3) and info.palette is not None
                else (np.repeat(pixels, 3, axis=-1))
            )
        else:
            rgb = pixels[..., 2::-1]  # BGR(A) -> RGB
        frames[i] = rgb[::-1] if info.height > 0 else rgb  # positive height: bottom-up rows
    return frames


def _read_with_ffmpeg(path: Path, codec: str) -> np.ndarray:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ForecastError(
            f"{path} is compressed ({codec}); decoding it needs ffmpeg: pip install imageio-ffmpeg"
        ) from None
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader]
    except Exception as exc:  # ffmpeg reports malformed input as RuntimeError/OSError
        raise ForecastError(
            f"cannot decode video {path}: {str(exc).splitlines()[0] if str(exc) else exc}"
        ) from None
    if not frames:
        raise ForecastError(f"video {path} has no frames")
    return np.stack(frames)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video file as (T, H, W, 3) RGB uint8."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"video file not found: {path}")
    if path.suffix.lower() == ".avi":
        info, data = parse_avi(path)
        if info.uncompressed:
            return _decode_uncompressed(info, data, path)
        return _read_with_ffmpeg(path, info.codec)
    return _read_with_ffmpeg(path, path.suffix)


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames, from the AVI index where possible (no decoding)."""
    path = Path(path)
    if path.suffix.lower() == ".avi":
        info, _ = parse_avi(path)
        if info.frame_chunks:
            return len(info.frame_chunks)
    return len(read_video(path))


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of (..., 3) uint8 RGB, as uint8 (the same weights as Pillow's "L" mode)."""
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def resize_frame(frame: np.ndarray, size: int, crop: bool = True) -> np.ndarray:
    """Resize one (H, W) or (H, W, 3) uint8 frame to (size, size).

    With ``crop`` the shorter side is scaled to ``size`` and the centre cropped (aspect kept); without it the
    whole frame is scaled to a square (the common KTH preprocessing, which squashes 160x120 to 64x64).
    Antialiased (Pillow's bilinear filter widens its support when downscaling).
    """
    from PIL import Image

    height, width = frame.shape[:2]
    image = Image.fromarray(frame)
    if crop:
        scale = size / min(height, width)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    else:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image)


def write_uncompressed_avi(path: str | os.PathLike, frames: np.ndarray, fps: int = 25) -> None:
    """Write (T, H, W, 3) RGB uint8 frames as an uncompressed 24-bit AVI (RIFF, bottom-up BGR rows, idx1).

    A small, standard-conforming writer, used by the tests to make real AVI files.
    """
    frames = np.asarray(frames, np.uint8)
    count, height, width, _ = frames.shape
    stride = (width * 3 + 3) & ~3
    frame_size = stride * height

    def chunk(fourcc: bytes, payload: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")

    def lst(kind: bytes, payload: bytes) -> bytes:
        return chunk(b"LIST", kind + payload)

    avih = struct.pack(
        "<IIIIIIIIII16x", 1_000_000 // fps, frame_size * fps, 0, 0x10, count, 0, 1, frame_size, width, height
    )
    strh = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh",
        b"vids",
        b"DIB ",
        0,
        0,
        0,
        0,
        1,
        fps,
        0,
        count,
        frame_size,
        0xFFFFFFFF,
        0,
        0,
        0,
        width,
        height,
    )
    strf = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, frame_size, 0, 0, 0, 0)
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi_chunks = []
    index = []
    offset = 4
    for frame in frames:
        rows = np.zeros((height, stride), np.uint8)
        rows[:, : width * 3] = frame[::-1, :, ::-1].reshape(height, width * 3)
        movi_chunks.append(chunk(b"00db", rows.tobytes()))
        index.append(struct.pack("<4sIII", b"00db", 0x10, offset, frame_size))
        offset += 8 + frame_size
    movi = lst(b"movi", b"".join(movi_chunks))
    body = b"AVI " + hdrl + movi + chunk(b"idx1", b"".join(index))
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
