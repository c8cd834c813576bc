"""The words index (catalog/words.py, schema v4): how long building it and querying it take.

    python bench/catalog_words.py [--tracks 10000]

Synthetic tracks with library-like words (a Zipf-distributed vocabulary for titles and comments, a few
genres and moods each, /music/ARTIST/ALBUM/NN_Title_Words.flac paths). Measured, and printed (nothing is
asserted): indexing N tracks in one transaction; a scan's write path (one transaction per track, content
and segments included); the v4 migration filling the index of an older catalog of N tracks from its
columns; queries (a rare word, a genre, a three-word prompt; every match, and the best 50); and
`track_words` for every track (the text the search embeds).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from viml.catalog import schema
from viml.catalog.store import Catalog, FileTags, Fingerprint
from viml.engine.music.types import MusicSegments

GENRES = ["ambient", "techno", "house", "jazz", "blues", "rock", "metal", "folk", "classical", "cinematic"]
MOODS = ["calm", "tense", "dark", "happy", "sad", "epic", "uplifting", "melancholic", "dreamy", "playful"]


def library(count: int, seed: int = 0) -> list[tuple[str, FileTags]]:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)])
    ranks = np.minimum(rng.zipf(1.3, size=count * 24) - 1, 4999).reshape(count, 24)
    out = []
    for index in range(count):
        title = " ".join(vocabulary[ranks[index, :3]])
        words = {
            "title": (title,),
            "artist": (f"Artist {index % 400}",),
            "album": (f"Album {index % 1200}",),
            "genre": tuple(rng.choice(GENRES, rng.integers(1, 4), replace=False)),
            "mood": tuple(rng.choice(MOODS, rng.integers(0, 3), replace=False)),
            "comment": (" ".join(vocabulary[ranks[index, 3 : 3 + rng.integers(0, 21)]]),),
        }
        path = f"/music/Artist {index % 400}/Album {index % 1200}/{index:05d}_{title.replace(' ', '_')}.flac"
        out.append(
            (path, FileTags(title=title, artist=words["artist"][0], genre=words["genre"][0], words=words))
        )
    return out


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    count = parser.parse_args().tracks
    tracks = library(count)
    print(f"{count} synthetic tracks; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "words.sqlite"
        with Catalog(path) as catalog:
            with catalog.transaction() as c:
                seconds, _ = timed(lambda: [catalog._write_words(c, p, tags) for p, tags in tracks])
            print(
                f"index {count} tracks, one transaction: {seconds:.2f} s ({seconds / count * 1e6:.0f} µs/track)"
            )
            catalog.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = os.path.getsize(path)
            print(f"catalog with only the words: {size / 1e6:.1f} MB")
            for query in ("w300", "ambient", "dark epic trailer"):
                for limit in (None, 50):
                    seconds, matches = timed(lambda q=query, n=limit: catalog.word_matches(q, limit=n))
                    print(
                        f"word_matches({query!r}, limit={limit}): {seconds * 1000:.1f} ms, {len(matches)} tracks"
                    )
            paths = [p for p, _ in tracks]
            seconds, texts = timed(lambda: catalog.track_words(paths))
            print(f"track_words for {len(texts)} tracks: {seconds * 1000:.0f} ms")
        for words in (True, False):
            seconds = scan_writes(Path(scratch) / f"scan-{words}.sqlite", tracks, words)
            print(
                f"scan write path, one transaction per track, words {'on' if words else 'off'}: {seconds:.2f} s"
            )
        print(
            f"v4 migration of an older catalog with {count} tracks: {migration(Path(scratch) / 'old.sqlite', tracks):.2f} s"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


def scan_writes(path: Path, tracks: list[tuple[str, FileTags]], words: bool) -> float:
    names = {"T": ["a", "b"]}
    music = MusicSegments(
        starts=np.array([0.0]), ends=np.array([10.0]), embeddings=np.ones((1, 4), np.float32),
        tag_probabilities={"T": np.zeros((1, 2), np.float32)}, tag_names=names,
    )  # fmt: skip
    with Catalog(path) as catalog:
        if not words:  # the baseline: everything a scan writes but the words
            catalog._write_words = lambda *args: None  # type: ignore[method-assign]
        started = time.perf_counter()
        for index, (track, tags) in enumerate(tracks):
            fp = Fingerprint(track, 1, index, f"{index:040x}", "flac", 10.0, tags)
            catalog.write_analysis(fp, "synthetic", music, 1)
        return time.perf_counter() - started


def migration(path: Path, tracks: list[tuple[str, FileTags]]) -> float:
    connection = sqlite3.connect(path)
    for version in range(3):
        for statement in schema.MIGRATIONS[version]:
            connection.execute(statement)
    connection.execute("INSERT INTO contents VALUES ('h', 'x', 1.0, 1, 4, 0)")
    connection.executemany(
        "INSERT INTO tracks (path, path_raw, folder, size, mtime_ns, hash, title, artist, genre, updated_at) "
        "VALUES (?, ?, ?, 1, 1, 'h', ?, ?, ?, 0)",
        [(p, os.fsencode(p), os.path.dirname(p), t.title, t.artist, t.genre) for p, t in tracks],
    )
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()
    started = time.perf_counter()
    Catalog(path).close()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
