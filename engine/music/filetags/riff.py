"""The RIFF INFO chunk of a WAV file (LIST/INFO), which mutagen does not read: INAM title, IART artist,
IPRD album, IGNR genre, ICMT and ISBJ comment, IKEY keywords, ILNG language, IMUS and IWRI composer.

Only chunk headers are read on the way (the audio is skipped with a seek). Garbage never raises: a chunk
that runs past the end of the file or of its list ends the walk, an INFO list over 1 MiB is skipped, and
text is UTF-8 where it decodes, else Windows-1252 (what most WAV tools write), with replacement characters.
"""

from __future__ import annotations

import os

INFO_FIELDS = {
    b"INAM": "title",
    b"IART": "artist",
    b"IPRD": "album",
    b"IGNR": "genre",
    b"ICMT": "comment",
    b"ISBJ": "comment",
    b"IKEY": "keywords",
    b"ILNG": "language",
    b"IMUS": "composer",
    b"IWRI": "composer",
}
_MAX_LIST = 1 << 20
_MAX_CHUNKS = 10_000


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def read_info(path: str | os.PathLike) -> dict[str, list[str]]:
    """Field -> values of the file's INFO chunks; {} for anything that is not a readable RIFF WAVE file."""
    words: dict[str, list[str]] = {}
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return words
            end = os.fstat(handle.fileno()).st_size
            position = 12
            for _ in range(_MAX_CHUNKS):
                handle.seek(position)
                header = handle.read(8)
                if len(header) < 8:
                    break
                size = int.from_bytes(header[4:8], "little")
                if header[:4] == b"LIST" and 4 <= size <= _MAX_LIST:
                    body = handle.read(size)
                    if body[:4] == b"INFO":
                        _parse_info(body[4:], words)
                position += 8 + size + (size & 1)
                if position >= end:
                    break
    except OSError:
        return {}
    return words


def _parse_info(body: bytes, words: dict[str, list[str]]) -> None:
    position = 0
    while position + 8 <= len(body):
        key = body[position : position + 4]
        size = int.from_bytes(body[position + 4 : position + 8], "little")
        if position + 8 + size > len(body):  # runs past its list: garbage from here on
            return
        data = body[position + 8 : position + 8 + size]
        field = INFO_FIELDS.get(key)
        if field is not None:
            words.setdefault(field, []).extend(decode(part) for part in data.split(b"\0") if part.strip())
        position += 8 + size + (size & 1)
