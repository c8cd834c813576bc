"""The catalog database: one writer (the scan's main process), any number of readers (WAL).

Every file's result is written in one transaction (content + segments + track row, or an error row), so a
`kill -9` at any moment leaves either the whole file or nothing; the next scan simply carries on.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from viml.catalog import words
from viml.catalog.schema import SCHEMA_VERSION, SchemaTooNewError, migrate
from viml.core.errors import UserFacingError
from viml.core.paths import viml_home
from viml.engine.music.rhythm.types import Beats, Rhythm
from viml.engine.music.types import MusicSegments
from viml.engine.music.waveform import Waveform


def default_catalog_path() -> Path:
    return viml_home() / "catalog.sqlite"


def path_key(path: str | bytes | os.PathLike) -> str:
    """The text key of a file path; names that are not UTF-8 keep their bytes as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def folder_key(path: str | bytes | os.PathLike) -> str:
    return path_key(os.path.dirname(os.fsencode(path)))


@dataclass
class FileTags:
    """A file's tags as the catalog keeps them: the tracks columns, and every text field as `words`
    (`TrackTags.words`: field -> values), left out of comparisons (they are the columns' superset)."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    bpm: float | None = None
    words: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    def fields(self) -> dict[str, tuple[str, ...]]:
        """The words to index: `words`, else what the columns hold."""
        if self.words:
            return dict(self.words)
        found = {"title": self.title, "artist": self.artist, "album": self.album, "genre": self.genre}
        fields = {name: (value,) for name, value in found.items() if value}
        return fields | ({"bpm": (f"{self.bpm:g}",)} if self.bpm else {})


@dataclass(frozen=True)
class WordMatch:
    """How a track's words match a query (`Catalog.word_matches`)."""

    score: float  # BM25 with the column weights of catalog/words.py, negated: > 0, higher is better
    hits: tuple[tuple[str, str], ...]  # (column, word as the track writes it), once each, column order

    @property
    def fields(self) -> dict[str, tuple[str, ...]]:
        """column -> the words that matched there."""
        out: dict[str, tuple[str, ...]] = {}
        for column, word in self.hits:
            out[column] = (*out.get(column, ()), word)
        return out


@dataclass
class Fingerprint:
    """What a cheap pass over a file learns without decoding audio."""

    path: str
    size: int
    mtime_ns: int
    hash: str
    format: str | None = None
    duration: float | None = None
    tags: FileTags = field(default_factory=FileTags)


@dataclass(frozen=True)
class Track:
    """One catalogued file: where it is, which analysed content it has, and its file tags."""

    path: str
    hash: str
    format: str | None
    duration: float | None
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    bpm: float | None
    folder: str


_TRACK_COLUMNS = "path, hash, format, duration, title, artist, album, genre, bpm, folder"  # Track's fields


@dataclass(frozen=True)
class Mark:
    """Music placed in an edit (`Catalog.add_mark`). With its clip (the video, in/out in the video's own
    time, where in the music the placed part starts, the project it was cut in) it is a positive training
    pair (learning/marks.py); without one it is a used track only, which `--exclude-used` leaves out too."""

    id: int
    music: str  # path key of the music file
    music_hash: str | None  # its content when marked: finds a moved file again, tells a changed one
    music_offset: float | None
    video: str | None  # path key of the video file; None: a used track only
    video_in: float | None
    video_out: float | None
    project: str | None  # the timeline, .blend or video it was cut in: the unit learning holds out
    origin: str  # who marked it: cli | app | blender | service | track (a used track, or from before v7)
    used_at: float
    note: str | None = None

    @property
    def has_clip(self) -> bool:
        return self.video is not None

    def as_dict(self) -> dict:
        return asdict(self)


_MARK_COLUMNS = (
    "id, music, music_hash, music_offset, video, video_in, video_out, project, origin, used_at, note"
)


@dataclass
class TrackTable:
    """All catalogued tracks with their segments stacked in one matrix (the ranking input)."""

    paths: list[str]
    hashes: list[str]
    starts: np.ndarray  # int64 [T] first row of each track in `embeddings`
    counts: np.ndarray  # int64 [T] segment count of each track
    segment_starts: np.ndarray  # float64 [N] segment start seconds
    embeddings: np.ndarray  # float32 [N, D]
    tracks: list[Track]  # per track: its record (file tags, duration, folder), aligned with `paths`


class CatalogWriteError(UserFacingError):
    """A write the disk or SQLite refused; the catalog keeps every earlier commit (one file each)."""

    def __init__(self, path: Path, error: sqlite3.Error) -> None:
        reason = str(error)
        unchanged = "the catalog is unchanged since the last committed file"
        if "readonly" in reason:
            advice = (
                "it is read-only (a search needs no write access; a scan, a used mark and the first "
                "search with a new bundle do)"
            )
        elif "locked" in reason:
            advice = f"another program holds it; {unchanged}: try again when it is done"
        elif "full" in reason:
            advice = f"{unchanged}; free space and scan again to resume"
        else:
            advice = f"{unchanged}; free space (or check the disk) and scan again to resume"
        super().__init__(f"cannot write the catalog {path}: {reason}; {advice}")


class Catalog:
    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        must_exist: bool = False,
        read_only: bool | None = None,
    ) -> None:
        """Open (or create) the catalog at `path`.

        read_only None (searches, exports, the desktop's reads): read-only when the catalog exists but it
        or its folder cannot be written (a read-only disk or share), else read-write. True: read-only.
        False: read-write, refused up front when the catalog cannot be written (scans). A read-only
        catalog is never migrated, so one whose schema is older than this ViML's is refused.
        """
        self.path = Path(path) if path is not None else default_catalog_path()
        exists = self.path.exists()
        if (must_exist or read_only) and not exists:
            raise UserFacingError(f"no catalog at {self.path}; run `viml scan FOLDER` first")
        writable = not exists or _writable(self.path)
        if read_only is False and not writable:
            raise UserFacingError(
                f"the catalog {self.path} is read-only (the file or its folder cannot be written); "
                "this needs write access: copy it somewhere writable or choose another --catalog"
            )
        self.read_only = bool(read_only) or not writable
        try:
            if self.read_only:
                self.connection = _connect_read_only(self.path)
                _check_read_only_schema(self.connection, self.path)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE) so writes are atomic.
            self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut) and keeps commits cheap.
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA foreign_keys=ON")
            migrate(self.connection)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and not self.read_only:
                # a full, read-only or failing disk, not a bad file (a failed ROLLBACK hides the first error)
                cause = error.__context__ if isinstance(error.__context__, sqlite3.Error) else error
                raise CatalogWriteError(self.path, cause) from error
            raise UserFacingError(f"{self.path} is not a usable ViML catalog: {error}") from error
        except SchemaTooNewError as error:
            raise UserFacingError(str(error)) from error
        except OSError as error:
            raise UserFacingError(
                f"cannot create the catalog {self.path}: {error.strerror or error}"
            ) from error

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write, all or nothing. A write SQLite refuses (a full disk, a read-only file or disk, an I/O
        error) is rolled back and raised as CatalogWriteError: one line, and every earlier commit stays."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
                self.connection.execute("COMMIT")
            except BaseException:
                if self.connection.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    self.connection.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as error:
            raise CatalogWriteError(self.path, error) from error

    # --- scan runs ---------------------------------------------------------------------------------

    def start_run(self, root: str, analyzer: str) -> int:
        with self.transaction() as c:
            # A run still marked running was killed: say so instead of leaving it ambiguous.
            c.execute("UPDATE scan_runs SET status = 'interrupted' WHERE status = 'running'")
            cursor = c.execute(
                "INSERT INTO scan_runs (root, analyzer, started_at, status) VALUES (?, ?, ?, 'running')",
                (root, analyzer, time.time()),
            )
            return int(cursor.lastrowid)

    def finish_run(self, run: int, status: str, summary: dict) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE scan_runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?",
                (status, time.time(), json.dumps(summary), run),
            )

    # --- reads used by the scanner -----------------------------------------------------------------

    def known_files(self, folder_prefix: str) -> dict[str, tuple[int, int, str | None]]:
        """path -> (size, mtime_ns, kind) for tracks (kind None) and errors under a folder."""
        like = _like_prefix(folder_prefix)
        known: dict[str, tuple[int, int, str | None]] = {}
        for path, size, mtime in self.connection.execute(
            "SELECT path, size, mtime_ns FROM tracks WHERE path = ? OR path LIKE ? ESCAPE '\\'",
            (folder_prefix, like),
        ):
            known[path] = (size, mtime, None)
        for path, size, mtime, kind in self.connection.execute(
            "SELECT path, size, mtime_ns, kind FROM errors WHERE path = ? OR path LIKE ? ESCAPE '\\'",
            (folder_prefix, like),
        ):
            known.setdefault(
                path, (size if size is not None else -1, mtime if mtime is not None else -1, kind)
            )
        return known

    def tracks_analysed_otherwise(self, folder_prefix: str, analyzer: str | None) -> dict[str, str]:
        """path -> content hash of tracks under a folder whose analysis is not `analyzer`'s (None: all)."""
        rows = self.connection.execute(
            "SELECT t.path, t.hash FROM tracks t JOIN contents c ON c.hash = t.hash "
            "WHERE (? IS NULL OR c.analyzer != ?) AND (t.path = ? OR t.path LIKE ? ESCAPE '\\')",
            (analyzer, analyzer, folder_prefix, _like_prefix(folder_prefix)),
        )
        return dict(rows.fetchall())

    def tracks_without_rhythm(
        self, folder_prefix: str, rhythm: str, retry_failed: bool = False
    ) -> dict[str, str]:
        """path -> content hash of analysed tracks under a folder with no rhythm measured by `rhythm`; those
        whose measurement by `rhythm` failed before only with `retry_failed`."""
        rows = self.connection.execute(
            "SELECT t.path, t.hash FROM tracks t LEFT JOIN rhythm r ON r.hash = t.hash "
            "WHERE (r.analyzer IS NULL OR r.analyzer != ?) AND (t.path = ? OR t.path LIKE ? ESCAPE '\\') "
            "AND (? OR NOT EXISTS (SELECT 1 FROM measure_failures f "
            "WHERE f.hash = t.hash AND f.what = 'rhythm' AND f.analyzer = ?))",
            (rhythm, folder_prefix, _like_prefix(folder_prefix), retry_failed, rhythm),
        )
        return dict(rows.fetchall())

    def tracks_without_waveform(self, folder_prefix: str, retry_failed: bool = False) -> dict[str, str]:
        """path -> content hash of analysed tracks under a folder whose content has no stored waveform;
        those whose waveform failed before only with `retry_failed`."""
        rows = self.connection.execute(
            "SELECT t.path, t.hash FROM tracks t LEFT JOIN waveforms w ON w.hash = t.hash "
            "WHERE w.hash IS NULL AND (t.path = ? OR t.path LIKE ? ESCAPE '\\') "
            "AND (? OR NOT EXISTS (SELECT 1 FROM measure_failures f "
            "WHERE f.hash = t.hash AND f.what = 'waveform'))",
            (folder_prefix, _like_prefix(folder_prefix), retry_failed),
        )
        return dict(rows.fetchall())

    def write_measure_failures(self, content_hash: str, failed: dict[str, str], message: str) -> None:
        """Measurements that failed on an analysed content, what -> analysis ('rhythm' -> the rhythm
        analysis id, 'waveform' -> ''): the scan does not try them again while the file is unchanged."""
        now = time.time()
        with self.transaction() as c:
            c.executemany(
                "INSERT OR REPLACE INTO measure_failures VALUES (?, ?, ?, ?, ?)",
                [(content_hash, what, analyzer, message, now) for what, analyzer in failed.items()],
            )

    def measure_failures(self, folder_prefix: str) -> list[dict]:
        """The failed measurements of the tracks under a folder whose measurement is still missing: path,
        what ('rhythm' / 'waveform'), the rhythm analysis, why, when."""
        rows = self.connection.execute(
            "SELECT t.path, f.what, f.analyzer, f.message, f.seen_at FROM measure_failures f "
            "JOIN tracks t ON t.hash = f.hash WHERE (t.path = ? OR t.path LIKE ? ESCAPE '\\') "
            "AND NOT EXISTS (SELECT 1 FROM rhythm r WHERE f.what = 'rhythm' AND r.hash = f.hash "
            "AND r.analyzer = f.analyzer) "
            "AND NOT EXISTS (SELECT 1 FROM waveforms w WHERE f.what = 'waveform' AND w.hash = f.hash) "
            "ORDER BY t.path, f.what",
            (folder_prefix, _like_prefix(folder_prefix)),
        )
        keys = ("path", "what", "analysis", "message", "seen_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def analysed_otherwise(self, analyzer: str) -> int:
        """How many catalogued tracks were analysed under another spec than `analyzer`."""
        return self.connection.execute(
            "SELECT COUNT(*) FROM tracks t JOIN contents c ON c.hash = t.hash WHERE c.analyzer != ?",
            (analyzer,),
        ).fetchone()[0]

    def content_analyzer(self, content_hash: str) -> str | None:
        """The analysis spec id a stored content was analysed with (None: not analysed)."""
        row = self.connection.execute(
            "SELECT analyzer FROM contents WHERE hash = ?", (content_hash,)
        ).fetchone()
        return row[0] if row else None

    def track_hash(self, path: str) -> str | None:
        row = self.connection.execute("SELECT hash FROM tracks WHERE path = ?", (path_key(path),)).fetchone()
        return row[0] if row else None

    # --- writes (single writer) --------------------------------------------------------------------

    def write_analysis(self, fingerprint: Fingerprint, analyzer: str, music: MusicSegments, run: int) -> None:
        """Store a newly analysed file: its content, segments and track row, all or nothing.

        A content already stored (--reanalyze, or another scan that got there first) is updated in place:
        tracks point at it, so the row stays; its old segments and the retrieval embeddings made from them
        are replaced.
        """
        with self.transaction() as c:
            self._ensure_vocabularies(c, music)
            c.execute("DELETE FROM segments WHERE hash = ?", (fingerprint.hash,))
            c.execute("DELETE FROM retrieval WHERE hash = ?", (fingerprint.hash,))
            duration = fingerprint.duration or (float(music.ends[-1]) if len(music.ends) else 0.0)
            c.execute(
                "INSERT INTO contents VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET "
                "analyzer = excluded.analyzer, duration = excluded.duration, "
                "segment_count = excluded.segment_count, embedding_dim = excluded.embedding_dim, "
                "analyzed_at = excluded.analyzed_at",
                (
                    fingerprint.hash,
                    analyzer,
                    duration,
                    len(music.starts),
                    int(music.embeddings.shape[1]),
                    time.time(),
                ),
            )
            tags = _stack_tags(music)
            c.executemany(
                "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        fingerprint.hash,
                        i,
                        float(music.starts[i]),
                        float(music.ends[i]),
                        np.ascontiguousarray(music.embeddings[i], dtype=np.float32).tobytes(),
                        tags[i].tobytes(),
                    )
                    for i in range(len(music.starts))
                ],
            )
            self._write_descriptors(c, fingerprint.hash, music)
            c.execute("DELETE FROM measure_failures WHERE hash = ?", (fingerprint.hash,))  # a fresh try
            if music.rhythm is not None and music.rhythm_id:
                # (without one, a stored rhythm stays: it depends on the audio, which is the same)
                self._write_rhythm(c, fingerprint.hash, music.rhythm_id, music.rhythm)
            if music.waveform is not None:  # (likewise: an analyzer that builds none keeps the stored one)
                self._write_waveform(c, fingerprint.hash, music.waveform)
            self._upsert_track(c, fingerprint, run)

    def write_rhythm(self, content_hash: str, analyzer: str, rhythm: Rhythm) -> None:
        """The rhythm of an analysed content, measured on its own (a catalog from before the beat model)."""
        with self.transaction() as c:
            self._write_rhythm(c, content_hash, analyzer, rhythm)

    def _write_rhythm(self, c: sqlite3.Connection, content_hash: str, analyzer: str, rhythm: Rhythm) -> None:
        beats = rhythm.beats
        c.execute("DELETE FROM measure_failures WHERE hash = ? AND what = 'rhythm'", (content_hash,))

        def finite(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        c.execute(
            "INSERT OR REPLACE INTO rhythm VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                content_hash,
                analyzer,
                finite(beats.tempo),
                float(beats.tempo_confidence),
                int(beats.beats_per_bar),
                np.ascontiguousarray(beats.times, np.float64).tobytes(),
                np.ascontiguousarray(beats.positions, np.int8).tobytes(),
                np.ascontiguousarray(rhythm.sections, np.float64).tobytes(),
                finite(rhythm.loudness),
                np.ascontiguousarray(rhythm.loudness_curve, np.float32).tobytes(),
                float(rhythm.loudness_hop),
                float(rhythm.duration),
            ),
        )

    def rhythm(self, content_hash: str) -> Rhythm | None:
        """A content's stored rhythm (None: not measured)."""
        row = self.connection.execute(
            "SELECT tempo, tempo_confidence, beats_per_bar, beats, positions, sections, loudness, "
            "loudness_curve, loudness_hop, duration FROM rhythm WHERE hash = ?",
            (content_hash,),
        ).fetchone()
        if row is None:
            return None
        tempo, confidence, per_bar, times, positions, sections, loudness, curve, hop, duration = row
        beats = Beats(
            np.frombuffer(times, np.float64).copy(),
            np.frombuffer(positions, np.int8).astype(np.int64),
            float("nan") if tempo is None else tempo,
            confidence,
            per_bar,
        )
        return Rhythm(
            beats=beats,
            sections=np.frombuffer(sections, np.float64).copy(),
            loudness=float("-inf") if loudness is None else loudness,
            loudness_curve=np.frombuffer(curve, np.float32).copy(),
            loudness_hop=hop,
            duration=duration,
        )

    def rhythm_analyzers(self, hashes: Iterable[str]) -> dict[str, str]:
        """content hash -> id of the rhythm analysis stored for it (absent: none stored)."""
        wanted = sorted(set(hashes))
        found: dict[str, str] = {}
        for first in range(0, len(wanted), 500):
            chunk = wanted[first : first + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT hash, analyzer FROM rhythm WHERE hash IN ({marks})", chunk
            )
            found.update(rows.fetchall())
        return found

    def measured_tempos(self) -> dict[str, tuple[float, float]]:
        """content hash -> (measured tempo in BPM, confidence) for every content with a tempo."""
        rows = self.connection.execute(
            "SELECT hash, tempo, tempo_confidence FROM rhythm WHERE tempo IS NOT NULL"
        )
        return {h: (tempo, confidence) for h, tempo, confidence in rows}

    def write_waveform(self, content_hash: str, waveform: Waveform) -> None:
        """The waveform of an analysed content, measured on its own (a catalog from before waveforms)."""
        with self.transaction() as c:
            self._write_waveform(c, content_hash, waveform)

    def _write_waveform(self, c: sqlite3.Connection, content_hash: str, waveform: Waveform) -> None:
        c.execute("DELETE FROM measure_failures WHERE hash = ? AND what = 'waveform'", (content_hash,))
        c.execute(
            "INSERT OR REPLACE INTO waveforms VALUES (?, ?, ?, ?)",
            (
                content_hash,
                float(waveform.rate),
                np.ascontiguousarray(waveform.peak, np.uint8).tobytes(),
                np.ascontiguousarray(waveform.rms, np.uint8).tobytes(),
            ),
        )

    def waveforms(self, hashes: Iterable[str]) -> dict[str, Waveform]:
        """content hash -> its stored waveform (absent: none stored yet)."""
        wanted = sorted(set(hashes))
        found: dict[str, Waveform] = {}
        for first in range(0, len(wanted), 500):
            chunk = wanted[first : first + 500]
            rows = self.connection.execute(
                f"SELECT hash, rate, peak, rms FROM waveforms WHERE hash IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for content_hash, rate, peak, rms in rows:
                found[content_hash] = Waveform(
                    rate, np.frombuffer(peak, np.uint8).copy(), np.frombuffer(rms, np.uint8).copy()
                )
        return found

    def link_track(self, fingerprint: Fingerprint, run: int) -> None:
        """A new or moved file whose content is already analysed: no decode, just a track row."""
        with self.transaction() as c:
            self._upsert_track(c, fingerprint, run)

    def touch_track(self, fingerprint: Fingerprint) -> None:
        """Same content, new mtime (e.g. `touch`): keep everything, remember the new stat."""
        with self.transaction() as c:
            c.execute(
                "UPDATE tracks SET size = ?, mtime_ns = ? WHERE path = ?",
                (fingerprint.size, fingerprint.mtime_ns, path_key(fingerprint.path)),
            )
            self._write_words(c, fingerprint.path, fingerprint.tags)  # no-op unless read by an older reader

    def write_error(
        self, path: str, size: int | None, mtime_ns: int | None, kind: str, message: str, run: int
    ) -> None:
        key = path_key(path)
        with self.transaction() as c:
            # A file that no longer reads must not keep a stale analysis in the results.
            c.execute("DELETE FROM tracks WHERE path = ?", (key,))
            c.execute(
                "INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, folder_key(path), size, mtime_ns, kind, message, run, time.time()),
            )

    def remove_paths(self, keys: list[str]) -> None:
        with self.transaction() as c:
            for key in keys:
                c.execute("DELETE FROM tracks WHERE path = ?", (key,))
                c.execute("DELETE FROM errors WHERE path = ?", (key,))

    def _upsert_track(self, c: sqlite3.Connection, fp: Fingerprint, run: int) -> None:
        key = path_key(fp.path)
        c.execute("DELETE FROM errors WHERE path = ?", (key,))
        c.execute(
            "INSERT OR REPLACE INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                os.fsencode(fp.path),
                folder_key(fp.path),
                fp.size,
                fp.mtime_ns,
                fp.hash,
                fp.format,
                fp.duration,
                fp.tags.title,
                fp.tags.artist,
                fp.tags.album,
                fp.tags.genre,
                fp.tags.bpm,
                run,
                time.time(),
            ),
        )
        self._write_words(c, fp.path, fp.tags)

    # --- words (catalog/words.py): every word the library holds about a track, FTS5 + BM25 ------------

    def _write_words(self, c: sqlite3.Connection, path: str, tags: FileTags) -> None:
        """A track's words and their FTS row, in the caller's transaction; nothing is written when the same
        words of the current reader are stored. (A deleted track's words go with it: a trigger, schema v4.)"""
        key = path_key(path)
        fields = json.dumps(tags.fields(), ensure_ascii=False, sort_keys=True)
        stored = c.execute("SELECT id, version, fields FROM track_words WHERE path = ?", (key,)).fetchone()
        if stored is not None and (stored[1], stored[2]) == (words.WORDS_VERSION, fields):
            return
        if stored is None:
            row = c.execute(
                "INSERT INTO track_words (path, version, fields) VALUES (?, ?, ?)",
                (key, words.WORDS_VERSION, fields),
            ).lastrowid
        else:
            row = stored[0]
            c.execute(
                "UPDATE track_words SET version = ?, fields = ? WHERE id = ?",
                (words.WORDS_VERSION, fields, row),
            )
            c.execute("DELETE FROM words_fts WHERE rowid = ?", (row,))
        marks = ", ".join("?" * (len(words.COLUMNS) + 1))
        c.execute(
            f"INSERT INTO words_fts (rowid, {', '.join(words.COLUMNS)}) VALUES ({marks})",
            (row, *words.fts_row(tags.fields(), os.fsencode(path))),
        )

    def tracks_with_old_words(self, folder_prefix: str) -> set[str]:
        """Paths of tracks under a folder whose words an older reader made (WORDS_VERSION), or none has."""
        rows = self.connection.execute(
            "SELECT t.path FROM tracks t LEFT JOIN track_words w ON w.path = t.path "
            "WHERE (w.version IS NULL OR w.version < ?) AND (t.path = ? OR t.path LIKE ? ESCAPE '\\')",
            (words.WORDS_VERSION, folder_prefix, _like_prefix(folder_prefix)),
        )
        return {row[0] for row in rows}

    def refresh_words(self, items: Sequence[tuple[str, FileTags | None]]) -> None:
        """Tags read again for unchanged tracks (a newer reader): their tag columns and words, in one
        transaction. None: the file's tags could not be read; its stored columns are indexed as they are."""
        with self.transaction() as c:
            for path, tags in items:
                key = path_key(path)
                row = c.execute(
                    "SELECT title, artist, album, genre, bpm FROM tracks WHERE path = ?", (key,)
                ).fetchone()
                if row is None:
                    continue
                if tags is None:
                    tags = FileTags(*row)
                columns = (tags.title, tags.artist, tags.album, tags.genre, tags.bpm)
                if tuple(row) != columns:  # only a real change bumps the generation (ranking reads these)
                    c.execute(
                        "UPDATE tracks SET title = ?, artist = ?, album = ?, genre = ?, bpm = ? WHERE path = ?",
                        (*columns, key),
                    )
                self._write_words(c, path, tags)

    def word_matches(self, query: str, limit: int | None = None) -> dict[str, WordMatch]:
        """Tracks whose words match any word of `query` (plain words; FTS syntax in it is taken as words),
        best first: path -> WordMatch (BM25 score, the words that matched in each column). Words of 4+
        characters match as prefixes too, and every word is stemmed ("battles" finds "battlefield")."""
        expression = words.match_expression(query)
        if expression is None:
            return {}
        weights = ", ".join(f"{weight:g}" for weight in words.WEIGHTS.values())
        marked = ", ".join(f"highlight(words_fts, {i}, char(1), char(2))" for i in range(len(words.COLUMNS)))
        rows = self.connection.execute(
            f"SELECT w.path, bm25(words_fts, {weights}) AS score, {marked} FROM words_fts "
            "JOIN track_words w ON w.id = words_fts.rowid WHERE words_fts MATCH ? ORDER BY score LIMIT ?",
            (expression, -1 if limit is None else max(0, limit)),
        )
        out = {}
        for path, score, *texts in rows:
            hits = {
                (column, word): None
                for column, text in zip(words.COLUMNS, texts, strict=True)
                for word in words.highlighted(text)
            }
            out[path] = WordMatch(-float(score), tuple(hits))
        return out

    def track_words(self, paths: Iterable[str]) -> dict[str, str]:
        """path -> the track's words as one text ("title: ... . genre: ... . file name: ..."), for a text
        encoder; paths that are not catalogued are left out."""
        wanted = {path_key(path) for path in paths}
        select = (
            f"SELECT w.path, {', '.join('f.' + column for column in words.COLUMNS)} FROM track_words w "
            "JOIN words_fts f ON f.rowid = w.id"
        )
        if len(wanted) > 500:  # most of a library: one pass over the table
            rows = (row for row in self.connection.execute(select) if row[0] in wanted)
        else:
            marks = ",".join("?" * len(wanted))
            rows = self.connection.execute(f"{select} WHERE w.path IN ({marks})", sorted(wanted))
        return {path: words.as_text(row) for path, *row in rows}

    def track_fields(self, paths: Iterable[str]) -> dict[str, dict[str, list[str]]]:
        """path -> the file-tag fields stored with its words (field -> values, e.g. {"key": ["Am"]});
        paths that are not catalogued are left out."""
        wanted = sorted({path_key(path) for path in paths})
        found: dict[str, dict[str, list[str]]] = {}
        for first in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[first : first + 500]
            marks = ",".join("?" * len(chunk))
            for path, fields in self.connection.execute(
                f"SELECT path, fields FROM track_words WHERE path IN ({marks})", chunk
            ):
                found[path] = json.loads(fields)
        return found

    def _write_descriptors(self, c: sqlite3.Connection, content_hash: str, music: MusicSegments) -> None:
        """A content's measured descriptors (engine/music/descriptors.py): one float32 [S] blob per name."""
        c.execute("DELETE FROM descriptors WHERE hash = ?", (content_hash,))
        c.executemany(
            "INSERT INTO descriptors VALUES (?, ?, ?)",
            [
                (content_hash, name, np.ascontiguousarray(values, dtype=np.float32).tobytes())
                for name, values in sorted(music.descriptors.items())
            ],
        )

    def _ensure_vocabularies(self, c: sqlite3.Connection, music: MusicSegments) -> None:
        stored = {
            name: json.loads(names) for name, names in c.execute("SELECT name, tag_names FROM vocabularies")
        }
        for position, name in enumerate(sorted(music.tag_names)):
            if name not in stored:
                c.execute(
                    "INSERT INTO vocabularies VALUES (?, ?, ?)",
                    (name, position, json.dumps(music.tag_names[name])),
                )
            elif stored[name] != list(music.tag_names[name]):
                raise UserFacingError(
                    f"the music model's {name} tags differ from the catalog's; use a new --catalog"
                )

    # --- reads used by ranking ---------------------------------------------------------------------

    def vocabularies(self) -> dict[str, list[str]]:
        rows = self.connection.execute("SELECT name, tag_names FROM vocabularies ORDER BY position")
        return {name: json.loads(names) for name, names in rows}

    def tag_names(self) -> list[str]:
        """All tag columns in blob order, each as 'VOCABULARY:tag'."""
        return [f"{vocab}:{tag}" for vocab, tags in self.vocabularies().items() for tag in tags]

    def has_segments(self, content_hash: str) -> bool:
        query = "SELECT 1 FROM segments WHERE hash = ? LIMIT 1"
        return self.connection.execute(query, (content_hash,)).fetchone() is not None

    def music_segments(self, content_hash: str) -> MusicSegments:
        rows = self.connection.execute(
            "SELECT start, end, embedding, tags FROM segments WHERE hash = ? ORDER BY idx", (content_hash,)
        ).fetchall()
        vocabularies = self.vocabularies()
        embeddings = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
        tags = np.stack([np.frombuffer(r[3], dtype=np.float32) for r in rows])
        probabilities, column = {}, 0
        for name, names in vocabularies.items():
            probabilities[name] = tags[:, column : column + len(names)].copy()
            column += len(names)
        return MusicSegments(
            starts=np.array([r[0] for r in rows], dtype=np.float64),
            ends=np.array([r[1] for r in rows], dtype=np.float64),
            embeddings=embeddings,
            tag_probabilities=probabilities,
            tag_names=vocabularies,
            descriptors=self._content_descriptors({content_hash}).get(content_hash, {}),
        )

    def tracks(self) -> list[Track]:
        """Every catalogued track, by path."""
        rows = self.connection.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks ORDER BY path")
        return [Track(*row) for row in rows]

    def track(self, path: str | os.PathLike) -> Track | None:
        """The catalogued track at `path` (None: not catalogued)."""
        row = self.connection.execute(
            f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE path = ?", (path_key(os.path.abspath(path)),)
        ).fetchone()
        return Track(*row) if row else None

    def state(self) -> tuple[str, int]:
        """(catalog id, generation): the generation changes with every write ranking can see."""
        catalog_id, generation = self.connection.execute(
            "SELECT catalog_id, generation FROM catalog_state"
        ).fetchone()
        return catalog_id, int(generation)

    def load_tracks(self, space: str | None = None, cache: bool | None = None) -> TrackTable:
        """Every track with its segment embeddings: music-model ones (space None) or a retrieval space's.

        With `cache` (default: on unless VIML_NO_MATRIX_CACHE=1), the table comes from the matrix cache
        next to the catalog when it was built at the catalog's current generation (memory-mapped, no
        copy), else from SQLite, and is then cached.
        """
        from viml.catalog import matrix_cache

        if cache is None:
            cache = os.environ.get("VIML_NO_MATRIX_CACHE", "") in ("", "0")
        own_transaction = not self.connection.in_transaction
        if own_transaction:
            self.connection.execute("BEGIN")  # one snapshot: the generation read matches the rows read
        try:
            catalog_id, generation = self.state()
            root = matrix_cache.cache_root(self.path)
            table = matrix_cache.load(root, catalog_id, generation, space) if cache else None
            if table is not None:
                return table
            table = self._load_tracks_from_sql(space)
        finally:
            if own_transaction:
                self.connection.execute("COMMIT")
        if cache:
            matrix_cache.save(root, catalog_id, generation, space, table)
        return table

    def _load_tracks_from_sql(self, space: str | None) -> TrackTable:
        """One query, ordered so each track's segments are contiguous; duplicate files share content rows."""
        if space is None:
            query = (
                "SELECT t.path, t.hash, s.start, s.embedding FROM tracks t JOIN segments s ON s.hash = t.hash "
                "ORDER BY t.path, s.idx"
            )
            params: tuple = ()
        else:
            query = (
                "SELECT t.path, t.hash, s.start, r.embedding FROM tracks t "
                "JOIN segments s ON s.hash = t.hash "
                "JOIN retrieval r ON r.space = ? AND r.hash = s.hash AND r.idx = s.idx "
                "ORDER BY t.path, s.idx"
            )
            params = (space,)
        rows = self.connection.execute(query, params).fetchall()
        records = {track.path: track for track in self.tracks()}
        paths: list[str] = []
        hashes: list[str] = []
        counts: list[int] = []
        for path, content_hash, _, _ in rows:
            if paths and paths[-1] == path:
                counts[-1] += 1
            else:
                paths.append(path)
                hashes.append(content_hash)
                counts.append(1)
        dim = len(rows[0][3]) // 4 if rows else 0
        embeddings = (
            np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(-1, dim)
            if rows
            else np.zeros((0, 0), np.float32)
        )
        count_array = np.array(counts, dtype=np.int64)
        return TrackTable(
            paths=paths,
            hashes=hashes,
            starts=np.concatenate([[0], np.cumsum(count_array)[:-1]]).astype(np.int64)
            if counts
            else np.zeros(0, np.int64),
            counts=count_array,
            segment_starts=np.array([r[2] for r in rows], dtype=np.float64),
            embeddings=embeddings,
            tracks=[records[p] for p in paths],
        )

    def segment_tag_matrix(self, table: TrackTable) -> np.ndarray:
        """Tag probabilities [N, T] aligned with the rows of `table` (columns: `tag_names()`)."""
        blobs = self._segment_tag_blobs(set(table.hashes))
        width = len(self.tag_names())
        rows = []
        for content_hash, count in zip(table.hashes, table.counts, strict=True):
            parts = blobs.get(content_hash, [])[: int(count)]
            rows.append(np.frombuffer(b"".join(parts), dtype=np.float32).reshape(len(parts), width))
        return np.concatenate(rows) if rows else np.zeros((0, width), np.float32)

    def content_tags(self, hashes: set[str]) -> dict[str, np.ndarray]:
        """content hash -> its segments' tag probabilities [S, T]; contents stored with another tag width
        (an older vocabulary) are left out."""
        width = len(self.tag_names())
        out = {}
        for content_hash, parts in self._segment_tag_blobs(hashes).items():
            matrix = np.frombuffer(b"".join(parts), np.float32)
            if width and matrix.size == width * len(parts):
                out[content_hash] = matrix.reshape(len(parts), width)
        return out

    def segment_descriptors(self, table: TrackTable) -> dict[str, np.ndarray]:
        """Measured descriptors, name -> float32 [N] aligned with the rows of `table` (the input of
        `engine.music.descriptors.descriptor_columns`); NaN for contents stored without them (analysed
        before descriptors existed: a rescan with the current analysis fills them)."""
        stored = self._content_descriptors(set(table.hashes))
        names = sorted({name for values in stored.values() for name in values})
        total = int(table.counts.sum()) if len(table.counts) else 0
        out = {name: np.full(total, np.nan, np.float32) for name in names}
        for first, content_hash, count in zip(table.starts, table.hashes, table.counts, strict=True):
            for name, values in stored.get(content_hash, {}).items():
                out[name][int(first) : int(first + count)] = values[: int(count)]
        return out

    def _content_descriptors(self, hashes: set[str]) -> dict[str, dict[str, np.ndarray]]:
        """content hash -> name -> float32 [S]; a blob whose length is not the content's segment count
        (none should be) is left out."""
        found: dict[str, dict[str, np.ndarray]] = {}
        ordered = sorted(hashes)
        for first in range(0, len(ordered), 500):  # SQLite's bound-parameter limit
            chunk = ordered[first : first + 500]
            marks = ",".join("?" * len(chunk))
            for content_hash, name, blob, count in self.connection.execute(
                "SELECT d.hash, d.name, d.data, c.segment_count FROM descriptors d "
                f"JOIN contents c ON c.hash = d.hash WHERE d.hash IN ({marks})",
                chunk,
            ):
                values = np.frombuffer(blob, dtype=np.float32)
                if len(values) == count:
                    found.setdefault(content_hash, {})[name] = values
        return found

    def _segment_tag_blobs(self, hashes: set[str]) -> dict[str, list[bytes]]:
        found: dict[str, list[bytes]] = {}
        ordered = sorted(hashes)
        for first in range(0, len(ordered), 500):  # SQLite's bound-parameter limit
            chunk = ordered[first : first + 500]
            marks = ",".join("?" * len(chunk))
            for content_hash, blob in self.connection.execute(
                f"SELECT hash, tags FROM segments WHERE hash IN ({marks}) ORDER BY hash, idx", chunk
            ):
                found.setdefault(content_hash, []).append(blob)
        return found

    # --- retrieval embeddings ----------------------------------------------------------------------

    def contents_missing_space(self, space: str) -> list[str]:
        rows = self.connection.execute(
            "SELECT DISTINCT t.hash FROM tracks t WHERE NOT EXISTS "
            "(SELECT 1 FROM retrieval r WHERE r.space = ? AND r.hash = t.hash)",
            (space,),
        )
        return [r[0] for r in rows]

    def write_retrieval(self, space: str, content_hash: str, embeddings: np.ndarray) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM retrieval WHERE space = ? AND hash = ?", (space, content_hash))
            c.executemany(
                "INSERT INTO retrieval VALUES (?, ?, ?, ?)",
                [
                    (space, content_hash, i, np.ascontiguousarray(row, dtype=np.float32).tobytes())
                    for i, row in enumerate(embeddings)
                ],
            )

    # --- used marks (schema v7) --------------------------------------------------------------------

    def mark_used(self, paths: list[str], note: str | None = None) -> None:
        """Remember tracks as used in an edit, without a clip (`--exclude-used` leaves them out later)."""
        with self.transaction() as c:
            for path in paths:
                key = path_key(os.path.abspath(path))
                c.execute(
                    "INSERT OR REPLACE INTO used_marks (music, music_hash, origin, used_at, note) "
                    "VALUES (?, (SELECT hash FROM tracks WHERE path = ?), 'track', ?, ?)",
                    (key, key, time.time(), note),
                )

    def add_mark(
        self,
        music: str | os.PathLike,
        *,
        video: str | os.PathLike | None = None,
        video_in: float | None = None,
        video_out: float | None = None,
        music_offset: float | None = None,
        project: str | None = None,
        origin: str = "cli",
        note: str | None = None,
    ) -> Mark:
        """Record catalogued `music` as used in an edit: with `video`, the clip [video_in, video_out) of it
        (the video's own seconds) against the music from `music_offset`, cut in `project` (default: the
        video file, so one video's clips stay on one side of learning's hold-out); without, a used track.

        Every value is checked first (a UserFacingError names the bad one); one transaction; the same
        placement marked again replaces the older mark."""
        track = self.track(music)
        if track is None:
            raise UserFacingError(f"{music} is not in the catalog: only catalogued music can be marked used")
        clip = (video_in, video_out, music_offset)
        project = project.strip() if project and project.strip() else None
        if video is None:
            if any(value is not None for value in clip):
                raise UserFacingError("a mark's in/out and music offset need its video")
        else:
            video = os.path.abspath(video)
            if not os.path.isfile(video):
                raise UserFacingError(f"the video {video} does not exist")
            for name, value in zip(("in", "out", "music offset"), clip, strict=True):
                if value is None or not math.isfinite(value) or value < 0:
                    raise UserFacingError(f"a mark's {name} must be a time >= 0 (seconds), got {value}")
            if video_out <= video_in:  # type: ignore[operator]
                raise UserFacingError(f"a mark's out ({video_out}) must be after its in ({video_in})")
            project = project or path_key(video)
        row = (
            track.path, track.hash, music_offset, path_key(video) if video is not None else None, video_in,
            video_out, project, origin, time.time(), note,
        )  # fmt: skip
        with self.transaction() as c:
            cursor = c.execute(
                f"INSERT OR REPLACE INTO used_marks ({_MARK_COLUMNS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return Mark(int(cursor.lastrowid), *row)

    def marks(self) -> list[Mark]:
        """Every used mark, oldest first."""
        rows = self.connection.execute(f"SELECT {_MARK_COLUMNS} FROM used_marks ORDER BY used_at, id")
        return [Mark(*row) for row in rows]

    def used_paths(self) -> set[str]:
        """Path keys of the music marked used, with a clip or without (`Filters.exclude_used`)."""
        return {row[0] for row in self.connection.execute("SELECT DISTINCT music FROM used_marks")}

    # --- summaries ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        one = self.connection.execute
        return {
            "tracks": one("SELECT COUNT(*) FROM tracks").fetchone()[0],
            "segments": one("SELECT COUNT(*) FROM tracks t JOIN segments s ON s.hash = t.hash").fetchone()[0],
            "errors": one("SELECT COUNT(*) FROM errors").fetchone()[0],
        }

    def errors(self) -> list[dict]:
        rows = self.connection.execute("SELECT path, kind, message FROM errors ORDER BY path")
        return [{"path": p, "kind": k, "message": m} for p, k, m in rows]


def _writable(path: Path) -> bool:
    """Whether SQLite can write the catalog: the file, and its folder (WAL's -wal and -shm files live there)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection. WAL readers need the -shm file: in a folder that cannot be written, with
    none left behind by a writer, SQLite opens the file only as immutable (no writer can be at work then,
    since a writer keeps -wal and -shm next to the catalog)."""
    uri = path.absolute().as_uri()
    for options in ("mode=ro", "mode=ro&immutable=1"):
        connection = sqlite3.connect(f"{uri}?{options}", uri=True, isolation_level=None, timeout=30.0)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.OperationalError:
            connection.close()
            if options != "mode=ro":
                raise
    raise AssertionError("unreachable")


def _check_read_only_schema(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"catalog schema version {version} is newer than this ViML ({SCHEMA_VERSION}); update ViML"
        )
    if version < SCHEMA_VERSION:
        raise UserFacingError(
            f"the catalog {path} is read-only and has schema version {version}, older than this ViML's "
            f"({SCHEMA_VERSION}): scan once with write access (`viml scan FOLDER --catalog {path}`) to "
            "upgrade it"
        )
    connection.execute("PRAGMA query_only=ON")


def _stack_tags(music: MusicSegments) -> np.ndarray:
    columns = [music.tag_probabilities[name] for name in sorted(music.tag_names)]
    if not columns:
        return np.zeros((len(music.starts), 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32)


def _like_prefix(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


@contextlib.contextmanager
def scan_lock(catalog_path: str | os.PathLike) -> Iterator[None]:
    """Held for a whole scan: a second scan of the same catalog stops with 'another scan ... is running'.

    An advisory flock on CATALOG-scan.lock, which the kernel drops when its holder dies (kill -9 too), so
    it can never be left stale. The file holds the holder's pid, for the message.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (write_analysis is safe to race anyway)
        yield
        return
    lock = f"{os.fspath(catalog_path)}-scan.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited
    except OSError as error:
        raise UserFacingError(
            f"cannot scan into {catalog_path}: its folder is not writable ({error.strerror or error})"
        ) from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise UserFacingError(f"another scan of {catalog_path} is running (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
