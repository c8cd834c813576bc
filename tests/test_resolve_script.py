"""The DaVinci Resolve script against a small fake of the scripting API calls it uses (Resolve cannot
run here) and a running `viml serve`: installed by `viml integrations install resolve`, it reads the
clip under the playhead, asks the service, imports the excerpt and appends it at the playhead on a
free audio track. The fake holds only those calls: any other call fails with AttributeError.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import av
import e2e_helpers as e2e
import httpx
import pytest
from service_helpers import library, running_service

FPS = 12
SOURCE_IN, FRAMES = 12, 48  # the clip shows source frames 12..59: 1 s to 5 s
PLAYHEAD = "01:00:02:00"
PLAYHEAD_FRAME = (3600 + 2) * FPS


class MediaPoolItem:
    def __init__(self, path: str) -> None:
        self.path = path

    def GetClipProperty(self, key: str):  # noqa: N802 (Resolve's names)
        return {"File Path": self.path}[key]


class TimelineItem:
    def __init__(self, media, start: int, frames: int, source_in: int, resolve_18_0: bool = False) -> None:
        self.media, self.start, self.frames, self.source_in = media, start, frames, source_in
        if not resolve_18_0:  # GetSourceStartFrame came later; 18.0 has only GetLeftOffset
            self.GetSourceStartFrame = lambda: self.source_in

    def GetMediaPoolItem(self):  # noqa: N802
        return self.media

    def GetLeftOffset(self):  # noqa: N802
        return self.source_in

    def GetDuration(self):  # noqa: N802
        return self.frames

    def GetStart(self):  # noqa: N802
        return self.start

    def GetEnd(self):  # noqa: N802
        return self.start + self.frames


class Timeline:
    def __init__(self, video_item, audio: list[list[TimelineItem]]) -> None:
        self.video_item, self.audio, self.added = video_item, audio, 0

    def GetSetting(self, key: str):  # noqa: N802
        return {"timelineFrameRate": str(FPS)}[key]

    def GetCurrentVideoItem(self):  # noqa: N802
        return self.video_item

    def GetCurrentTimecode(self):  # noqa: N802
        return PLAYHEAD

    def GetTrackCount(self, kind: str):  # noqa: N802
        assert kind == "audio"
        return len(self.audio)

    def GetItemListInTrack(self, kind: str, index: int):  # noqa: N802
        assert kind == "audio"
        return list(self.audio[index - 1])

    def AddTrack(self, kind: str, layout: str):  # noqa: N802
        assert (kind, layout) == ("audio", "stereo")
        self.audio.append([])
        self.added += 1
        return True


class MediaPool:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline, self.imported, self.appended = timeline, [], []

    def ImportMedia(self, paths: list[str]):  # noqa: N802
        items = [MediaPoolItem(p) for p in paths]
        self.imported += items
        return items

    def AppendToTimeline(self, infos: list[dict]):  # noqa: N802
        placed = []
        for info in infos:
            self.appended.append(info)
            item = TimelineItem(info["mediaPoolItem"], info["recordFrame"],
                                info["endFrame"] - info["startFrame"] + 1, info["startFrame"])  # fmt: skip
            self.timeline.audio[info["trackIndex"] - 1].append(item)
            placed.append(item)
        return placed


class Resolve:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline, self.pool = timeline, MediaPool(timeline)

    def GetProjectManager(self):  # noqa: N802
        return self

    def GetCurrentProject(self):  # noqa: N802
        return self

    def GetCurrentTimeline(self):  # noqa: N802
        return self.timeline

    def GetMediaPool(self):  # noqa: N802
        return self.pool


@pytest.fixture(scope="module")
def service():
    with running_service(library()) as running:
        yield running


@pytest.fixture
def installed(tmp_path):
    done = e2e.viml(
        "integrations", "install", "resolve", "--target", str(tmp_path / "Utility"), home=tmp_path
    )
    script = tmp_path / "Utility" / "ViML Music.py"
    assert str(script) in done.stdout and script.exists()
    modules = tmp_path / "Utility" / "viml"
    assert f"MODULES = {str(modules)!r}" in script.read_text()
    assert {p.name for p in (tmp_path / "Utility").iterdir()} == {"ViML Music.py", "viml"}  # one menu entry
    sys.path.insert(0, str(modules))
    for name in ("viml_resolve", "viml_client"):
        sys.modules.pop(name, None)
    yield importlib.import_module("viml_resolve")
    sys.path.remove(str(modules))


@pytest.mark.parametrize("resolve_18_0", [False, True])
def test_the_script_places_the_excerpt_at_the_playhead_on_a_free_audio_track(
    service, installed, monkeypatch, resolve_18_0
):
    monkeypatch.setenv("VIML_HOME", str(service.library.home))  # where the client finds the service
    world = e2e.world()
    video = str(world.video_path(world.pieces[2]))
    item = TimelineItem(MediaPoolItem(video), PLAYHEAD_FRAME - 6, FRAMES, SOURCE_IN, resolve_18_0)
    busy = TimelineItem(MediaPoolItem("/music/other.wav"), PLAYHEAD_FRAME + 10, 30, 0)
    timeline = Timeline(item, audio=[[busy], []])
    resolve = Resolve(timeline)
    done = installed.place(resolve, installed.Service(), prompt="warm")

    expected = httpx.post(service.url + "/v1/suggest", headers=service.headers(), timeout=120,
                          json={"video": video, "start": 1.0, "end": 5.0, "prompt": "warm", "top": 5})  # fmt: skip
    best = expected.json()["suggestions"][0]
    assert done["clip"] == [video, SOURCE_IN / FPS, (SOURCE_IN + FRAMES) / FPS]
    assert (done["suggestion"]["path"], done["suggestion"]["start"]) == (best["path"], best["start"])
    assert [i.path for i in resolve.pool.imported] == [done["file"]]
    (info,) = resolve.pool.appended
    assert info["recordFrame"] == PLAYHEAD_FRAME and info["mediaType"] == 2
    assert info["trackIndex"] == 2 and timeline.added == 0  # A1 is taken over the playhead's range
    assert info["endFrame"] - info["startFrame"] + 1 == FRAMES
    with av.open(done["file"]) as container:
        stream = container.streams.audio[0]
        assert stream.duration * stream.time_base == pytest.approx(FRAMES / FPS, abs=1e-3)

    again = installed.place(resolve, installed.Service(), prompt="warm")  # both tracks now taken
    assert resolve.pool.appended[-1]["trackIndex"] == 3 and timeline.added == 1
    assert again["file"] == done["file"]


def test_without_a_clip_under_the_playhead_the_script_says_so(service, installed, monkeypatch):
    monkeypatch.setenv("VIML_HOME", str(service.library.home))
    with pytest.raises(installed.ServiceError, match="playhead over a video clip"):
        installed.place(Resolve(Timeline(None, [])), installed.Service())


def test_rates_and_timecodes():
    module_path = Path(__file__).resolve().parent.parent / "viml" / "integrations"
    sys.path.insert(0, str(module_path / "resolve"))
    sys.path.insert(0, str(module_path))
    try:
        resolve = importlib.import_module("viml_resolve")
        for text, rate in (("24", 24.0), ("23.976", 24000 / 1001), ("29.97", 30000 / 1001), ("25", 25.0)):
            assert resolve.frame_rate(type("T", (), {"GetSetting": lambda self, k, t=text: t})()) == rate
        assert resolve.timecode_frames("01:00:00:00", 24000 / 1001) == 86400
        assert resolve.timecode_frames("00:00:01;02", 30000 / 1001) == 32
    finally:
        sys.path.remove(str(module_path / "resolve"))
        sys.path.remove(str(module_path))
        sys.modules.pop("viml_resolve", None)
