"""Refine in words: "like this track (or this part of it), but calmer, without drums".

A query made of a reference and words (`SuggestRequest.like`, `viml suggest --like TRACK[@OFFSET]`,
"More like this…" in the app, the service's `like`):

- The reference: a catalogued track (its path, or a title the catalog knows), a part of one
  (TRACK@OFFSET, seconds or m:ss: LIKE_SECONDS from there, or the clip's length when there is a clip),
  or any audio file (analysed now with the bundle's own music model; a file whose content is catalogued
  is read from the catalog instead). Without @OFFSET the reference is the whole track's average sound:
  a track's mean is the one sound that stands for all of it, and it is what `viml similar` matches.
- The starting point is the reference's sound in the music model's embedding space, centred on the
  library's mean (as `viml similar`: music-model features share a large common component, and without
  centring every track looks alike). Not the bundle's retrieval space: a zero-shot bundle's space is the
  text embedding of each segment's strongest tags, where all tracks with the same tags are one point;
  the music model's own space tells recordings apart. So "like X" with no words ranks exactly as
  `viml similar X` (a part: matched as a sequence, as `viml similar --start --end`).
- The words move it, per catalogued segment s, the way prompt terms move a prompt's ranking:

      score(s) = cos(r, m_s) + σ · (MOVE_WEIGHT · Σ_moves move(s) + TERM_WEIGHT · terms(s)
                                   + TEXT_WEIGHT · z_text(s))

  r the reference row, m_s the segment's centred music-model embedding, and σ the spread (standard
  deviation) of cos(r̄, m_s) over the library's other segments: the words are weighed in units of how
  much this library's similarity to X varies, so they move a library of near-identical tracks as much as
  a varied one (a fixed scale such as the prompt terms' TERM_SCALE, made for the narrow cosines of the
  zero-shot text space, would be lost in the music space's spread or swamp it). Comparatives are read
  relative to the reference's measured value a_X (the mean over its part's audible segments):

      move(s) = amount · clip(d · (a(s) − a_X) / span, −1, 1)

  d = −1 for "calmer" (quieter, softer, gentler, less energetic: loudness, LUFS), "slower" (the rhythm
  analysis' measured tempo, in octaves; a tempo measured at half or double time counts as measured),
  "darker" (spectral centroid, in octaves), "sparser" (onsets per second); +1 for "louder"/"more
  energetic", "faster", "brighter", "busier". A segment one `span` (SPANS) on the asked side of X scores
  the full move, one as far on the other side loses as much; a segment without the measurement (silence,
  a tempo the analysis was not sure of) scores 0. "much" doubles a move, "slightly"/"a bit"/"a little"
  halves it. `terms(s)` = Σ_c w_c · p_c(s) are the rest of the prompt's terms through the tags and measured
  concepts ("no drums", "without vocals", "+piano"; "more piano" is +piano, "less drums" is -drums), and
  z_text the text left after them, embedded in the bundle's space and scored against each segment's
  retrieval embedding (e_s), as a z-score over the library.
- A clip still counts by the influence w (0: the picture alone, 1: the reference and words alone):
  window scores over the clip's K rows of (1 − w)·cos(q_k, e_s) + w·(the like score above, with the
  reference as its mean row).
- The reference's own tracks (every file with its content) never come back. Comparatives, tags and the
  text are read only here: a search without `like` never reaches this module.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from viml.catalog.store import Catalog, TrackTable, path_key
from viml.core.errors import UserFacingError
from viml.engine.music.descriptors import MIN_SPAN, SILENT_LUFS
from viml.engine.vectors import normalize_rows
from viml.search.filters import MEASURED_TEMPO_CONFIDENCE, Filters
from viml.search.prompt_terms import PromptTerms, _phrase_index, parse_prompt
from viml.search.ranking import WindowScores, top_tracks, window_scores

if TYPE_CHECKING:
    from viml.engine.music.types import MusicSegments
    from viml.search.searcher import Searcher, SearchResult, SegmentHit, Suggestion, SuggestRequest

LIKE_SECONDS = 30.0  # a part named by @OFFSET alone, without a clip to give its length
# In units of σ, the spread of the library's similarity to the reference (the module docstring). MOVE and
# TERM were chosen on bench/search_set_2.json's library by `bench/refine.py --sweep` (the share of
# references whose top 10 moved the asked way and still sound like X: moves 0.5 / 1 / 2 / 4 -> 0.78 / 0.88 /
# 0.88 / 0.74; "without drums" 1 / 4 / 8 / 16 / 32 -> 0.56 / 0.71 / 0.83 / 0.88 / 0.72) and are reported
# on both sets. A term is that strong because the taggers' probabilities are small (a drummy segment's
# drums column is often 0.3): a suppression then acts almost as a filter, which "without drums" means.
# TEXT is not swept (no labelled words for it here): the text counts one σ per standard deviation.
MOVE_WEIGHT = 2.0  # a full move
TERM_WEIGHT = 16.0  # a prompt term of weight 1 on a fully confident segment
TEXT_WEIGHT = 1.0  # one standard deviation of the text's similarity
ATTRIBUTES = ("loudness", "tempo", "brightness", "onset_rate")
UNITS = {"loudness": "LUFS", "tempo": "BPM", "brightness": "Hz", "onset_rate": "onsets/s"}
# What one full move asks for: the descriptors' own library spans (6 LU, half an octave of brightness,
# one onset per second) and 0.2 octaves of tempo (15 %: a tempo change an editor hears at once).
SPANS = {"loudness": MIN_SPAN["loudness"], "brightness": MIN_SPAN["brightness"],
         "onset_rate": MIN_SPAN["onset_rate"], "tempo": 0.2}  # fmt: skip
_LOG2 = ("tempo", "brightness")  # compared in octaves

_COMPARATIVES: dict[str, tuple[str, int]] = {
    **dict.fromkeys(("calmer", "quieter", "softer", "gentler", "less energetic", "less intense",
                     "less loud", "more calm", "more relaxed", "more mellow"), ("loudness", -1)),
    **dict.fromkeys(("louder", "more energetic", "more intense", "more energy", "less calm",
                     "less quiet", "less soft"), ("loudness", 1)),
    **dict.fromkeys(("slower", "less fast", "more slowly"), ("tempo", -1)),
    **dict.fromkeys(("faster", "quicker", "less slow", "more quickly"), ("tempo", 1)),
    **dict.fromkeys(("darker", "duller", "less bright", "more muffled"), ("brightness", -1)),
    **dict.fromkeys(("brighter", "crisper", "airier", "less dark"), ("brightness", 1)),
    **dict.fromkeys(("sparser", "simpler", "less busy", "more sparse", "more minimal", "less dense"),
                    ("onset_rate", -1)),
    **dict.fromkeys(("busier", "denser", "more busy", "less sparse"), ("onset_rate", 1)),
}  # fmt: skip
_AMOUNTS = {"much": 2.0, "far": 2.0, "way": 2.0, "a lot": 2.0, "slightly": 0.5, "a bit": 0.5,
            "a little": 0.5, "somewhat": 0.5}  # fmt: skip
_OPTION = "|".join(re.escape(k) for k in sorted(_COMPARATIVES, key=len, reverse=True))
_AMOUNT = "|".join(re.escape(k) for k in sorted(_AMOUNTS, key=len, reverse=True))
_COMPARATIVE = re.compile(
    rf"\b(?:(?P<amount>{_AMOUNT})\s+)?(?P<word>{_OPTION})\b"
    r"(?:\s+than\s+(?:this|that|it|the original|the reference|before))?",
    re.IGNORECASE,
)
_MORE_LESS = re.compile(r"\b(more|less)\s+([\w&'-]+)", re.IGNORECASE)
_TIME = re.compile(r"\d+(\.\d+)?|(\d+:){1,2}\d+(\.\d+)?")


# --- the reference as typed ------------------------------------------------------------------------


def parse_seconds(text: str) -> float:
    """Seconds from '75', '75.5', '1:15', '01:01:15.5' (a UserFacingError names anything else)."""
    if not _TIME.fullmatch(text.strip()):
        raise UserFacingError(f"bad time {text!r}: use seconds (75.5) or [h:]m:s (1:15.5)")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


@dataclass(frozen=True)
class LikeSpec:
    track: str  # a path, or a title the catalog knows
    offset: float | None = None  # where the part starts (None: the whole track)

    def __str__(self) -> str:
        return self.track if self.offset is None else f"{self.track}@{self.offset:g}"


def parse_like(text: str) -> LikeSpec:
    """TRACK[@OFFSET]: the last '@' starts an offset when what follows reads as a time, unless the whole
    text names an existing file ('take@2.wav' is a file name)."""
    text = (text or "").strip()
    if not text:
        raise UserFacingError("like: name a reference track (a path, or a catalogued title)")
    head, sep, tail = text.rpartition("@")
    if sep and head.strip() and not os.path.exists(text):
        if _TIME.fullmatch(tail.strip()):
            return LikeSpec(head.strip(), parse_seconds(tail))
        if re.fullmatch(r"[\d.:+-]+", tail.strip()):
            raise UserFacingError(
                f"bad offset {tail!r} in {text!r}: use TRACK@SECONDS (TRACK@75.5) or TRACK@M:SS (TRACK@1:15)"
            )
    return LikeSpec(text)


# --- the words --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    attribute: str  # one of ATTRIBUTES
    direction: int  # -1: below the reference's, +1: above
    amount: float  # 1, or 2 for "much", 0.5 for "slightly"
    source: str  # the words it came from


@dataclass
class Words:
    """A refinement's words: the moves relative to the reference, and the rest as any prompt's terms."""

    moves: list[Move] = field(default_factory=list)
    terms: PromptTerms = field(default_factory=lambda: PromptTerms("", ""))


def parse_words(prompt: str | None) -> Words:
    """The comparatives ("calmer", "much slower") out of the prompt, "more X"/"less X" of a tag concept as
    +X/-X, and the rest parsed as any prompt (search/prompt_terms.py)."""
    text = (prompt or "").strip()
    moves = []
    for match in _COMPARATIVE.finditer(text):
        attribute, direction = _COMPARATIVES[match["word"].lower()]
        amount = _AMOUNTS[match["amount"].lower()] if match["amount"] else 1.0
        moves.append(Move(attribute, direction, amount, match.group(0)))
    rest = _COMPARATIVE.sub(" ", text)
    phrases = _phrase_index_cached()
    rest = _MORE_LESS.sub(
        lambda m: ("+" if m[1].lower() == "more" else "-") + m[2] if m[2].lower() in phrases else m[0], rest
    )
    return Words(moves, parse_prompt(rest))


def _phrase_index_cached() -> dict[str, str]:
    global _PHRASES
    if _PHRASES is None:
        from viml.engine.text.tagset import load_table

        _PHRASES = _phrase_index(load_table())
    return _PHRASES


_PHRASES: dict[str, str] | None = None


# --- the library and the reference in the music model's space ---------------------------------------


@dataclass
class Library:
    """The catalog's music-model segments, centred on their mean (one per catalog generation)."""

    table: TrackTable  # as stored
    centred: TrackTable  # the same tracks, embeddings centred and normalised
    mean: np.ndarray  # float32 [D]


def library(searcher: Searcher) -> Library:
    def build() -> Library:
        table = searcher.catalog.load_tracks(None)
        if not table.paths:
            raise UserFacingError("the catalog has no tracks yet; run `viml scan FOLDER` first")
        mean = table.embeddings.mean(axis=0)
        centred = normalize_rows(table.embeddings - mean)
        return Library(table, TrackTable(table.paths, table.hashes, table.starts, table.counts,
                                         table.segment_starts, centred, table.tracks), mean)  # fmt: skip

    return searcher._view("like:library", build)


@dataclass
class Reference:
    label: str  # what the header shows: the title (or file name) and the part
    content_hash: str  # the reference's content: every catalogued file with it is left out
    rows: np.ndarray  # float32 [K, D] centred, normalised music-model rows of its part
    times: np.ndarray  # float64 [K] their start times
    attributes: dict[str, float]  # the part's measured values (ATTRIBUTES; NaN: not measured)
    index: int | None = None  # its row in the library (None: a file analysed now)


def find_reference(searcher: Searcher, spec: LikeSpec, length: float | None) -> Reference:
    """The reference named by `spec`, its part [offset, offset + length) (`length` None: LIKE_SECONDS)."""
    lib = library(searcher)
    index = _catalogued_index(searcher.catalog, lib.table, spec.track)
    start = spec.offset
    end = None if start is None else start + (length or LIKE_SECONDS)
    if index is not None:
        return _catalogued(searcher, lib, index, start, end)
    return _analysed(searcher, lib, spec.track, start, end)


def _catalogued_index(catalog: Catalog, table: TrackTable, track: str) -> int | None:
    """The library row of a path that is catalogued (or whose content is), of a catalogued title, or None
    for an audio file to analyse; a UserFacingError when the text names nothing."""
    key = path_key(os.path.abspath(track))
    if key in table.paths:
        return table.paths.index(key)
    if os.path.isfile(track):
        from viml.catalog.analysis import fingerprint

        found = fingerprint(track)
        content = getattr(found, "hash", None)
        return table.hashes.index(content) if content in table.hashes else None
    wanted = track.strip().lower()
    exact = [i for i, t in enumerate(table.tracks) if (t.title or "").strip().lower() == wanted]
    named = exact or [
        i for i, t in enumerate(table.tracks)
        if wanted in (t.title or "").lower() or wanted in os.path.basename(t.path).lower()
    ]  # fmt: skip
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        shown = "; ".join(table.paths[i] for i in named[:5]) + (" ..." if len(named) > 5 else "")
        raise UserFacingError(
            f"{track!r} names {len(named)} catalogued tracks: give the path of one ({shown})"
        )
    raise UserFacingError(
        f"{track}: no such file, and no catalogued track has that title or file name "
        "(`viml scan FOLDER` catalogues a folder)"
    )


def _part(times: np.ndarray, seconds: float, start: float | None, end: float | None, name: str) -> np.ndarray:
    """Which of a track's segments (start times) lie in [start, end), as `viml similar` reads a part."""
    chosen = np.ones(len(times), bool)
    if start is not None:
        chosen &= times + seconds > start
    if end is not None:
        chosen &= times < end
    if not chosen.any():
        last = float(times[-1]) + seconds if len(times) else 0.0
        raise UserFacingError(
            f"{name} has no segment between {start} and {end} s (it is about {last:.0f} s long)"
        )
    return chosen


def _catalogued(
    searcher: Searcher, lib: Library, index: int, start: float | None, end: float | None
) -> Reference:
    table = lib.table
    rows = slice(int(table.starts[index]), int(table.starts[index] + table.counts[index]))
    times = table.segment_starts[rows]
    chosen = _part(times, searcher.segment_seconds, start, end, table.paths[index])
    values = segment_values(searcher)
    attributes = {name: _mean(values[name][rows][chosen]) for name in ATTRIBUTES}
    track = table.tracks[index]
    label = (track.title or os.path.basename(track.path)) + ("" if start is None else f" @{_clock(start)}")
    return Reference(label, table.hashes[index], lib.centred.embeddings[rows][chosen], times[chosen],
                     attributes, index)  # fmt: skip


def _analysed(
    searcher: Searcher, lib: Library, path: str, start: float | None, end: float | None
) -> Reference:
    """A file that is not catalogued, through the analysis the catalog was scanned with."""
    from viml.catalog.analysis import bundle_analyzer

    if searcher.bundle is None:
        raise UserFacingError(f"{path} is not in the catalog; scan its folder first")
    analyzer = bundle_analyzer(searcher.bundle)
    music: MusicSegments = analyzer.analyze_file(path)  # a MediaError says why a file cannot be read
    if music.embeddings.shape[1] != lib.table.embeddings.shape[1]:
        raise UserFacingError(
            f"{path} was analysed into {music.embeddings.shape[1]}-d embeddings but the catalog holds "
            f"{lib.table.embeddings.shape[1]}-d ones: was the catalog scanned with another bundle?"
        )
    chosen = _part(music.starts, searcher.segment_seconds, start, end, path)
    rhythm = music.rhythm
    tempo = (
        rhythm.beats.tempo
        if rhythm is not None and rhythm.beats.tempo_confidence >= MEASURED_TEMPO_CONFIDENCE
        else math.nan
    )
    values = _attribute_values(music.descriptors, len(music.starts), np.full(len(music.starts), tempo))
    from viml.catalog.analysis import fingerprint

    found = fingerprint(path)
    label = os.path.basename(path) + ("" if start is None else f" @{_clock(start)}")
    return Reference(label, getattr(found, "hash", ""), normalize_rows(music.embeddings - lib.mean)[chosen],
                     music.starts[chosen], {n: _mean(values[n][chosen]) for n in ATTRIBUTES})  # fmt: skip


# --- measured attributes ----------------------------------------------------------------------------


def segment_values(searcher: Searcher) -> dict[str, np.ndarray]:
    """Per library segment, each attribute as moves compare it (log2 for tempo and brightness; NaN where
    not measured): the stored descriptors, and each track's measured tempo when confident."""

    def build() -> dict[str, np.ndarray]:
        table = library(searcher).table
        measured = searcher.catalog.measured_tempos()
        tempos = [measured.get(h, (math.nan, 0.0)) for h in table.hashes]
        per_track = np.array([t if c >= MEASURED_TEMPO_CONFIDENCE else math.nan for t, c in tempos], float)
        total = int(table.counts.sum())
        return _attribute_values(
            searcher.catalog.segment_descriptors(table), total, np.repeat(per_track, table.counts)
        )

    return searcher._view("like:values", build)


def _attribute_values(descriptors: dict, total: int, tempo: np.ndarray) -> dict[str, np.ndarray]:
    def column(name: str) -> np.ndarray:
        values = descriptors.get(name)
        return np.full(total, np.nan) if values is None else np.asarray(values, np.float64)

    loudness = column("loudness")
    audible = np.isfinite(loudness) & (loudness >= SILENT_LUFS)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "loudness": loudness,
            "brightness": np.log2(column("brightness")),
            "onset_rate": column("onset_rate"),
            "tempo": np.log2(np.asarray(tempo, np.float64)),
        }
    for name in ("loudness", "brightness", "onset_rate"):  # silence is no measurement of them
        out[name] = np.where(audible & np.isfinite(out[name]), out[name], np.nan)
    out["tempo"] = np.where(np.isfinite(out["tempo"]), out["tempo"], np.nan)
    return out


def shown_value(attribute: str, value: float) -> float:
    """A value as moves compare it (octaves for tempo and brightness) back in its unit (UNITS)."""
    return float(2.0**value) if attribute in _LOG2 else float(value)


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def move_bias(moves: list[Move], values: dict[str, np.ndarray], reference: Reference) -> np.ndarray | None:
    """float32 [N]: Σ move(s) per library segment (the module docstring); None without moves."""
    if not moves:
        return None
    bias = np.zeros(len(next(iter(values.values()))), np.float64)
    for move in moves:
        anchor = reference.attributes[move.attribute]
        if not math.isfinite(anchor):
            why = ("its tempo was not measured (convert BeatNet: `viml convert-beatnet`, then scan again)"
                   if move.attribute == "tempo" else "it has no measured sound (silence, or scan it again)")  # fmt: skip
            raise UserFacingError(f"{move.source!r} compares with {reference.label}, but {why}")
        shift = move.direction * (values[move.attribute] - anchor) / SPANS[move.attribute]
        bias += move.amount * np.nan_to_num(np.clip(shift, -1.0, 1.0), nan=0.0)
    return bias.astype(np.float32)


def describe(reference: Reference, words: Words) -> str:
    """One line for the header: 'like Night Drive @1:00; tempo below 124 BPM, loudness below -14.2 LUFS'."""
    parts = []
    for move in words.moves:
        value = shown_value(move.attribute, reference.attributes[move.attribute])
        side = "below" if move.direction < 0 else "above"
        parts.append(f"{move.attribute.replace('_', ' ')} {side} {value:.4g} {UNITS[move.attribute]}"
                     + ("" if move.amount == 1 else f" ×{move.amount:g}"))  # fmt: skip
    return f"like {reference.label}" + (f"; {', '.join(parts)}" if parts else "")


# --- ranking ----------------------------------------------------------------------------------------


def similar(
    searcher: Searcher,
    reference: str,
    start: float | None = None,
    end: float | None = None,
    filters: Filters | None = None,
    top: int = 10,
) -> tuple[list[Suggestion], list[SegmentHit]]:
    """`Searcher.similar`: tracks and single segments most like a catalogued track (or a part of it)."""
    from viml.search.searcher import SegmentHit

    lib = library(searcher)
    key = path_key(os.path.abspath(reference))
    if key not in lib.table.paths:
        raise UserFacingError(f"{reference} is not in the catalog; scan its folder first")
    found = _catalogued(searcher, lib, lib.table.paths.index(key), start, end)
    part = start is not None or end is not None
    query = _query(found, part)
    keep = _keep(searcher, lib.table, filters, found)
    scores = window_scores(lib.centred.embeddings, lib.table.starts, lib.table.counts, query)
    length = _length(found, searcher.segment_seconds, query)
    tracks = [
        searcher._suggestion(lib.centred, scores, i, r, length, query.shape[0], None)
        for r, i in enumerate(top_tracks(scores.best, keep, top), 1)
    ]
    # Single best segments anywhere (several may come from one track): "this part sounds like that part".
    segment_scores = lib.centred.embeddings @ query.mean(axis=0)
    owner = np.repeat(np.arange(len(lib.table.paths)), lib.table.counts)
    segment_scores[~keep[owner]] = -np.inf
    hits = [
        SegmentHit(lib.table.paths[owner[r]], float(lib.table.segment_starts[r]),
                   round(float(segment_scores[r]), 6))
        for r in np.argsort(-segment_scores)[:top]
        if np.isfinite(segment_scores[r])
    ]  # fmt: skip
    return tracks, hits


def _query(reference: Reference, part: bool) -> np.ndarray:
    """A part is matched as a sequence; the whole track as its average sound."""
    rows = reference.rows
    return normalize_rows(rows if part else rows.mean(axis=0, keepdims=True))


def _length(reference: Reference, seconds: float, query: np.ndarray) -> float:
    if query.shape[0] > 1:
        return float(reference.times[-1]) - float(reference.times[0]) + seconds
    return seconds


def _keep(searcher: Searcher, table: TrackTable, filters: Filters | None, reference: Reference) -> np.ndarray:
    """The filters' mask, without any file of the reference's content."""
    keep = (filters or Filters()).keep(table, searcher.catalog)
    other = np.array([h != reference.content_hash for h in table.hashes], bool)
    return other & (keep if keep is not None else True)


def suggest_like(
    searcher: Searcher, request: SuggestRequest, check: Callable[[], None] = lambda: None
) -> SearchResult:
    """`Searcher.suggest` for a request with `like` (the module docstring)."""
    from viml.search.query import encode_query
    from viml.search.searcher import SearchResult

    bundle = searcher.bundle
    assert bundle is not None  # suggest's prepare() checked it
    spec = parse_like(request.like or "")
    reference = find_reference(searcher, spec, request.clip_seconds)
    check()
    words = parse_words(request.prompt if request.prompt_terms else None)
    lib = library(searcher)
    words_bias = _words_bias(searcher, request, lib, reference, words)
    check()
    keep = _keep(searcher, lib.table, request.filters, reference)
    if request.video is None:
        table = lib.centred
        query = _query(reference, spec.offset is not None)
        scores = window_scores(table.embeddings, table.starts, table.counts, query, words_bias)
        length = _length(reference, searcher.segment_seconds, query)
        bias = words_bias
    else:
        # The clip's rows in the bundle's space, the reference (its mean row) and words per segment.
        table = _retrieval_table(searcher, lib)
        clip = normalize_rows(encode_query(bundle, request.video, request.start, request.clip_end, None, 0.0))
        like = lib.centred.embeddings @ _query(reference, False)[0]
        if words_bias is not None:
            like = like + words_bias
        w = float(request.influence)
        query = (1.0 - w) * clip
        bias = (w * like).astype(np.float32)
        scores = window_scores(table.embeddings, table.starts, table.counts, query, bias)
        length = float(request.clip_seconds or searcher.segment_seconds)
    check()
    found = _suggestions(searcher, table, scores, keep, request, query, bias, length)
    return SearchResult(found, words.terms, bundle.name, bundle.kind, bundle.reads_pictures,
                        like=describe(reference, words))  # fmt: skip


def _words_bias(
    searcher: Searcher, request: SuggestRequest, lib: Library, reference: Reference, words: Words
) -> np.ndarray | None:
    """float32 [N] over the library's segments: σ · (the moves, the prompt's terms, its embedded text)."""
    parts = []
    moves = move_bias(words.moves, segment_values(searcher), reference)
    if moves is not None:
        parts.append(MOVE_WEIGHT * moves)
    if words.terms.has_terms(request.mention_weight):
        columns, names = searcher._term_columns(lib.table, request)
        terms = words.terms.segment_bias(columns, names, request.mention_weight, scale=TERM_WEIGHT)
        if terms is not None:
            parts.append(terms)
    text = words.terms.text if request.embed_prompt else ""
    if text:
        from viml.search.query import encode_query

        assert searcher.bundle is not None
        row = normalize_rows(encode_query(searcher.bundle, None, 0.0, None, text, 1.0))[0]
        similarity = _retrieval_table(searcher, lib).embeddings @ row
        parts.append(TEXT_WEIGHT * (similarity - similarity.mean()) / max(float(similarity.std()), 1e-9))
    if not parts:
        return None
    return (spread(lib, reference) * np.sum(parts, axis=0)).astype(np.float32)


def spread(lib: Library, reference: Reference) -> float:
    """σ: the standard deviation of the segments' cosine to the reference's mean row, over the library's
    segments of other content (the reference's own are near 1 and would widen it)."""
    similarity = lib.centred.embeddings @ _query(reference, False)[0]
    other = np.repeat(np.array([h != reference.content_hash for h in lib.table.hashes]), lib.table.counts)
    values = similarity[other] if other.any() else similarity
    return float(values.std()) if len(values) > 1 and values.std() > 0 else 1.0


def _retrieval_table(searcher: Searcher, lib: Library) -> TrackTable:
    """The bundle's retrieval table, row for row the library's (both are stored ordered by path)."""
    space_id = searcher.space.id
    table = searcher._view(f"table:{space_id}", lambda: searcher.catalog.load_tracks(space_id))
    if table.paths != lib.table.paths or not np.array_equal(table.counts, lib.table.counts):
        raise UserFacingError(
            "the catalog's tracks are not all in the bundle's space yet; search again after the scan"
        )
    return table


def _suggestions(
    searcher: Searcher,
    table: TrackTable,
    scores: WindowScores,
    keep: np.ndarray,
    request: SuggestRequest,
    query: np.ndarray,
    bias: np.ndarray | None,
    length: float,
) -> list[Suggestion]:
    """The best tracks as suggestions, ranked by their best window; with `fine_offsets` each start is
    moved to its best downbeat (search/offsets.py) without changing the order."""
    found = []
    for rank, index in enumerate(top_tracks(scores.best, keep, request.top), 1):
        suggestion = searcher._suggestion(table, scores, index, rank, length, query.shape[0], request.prompt)
        placed = searcher._place(table, index, query, bias) if request.fine_offsets else None
        searcher._describe_rhythm(suggestion, table, index, placed, length)
        suggestion.sound_score = suggestion.score
        found.append(suggestion)
    return found


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"
