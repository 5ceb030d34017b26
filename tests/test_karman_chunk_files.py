"""The store writer's direct chunk files: the same files as zarr's own writes, or zarr where they cannot be."""

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import GzipCodec

from simulators.common.chunk_files import ChunkFiles
from simulators.karman import KarmanConfig
from simulators.karman import writer as karman_writer

# 7 train frames in chunks of 4: the last chunk is partial (padded with the fill value)
CONFIG = KarmanConfig(
    reynolds=(100.0, 150.0), frames=7, test_frames=1, every=8, size=(32, 32), write_batch=4, time_chunk=4
)


def _chunk_files(path: Path) -> dict[str, bytes]:
    """Every stored chunk of the train group's frame variables, by its path in the store."""
    return {
        str(f.relative_to(path)): f.read_bytes()
        for name in karman_writer.FIELDS
        for f in sorted((path / "train" / name / "c").rglob("*"))
        if f.is_file()
    }


def _frames(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((7, 32, 32)).astype(np.float32) for name in karman_writer.FIELDS}


def test_chunk_files_are_the_bytes_zarr_writes_under_the_same_keys(tmp_path):
    by_zarr, direct = tmp_path / "zarr.zarr", tmp_path / "direct.zarr"
    for path in (by_zarr, direct):
        karman_writer.create_store(path, CONFIG)
    frames = _frames(0)
    frames["rho"][:4] = np.nan  # a chunk of fill values, which zarr does not store
    zarr_arrays = {n: zarr.open_array(str(by_zarr / "train" / n), mode="r+") for n in karman_writer.FIELDS}
    direct_arrays = karman_writer.open_frames(direct, "train")
    assert all(isinstance(a, ChunkFiles) for a in direct_arrays.values())
    for index in (0, 1):
        for start, stop in ((0, 4), (4, 7)):  # a whole chunk, then the array's partial last one
            batch = {n: f[start:stop] for n, f in frames.items()}
            karman_writer.write_frames(zarr_arrays, index, start, batch)
            karman_writer.write_frames(direct_arrays, index, start, batch)
    expected = _chunk_files(by_zarr)
    assert len(expected) == 4 * 2 * 2 - 2  # variables x runs x chunks, less the two chunks of fill values
    assert _chunk_files(direct) == expected
    for name, values in frames.items():
        stored = zarr.open_array(str(direct / "train" / name), mode="r")[:]
        np.testing.assert_array_equal(stored, np.stack([values, values]))


def test_a_chunk_of_fill_values_removes_the_chunk_file_as_zarr_does(tmp_path):
    karman_writer.create_store(tmp_path / "s.zarr", CONFIG)
    arrays = karman_writer.open_frames(tmp_path / "s.zarr", "train")
    chunk = tmp_path / "s.zarr" / "train" / "u" / "c" / "0" / "0" / "0" / "0"
    arrays["u"].write(0, 0, np.ones((4, 32, 32), np.float32))
    assert chunk.is_file()
    arrays["u"].write(0, 0, np.full((4, 32, 32), np.nan, np.float32))
    assert not chunk.exists()
    assert np.isnan(zarr.open_array(str(tmp_path / "s.zarr" / "train" / "u"), mode="r")[0, :4]).all()


def test_writes_that_do_not_cover_whole_chunks_are_refused(tmp_path):
    karman_writer.create_store(tmp_path / "s.zarr", CONFIG)
    arrays = karman_writer.open_frames(tmp_path / "s.zarr", "train")
    with pytest.raises(ValueError, match="whole chunks"):
        arrays["u"].write(0, 2, np.ones((4, 32, 32), np.float32))  # starts inside a chunk
    with pytest.raises(ValueError, match="whole chunks"):
        arrays["u"].write(0, 0, np.ones((2, 32, 32), np.float32))  # ends inside one that is not the last
    with pytest.raises(ValueError, match="do not fit"):
        arrays["u"].write(0, 0, np.ones((4, 32, 16), np.float32))  # frames of another size
    assert not list((tmp_path / "s.zarr" / "train" / "u").rglob("c/**/*partial*"))


def test_other_layouts_are_written_through_zarr(tmp_path):
    gzip = zarr.create_array(
        str(tmp_path / "gzip.zarr"),
        shape=(2, 8, 8, 8),
        chunks=(1, 4, 8, 8),
        dtype="f4",
        compressors=GzipCodec(),
    )
    tiled = zarr.create_array(
        str(tmp_path / "tiled.zarr"), shape=(2, 8, 8, 8), chunks=(1, 4, 4, 8), dtype="f4"
    )
    sharded = zarr.create_array(
        str(tmp_path / "sharded.zarr"),
        shape=(2, 8, 8, 8),
        chunks=(1, 4, 8, 8),
        shards=(1, 8, 8, 8),
        dtype="f4",
    )
    for array in (gzip, tiled, sharded):
        assert not ChunkFiles.supports(array)
        with pytest.raises(ValueError, match="not a local zarr v3 array"):
            ChunkFiles(array)
    values = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    arrays = {name: gzip for name in karman_writer.FIELDS}
    karman_writer.write_frames(arrays, 1, 4, {name: values for name in karman_writer.FIELDS})
    np.testing.assert_array_equal(gzip[1, 4:], values)


def test_chunks_of_fill_values_are_stored_where_zarr_is_told_to_store_them(tmp_path):
    frames = {name: np.full((4, 32, 32), np.nan, np.float32) for name in karman_writer.FIELDS}
    with zarr.config.set({"array.write_empty_chunks": True}):
        for name in ("zarr.zarr", "direct.zarr"):
            karman_writer.create_store(tmp_path / name, CONFIG)
        arrays = {n: zarr.open_array(str(tmp_path / "zarr.zarr" / "train" / n), mode="r+") for n in frames}
        karman_writer.write_frames(arrays, 0, 0, frames)
        karman_writer.write_frames(karman_writer.open_frames(tmp_path / "direct.zarr", "train"), 0, 0, frames)
    expected = _chunk_files(tmp_path / "zarr.zarr")
    assert len(expected) == 4
    assert _chunk_files(tmp_path / "direct.zarr") == expected
