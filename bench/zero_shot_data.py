"""The real-music set of bench/search.py: download (apt-get download + dpkg -x), excerpt, never commit.

Debian packages of freely licensed game music are fetched into `<cache>/realmusic/` (outside the repo);
each labelled track becomes a mono 16 kHz WAV excerpt (the middle `excerpt_seconds` of the track; a
Frets on Fire song is the sum of its backing and guitar stems), so the scan costs minutes, not an hour.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

SET_PATH = Path(__file__).with_name("zero_shot_set.json")
SAMPLE_RATE = 16000


def load_set(path: Path = SET_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def fetch_packages(labelled: dict, root: Path) -> dict[str, Path]:
    """Each package unpacked under root/x/<package>; downloads only what is missing. Returns the folders."""
    debs, unpacked = root / "debs", root / "x"
    debs.mkdir(parents=True, exist_ok=True)
    folders = {}
    for package, meta in labelled["packages"].items():
        target = unpacked / package
        if not (target / meta["copyright_file"]).is_file():
            found = sorted(debs.glob(f"{package}_*.deb"))
            if not found:
                print(f"downloading {package} (apt-get download)", file=sys.stderr)
                subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True)
                found = sorted(debs.glob(f"{package}_*.deb"))
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            subprocess.run(["dpkg", "-x", str(found[-1]), str(target)], check=True)
        version = _deb_version(sorted(debs.glob(f"{package}_*.deb")))
        if version and version != meta["version"]:
            print(f"note: {package} is version {version}, the labels were written for {meta['version']}")
        folders[package] = target
    return folders


def _deb_version(found: list[Path]) -> str | None:
    if not found:
        return None
    return found[-1].name.split("_")[1].replace("%3a", ":")


def make_excerpts(
    labelled: dict, folders: dict[str, Path], out: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """(track id -> WAV excerpt path, track id -> why it could not be decoded); excerpts are written once."""
    from viml.core.errors import MediaError
    from viml.engine.media import read_audio
    from viml.engine.media.container import probe

    out.mkdir(parents=True, exist_ok=True)
    seconds = float(labelled["excerpt_seconds"])
    paths, failed = {}, {}
    for track_id, track in labelled["tracks"].items():
        path = out / (track_id.replace("/", "__").replace(" ", "_") + ".wav")
        if path.is_file():
            paths[track_id] = path
            continue
        folder = folders[track["package"]]
        stems = [folder / s for s in track.get("stems", [track["file"]])]
        try:
            duration = probe(stems[0]).duration
            start = max(0.0, duration / 2 - seconds / 2)
            end = min(duration, start + seconds)
            mixed = None
            for stem in stems:
                samples = read_audio(stem, SAMPLE_RATE, start, end)
                mixed = samples if mixed is None else mixed[: len(samples)] + samples[: len(mixed)]
        except MediaError as error:
            failed[track_id] = str(error)
            continue
        write_wav(path, np.clip(mixed, -1.0, 1.0))
        paths[track_id] = path
    return paths, failed


def write_wav(path: Path, samples: np.ndarray) -> None:
    temporary = path.with_suffix(".tmp")
    with wave.open(str(temporary), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    temporary.replace(path)


def keyword_documents(labelled: dict, folders: dict[str, Path]) -> dict[str, str]:
    """What a keyword search sees of each track: its original path in the package and its file tags."""
    import mutagen

    documents = {}
    for track_id, track in labelled["tracks"].items():
        original = folders[track["package"]] / track["file"]
        words = [track["file"]]
        try:
            tags = mutagen.File(original) or {}
            for key in ("title", "artist", "album", "genre", "description", "comment"):
                value = tags.get(key) if hasattr(tags, "get") else None
                if value:
                    words.extend(str(v) for v in (value if isinstance(value, list) else [value]))
        except Exception as error:  # noqa: BLE001 (a tag-reading failure only narrows the baseline)
            print(f"note: no file tags for {original}: {error}", file=sys.stderr)
        ini = original.parent / "song.ini"
        if ini.is_file():
            words.extend(line.split("=", 1)[1] for line in ini.read_text(errors="replace").splitlines()
                         if line.startswith(("name", "artist")) and "=" in line)  # fmt: skip
        documents[track_id] = " ".join(words)
    return documents


# Vorbis comment keys for the text tags of an ID3 or MP4 original (Vorbis originals are copied as they are).
_ID3_KEYS = {"TIT2": "TITLE", "TPE1": "ARTIST", "TALB": "ALBUM", "TPE2": "ALBUMARTIST", "TCON": "GENRE",
             "TMOO": "MOOD", "TIT1": "GROUPING", "TCOM": "COMPOSER", "TKEY": "KEY", "TLAN": "LANGUAGE",
             "TBPM": "BPM"}  # fmt: skip


def make_library(
    labelled: dict, folders: dict[str, Path], excerpts: dict[str, Path], out: Path, stripped: bool = False
) -> dict[str, Path]:
    """The excerpts as a music library a user could have: FLAC files at their original place in their
    package (folder and file name kept; a Frets on Fire song at its song folder) carrying the original's
    text tags (a song's song.ini name and artist as TITLE / ARTIST). `stripped`: the same audio under
    neutral names (track000.flac ...) with no tags at all, to show what is lost without words."""
    from viml.demo.world.media_out import write_audio

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for number, (track_id, excerpt) in enumerate(sorted(excerpts.items())):
        track = labelled["tracks"][track_id]
        original = folders[track["package"]] / track["file"]
        inside = Path(track["file"]).parts
        while inside and inside[0] in ("usr", "share", "games"):  # Debian's install prefix is no word of it
            inside = inside[1:]
        relative = Path(track["package"], *inside)
        if track.get("stems"):
            relative = relative.parent / relative.parent.name
        path = out / f"track{number:03d}.flac" if stripped else out / relative.with_suffix(".flac")
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(excerpt), "rb") as handle:
                samples = (
                    np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float32) / 32767
                )
            temporary = path.with_name(f".{path.stem}.tmp.flac")
            write_audio(
                temporary, np.repeat(samples[:, None], 2, axis=1), SAMPLE_RATE
            )  # the writer takes stereo
            if not stripped:
                _copy_text_tags(original, temporary)
            temporary.replace(path)
        paths[track_id] = path
    return paths


def _copy_text_tags(original: Path, target: Path) -> None:
    import mutagen
    from mutagen.flac import FLAC

    comments: dict[str, list[str]] = {}
    try:
        source = mutagen.File(original)
    except Exception as error:  # noqa: BLE001 (an unreadable tag only narrows the words)
        print(f"note: no file tags for {original}: {error}", file=sys.stderr)
        source = None
    tags = getattr(source, "tags", None)
    if tags is not None and hasattr(tags, "as_dict"):  # Vorbis comments (Ogg, Opus, FLAC): as they are
        for key, values in tags.as_dict().items():
            comments[key.upper()] = [str(v) for v in values]
    elif tags is not None and type(tags).__name__ == "ID3":
        for frame in tags.values():
            key = _ID3_KEYS.get(frame.FrameID) or {"COMM": "COMMENT"}.get(frame.FrameID)
            if frame.FrameID == "TXXX":
                key = frame.desc.upper()
            if key:
                comments.setdefault(key, []).extend(str(t) for t in getattr(frame, "text", []))
    ini = original.parent / "song.ini"
    if ini.is_file():
        for line in ini.read_text(errors="replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() in ("name", "artist") and value.strip():
                comments[{"name": "TITLE", "artist": "ARTIST"}[name.strip().lower()]] = [value.strip()]
    flac = FLAC(str(target))
    for key, values in comments.items():
        flac[key] = values
    flac.save()
