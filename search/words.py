"""The words side of a search: what the library's own words (file tags, titles, folders, file names) say
about each track, for a prompt — full-text matching (the catalog's FTS5 index, BM25) and meaning (the
bundle's text encoder on each track's words, so "melancholy" finds a track tagged "sad").

A track's words are embedded once per text encoder and cached on disk by the text itself (re-created at
will: `<VIML_HOME>/cache/word_embeddings/`), so a changed tag re-embeds only that track.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.core.paths import cache_dir
from viml.engine.vectors import normalize_rows
from viml.search.fusion import above_floor, relative

if TYPE_CHECKING:
    from viml.catalog.store import Catalog
    from viml.engine.runtime.bundle import RuntimeBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WordSignals:
    bm25: np.ndarray  # float [T] full-text score of each table track (0: no match)
    meaning: np.ndarray  # float [T] cosine of the prompt with the track's words (0 where it has none)
    has_words: np.ndarray  # bool [T] the track has any words at all
    matched: dict[str, list[dict]]  # path -> [{"field": ..., "word": ...}] what matched, for "why"

    def evidence(self, meaning_floor: float) -> tuple[np.ndarray, np.ndarray]:
        """Each signal's evidence in [0, 1] (search/fusion.py): full-text score relative to the best
        match, and the meaning's cosine from `meaning_floor` up. Below the floor a track's words say
        nothing about the prompt (a file called "track 07"), so they must not move it."""
        return (
            relative(self.bm25, self.bm25 > 0),
            above_floor(self.meaning, self.has_words, meaning_floor),
        )


# Full-text matches beyond the best ones add little to a fused ranking (their evidence relative to the
# best match is small) and cost most of the query (finding the matched words of each row): the rest count
# as "no match".
BM25_LIMIT = 200


def word_signals(
    catalog: Catalog, bundle: RuntimeBundle, paths: list[str], text: str, meanings: TrackMeanings
) -> WordSignals:
    """Both word signals for a prompt's text (its negated words already removed), aligned with `paths`;
    `meanings` is `track_meanings` of the same paths (the caller keeps it while the catalog is unchanged)."""
    matches = catalog.word_matches(text, limit=BM25_LIMIT)
    count = len(paths)
    bm25 = np.zeros(count)
    matched: dict[str, list[dict]] = {}
    index_of = {path: i for i, path in enumerate(paths)}
    for path, match in matches.items():
        index = index_of.get(path)
        if index is not None:
            bm25[index] = match.score
            matched[path] = [{"field": field, "word": word} for field, word in match.hits]
    has_words, vectors = meanings
    meaning = np.zeros(count)
    if has_words.any():
        prompt = normalize_rows(bundle.clips.prompt_embedding(text)[None])[0]
        meaning[has_words] = vectors @ prompt
    return WordSignals(bm25, meaning, has_words, matched)


TrackMeanings = tuple[np.ndarray, np.ndarray]  # (has words [T], unit vectors of the tracks that have them)


def track_meanings(catalog: Catalog, bundle: RuntimeBundle, paths: list[str]) -> TrackMeanings:
    """Which tracks have words, and their words' embeddings (each text embedded once, cached on disk)."""
    texts = catalog.track_words(paths)
    has_words = np.array([bool(texts.get(path, "").strip()) for path in paths], bool)
    wanted = [texts[p] for p, has in zip(paths, has_words, strict=True) if has]
    vectors = WordEmbeddings.for_bundle(bundle).embed(wanted) if wanted else np.zeros((0, 0), np.float32)
    return has_words, vectors


class WordEmbeddings:
    """Text → unit vector through the bundle's prompt encoder, cached in memory and on disk (npz)."""

    _open: dict[str, WordEmbeddings] = {}

    def __init__(self, bundle: RuntimeBundle) -> None:
        self.bundle = bundle
        role = bundle.prompt_role
        self.encoder_id = hashlib.sha256(f"{role}:{bundle.file_hash(role)}".encode()).hexdigest()[:16]
        self.path = cache_dir() / "word_embeddings" / f"{self.encoder_id}.npz"
        self.vectors: dict[str, np.ndarray] = _read(self.path)

    @classmethod
    def for_bundle(cls, bundle: RuntimeBundle) -> WordEmbeddings:
        key = f"{bundle.folder}|{bundle.bundle_hash}|{cache_dir()}"
        if key not in cls._open:
            cls._open[key] = cls(bundle)
        return cls._open[key]

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:24] for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items())
        if missing:
            encoded = normalize_rows(self.bundle.prompt_encoder.encode_texts([t for _, t in missing]))
            for (key, _), vector in zip(missing, encoded, strict=True):
                self.vectors[key] = vector.astype(np.float32)
            _write(self.path, self.vectors)
        return np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    except (OSError, ValueError, KeyError) as error:
        log.warning("ignoring unreadable word-embedding cache %s (%s)", path, error)
        return {}


def _write(path: Path, vectors: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        keys = sorted(vectors)
        np.savez(temporary, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]))
        os.replace(temporary, path)
    except OSError as error:  # a read-only cache costs speed only
        log.info("word embeddings not cached (%s)", error)
