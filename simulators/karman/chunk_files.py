"""Whole chunks of the store's frames written straight to their files, bypassing zarr's per-chunk machinery.

zarr-python 3 writes each chunk through its event-loop thread, a worker thread for the codec and another for
an atomic temporary-file write. For the street's 4-frame chunks that is about 1.6 ms of CPU per chunk, against
0.2 ms to compress one, and on a 2-core machine the writer threads take that CPU from the lattices (docs/results/speed.md,
"The simulator on a CPU"). ``ChunkFiles`` produces the same bytes under the same keys with one compression and one atomic
file write per chunk. It is used only where that is exactly what zarr would write (``ChunkFiles.supports``:
a local zarr v3 array whose codecs are little-endian bytes then Blosc, chunks that span whole frames); any
other array is written through zarr.
"""

from __future__ import annotations

from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, BytesCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

from forecast.atomic import atomic_output

#: Blosc's shuffle numbers, as zarr maps its names to them
_SHUFFLE = {BloscShuffle.noshuffle: 0, BloscShuffle.shuffle: 1, BloscShuffle.bitshuffle: 2}


class ChunkFiles:
    """Writes whole time chunks of one ``(sequence, time, y, x)`` zarr array as files."""

    def __init__(self, array: zarr.Array):
        if not self.supports(array):
            raise ValueError(
                f"{array} is not a local zarr v3 array of bytes + Blosc chunks spanning whole frames"
            )
        self.array = array
        self.directory = Path(array.store.root) / array.path
        self.time_chunk = array.chunks[1]
        blosc = array.metadata.codecs[1]
        self.codec = numcodecs.Blosc(
            cname=blosc.cname.value,
            clevel=blosc.clevel,
            shuffle=_SHUFFLE[blosc.shuffle],
            blocksize=blosc.blocksize,
            typesize=blosc.typesize,
        )
        self.write_empty_chunks = zarr.config.get("array.write_empty_chunks")

    @staticmethod
    def supports(array: zarr.Array) -> bool:
        """Whether ``ChunkFiles`` writes exactly the files zarr would write for ``array``."""
        meta = array.metadata
        if meta.zarr_format != 3 or not isinstance(array.store, LocalStore):
            return False
        codecs = meta.codecs
        return (
            isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding)
            and len(codecs) == 2
            and isinstance(codecs[0], BytesCodec)
            and codecs[0].endian is not None
            and codecs[0].endian.value == "little"
            and isinstance(codecs[1], BloscCodec)
            and array.ndim == 4
            and array.chunks[0] == 1
            and array.chunks[2:] == array.shape[2:]
        )

    def write(self, index: int, start: int, frames: np.ndarray) -> None:
        """Write ``frames`` ``(n, y, x)`` of sequence ``index`` from frame ``start``: whole chunks only."""
        n = frames.shape[0]
        if frames.shape[1:] != self.array.shape[2:]:
            raise ValueError(f"frames of shape {frames.shape[1:]} do not fit {self.array.shape[2:]}")
        if start % self.time_chunk or (n % self.time_chunk and start + n != self.array.shape[1]):
            raise ValueError(f"frames {start}..{start + n} do not cover whole chunks of {self.time_chunk}")
        data = np.ascontiguousarray(frames, dtype=self.array.dtype.newbyteorder("<"))
        fill = self.array.fill_value
        for offset in range(0, n, self.time_chunk):
            part = data[offset : offset + self.time_chunk]
            chunk = part
            if part.shape[0] < self.time_chunk:  # the array's last chunk: zarr pads it with the fill value
                chunk = np.full(self.array.chunks[1:], fill, dtype=data.dtype)
                chunk[: part.shape[0]] = part
            path = self.directory / self.array.metadata.encode_chunk_key(
                (index, (start + offset) // self.time_chunk, 0, 0)
            )
            if not self.write_empty_chunks and np.array_equal(
                chunk, np.full_like(chunk, fill), equal_nan=True
            ):
                path.unlink(missing_ok=True)  # as zarr does by default: a chunk of fill values is not stored
            else:
                with atomic_output(path) as partial:  # never a half-written chunk under its key
                    partial.write_bytes(self.codec.encode(chunk.view(np.uint8).reshape(-1)))
