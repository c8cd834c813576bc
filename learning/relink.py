"""Finding a past edit's media where it is now.

A timeline names its media as they were when it was saved; since then the project folder may have moved
to another disk, the music may have been reorganised, or the edit came from another machine (a Windows
path in a file read on Linux). The order, first hit wins:
1. the path as the timeline gives it (a relative one from the timeline's folder), when the file there
   has the length the timeline records (else it is used only when nothing below is found);
2. a file of the same name under the timeline's folder (a project folder moved as a whole);
3. the catalog: the tracks that hold the content the old path held (a renamed or moved track, found by
   its content hash while the catalog still knows the old path), else catalogued tracks of the same name;
4. a file of the same name under the search path.
Several files of one name are told apart by the length the timeline recorded for the media, then by
content hash when the catalog knows the old content, then by how much of the old path they share; a tie
is reported, never guessed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from viml.catalog.store import Catalog, Track
from viml.core.errors import MediaError

# A file whose length differs from the timeline's record by more than this is another file.
_LENGTH_TOLERANCE_SECONDS = 0.5
_LENGTH_TOLERANCE_FRACTION = 0.01
_WINDOWS_DRIVE = re.compile(r"^/?([A-Za-z]:[\\/].*)$")


@dataclass(frozen=True)
class Relink:
    project: str
    original: str  # the media as the timeline names it
    found: str  # the file used instead (absolute)
    how: str  # "by name next to the timeline" | "by content hash in the catalog" | ...

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Located:
    path: Path | None  # None: not found
    how: str | None  # None: where the timeline says; else how it was relinked
    why: str = ""  # when not found: what was tried, in words


@dataclass(frozen=True)
class MediaFacts:
    has_picture: bool  # a moving-picture stream (cover art does not count)
    seconds: float


def named_path(reference: str) -> str:
    """The file path a media reference names: a file:// URL's path, a Windows path kept as written."""
    if reference.startswith("file:"):
        url = urlparse(reference)
        reference = unquote(url.path)
        if url.netloc and url.netloc != "localhost":  # file://server/share/x: a network share
            reference = f"//{url.netloc}{reference}"
    drive = _WINDOWS_DRIVE.match(reference)
    return drive[1] if drive else reference


def file_name(reference: str) -> str:
    """The last component of a path in either convention (timelines travel between systems)."""
    return re.split(r"[\\/]", named_path(reference).rstrip("\\/"))[-1]


def media_facts(path: str | os.PathLike) -> MediaFacts:
    """Whether a file has a picture, and its length; MediaError when it cannot be opened."""
    import av
    from viml.engine.media.container import container_duration, decodable, open_media

    with open_media(path) as container:
        picture = any(
            decodable(s) and not s.disposition & av.stream.Disposition.attached_pic
            for s in container.streams.video
        )
        return MediaFacts(picture, container_duration(container, path))


class MediaFinder:
    """Locates media for many timelines, indexing each folder it searches once."""

    def __init__(self, catalog: Catalog | None, search_path: Sequence[Path]) -> None:
        self._catalog = catalog
        self._search_path = [Path(p).expanduser().absolute() for p in search_path]
        self._indexes: dict[Path, dict[str, list[Path]]] = {}
        self._facts: dict[Path, MediaFacts | str] = {}
        self._tracks: list[Track] | None = None

    def facts(self, path: Path) -> MediaFacts | str:
        """The file's facts, or why it cannot be read (cached: timelines share media)."""
        if path not in self._facts:
            try:
                self._facts[path] = media_facts(path)
            except MediaError as error:
                self._facts[path] = error.reason
        return self._facts[path]

    def locate(self, reference: str, timeline_folder: Path, expected_seconds: float | None) -> Located:
        named = named_path(reference)
        stated = Path(named).expanduser()
        if not stated.is_absolute() and not (os.name != "nt" and _WINDOWS_DRIVE.match(named)):
            stated = timeline_folder / stated  # relative to the timeline (a drive path stays as written)
        replaced = None
        if stated.is_file():
            if expected_seconds is None or _same_length(self.facts(stated), expected_seconds):
                return Located(stated.absolute(), None)
            replaced = stated.absolute()  # another length than the timeline's: look for the real one first
        name = file_name(reference)
        if not name:
            return Located(None, None, "the timeline names no file")
        tried = []
        found = self._pick(self._named(timeline_folder, name), stated, expected_seconds, None, tried)
        if found:
            return Located(found, "by name next to the timeline")
        if self._catalog is not None:
            by_content, content_hash = self._catalogued_content(stated)
            found = self._pick(by_content, stated, None, None, tried)
            if found:
                return Located(found, "by content hash in the catalog")
            found = self._pick(self._catalogued_named(name), stated, expected_seconds, content_hash, tried)
            if found:
                return Located(found, "by name in the catalog")
        else:
            content_hash = None
        for root in self._search_path:
            found = self._pick(self._named(root, name), stated, expected_seconds, content_hash, tried)
            if found:
                return Located(found, f"by name in the search path ({root})")
        if replaced is not None:
            return Located(replaced, None)  # the pairs' spans are checked against its length
        places = [f"under {timeline_folder}"]
        places += ["in the catalog"] if self._catalog is not None else []
        places += [f"under {root}" for root in self._search_path]
        why = f"{stated} is not there; no file named {name} " + ", ".join(places)
        if tried:
            why = f"{stated} is not there; " + "; ".join(tried)
        return Located(None, None, why)

    def _pick(
        self,
        candidates: list[Path],
        stated: Path,
        expected_seconds: float | None,
        content_hash: str | None,
        tried: list[str],
    ) -> Path | None:
        """The one candidate that is the timeline's file, or None (the reason goes into `tried`)."""
        candidates = sorted({c for c in candidates if c.is_file()})
        if not candidates:
            return None
        if expected_seconds is not None:
            fitting = [c for c in candidates if _same_length(self.facts(c), expected_seconds)]
            if not fitting:
                lengths = ", ".join(f"{c} ({_length_words(self.facts(c))})" for c in candidates[:3])
                tried.append(
                    f"{lengths} {'is' if len(candidates) == 1 else 'are'} not {expected_seconds:.1f} s long"
                )
                return None
            candidates = fitting
        if len(candidates) > 1 and content_hash is not None:
            from viml.catalog.analysis import fingerprint

            same = [c for c in candidates if getattr(fingerprint(str(c)), "hash", None) == content_hash]
            candidates = same or candidates
        if len(candidates) > 1:
            shared = {c: _shared_tail(c, stated) for c in candidates}
            best = max(shared.values())
            candidates = [c for c in candidates if shared[c] == best]
        if len(candidates) > 1:
            tried.append(
                f"{len(candidates)} files could be it ({', '.join(map(str, candidates[:3]))}); move or rename all but one"
            )
            return None
        return candidates[0]

    def _named(self, root: Path, name: str) -> list[Path]:
        index = self._indexes.get(root)
        if index is None:
            index = self._indexes[root] = _index(root)
        return index.get(name.casefold(), [])

    def _catalog_tracks(self) -> list[Track]:
        if self._tracks is None:
            self._tracks = self._catalog.tracks() if self._catalog is not None else []
        return self._tracks

    def _catalogued_content(self, stated: Path) -> tuple[list[Path], str | None]:
        old = self._catalog.track(stated)
        if old is None:
            return [], None
        return [Path(t.path) for t in self._catalog_tracks() if t.hash == old.hash], old.hash

    def _catalogued_named(self, name: str) -> list[Path]:
        folded = name.casefold()
        return [Path(t.path) for t in self._catalog_tracks() if os.path.basename(t.path).casefold() == folded]


def _index(root: Path) -> dict[str, list[Path]]:
    """File name (case-folded) -> files under `root`; hidden folders and folder links are not entered."""
    index: dict[str, list[Path]] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        if not entry.name.startswith("."):
                            stack.append(Path(entry.path))
                    elif entry.is_file():
                        index.setdefault(entry.name.casefold(), []).append(Path(entry.path))
    return index


def _same_length(facts: MediaFacts | str, expected: float) -> bool:
    if isinstance(facts, str):
        return False
    return abs(facts.seconds - expected) <= max(
        _LENGTH_TOLERANCE_SECONDS, _LENGTH_TOLERANCE_FRACTION * expected
    )


def _length_words(facts: MediaFacts | str) -> str:
    return facts if isinstance(facts, str) else f"{facts.seconds:.1f} s"


def _shared_tail(candidate: Path, stated: Path) -> int:
    """How many trailing folder names the candidate shares with the old path (its own name aside)."""
    old = re.split(r"[\\/]", str(stated))[:-1]
    new = candidate.parts[:-1]
    count = 0
    while count < min(len(old), len(new)) and old[-1 - count].casefold() == new[-1 - count].casefold():
        count += 1
    return count
