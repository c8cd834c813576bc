"""Tags: the one place that says which tagger outputs count, in which order, and of what kind.

Rules (the paper keeps tagger outputs above 0.3):
- a tag counts when its probability is at or above `TAG_THRESHOLD` (>=, everywhere);
- tags are ranked by probability, highest first;
- a name in both vocabularies (MTT and MSD "electronic") counts once, with its higher probability;
- a tag's kind (genre, mood, tempo, instrument, vocals, era, other) comes from the one tag table
  (engine/text/tag_table.json) through the concept it maps onto.
Tag columns of a flat row are named 'VOCABULARY:tag' (the catalog's blob order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

TAG_THRESHOLD = 0.3


def column_names(vocabularies: Mapping[str, Sequence[str]]) -> list[str]:
    """'VOCABULARY:tag' for every column, vocabulary by vocabulary, in order."""
    return [f"{vocabulary}:{tag}" for vocabulary, tags in vocabularies.items() for tag in tags]


def merged(tags: Sequence[tuple[str, str, float]]) -> list[tuple[str, float]]:
    """(tag, probability) from (vocabulary, tag, probability): each name once (case-insensitive, the
    higher probability wins), highest first (ties by name)."""
    best: dict[str, tuple[str, float]] = {}
    for _, tag, probability in tags:
        key = tag.strip().lower()
        if key not in best or probability > best[key][1]:
            best[key] = (tag.strip(), float(probability))
    return sorted(best.values(), key=lambda item: (-item[1], item[0]))


def strongest(
    row: np.ndarray,
    names: Sequence[str],
    threshold: float = TAG_THRESHOLD,
    top: int | None = None,
) -> list[tuple[str, float]]:
    """`merged` tags of one row of probabilities over 'VOCABULARY:tag' columns, at or above `threshold`."""
    found = [
        (*name.split(":", 1), float(probability))
        for name, probability in zip(names, np.asarray(row, dtype=np.float64), strict=True)
        if probability >= threshold
    ]
    ranked = merged(found)  # type: ignore[arg-type]
    return ranked if top is None else ranked[:top]


def tags_above(
    probabilities: Mapping[str, np.ndarray],
    tag_names: Mapping[str, Sequence[str]],
    threshold: float = TAG_THRESHOLD,
    segment: int | None = None,
) -> list[tuple[str, str, float]]:
    """(vocabulary, tag, probability) at or above `threshold`, highest first, per vocabulary (no merging:
    what a tagger said); one segment's row, or the mean over all segments when `segment` is None."""
    found = []
    for vocabulary, values in probabilities.items():
        values = np.asarray(values, dtype=np.float32)
        row = values[segment] if segment is not None else values.mean(axis=0)
        for tag, probability in zip(tag_names[vocabulary], row, strict=True):
            if probability >= threshold:
                found.append((vocabulary, tag, float(probability)))
    return sorted(found, key=lambda item: -item[2])


def tag_kind(vocabulary: str, tag: str) -> str:
    """The kind of a tag from the tag table: genre, mood, tempo, instrument, vocals, era or other."""
    from viml.engine.text.tagset import load_table

    return load_table().concept_for(vocabulary, tag).type


def genres_and_moods(tags: Sequence[tuple[str, str, float]]) -> tuple[list[str], list[str]]:
    """Genre and mood names to write into files (Picard's GENRE / MOOD) from (vocabulary, tag, p).

    Names are the table's concept wording, lower-case as MusicBrainz genres are, so synonyms across the
    two taggers ("chillout" / "chill", "classic" / "classical") are written once; instrument, voice,
    tempo and era tags describe the music but are neither, so they are never written."""
    from viml.engine.text.tagset import load_table

    table = load_table()
    genres: list[str] = []
    moods: list[str] = []
    for vocabulary, tag, _ in sorted(tags, key=lambda item: -item[2]):
        concept = table.concept_for(vocabulary, tag)
        target = {"genre": genres, "mood": moods}.get(concept.type)
        name = concept.key.lower()
        if target is not None and not concept.negative and name not in target:
            target.append(name)
    return genres, moods
