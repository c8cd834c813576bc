"""The catalog's SQLite schema and its migrations (beets-style: versioned from day one).

`PRAGMA user_version` holds the schema version; each migration is a list of statements that moves the
database one version up inside one transaction, so an old catalog upgrades in place and a crash during
an upgrade leaves the previous version intact.

Tables
- `contents`: one row per distinct audio content (keyed by content hash), with the analysis summary.
  Moved or renamed files keep their analysis because tracks point at contents by hash.
- `segments`: per content, per 10 s segment: offsets, music-model embedding and tag probabilities
  (float32 blobs; tag columns ordered as in `vocabularies`).
- `tracks`: one row per file path: size/mtime (the cheap "unchanged" check), file tags, content hash.
- `retrieval`: per content segment, the embedding in a bundle's retrieval space, keyed by that space's id,
  so a new bundle re-embeds stored outputs without decoding any audio.
- `vocabularies`: tag names of each vocabulary (e.g. MTT, MSD) in blob column order.
- `scan_runs` and `errors`: what each scan did, and every file that could not be catalogued and why.
- `used_tracks` (v2), replaced by `used_marks` (v7): music placed in an edit (`suggest --exclude-used` leaves
  it out); a mark with its clip (video, in/out, music offset, project) is a training pair (learning/marks.py).
- `track_words` and `words_fts` (v4): each track's file-tag fields (JSON, with the version of the reader
  that read them) and their FTS5 index with its folder and file name words (catalog/words.py).
- `descriptors` (v5): per content, per measured descriptor (loudness, brightness, onset rate), a float32
  blob with one value per segment (engine/music/descriptors.py).
- `rhythm` (v6): per content, the rhythm analysis (engine/music/rhythm): measured tempo and its
  confidence, beats per bar, beat times with their bar positions, section starts, integrated loudness
  and the short-term loudness curve, with the id of the analysis that measured them.
- `waveforms` (v8): per content, the waveform the desktop draws: peak and RMS level per 40 ms as
  one-byte dB codes (engine/music/waveform.py); ranking never reads it (no generation trigger).
- `catalog_state` (v3): a random catalog id and a generation that triggers bump on every write to tracks,
  contents, segments or retrieval; the cached segment matrix (matrix_cache.py) is keyed by both.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from viml.catalog import words

Step = str | Callable[[sqlite3.Connection], None]  # a statement, or Python run in the transaction
MIGRATIONS: list[list[Step]] = [
    # version 1
    [
        """CREATE TABLE contents (
            hash TEXT PRIMARY KEY,
            analyzer TEXT NOT NULL,
            duration REAL NOT NULL,
            segment_count INTEGER NOT NULL,
            embedding_dim INTEGER NOT NULL,
            analyzed_at REAL NOT NULL
        )""",
        """CREATE TABLE segments (
            hash TEXT NOT NULL REFERENCES contents(hash) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            embedding BLOB NOT NULL,
            tags BLOB NOT NULL,
            PRIMARY KEY (hash, idx)
        ) WITHOUT ROWID""",
        """CREATE TABLE tracks (
            path TEXT PRIMARY KEY,
            path_raw BLOB NOT NULL,
            folder TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT NOT NULL REFERENCES contents(hash),
            format TEXT,
            duration REAL,
            title TEXT,
            artist TEXT,
            album TEXT,
            genre TEXT,
            bpm REAL,
            scan_run INTEGER,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX tracks_hash ON tracks(hash)",
        "CREATE INDEX tracks_folder ON tracks(folder)",
        """CREATE TABLE retrieval (
            space TEXT NOT NULL,
            hash TEXT NOT NULL REFERENCES contents(hash) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            embedding BLOB NOT NULL,
            PRIMARY KEY (space, hash, idx)
        ) WITHOUT ROWID""",
        """CREATE TABLE vocabularies (
            name TEXT PRIMARY KEY,
            position INTEGER NOT NULL,
            tag_names TEXT NOT NULL
        )""",
        """CREATE TABLE scan_runs (
            id INTEGER PRIMARY KEY,
            root TEXT NOT NULL,
            analyzer TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            status TEXT NOT NULL,
            summary TEXT
        )""",
        """CREATE TABLE errors (
            path TEXT PRIMARY KEY,
            folder TEXT NOT NULL,
            size INTEGER,
            mtime_ns INTEGER,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            scan_run INTEGER,
            seen_at REAL NOT NULL
        )""",
    ],
    # version 2: tracks already placed in an edit, so suggestions can leave them out
    [
        """CREATE TABLE used_tracks (
            path TEXT PRIMARY KEY,
            used_at REAL NOT NULL,
            note TEXT
        )""",
    ],
    # version 3: a generation counter that every write ranking can see bumps (triggers, so no writer can
    # forget), and a random id per catalog: together they key the cached segment matrix (matrix_cache.py)
    [
        """CREATE TABLE catalog_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            catalog_id TEXT NOT NULL,
            generation INTEGER NOT NULL
        )""",
        "INSERT INTO catalog_state VALUES (1, lower(hex(randomblob(8))), 0)",
        *[
            f"CREATE TRIGGER {table}_{event.split()[0].lower()}_generation AFTER {event} ON {table} "
            "BEGIN UPDATE catalog_state SET generation = generation + 1; END"
            for table, event in [
                ("tracks", "INSERT"),
                ("tracks", "DELETE"),
                # size/mtime alone (a touched file) change nothing ranking reads
                (
                    "tracks",
                    "UPDATE OF path, folder, hash, format, duration, title, artist, album, genre, bpm",
                ),
                ("contents", "INSERT"),
                ("contents", "DELETE"),
                ("segments", "INSERT"),
                ("segments", "DELETE"),
                ("segments", "UPDATE"),
                ("retrieval", "INSERT"),
                ("retrieval", "DELETE"),
                ("retrieval", "UPDATE"),
            ]
        ],
    ],
    # version 4: every word the library holds about a track, for full-text search (catalog/words.py):
    # stored per track, indexed with FTS5 (BM25), filled here from the columns older catalogs have (words
    # version 0, so the next scan reads each file's tags again); a deleted track takes its words with it
    [
        """CREATE TABLE track_words (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            version INTEGER NOT NULL,
            fields TEXT NOT NULL
        )""",
        f"CREATE VIRTUAL TABLE words_fts USING fts5({', '.join(words.COLUMNS)}, "
        f"tokenize = '{words.TOKENIZER}', prefix = '{words.PREFIXES}')",
        """CREATE TRIGGER tracks_delete_words AFTER DELETE ON tracks BEGIN
            DELETE FROM words_fts WHERE rowid IN (SELECT id FROM track_words WHERE path = old.path);
            DELETE FROM track_words WHERE path = old.path;
        END""",
        lambda connection: fill_words(connection),
    ],
    # version 5: measured sound descriptors per content (engine/music/descriptors.py), one float32 [S]
    # blob per name; contents analysed before them have no rows (read back as NaN) until a rescan
    [
        """CREATE TABLE descriptors (
            hash TEXT NOT NULL REFERENCES contents(hash) ON DELETE CASCADE,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (hash, name)
        ) WITHOUT ROWID""",
        *[
            f"CREATE TRIGGER descriptors_{event.lower()}_generation AFTER {event} ON descriptors "
            "BEGIN UPDATE catalog_state SET generation = generation + 1; END"
            for event in ("INSERT", "DELETE", "UPDATE")
        ],
    ],
    # version 6: the rhythm of each content (engine/music/rhythm): beats, downbeats, sections, loudness;
    # contents analysed before it have no row until a scan with the beat model measures them
    [
        """CREATE TABLE rhythm (
            hash TEXT PRIMARY KEY REFERENCES contents(hash) ON DELETE CASCADE,
            analyzer TEXT NOT NULL,
            tempo REAL,
            tempo_confidence REAL NOT NULL,
            beats_per_bar INTEGER NOT NULL,
            beats BLOB NOT NULL,
            positions BLOB NOT NULL,
            sections BLOB NOT NULL,
            loudness REAL,
            loudness_curve BLOB NOT NULL,
            loudness_hop REAL NOT NULL,
            duration REAL NOT NULL
        ) WITHOUT ROWID""",
        *[
            f"CREATE TRIGGER rhythm_{event.lower()}_generation AFTER {event} ON rhythm "
            "BEGIN UPDATE catalog_state SET generation = generation + 1; END"
            for event in ("INSERT", "DELETE", "UPDATE")
        ],
    ],
    # version 7: used marks (catalog/store.py `Mark`): music placed in an edit, a positive training pair for
    # `viml learn --from-marks` when it has its clip: the music (path + content hash) from an offset against
    # a video's in/out, in a project. The v2 used tracks move in as marks without a clip: still left out by
    # --exclude-used, never pairs. The same placement marked twice is one mark (the newest).
    [
        """CREATE TABLE used_marks (
            id INTEGER PRIMARY KEY,
            music TEXT NOT NULL,
            music_hash TEXT,
            music_offset REAL,
            video TEXT,
            video_in REAL,
            video_out REAL,
            project TEXT,
            origin TEXT NOT NULL,
            used_at REAL NOT NULL,
            note TEXT,
            CHECK ((video IS NULL AND video_in IS NULL AND video_out IS NULL AND music_offset IS NULL)
                   OR (video IS NOT NULL AND project IS NOT NULL AND video_in IS NOT NULL
                       AND video_out IS NOT NULL AND music_offset IS NOT NULL
                       AND video_in >= 0 AND video_out > video_in AND music_offset >= 0))
        )""",
        "CREATE UNIQUE INDEX used_marks_placement ON used_marks (music, ifnull(video, ''), "
        "ifnull(video_in, -1), ifnull(video_out, -1), ifnull(music_offset, -1))",
        """INSERT INTO used_marks (music, music_hash, origin, used_at, note)
            SELECT u.path, (SELECT t.hash FROM tracks t WHERE t.path = u.path), 'track', u.used_at, u.note
            FROM used_tracks u""",
        "DROP TABLE used_tracks",
    ],
    # version 8: each content's waveform for display (engine/music/waveform.py), built from the scan's own
    # decode; contents analysed before it have no row until the next scan measures it (no music model)
    [
        """CREATE TABLE waveforms (
            hash TEXT PRIMARY KEY REFERENCES contents(hash) ON DELETE CASCADE,
            rate REAL NOT NULL,
            peak BLOB NOT NULL,
            rms BLOB NOT NULL
        ) WITHOUT ROWID""",
    ],
    # version 9: a measurement (rhythm, waveform) that failed on an analysed content, with why: like a
    # failed file it is not tried again while the file is unchanged (`viml scan --retry-failed` tries again;
    # a new analysis of the content clears it). `analyzer`: the rhythm analysis id, '' for a waveform.
    [
        """CREATE TABLE measure_failures (
            hash TEXT NOT NULL REFERENCES contents(hash) ON DELETE CASCADE,
            what TEXT NOT NULL CHECK (what IN ('rhythm', 'waveform')),
            analyzer TEXT NOT NULL,
            message TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (hash, what)
        ) WITHOUT ROWID""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    pass


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it was at before."""
    before = connection.execute("PRAGMA user_version").fetchone()[0]
    if before > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"catalog schema version {before} is newer than this ViML ({SCHEMA_VERSION}); update ViML"
        )
    for version in range(before, SCHEMA_VERSION):
        # BEGIN IMMEDIATE: two processes opening a fresh catalog at once must not both migrate it.
        connection.execute("BEGIN IMMEDIATE")
        try:
            current = connection.execute("PRAGMA user_version").fetchone()[0]
            if current > version:
                connection.execute("COMMIT")
                continue
            for step in MIGRATIONS[version]:
                if callable(step):
                    step(connection)
                else:
                    connection.execute(step)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return before


def fill_words(connection: sqlite3.Connection) -> None:
    """Index the words an older catalog already holds: its title/artist/album/genre/bpm columns and path."""
    rows = connection.execute("SELECT path, path_raw, title, artist, album, genre, bpm FROM tracks")
    for path, raw, title, artist, album, genre, bpm in rows.fetchall():
        found = {"title": title, "artist": artist, "album": album, "genre": genre}
        fields = {name: [value] for name, value in found.items() if value}
        if bpm:
            fields["bpm"] = [f"{bpm:g}"]
        cursor = connection.execute(
            "INSERT INTO track_words (path, version, fields) VALUES (?, 0, ?)",
            (path, json.dumps(fields, ensure_ascii=False, sort_keys=True)),
        )
        marks = ", ".join("?" * (len(words.COLUMNS) + 1))
        connection.execute(
            f"INSERT INTO words_fts (rowid, {', '.join(words.COLUMNS)}) VALUES ({marks})",
            (cursor.lastrowid, *words.fts_row(fields, bytes(raw))),
        )
