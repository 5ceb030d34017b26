"""BAIR: TFRecord files of tf.train.Example protobufs, written here without TensorFlow."""

import numpy as np
import pytest

from forecast.data.importers import tfrecord
from forecast.data.importers.bair import import_bair
from forecast.data.importers.tfrecord import (
    crc32c,
    encode_example,
    parse_example,
    record_offsets,
    write_records,
)
from forecast.errors import ForecastError
from forecast.field_store import open_field_store


def test_crc32c_check_value(monkeypatch):
    # the standard check value of CRC-32C
    assert crc32c(b"123456789") == 0xE3069283
    import builtins

    real_import = builtins.__import__

    def no_extension(name, *args, **kwargs):
        if name == "google_crc32c":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extension)
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # the pure-Python fallback


def test_example_roundtrip():
    features = {
        "0/image_aux1/encoded": [b"\x00\x01\xff" * 5],
        "0/action": np.array([0.5, -1.25], np.float32),
        "n": np.array([3, -2, 300]),
    }
    parsed = parse_example(encode_example(features))
    assert parsed["0/image_aux1/encoded"] == features["0/image_aux1/encoded"]
    np.testing.assert_array_equal(parsed["0/action"], features["0/action"])
    np.testing.assert_array_equal(parsed["n"], features["n"])


def _clips(rng, n, length=30):
    return rng.integers(0, 256, (n, length, 64, 64, 3), dtype=np.uint8)


def _write_release(root, rng, counts=(("train", (2, 1)), ("test", (1,)))):
    clips = {}
    for split, per_file in counts:
        folder = root / "softmotion30_44k" / split
        folder.mkdir(parents=True)
        clips[split] = []
        for f, n in enumerate(per_file):
            videos = _clips(rng, n)
            records = []
            for video in videos:
                features = {f"{t}/image_aux1/encoded": [video[t].tobytes()] for t in range(30)}
                features.update({f"{t}/image_main/encoded": [video[t, ::-1].tobytes()] for t in range(30)})
                features.update({f"{t}/action": np.zeros(4, np.float32) for t in range(30)})
                records.append(encode_example(features))
            write_records(folder / f"traj_{f * 256}_to_{f * 256 + 255}.tfrecords", records)
            clips[split].extend(videos)
    return clips


def test_bair_import(tmp_path, rng):
    clips = _write_release(tmp_path / "bair", rng)
    out = import_bair(tmp_path / "bair", tmp_path / "b.zarr", progress=False)
    train = open_field_store(out, "train", chunks=None)
    assert train.frames.dims == ("sequence", "time", "channel", "y", "x")
    assert train.frames.shape == (3, 30, 3, 64, 64)
    np.testing.assert_array_equal(train.frames.values, np.stack(clips["train"]).transpose(0, 1, 4, 2, 3))
    assert list(train.record.values) == [0, 1, 0] and list(train.channel.values) == ["red", "green", "blue"]
    test = open_field_store(out, "test", chunks=None)
    np.testing.assert_array_equal(test.frames.values[0], clips["test"][0].transpose(0, 3, 1, 2))


def test_corrupt_record_is_named(tmp_path, rng):
    _write_release(tmp_path / "bair", rng)
    path = sorted((tmp_path / "bair" / "softmotion30_44k" / "train").glob("*.tfrecords"))[0]
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # inside the first record's data
    path.write_bytes(bytes(data))
    with pytest.raises(ForecastError, match=rf"{path.name}.*data CRC mismatch"):
        import_bair(tmp_path / "bair", tmp_path / "b.zarr", progress=False)
    path.write_bytes(bytes(data[:5000]))
    with pytest.raises(ForecastError, match=rf"{path.name}.*truncated"):
        record_offsets(path)


def test_missing_frames_feature_is_named(tmp_path, rng):
    folder = tmp_path / "softmotion30_44k"
    for split in ("train", "test"):
        (folder / split).mkdir(parents=True)
        write_records(
            folder / split / "x.tfrecords", [encode_example({"0/image_aux1/encoded": [b"\0" * 12288]})]
        )
    with pytest.raises(
        ForecastError, match="x.tfrecords: record 0 has no bytes feature '1/image_aux1/encoded'"
    ):
        import_bair(tmp_path, tmp_path / "b.zarr", progress=False)
    with pytest.raises(ForecastError, match="no BAIR release"):
        import_bair(tmp_path / "nothing", tmp_path / "c.zarr", progress=False)
