"""KTH: real AVI files (uncompressed RIFF written here; MPEG-4 through ffmpeg where imageio-ffmpeg is installed)."""

import numpy as np
import pytest

from forecast.cli import main
from forecast.data.importers.kth import import_kth, parse_sequences_file
from forecast.data.importers.video import parse_avi, read_video, resize_frame, to_gray, write_uncompressed_avi
from forecast.errors import ForecastError
from forecast.field_store import is_complete, open_field_store


def _clip(rng, frames=12, height=12, width=16):
    # a bright square moving right over a dark background, with noise: frames are all different
    video = rng.integers(0, 40, (frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, 3:7, t % (width - 4) : t % (width - 4) + 4] = 220
    return video


def test_avi_roundtrip_and_grey(tmp_path, rng):
    video = _clip(rng, height=13, width=17)  # odd width: rows are padded to 4 bytes
    write_uncompressed_avi(tmp_path / "a.avi", video)
    info, _ = parse_avi(tmp_path / "a.avi")
    assert (info.width, info.height, info.frames, info.codec) == (17, 13, 12, "uncompressed")
    np.testing.assert_array_equal(read_video(tmp_path / "a.avi"), video)
    grey = to_gray(video)
    from PIL import Image

    np.testing.assert_allclose(grey[0], np.asarray(Image.fromarray(video[0]).convert("L")), atol=1)


def test_compressed_avi_through_ffmpeg(tmp_path, rng):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    video = np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[None, None, :, None], 16, axis=1)
    video = np.repeat(np.repeat(video, 5, axis=0), 3, axis=3)
    writer = imageio_ffmpeg.write_frames(
        str(tmp_path / "c.avi"), (16, 16), codec="mpeg4", quality=10, macro_block_size=1
    )
    writer.send(None)
    for frame in video:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()
    assert parse_avi(tmp_path / "c.avi")[0].codec == "FMP4"
    decoded = read_video(tmp_path / "c.avi")
    assert decoded.shape == video.shape
    assert np.abs(decoded.astype(int) - video).mean() < 8  # lossy, but the same picture


def test_malformed_avi_is_named(tmp_path):
    (tmp_path / "bad.avi").write_bytes(b"RIFX0000AVI junk")
    with pytest.raises(ForecastError, match="bad.avi"):
        read_video(tmp_path / "bad.avi")
    write_uncompressed_avi(tmp_path / "cut.avi", np.zeros((3, 8, 8, 3), np.uint8))
    data = (tmp_path / "cut.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(ForecastError, match="cut.avi.*truncated"):
        read_video(tmp_path / "cut.avi")
    with pytest.raises(ForecastError, match="missing.avi"):
        read_video(tmp_path / "missing.avi")


def test_sequences_file(tmp_path):
    (tmp_path / "00sequences.txt").write_text(
        "blah header\n\nperson01_boxing_d1\t\tframes\t1-5, 6-12\nperson17_walking_d2  frames 2-9,10 - 12\n"
    )
    parsed = parse_sequences_file(tmp_path / "00sequences.txt")
    assert parsed == {"person01_boxing_d1": [(0, 5), (5, 12)], "person17_walking_d2": [(1, 9), (9, 12)]}


def _kth_folder(tmp_path, rng, with_sequences=True):
    src = tmp_path / "kth"
    videos = {}
    for person, action, scenario in [(1, "boxing", 1), (16, "walking", 3), (17, "running", 2)]:
        name = f"person{person:02d}_{action}_d{scenario}_uncomp.avi"
        (src / action).mkdir(parents=True, exist_ok=True)
        videos[name] = _clip(rng)
        write_uncompressed_avi(src / action / name, videos[name])
    (src / "notes.avi").write_bytes(b"ignored: not a KTH name")
    if with_sequences:
        (src / "00sequences.txt").write_text(
            "person01_boxing_d1 frames 1-8, 9-12\nperson16_walking_d3 frames 3-12\nperson17_running_d2 frames 1-12\n"
        )
    return src, videos


def test_kth_import_split_coordinates_and_frames(tmp_path, rng):
    src, videos = _kth_folder(tmp_path, rng)
    out = import_kth(src, tmp_path / "kth.zarr", size=8, length=4, progress=False)
    train, test = open_field_store(out, "train", chunks=None), open_field_store(out, "test", chunks=None)
    # person01: segments of 8 and 4 frames -> 2 + 1 windows; person16: 10 frames -> 2; person17: 12 -> 3
    assert train.sizes["sequence"] == 5 and test.sizes["sequence"] == 3
    assert list(train.person.values) == [1, 1, 1, 16, 16] and set(test.person.values) == {17}
    assert list(train.action.values[:3]) == ["boxing"] * 3
    assert list(train.start_frame.values) == [0, 4, 8, 2, 6]
    assert train.frames.shape == (5, 4, 8, 8) and train.frames.dtype == np.uint8
    clip = to_gray(videos["person16_walking_d3_uncomp.avi"])
    expected = np.stack([resize_frame(f, 8, crop=False) for f in clip[6:10]])
    np.testing.assert_array_equal(train.frames.values[4], expected)


def test_kth_without_sequences_file_uses_whole_clips(tmp_path, rng):
    src, _ = _kth_folder(tmp_path, rng, with_sequences=False)
    out = import_kth(src, tmp_path / "kth.zarr", size=8, length=5, crop=True, progress=False)
    train = open_field_store(out, "train")
    assert train.sizes["sequence"] == 4  # two clips of 12 frames -> 2 windows of 5 each
    assert list(train.start_frame.values) == [0, 5, 0, 5]


def test_kth_cli_and_errors(tmp_path, rng, capsys):
    src, _ = _kth_folder(tmp_path, rng)
    assert (
        main(
            [
                "data",
                "import",
                "kth",
                str(src),
                str(tmp_path / "k.zarr"),
                "--size",
                "8",
                "--length",
                "4",
                "--no-progress",
            ]
        )
        == 0
    )
    assert open_field_store(tmp_path / "k.zarr", "test").sizes["sequence"] == 3
    broken = src / "boxing" / "person01_boxing_d1_uncomp.avi"
    broken.write_bytes(broken.read_bytes()[:300])
    assert (
        main(
            [
                "data",
                "import",
                "kth",
                str(src),
                str(tmp_path / "k2.zarr"),
                "--size",
                "8",
                "--length",
                "4",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "person01_boxing_d1_uncomp.avi" in capsys.readouterr().err
    assert not is_complete(tmp_path / "k2.zarr")  # left for --resume, refused by readers
