"""The exported timeline: ranges, rates, tracks, markers, and every format read back by its adapter."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction

import av
import numpy as np
import opentimelineio as otio
import pytest
from viml.catalog import timeline_formats
from viml.catalog.otio_export import MusicPlacement, build_timeline, exact_rate, video_timing, write_timeline
from viml.catalog.timeline_formats import FORMATS, edit_rate, mp3_decoder_delay
from viml.core.errors import UserFacingError

from tests.media_factory import frame_pattern, write_audio, write_video

NTSC = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_media")
    rng = np.random.default_rng(3)
    noise = (0.2 * rng.standard_normal((2, 48000 * 12))).astype(np.float32)
    return {
        "clip12": write_video(folder / "clip12.mp4", seconds=10, fps=12),  # ms stamps: 11.9996 average
        "clip_ntsc": write_ntsc_video(folder / "clip_ntsc.mov", frames=240),
        "music": write_audio(folder / "music.wav", sample_rate=48000, signal=noise),
        "alternative": write_audio(folder / "alt.flac", sample_rate=48000, signal=noise[:, ::-1].copy()),
        "mp3": write_audio(folder / "music.mp3", sample_rate=48000, signal=noise),
    }


def write_ntsc_video(path, frames: int):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=NTSC)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = 1 / NTSC
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(index, 64, 48), format="rgb24")
            frame.pts, frame.time_base = index, 1 / NTSC
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def timeline_for(media, clip="clip12", alternatives="none", downbeats=(), start=7.3):
    return build_timeline(
        [
            MusicPlacement(str(media["music"]), start, "Chosen", downbeats=downbeats),
            MusicPlacement(str(media["alternative"]), 2.0, "Alternative"),
        ],
        clip_seconds=3.0,
        video=str(media[clip]),
        video_in=5.0,
        alternatives=alternatives,
    )


def test_rates_are_the_clips_own_and_exact(media):
    assert video_timing(media["clip12"]).rate == 12  # measured 128000/10667, snapped
    assert video_timing(media["clip_ntsc"]).rate == NTSC
    assert exact_rate(Fraction(2997, 100)) == Fraction(30000, 1001)
    assert exact_rate(Fraction(15)) == 15 and exact_rate(Fraction(2, 3)) == Fraction(2, 3)
    assert edit_rate(Fraction(12)) == 24 and edit_rate(Fraction(15)) == 30 and edit_rate(Fraction(7)) is None
    timeline = timeline_for(media, "clip_ntsc")
    clip = timeline.tracks[0][0]
    assert clip.source_range.start_time.rate == float(NTSC)
    assert clip.source_range.start_time.value == round(5.0 * NTSC)  # frame 120 of 23.976
    assert clip.media_reference.available_range.duration.value == 240


def test_every_reference_has_its_files_range_and_only_the_choice_is_enabled(media):
    timeline = timeline_for(media)
    video, music = timeline.tracks
    assert video.kind == "Video" and music.kind == "Audio" and music.enabled
    assert video[0].media_reference.available_range.duration.to_frames() == 120  # 10 s at 12 fps
    assert video[0].source_range.start_time.to_frames() == 60
    assert music[0].media_reference.available_range.duration.to_seconds() == pytest.approx(12.0)
    assert music[0].source_range.start_time.to_frames() == 88  # 7.3 s cut on 12 fps frames
    assert music[0].source_range.duration.to_frames() == 36
    muted = timeline_for(media, alternatives="muted")
    assert [t.enabled for t in muted.tracks] == [True, True, False]
    assert muted.tracks[2][0].media_reference.available_range is not None


def test_music_is_cut_at_its_end_and_a_start_past_it_is_refused(media):
    timeline = timeline_for(media, start=10.5)
    assert timeline.tracks[1][0].source_range.duration.to_seconds() == pytest.approx(1.5)
    with pytest.raises(UserFacingError, match="past the music's end"):
        timeline_for(media, start=12.0)
    with pytest.raises(UserFacingError, match="alternatives"):
        timeline_for(media, alternatives="all")


def test_markers_for_the_best_part_and_downbeats(media):
    timeline = timeline_for(media, downbeats=[1.0, 7.5, 9.5, 11.0])
    clip = timeline.tracks[1][0]
    names = [(m.name, round(m.marked_range.start_time.to_seconds(), 3)) for m in clip.markers]
    assert names == [("best part", 7.333), ("downbeat", 7.5), ("downbeat", 9.5)]
    assert clip.markers[0].marked_range.duration.to_frames() == 36
    on_timeline = [round(m.marked_range.start_time.to_seconds(), 3) for m in timeline.tracks.markers]
    assert on_timeline == [round(7.5 - 88 / 12, 3), round(9.5 - 88 / 12, 3)]


@pytest.mark.parametrize("suffix", [s for s in FORMATS if s != ".edl"])
def test_each_format_reads_back_with_the_clip_and_the_music_in_place(media, tmp_path, suffix):
    alternatives = "muted" if FORMATS[suffix].mutes else "none"
    path = tmp_path / f"edit{suffix}"
    write_timeline(timeline_for(media, alternatives=alternatives), path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    read = otio.adapters.read_from_file(str(path))
    clips = {c.name: c for c in read.find_clips()}
    picture = next(c for c in read.find_clips() if "clip12" in c.name)
    chosen = next(c for n, c in clips.items() if "Chosen" in n or "music" in n)
    assert picture.source_range.start_time.to_seconds() == pytest.approx(5.0, abs=1e-6)
    assert picture.source_range.duration.to_seconds() == pytest.approx(3.0, abs=1e-6)
    assert chosen.source_range.start_time.to_seconds() == pytest.approx(88 / 12, abs=1e-3)
    assert chosen.source_range.duration.to_seconds() == pytest.approx(3.0, abs=1e-3)


def test_editor_formats_run_at_a_timecode_rate(media, tmp_path):
    write_timeline(timeline_for(media), tmp_path / "edit.xml")  # 12 fps -> a 24 fps sequence
    root = ET.parse(tmp_path / "edit.xml").getroot()
    assert root.find(".//sequence/rate/timebase").text == "24"
    write_timeline(timeline_for(media, "clip_ntsc"), tmp_path / "ntsc.xml")
    rate = ET.parse(tmp_path / "ntsc.xml").getroot().find(".//sequence/rate")
    assert (rate.findtext("timebase"), rate.findtext("ntsc")) == ("24", "TRUE")
    write_timeline(timeline_for(media, "clip_ntsc"), tmp_path / "ntsc.fcpxml")
    formats = ET.parse(tmp_path / "ntsc.fcpxml").getroot().findall(".//format")
    assert [f.get("frameDuration") for f in formats] == ["1001/24000s"]
    write_timeline(timeline_for(media, "clip_ntsc"), tmp_path / "ntsc.kdenlive")
    profile = ET.parse(tmp_path / "ntsc.kdenlive").getroot().find("profile")
    assert (profile.get("frame_rate_num"), profile.get("frame_rate_den")) == ("24000", "1001")
    write_timeline(timeline_for(media, "clip_ntsc"), tmp_path / "ntsc.xges")
    assert "framerate\\=\\(fraction\\)24000/1001" in (tmp_path / "ntsc.xges").read_text()


def test_muted_alternatives_are_written_in_each_formats_own_markup(media, tmp_path):
    timeline = timeline_for(media, alternatives="muted")
    write_timeline(timeline, tmp_path / "edit.xml")
    tracks = ET.parse(tmp_path / "edit.xml").getroot().findall(".//sequence/media/audio/track")
    assert [t.findtext("enabled") for t in tracks] == [None, "FALSE"]
    write_timeline(timeline, tmp_path / "edit.fcpxml")
    lanes = {
        c.get("lane"): c.get("enabled") for c in ET.parse(tmp_path / "edit.fcpxml").getroot().iter("clip")
    }
    assert lanes.get("-1") is None and lanes["-2"] == "0"
    write_timeline(timeline, tmp_path / "edit.xges")
    layers = ET.parse(tmp_path / "edit.xges").getroot().iter("layer")
    muted = {c.get("asset-id").rsplit("/", 1)[-1]: "mute=(boolean)true" in c.get("children-properties", "")
             for layer in layers for c in layer.iter("clip")}  # fmt: skip
    assert muted == {"alt.flac": True, "music.wav": False, "clip12.mp4": False}
    for suffix in (".aaf", ".edl"):
        with pytest.raises(UserFacingError, match="cannot hold muted"):
            write_timeline(timeline, tmp_path / f"edit{suffix}")
    assert not list(tmp_path.glob("edit.aaf*")) and not list(tmp_path.glob("edit.edl*"))


def test_edl_carries_the_music_as_an_audio_event(media, tmp_path):
    path = tmp_path / "edit.edl"
    write_timeline(timeline_for(media), path)
    events = [line.split() for line in path.read_text().splitlines() if line[:3].isdigit()]
    assert [e[2] for e in events] == ["V", "AA"]
    assert events[0][4:6] == ["00:00:05:00", "00:00:08:00"]  # 24 fps timecode of the 12 fps clip
    assert events[1][4:6] == ["00:00:07:08", "00:00:10:08"]  # frame 88 at 12 fps = 176 at 24
    read = otio.adapters.read_from_file(str(path))
    audio = [t for t in read.tracks if t.kind == "Audio"]
    assert [t.name for t in audio] == ["A1", "A2"]
    assert audio[0][0].source_range.start_time.to_seconds() == pytest.approx(88 / 12)


def test_unknown_extensions_missing_folders_and_adapter_failures_are_one_line(media, tmp_path, monkeypatch):
    timeline = timeline_for(media)
    with pytest.raises(UserFacingError, match="unknown timeline format '.mov'"):
        write_timeline(timeline, tmp_path / "edit.mov")
    with pytest.raises(UserFacingError, match="does not exist"):
        write_timeline(timeline, tmp_path / "nowhere" / "edit.otio")
    target = tmp_path / "edit.aaf"
    target.write_bytes(b"the previous export")

    def half_written(timeline, temporary, fmt):
        with open(temporary, "wb") as handle:
            handle.write(b"partial AAF")
        raise RuntimeError("the writer broke\nhalfway")

    monkeypatch.setitem(timeline_formats._WRITERS, ".aaf", half_written)
    with pytest.raises(UserFacingError) as error:
        write_timeline(timeline, target)
    assert str(error.value) == f"cannot write {target} as {FORMATS['.aaf'].label}: the writer broke halfway"
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.aaf"]


def test_written_files_get_the_usual_permissions(media, tmp_path):
    path = tmp_path / "edit.otio"
    write_timeline(timeline_for(media), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_mp3_delay_is_read_from_the_lame_tag_and_moves_the_xges_in_point(media, tmp_path):
    assert mp3_decoder_delay(media["mp3"]) == pytest.approx((576 + 529) / 48000)
    assert mp3_decoder_delay(media["music"]) is None
    timeline = build_timeline([MusicPlacement(str(media["mp3"]), 7.3)], 3.0, str(media["clip12"]), 5.0)
    write_timeline(timeline, tmp_path / "edit.xges")
    clips = {
        c.get("asset-id").rsplit("/", 1)[-1]: c
        for c in ET.parse(tmp_path / "edit.xges").getroot().iter("clip")
    }
    assert int(clips["music.mp3"].get("inpoint")) == round(88 / 12 * 1e9) + round(1105 / 48000 * 1e9)
    assert int(clips["clip12.mp4"].get("inpoint")) == 5_000_000_000


def test_a_timeline_with_gaps_at_a_non_timecode_rate_is_rescaled_whole(tmp_path):
    """Gaps and transitions are counted at the format's rate too (only clips were: .aaf refused a 12 fps
    timeline with a gap, "Gap.duration().rate not equal to 24.0")."""
    rate = 12.0
    track = otio.schema.Track(name="V1")
    track.append(
        otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(30, rate)))
    )
    clip = otio.schema.Clip(
        name="shot",
        media_reference=otio.schema.ExternalReference(target_url="file:///shot.mp4"),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(60, rate)
        ),
    )
    track.append(clip)
    timeline = otio.schema.Timeline(name="edit")
    timeline.tracks.append(track)
    prepared = timeline_formats._prepared(timeline, FORMATS[".aaf"])
    items = list(prepared.tracks[0])
    assert {item.source_range.duration.rate for item in items} == {24.0}
    assert [item.source_range.duration.value for item in items] == [60, 120]
    assert prepared.tracks[0].duration().to_seconds() == timeline.tracks[0].duration().to_seconds()
