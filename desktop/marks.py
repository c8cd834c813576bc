"""The "Used in this edit" action on a result: the suggestion, placed against the clip in the player,
recorded in the catalog as a used mark (catalog/store.py `Catalog.add_mark`).

With a clip, the mark is a training pair for `viml learn --from-marks` (the clip's in/out, the part of the
track the suggestion starts at, the video as the project); in a prompt-only search it is the track only.
Either way "leave out used tracks" leaves it out. Called off the GUI thread (a catalog write).
"""

from __future__ import annotations

from pathlib import Path

from viml.catalog.store import Catalog, Mark
from viml.desktop.style import format_time


def record_mark(catalog_file: Path, music: str, offset: float, clip: tuple[str, float, float] | None) -> Mark:
    """Mark `music` used from `offset` against `clip` (video, in, out: the video's own seconds), or the
    track only when there is no clip. Raises UserFacingError for a value the catalog refuses."""
    with Catalog(catalog_file, must_exist=True) as catalog:
        if clip is None:
            return catalog.add_mark(music, origin="app")
        video, start, end = clip
        return catalog.add_mark(
            music, video=video, video_in=start, video_out=end, music_offset=offset, origin="app"
        )


def describe(mark: Mark) -> str:
    """The status line after a mark."""
    name = Path(mark.music).name
    if not mark.has_clip:
        return f"Marked {name} used in this edit (no clip: the track only)"
    assert mark.video_in is not None and mark.video_out is not None and mark.music_offset is not None
    return (
        f"Marked {name} from {format_time(mark.music_offset)} used with {Path(mark.video or '').name} "
        f"{format_time(mark.video_in)}–{format_time(mark.video_out)}: a pair for `viml learn --from-marks`"
    )
