"""Used marks → training pairs (`viml learn --from-marks`).

Every mark with a clip (catalog/store.py `Mark`: `viml suggest --mark-used`, "Used in this edit" in the
app, a strip placed by the Blender add-on) is a pair the user chose: this video span with this music
from this offset. The music is found by path, else by its content hash among the catalogued files (a
moved or renamed file), and refused when the file at the path now holds other content. The video must
still be there, hold a picture and cover the clip. Each mark that cannot be a pair is a `Skipped` with
why: a used track marked without a clip, a vanished or changed file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from viml.catalog.store import Catalog, Mark, Track
from viml.core.errors import MediaError
from viml.engine.media import probe
from viml.engine.media.container import truncation_tolerance
from viml.learning.pairs import EditPair, Skipped


def pairs_from_marks(catalog: Catalog) -> tuple[list[EditPair], list[Skipped]]:
    """The catalog's used marks as EditPair(source="marks", project=the mark's project), oldest first,
    and each mark that is not one, with why."""
    tracks = catalog.tracks()
    by_path = {track.path: track for track in tracks}
    by_hash: dict[str, list[Track]] = {}
    for track in tracks:
        by_hash.setdefault(track.hash, []).append(track)
    durations: dict[str, float | str] = {}  # video -> its duration, or why it cannot be read

    def video_duration(path: str) -> float | str:
        if path not in durations:
            durations[path] = _video_duration(path)
        return durations[path]

    pairs: list[EditPair] = []
    skipped: list[Skipped] = []
    for mark in catalog.marks():
        found = _pair(mark, by_path, by_hash, video_duration)
        if isinstance(found, EditPair):
            pairs.append(found)
        else:
            skipped.append(Skipped(mark.project or f"marks:{catalog.path}", _what(mark), found))
    return pairs, skipped


def _pair(
    mark: Mark,
    by_path: dict[str, Track],
    by_hash: dict[str, list[Track]],
    video_duration: Callable[[str], float | str],
) -> EditPair | str:
    """The mark's pair, or why there is none."""
    if not mark.has_clip:
        return (
            "a used track marked without its clip (a prompt-only search, or from before marks): it says "
            "the track was used, not against which picture"
        )
    assert mark.video is not None and mark.video_in is not None and mark.video_out is not None
    assert mark.music_offset is not None and mark.project is not None
    music = _music(mark, by_path, by_hash)
    if isinstance(music, str):
        return music
    if music.duration is not None and mark.music_offset >= music.duration:
        return f"the music offset {mark.music_offset:.2f} s is past the track's end ({music.duration:.2f} s)"
    duration = video_duration(mark.video)
    if isinstance(duration, str):
        return duration
    if mark.video_out > duration + truncation_tolerance(duration):
        return (
            f"the clip {mark.video_in:.2f}-{mark.video_out:.2f} s runs past the video's end "
            f"({duration:.2f} s): has the file been replaced?"
        )
    return EditPair(
        project=mark.project,
        video=mark.video,
        video_in=mark.video_in,
        video_out=min(mark.video_out, duration),
        music=music.path,
        music_offset=mark.music_offset,
        source="marks",
    )


def _music(mark: Mark, by_path: dict[str, Track], by_hash: dict[str, list[Track]]) -> Track | str:
    """The catalogued file with the mark's music content: at its path, else a moved copy (by hash)."""
    here = by_path.get(mark.music)
    if here is not None and os.path.exists(here.path) and mark.music_hash in (None, here.hash):
        return here
    moved = [t for t in by_hash.get(mark.music_hash or "", []) if os.path.exists(t.path)]
    if moved:
        return moved[0]
    if here is not None and os.path.exists(here.path):
        return (
            f"the music file {mark.music} holds other content than when it was marked, and no catalogued "
            "file has the marked content"
        )
    if os.path.exists(mark.music):
        return f"the music {mark.music} is no longer in the catalog: scan its folder again"
    return (
        f"the music {mark.music} has vanished and no catalogued file has its content: scan the folder it "
        "moved to"
    )


def _video_duration(path: str) -> float | str:
    if not os.path.exists(path):
        return f"the video {path} has vanished since it was marked"
    try:
        info = probe(path)
    except MediaError as error:
        return f"the video cannot be read: {error}"
    if not info.has_video:
        return f"{path} has no picture to learn from"
    return info.duration


def _what(mark: Mark) -> str:
    if not mark.has_clip:
        return mark.music
    return (
        f"{mark.music} @ {mark.music_offset:.2f} s on {mark.video} {mark.video_in:.2f}-{mark.video_out:.2f} s"
    )
