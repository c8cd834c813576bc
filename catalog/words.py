"""Every word the library holds about a track, for full-text search (SQLite FTS5, BM25).

A track's words are its file-tag fields (`engine.music.filetags.TrackTags.words`), the last FOLDER_DEPTH
folders of its path and its file name, both split into words ("Battle_Theme_02" -> "battle theme 02",
"darkSynthLoop" -> "dark synth loop"). The catalog stores them per track (`track_words`) and indexes them
in `words_fts` (schema v4), written in the same transaction as the track row. This module is pure
functions: the FTS row of a track, its words as one text, and a safe MATCH expression for a query.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import regex

# The version of what a track's words are made of (the file-tag reader's fields, the splitting below).
# Tracks indexed under an older one have their tags read again by the next scan (a tag read, no hash or
# decode). 0: words made by the v4 migration from the columns older catalogs had (title/artist/album/
# genre/bpm and the path).
WORDS_VERSION = 1

# FTS columns and their BM25 weights. Words someone chose to name or describe this very track weigh most
# (title, keywords); genre and mood are the describing words a prompt shares; artist/album/composer/
# grouping are names that match fewer prompt words but precisely; free-text comments are long and noisy;
# folder and file names are organisational (shared by a whole folder, or generated), so they weigh least,
# the file name a little more because untagged files often carry their title there.
WEIGHTS: dict[str, float] = {
    "title": 4.0,
    "artist": 2.0,
    "album": 2.0,
    "genre": 3.0,
    "mood": 3.0,
    "comment": 1.0,
    "grouping": 2.0,
    "keywords": 4.0,
    "composer": 2.0,
    "folder": 1.0,
    "filename": 1.5,
}
COLUMNS: tuple[str, ...] = tuple(WEIGHTS)
# file-tag field -> FTS column (bpm, key and language are stored but not indexed: numbers and codes)
FIELD_COLUMNS: dict[str, str] = {
    "title": "title",
    "artist": "artist",
    "album_artist": "artist",
    "album": "album",
    "genre": "genre",
    "mood": "mood",
    "comment": "comment",
    "grouping": "grouping",
    "keywords": "keywords",
    "composer": "composer",
}
FOLDER_DEPTH = 3  # ~/Music/Artist/Album/x.flac -> "music artist album"; deeper roots add no noise
TOKENIZER = "porter unicode61 remove_diacritics 2"
PREFIXES = "4"  # prefix index for the 4-character prefixes queries use most (tokens of 4+ get a `*`)
MAX_QUERY_TOKENS = 32
PREFIX_FROM = 4  # query tokens this long or longer also match as prefixes ("battl" finds "battlefield")
# Function words alone would match half a library; they are left out of a query that has other words.
_FUNCTION_WORDS = "a an and are as at be by for from in into is it its of on or the to with without"
STOPWORDS = frozenset(_FUNCTION_WORDS.split())

_PIECES = regex.compile(
    r"\p{Lu}+(?=\p{Lu}[\p{Ll}\p{M}])|\p{Lu}?[\p{Ll}\p{M}]+|\p{Lu}+[\p{M}]*|\p{N}+|[\p{L}\p{M}]+"
)
_QUERY_TOKENS = regex.compile(r"[\p{L}\p{N}\p{M}\p{Co}]+")
_CONTROL = regex.compile(r"[\p{Cc}\p{Cs}\ufffd]+")


def split_name(name: str) -> str:
    """A file or folder name as lower-case words: separators, camelCase and letter/digit boundaries split
    ("Battle_Theme_02" -> "battle theme 02", "HTMLParser2" -> "html parser 2")."""
    return " ".join(piece.lower() for piece in _PIECES.findall(name))


def _decoded(path: str | bytes) -> str:
    """A path as text; bytes that are not UTF-8 (and surrogate escapes) become separators."""
    return os.fsencode(path).decode("utf-8", "replace")


def path_words(path: str | bytes) -> tuple[str, str]:
    """(folder words, file name words) of a file path."""
    text = _decoded(path).replace("\\", "/")
    folders = [part for part in text.split("/")[:-1] if part]
    stem = os.path.splitext(text.rsplit("/", 1)[-1])[0]
    return " ".join(split_name(f) for f in folders[-FOLDER_DEPTH:]).strip(), split_name(stem)


def clean(value: str) -> str:
    """One value as indexable text: control characters (and the highlight markers) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def fts_row(fields: Mapping[str, Sequence[str]], path: str | bytes) -> tuple[str, ...]:
    """The text of each FTS column (COLUMNS order) for a track's fields and file path."""
    columns: dict[str, list[str]] = {column: [] for column in COLUMNS}
    for field, column in FIELD_COLUMNS.items():
        for value in fields.get(field, ()):
            text = clean(str(value))
            if text and text.casefold() not in {v.casefold() for v in columns[column]}:
                columns[column].append(text)
    columns["folder"], columns["filename"] = [[words] for words in path_words(path)]
    return tuple("; ".join(v for v in columns[column] if v) for column in COLUMNS)


def as_text(row: Sequence[str]) -> str:
    """A track's FTS row as one text for a text encoder: "title: ... ; genre: ... ; file name: ..."."""
    names = {"filename": "file name"}
    return ". ".join(f"{names.get(c, c)}: {v}" for c, v in zip(COLUMNS, row, strict=True) if v)


def query_tokens(query: str) -> list[str]:
    """The query's words, lower case, once each; function words dropped unless nothing else is left."""
    tokens = list(dict.fromkeys(t.lower() for t in _QUERY_TOKENS.findall(query)))[:MAX_QUERY_TOKENS]
    kept = [t for t in tokens if t not in STOPWORDS]
    return kept or tokens


def match_expression(query: str) -> str | None:
    """A MATCH expression for plain words: every token a quoted phrase (its own words only: letters, digits
    and marks, so no quote, operator, column filter or `*` of the user's reaches FTS5), OR'ed, tokens of
    PREFIX_FROM characters or more as prefixes. None when the query has no word."""
    tokens = query_tokens(query)
    if not tokens:
        return None
    return " OR ".join(f'"{t}"*' if len(t) >= PREFIX_FROM else f'"{t}"' for t in tokens)


def highlighted(text: str, start: str = "\x01", end: str = "\x02") -> list[str]:
    """The marked spans of an FTS5 highlight() text."""
    return [part.split(end, 1)[0] for part in text.split(start)[1:] if end in part]
