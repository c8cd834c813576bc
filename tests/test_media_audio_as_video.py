"""An audio file given where a video clip belongs is named for what it is, with or without a cover picture
(whose one-frame 'video' stream used to be reported as a truncated video)."""

from __future__ import annotations

import io

import pytest
from media_factory import write_audio, write_video
from viml.core.errors import MediaError
from viml.engine.media import video_segment_frames

AUDIO_FILE = r"no video stream \(an audio file\?\); give a video clip"
WITH_COVER = r"no video stream, only a cover picture \(an audio file\?\); give a video clip"


def cover_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".wav"])
def test_audio_only_file_as_the_video(tmp_path, suffix):
    song = write_audio(tmp_path / f"song{suffix}", seconds=12)
    with pytest.raises(MediaError, match=AUDIO_FILE) as caught:
        video_segment_frames(song, 0, 10)
    assert str(caught.value).startswith(f"{song}: ")


def test_mp3_with_cover_art_as_the_video(tmp_path):
    from mutagen.id3 import APIC, ID3

    song = write_audio(tmp_path / "song.mp3", seconds=12)
    tags = ID3()
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=cover_png()))
    tags.save(song)
    with pytest.raises(MediaError, match=WITH_COVER):
        video_segment_frames(song, 0, 10)


def test_flac_with_cover_art_as_the_video(tmp_path):
    from mutagen.flac import FLAC, Picture

    song = write_audio(tmp_path / "song.flac", seconds=12)
    picture = Picture()
    picture.type, picture.mime, picture.width, picture.height, picture.depth = 3, "image/png", 64, 64, 24
    picture.data = cover_png()
    tagged = FLAC(song)
    tagged.add_picture(picture)
    tagged.save()
    with pytest.raises(MediaError, match=WITH_COVER):
        video_segment_frames(song, 0, 10)


def test_a_real_video_with_sound_still_reads(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", seconds=2, fps=10, with_audio=True)
    assert len(video_segment_frames(clip, short_side=24)) == 1
