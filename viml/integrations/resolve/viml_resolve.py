"""Music for the current timeline clip in DaVinci Resolve, from `viml serve` (Resolve 18.5 and later).

Reads the video item under the playhead (Timeline.GetCurrentVideoItem), its source file
(MediaPoolItem "File Path") and in/out in the source (TimelineItem.GetSourceStartFrame where Resolve
has it, GetLeftOffset before; GetDuration) at the timeline's frame rate, asks the service for
suggestions, renders the first one's excerpt for the clip's length into a `ViML Music` folder beside
the source, imports it into the media pool (MediaPool.ImportMedia) and appends it at the playhead on
the first audio track with nothing there (a new stereo track when none is free:
Timeline.AddTrack), with MediaPool.AppendToTimeline's clip info (recordFrame, trackIndex, mediaType 2).
Those clip-info keys and AddTrack came with Resolve 18; the scripting API is Blackmagic's (README in
Resolve's Developer/Scripting folder).
"""

from __future__ import annotations

import math
import os
import re

from viml_client import Service, ServiceError

AUDIO = 2  # AppendToTimeline's mediaType for audio only
MUSIC_FOLDER = "ViML Music"


def frame_rate(timeline) -> float:
    text = str(timeline.GetSetting("timelineFrameRate") or "24")
    rate = float(re.sub(r"[^0-9.]", "", text) or 24)
    # Resolve names 23.976 / 29.97 / 59.94; their exact rates are N*1000/1001.
    return round(rate) * 1000 / 1001 if abs(rate - round(rate)) > 0.001 else float(round(rate))


def timecode_frames(timecode: str, rate: float) -> int:
    """Frames of a non-drop timecode HH:MM:SS:FF (drop frame ';' counted as non-drop, as Resolve's
    frame numbers are), at the timecode's whole-frame base."""
    base = math.ceil(rate - 0.001)
    hours, minutes, seconds, frames = (int(p) for p in re.split(r"[:;.]", timecode.strip()))
    return ((hours * 60 + minutes) * 60 + seconds) * base + frames


def clip_range(item, rate: float) -> tuple[str, float, float]:
    """(source file, in, out) in seconds of the source for a timeline item."""
    media = item.GetMediaPoolItem()
    if media is None:
        raise ServiceError(0, "The clip under the playhead has no media (a generator or title?)")
    path = media.GetClipProperty("File Path")
    if not path:
        raise ServiceError(0, "The clip under the playhead has no file")
    first = item.GetSourceStartFrame() if hasattr(item, "GetSourceStartFrame") else item.GetLeftOffset()
    start = float(first) / rate
    return path, start, start + item.GetDuration() / rate


def free_audio_track(timeline, first: int, last: int) -> int:
    """The first audio track with no item over timeline frames [first, last); a new one if none."""
    count = int(timeline.GetTrackCount("audio") or 0)
    for index in range(1, count + 1):
        items = timeline.GetItemListInTrack("audio", index) or []
        if all(i.GetEnd() <= first or i.GetStart() >= last for i in items):
            return index
    if not timeline.AddTrack("audio", "stereo"):
        raise ServiceError(0, "No free audio track and Resolve refused to add one")
    return count + 1


def safe_name(text: str) -> str:
    return re.sub(r"[^\w .+-]", "_", text).strip()[:60] or "music"


def place(resolve, service: Service, prompt: str | None = None, mode: str = "auto") -> dict:
    """Suggest for the clip under the playhead and place the first suggestion; returns what was done."""
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline() if project else None
    if timeline is None:
        raise ServiceError(0, "Open a timeline first")
    item = timeline.GetCurrentVideoItem()
    if item is None:
        raise ServiceError(0, "Put the playhead over a video clip")
    rate = frame_rate(timeline)
    video, start, end = clip_range(item, rate)
    body = {"prompt": prompt or None, "top": 5}
    if service.status()["bundle"]["reads_pictures"]:
        body.update(video=video, start=start, end=end)
    elif not prompt:
        raise ServiceError(0, "This ViML bundle reads no pictures: give a prompt")
    found = service.suggest(**body)["suggestions"]
    if not found:
        raise ServiceError(0, "No music in the catalog matches")
    best = found[0]
    frames = int(item.GetDuration())
    duration = frames / rate
    title = safe_name(best.get("title") or os.path.splitext(os.path.basename(best["path"]))[0])
    output = os.path.join(
        os.path.dirname(video), MUSIC_FOLDER, f"{title} {best['start']:.2f}+{duration:.2f}.wav"
    )
    _, kind, note = service.excerpt(best["path"], best["start"], duration, output, mode)
    pool = project.GetMediaPool()
    imported = pool.ImportMedia([output])
    if not imported:
        raise ServiceError(0, f"Resolve did not import {output}")
    playhead = timecode_frames(timeline.GetCurrentTimecode(), rate)
    track = free_audio_track(timeline, playhead, playhead + frames)
    placed = pool.AppendToTimeline([{
        "mediaPoolItem": imported[0], "startFrame": 0, "endFrame": frames - 1,
        "mediaType": AUDIO, "trackIndex": track, "recordFrame": playhead,
    }])  # fmt: skip
    if not placed:
        raise ServiceError(0, "Resolve did not place the excerpt on the timeline")
    return {"suggestion": best, "file": output, "kind": kind, "note": note, "track": track,
            "record_frame": playhead, "frames": frames, "clip": [video, start, end]}  # fmt: skip


def ask_prompt(fusion) -> str | None:
    """A one-line dialog (Fusion's UIManager, in Resolve's script host); None without one."""
    ui = getattr(fusion, "UIManager", None) if fusion is not None else None
    if ui is None:
        return None
    import bmd  # Resolve's script host module  # noqa: I001

    dispatcher = bmd.UIDispatcher(ui)
    window = dispatcher.AddWindow(
        {"WindowTitle": "ViML music", "ID": "viml", "Geometry": [200, 200, 420, 90]},
        ui.VGroup([ui.LineEdit({"ID": "prompt", "PlaceholderText": "what the music should be like"}),
                   ui.Button({"ID": "ok", "Text": "Suggest and place"})]),
    )  # fmt: skip
    answer = {}

    def done(_event):
        answer["prompt"] = window.Find("prompt").Text
        dispatcher.ExitLoop()

    window.On.ok.Clicked = done
    window.On.viml.Close = lambda _event: dispatcher.ExitLoop()
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
    return answer.get("prompt") or None


def main(resolve=None, fusion=None) -> None:
    if resolve is None:
        import DaVinciResolveScript  # Resolve's external scripting module  # noqa: I001

        resolve = DaVinciResolveScript.scriptapp("Resolve")
    try:
        done = place(resolve, Service(), ask_prompt(fusion))
    except ServiceError as error:
        print(f"ViML: {error.message}")
        return
    print(f"ViML: placed {done['file']} on A{done['track']} at frame {done['record_frame']} ({done['kind']})")
