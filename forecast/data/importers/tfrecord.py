"""TFRecord files and ``tf.train.Example`` protobufs, read and written without TensorFlow.

A TFRecord file is a sequence of records, each framed as: uint64 length (little-endian), uint32 masked CRC-32C
of those 8 bytes, the data, uint32 masked CRC-32C of the data. The mask is ``((crc >> 15 | crc << 17) +
0xA282EAD8) mod 2**32``. An ``Example`` is ``{features: Features = 1}``, ``Features`` is ``{feature:
map<string, Feature> = 1}`` (a map entry is a message with key = 1 and value = 2), and ``Feature`` is a oneof
``bytes_list = 1``, ``float_list = 2``, ``int64_list = 3``, each a message with a repeated field 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from forecast.errors import ForecastError

_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli); uses the google-crc32c extension when it is installed (pure Python is slow)."""
    try:
        import google_crc32c

        return google_crc32c.value(bytes(data))
    except ImportError:
        crc = 0xFFFFFFFF
        for byte in data:
            crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# --- the framing ---------------------------------------------------------------------------------------------
def record_offsets(path: str | Path) -> list[tuple[int, int]]:
    """(offset, length) of every record's data, checking each length's CRC; the data is not read."""
    path = Path(path)
    offsets = []
    size = path.stat().st_size
    with open(path, "rb") as fh:
        pos = 0
        while pos < size:
            header = fh.read(12)
            if len(header) < 12:
                raise ForecastError(f"{path}: truncated record header at byte {pos}")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise ForecastError(f"{path}: corrupt record header at byte {pos} (length CRC mismatch)")
            if pos + 16 + length > size:
                raise ForecastError(f"{path}: record at byte {pos} runs past the end of the file (truncated)")
            offsets.append((pos + 12, length))
            pos += 16 + length
            fh.seek(pos)
    return offsets


def read_record(path: str | Path, offset: int, length: int, verify: bool = True) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
        (data_crc,) = struct.unpack("<I", fh.read(4))
    if verify and masked_crc(data) != data_crc:
        raise ForecastError(f"{path}: corrupt record at byte {offset - 12} (data CRC mismatch)")
    return data


def write_records(path: str | Path, records: list[bytes]) -> None:
    with open(path, "wb") as fh:
        for data in records:
            header = struct.pack("<Q", len(data))
            fh.write(
                header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))
            )


# --- protobuf wire format (only what Example needs) ---------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a message: bytes for length-delimited, int for varints."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def parse_example(data: bytes) -> dict[str, list[bytes] | np.ndarray]:
    """Decode a serialised ``tf.train.Example`` to {key: list of bytes | float32 array | int64 array}."""
    out: dict[str, list[bytes] | np.ndarray] = {}
    for number, _, features in _fields(data):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            key, feature = "", b""
            for n, _, value in _fields(entry):
                if n == 1:
                    key = value.decode()
                elif n == 2:
                    feature = value
            for kind, _, payload in _fields(feature):
                values = [v for n, _, v in _fields(payload) if n == 1]
                if kind == 1:
                    out[key] = list(values)
                elif kind == 2:  # floats: packed (wire 2) or not (wire 5)
                    raw = b"".join(values)
                    out[key] = np.frombuffer(raw, "<f4").copy()
                elif kind == 3:
                    ints = []
                    for v in values:
                        if isinstance(v, bytes):  # packed
                            p = 0
                            while p < len(v):
                                x, p = _varint(v, p)
                                ints.append(x)
                        else:
                            ints.append(v)
                    out[key] = np.array(ints, np.uint64).astype(np.int64)
    return out


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(payload)) + payload


def encode_example(features: dict[str, list[bytes] | np.ndarray]) -> bytes:
    """Serialise {key: list of bytes | float array | int array} as a ``tf.train.Example``."""
    entries = b""
    for key, values in features.items():
        if isinstance(values, list):
            feature = _length_delimited(1, b"".join(_length_delimited(1, v) for v in values))
        elif np.asarray(values).dtype.kind == "f":
            feature = _length_delimited(2, _length_delimited(1, np.asarray(values, "<f4").tobytes()))
        else:
            packed = b"".join(_encode_varint(int(v) & 0xFFFFFFFFFFFFFFFF) for v in np.asarray(values))
            feature = _length_delimited(3, _length_delimited(1, packed))
        entries += _length_delimited(1, _length_delimited(1, key.encode()) + _length_delimited(2, feature))
    return _length_delimited(1, entries)
