"""The one place that knows how a track is scored: `Searcher(catalog, bundle).suggest(SuggestRequest)`.

A search: make sure every catalogued track is in the bundle's retrieval space (search/spaces.py), read
the prompt into text to embed and concept terms (search/prompt_terms.py), encode the query rows
(search/query.py), score every window of every track (search/ranking.py) plus the terms' tag bias,
filter (search/filters.py), and explain each result by the tags of its best window (search/explain.py).
`viml suggest`, `viml similar`, the desktop app, the demo and the benchmarks all come through here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from viml.catalog.store import Catalog, TrackTable
from viml.core.errors import UserFacingError
from viml.engine.music.descriptors import descriptor_columns
from viml.engine.music.rhythm.types import Rhythm
from viml.engine.segments import DEFAULT_SEGMENT_SECONDS
from viml.engine.vectors import normalize_rows
from viml.search.candidates import index_scores
from viml.search.defaults import MEANING_FLOOR, MEANING_WEIGHT, WORDS_WEIGHT
from viml.search.explain import matched_tags, term_matches, top_tags
from viml.search.filters import Filters
from viml.search.fusion import Signal, fuse
from viml.search.offsets import FINE_CANDIDATES, Placement, TrackSegments, place_many
from viml.search.prompt_terms import PromptTerms, parse_prompt
from viml.search.query import encode_query
from viml.search.ranking import POOLINGS, WindowScores, pooled, top_tracks, window_scores
from viml.search.spaces import RetrievalSpace, ensure_space, retrieval_space
from viml.search.words import WordSignals, track_meanings, word_signals

if TYPE_CHECKING:
    from viml.engine.runtime.bundle import RuntimeBundle

DEFAULT_CLIP_SECONDS = 30.0  # a clip given without an out point


@dataclass(frozen=True)
class SuggestRequest:
    """What to search for; every value is checked here, once, for every surface."""

    video: str | None = None
    start: float = 0.0  # clip in point, seconds
    end: float | None = None  # clip out point (None: DEFAULT_CLIP_SECONDS after the in point)
    prompt: str | None = None
    influence: float = 0.5  # 0: the picture alone, 1: the prompt alone (`prompt_share`, search/query.py)
    filters: Filters = field(default_factory=Filters)
    top: int = 10
    mention_weight: float = 0.0  # boost for concepts the prompt merely mentions (prompt_terms.py)
    # Ablations (bench/search.py): read no terms and embed the prompt as typed; or embed nothing and let
    # the prompt act only through its terms.
    prompt_terms: bool = True
    embed_prompt: bool = True
    # One knob per signal fused into a prompt's ranking (search/fusion.py); a clip without a prompt is
    # ranked by sound alone. Defaults chosen on bench/search_set_2.json, reported on the other set.
    sound_weight: float = 1.0  # the bundle's sound side: window scores plus prompt terms
    words_weight: float = WORDS_WEIGHT  # the library's words matched in full text (BM25)
    meaning_weight: float = MEANING_WEIGHT  # the prompt's meaning against each track's words
    meaning_floor: float = MEANING_FLOOR  # cosine under which a track's words say nothing about the prompt
    pooling: str = "best"  # a track's score from its windows: best | mean | top3 | best+mean (ranking.py)
    descriptors: bool = True  # prompt terms also read the measured sound (loud, building, bright, ...)
    # The best tracks' starts refined to downbeats (finer windows than the segment grid, offsets.py)
    fine_offsets: bool = True
    # A reference to start from, TRACK[@OFFSET] (a path, a catalogued title, any audio file); the prompt's
    # words then move it ("calmer, no drums"): search/like.py
    like: str | None = None

    def __post_init__(self) -> None:
        prompt = (self.prompt or "").strip() or None
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(self, "video", self.video or None)
        object.__setattr__(self, "like", (self.like or "").strip() or None)
        if self.video is None and prompt is None and self.like is None:
            raise UserFacingError("give a video clip, a prompt, or both (or a reference track to be like)")
        if self.like is not None:
            from viml.search.like import parse_like

            parse_like(self.like)  # a bad @offset is refused here, for every surface
        if not (isinstance(self.influence, int | float) and 0.0 <= self.influence <= 1.0):
            raise UserFacingError(f"influence must be between 0 and 1, got {self.influence}")
        if isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1:
            raise UserFacingError(f"the number of results must be a whole number >= 1, got {self.top}")
        if not math.isfinite(self.mention_weight):
            raise UserFacingError(f"mention weight must be a finite number, got {self.mention_weight}")
        for name in ("sound_weight", "words_weight", "meaning_weight"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise UserFacingError(f"{name.replace('_', ' ')} must be a number >= 0, got {value}")
        if not self.sound_weight + self.words_weight + self.meaning_weight > 0:
            raise UserFacingError("at least one of the sound, words and meaning weights must be above 0")
        if self.pooling not in POOLINGS:
            raise UserFacingError(f"unknown pooling {self.pooling!r}: choose one of {', '.join(POOLINGS)}")
        if not (isinstance(self.meaning_floor, int | float) and -1.0 <= self.meaning_floor <= 1.0):
            raise UserFacingError(
                f"meaning floor must be a cosine between -1 and 1, got {self.meaning_floor}"
            )
        if self.video is not None:
            if not (math.isfinite(self.start) and self.start >= 0):
                raise UserFacingError(f"the in point must be a time >= 0, got {self.start}")
            if not (math.isfinite(self.clip_end) and self.clip_end > self.start):
                raise UserFacingError(
                    f"the out point ({self.clip_end} s) must be after the in point ({self.start} s)"
                )

    @property
    def clip_end(self) -> float:
        return self.end if self.end is not None else self.start + DEFAULT_CLIP_SECONDS

    @property
    def clip_seconds(self) -> float | None:
        return self.clip_end - self.start if self.video is not None else None

    @property
    def prompt_share(self) -> float:
        """How much the prompt counts: `influence` with both a clip and a prompt, 1 for a prompt alone, 0
        for a clip alone. At 0 the prompt is not read at all (no embedding, terms or words), at 1 the
        picture is not (the ranking is the prompt-only search's; the clip still sets the parts' length);
        in between the terms' tag bias and the words' weights count this much (search/query.py)."""
        if self.prompt is None:
            return 0.0
        return 1.0 if self.video is None else float(self.influence)


@dataclass
class Suggestion:
    rank: int
    path: str
    score: float
    start: float  # best start offset in the track, seconds
    end: float  # start + clip length, capped at the track's end
    matched_tags: list[dict]
    curve: list[float]  # window score at each offset (offsets are segment_seconds apart)
    segment_seconds: float
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    bpm: float | None
    duration: float | None
    sound_score: float | None = None  # the best window's score (what placed `start`); `score` ranked it
    matched_words: list[dict] = field(default_factory=list)  # [{"field": "title", "word": "battle"}]
    start_bar: int | None = None  # 1-based bar of `start` when the track's downbeats are known
    on_downbeat: bool = False  # `start` is a measured downbeat
    section_start: bool = False  # ... and a section starts there
    measured_tempo: float | None = None  # BPM the rhythm analysis measured (bpm is the file's tag)
    loudness: float | None = None  # integrated loudness, LUFS, when measured
    downbeats: list[float] = field(default_factory=list)  # measured downbeats within [start, end), seconds
    fitted: str | None = None  # the fitted excerpt written for it (`viml suggest --fit`), when asked
    key: str | None = None  # the file's musical key tag ("Am", "8A"), when it has one (never estimated)
    # Why, for the results view (search/explain.py): the track's strongest tags whatever their probability
    # (matched_tags keeps those of the best part at or above the threshold), what each prompt term added
    # to the best part, and what `score` is: "sound" (the best part's window score) or "fused" (the
    # sound's z-score plus the words' evidence, search/fusion.py; `evidence` per word signal in [0, 1]).
    top_tags: list[dict] = field(default_factory=list)
    term_matches: list[dict] = field(default_factory=list)
    score_kind: str = "sound"
    evidence: dict[str, float] = field(default_factory=dict)
    sections: list[float] = field(default_factory=list)  # measured section starts over the whole track
    # [[start, score], ...] the finer windows' scores (downbeats, or every second) the best part was
    # chosen from, for the best FINE_CANDIDATES tracks; empty when not refined (`curve` still holds)
    fine_curve: list[list[float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SegmentHit:
    path: str
    start: float
    score: float


@dataclass
class SearchResult:
    suggestions: list[Suggestion]
    terms: PromptTerms
    bundle_name: str
    bundle_kind: str
    reads_pictures: bool
    like: str | None = None  # the reference and its moves, for a request with `like` (search/like.py)

    @property
    def header(self) -> str:
        """Which bundle ranked (trained / zero-shot / demo) and which prompt terms applied."""
        line = (
            f"bundle: {self.bundle_name} ({self.bundle_kind}{'' if self.reads_pictures else ', prompt only'})"
        )
        line += f"; {self.like}" if self.like else ""
        described = self.terms.describe()
        return line + (f"; prompt terms: {described}" if described else "")


# What a search reads of a library that only a write can change (the stacked segment matrix, the terms'
# columns, whether every track is in a space), kept per catalog and generation (SQLite triggers bump it on
# every write ranking can see): only the first query after a write pays for reading them.
_VIEWS_KEPT = 4
_views: OrderedDict[tuple, dict[str, object]] = OrderedDict()


class Searcher:
    """Searches over one open catalog with one opened bundle (`viml.engine.runtime.open_bundle`)."""

    def __init__(self, catalog: Catalog, bundle: RuntimeBundle | None = None) -> None:
        self.catalog = catalog
        self.bundle = bundle

    def _views(self) -> dict[str, object]:
        """This catalog's views at its current generation."""
        key = (str(self.catalog.path), *self.catalog.state())
        views = _views.get(key)
        if views is None:
            views = _views[key] = {}
            while len(_views) > _VIEWS_KEPT:
                _views.popitem(last=False)
        return views

    def _view(self, name: str, build: Callable[[], object]) -> Any:
        views = self._views()
        if name not in views:
            views[name] = build()
        return views[name]

    @property
    def space(self) -> RetrievalSpace:
        if self.bundle is None:
            raise UserFacingError("this search needs a model bundle (`viml bundle list`)")
        return retrieval_space(self.bundle)

    @property
    def segment_seconds(self) -> float:
        return self.bundle.analysis.segment_seconds if self.bundle is not None else DEFAULT_SEGMENT_SECONDS

    def prepare(self, progress: bool = False, checkpoint: Callable[[], None] | None = None) -> int:
        """Embed tracks not yet in the bundle's space (scanned under another bundle, or being scanned)
        from their stored music-model outputs: no audio is decoded again. Returns how many."""
        space = self.space
        assert self.bundle is not None  # self.space checked it
        spec = self.bundle.analysis
        stale = self._view(
            f"stale:{spec.analysis_id}", lambda: self.catalog.analysed_otherwise(spec.analysis_id)
        )
        if stale:
            # Scans decide this (they re-analyse for their bundle); a search only says so.
            raise UserFacingError(
                f"{stale} catalogued tracks were analysed under another analysis spec than bundle "
                f"{self.bundle.name!r} needs ({spec.describe()}): re-analyse them with "
                f"`viml scan FOLDER --bundle {self.bundle.name}`"
            )
        complete = f"complete:{space.id}"
        if self._views().get(complete):
            return 0
        embedded = ensure_space(self.catalog, space, progress=progress, checkpoint=checkpoint)
        self._views()[complete] = True  # at the generation its writes (if any) left behind
        return embedded

    def suggest(
        self,
        request: SuggestRequest,
        checkpoint: Callable[[], None] | None = None,
        progress: bool = False,
    ) -> SearchResult:
        """Ranked tracks for the request; `checkpoint` runs between the expensive steps (the desktop
        raises there when a newer query arrived)."""
        check = checkpoint or (lambda: None)
        self.prepare(progress=progress, checkpoint=checkpoint)
        check()
        if request.like is not None:  # a reference moved by words: its own ranking (search/like.py)
            from viml.search.like import suggest_like

            return suggest_like(self, request, check)
        # The influence's ends leave one side out entirely (SuggestRequest.prompt_share).
        share = request.prompt_share
        prompt = request.prompt if share > 0 else None
        video = request.video if share < 1 else None
        # Weights and negations go through the tags; the rest is embedded.
        terms = parse_prompt(prompt if request.prompt_terms else None)
        text = (terms.text if request.prompt_terms else prompt) if request.embed_prompt else None
        query = None
        if video is not None or text:
            assert self.bundle is not None  # self.space checked it
            query = encode_query(
                self.bundle, video, request.start, request.clip_end if video else None, text or None,
                request.influence,
            )  # fmt: skip
        check()
        suggestions = self.rank(
            query,
            clip_seconds=request.clip_seconds,
            prompt=prompt,
            terms=terms,
            filters=request.filters,
            top=request.top,
            mention_weight=request.mention_weight,
            words_text=text or None,
            request=request,
        )
        assert self.bundle is not None
        return SearchResult(
            suggestions, terms, self.bundle.name, self.bundle.kind, self.bundle.reads_pictures
        )

    def rank(
        self,
        query: np.ndarray | None,
        clip_seconds: float | None = None,
        prompt: str | None = None,
        terms: PromptTerms | None = None,
        filters: Filters | None = None,
        top: int = 10,
        space_id: str | None = None,
        mention_weight: float = 0.0,
        words_text: str | None = None,
        request: SuggestRequest | None = None,
    ) -> list[Suggestion]:
        """Rank catalogued tracks for query rows [K, D] in the bundle's space (or `space_id`).

        `terms` add the prompt's concept weights and negations through each segment's tag probabilities;
        `query` may be None when the prompt is nothing but terms ("no vocals"). `words_text` (a prompt's
        text) also ranks the tracks by the library's words, fused with the sound by `request`'s weights;
        the best part of each track still comes from the sound."""
        space_id = space_id if space_id is not None else self.space.id
        table = self._view(f"table:{space_id}", lambda: self.catalog.load_tracks(space_id))
        if not table.paths:
            raise UserFacingError(
                "the catalog has no tracks for this model yet; run `viml scan FOLDER` first"
            )
        bias = None
        if terms is not None and terms.has_terms(mention_weight):
            columns, names = self._term_columns(table, request)
            bias = terms.segment_bias(columns, names, mention_weight)
            share = request.prompt_share if request is not None else 1.0
            if bias is not None and share < 1.0:
                bias = bias * np.float32(share)  # the prompt counts this much against the picture
        if query is None:
            if bias is None:
                raise UserFacingError("the prompt has nothing to search for")
            query = np.zeros((1, table.embeddings.shape[1]), np.float32)
        query = normalize_rows(np.atleast_2d(query))
        if query.shape[1] != table.embeddings.shape[1]:
            raise UserFacingError(
                f"the query has {query.shape[1]} dimensions but the catalog's embeddings have "
                f"{table.embeddings.shape[1]}: was the catalog embedded with another bundle?"
            )
        keep = (filters or Filters()).keep(table, self.catalog, lambda: self._tag_matrix(table))
        # Big libraries: exact scores on the segment index's candidate tracks only (search/candidates.py).
        fused_words = (
            words_text if request is not None and request.words_weight + request.meaning_weight else None
        )
        narrowed = index_scores(self.catalog, self._view, table, space_id, query, bias, keep,
                                max(FINE_CANDIDATES, top), fused_words)  # fmt: skip
        if narrowed is None:
            scores = window_scores(table.embeddings, table.starts, table.counts, query, bias)
        else:
            scores, keep = narrowed  # ranked within the candidates
        sound = pooled(scores, table.starts, request.pooling) if request is not None else scores.best
        placements: dict[int, Placement] = {}
        if request is None or request.fine_offsets:
            sound = sound.copy()
            refined = top_tracks(sound, keep, max(FINE_CANDIDATES, top))
            # All their windows scored together (offsets.place_many: one by one cost 2-3x as much).
            segments = [self._segments(table, index, bias) for index in refined]
            for index, placed in zip(refined, place_many(segments, query, self.segment_seconds), strict=True):
                placements[index] = placed
                if request is None or request.pooling == "best":
                    sound[index] = max(sound[index], placed.score)  # a finer window may fit better
        ranking, words = self._fused(table, sound, keep, words_text, request)
        chosen = top_tracks(ranking, keep, top)
        length = clip_seconds if clip_seconds is not None else self.segment_seconds * query.shape[0]
        found = []
        # _fused hands the sound's own array back when nothing was fused.
        evidence = (
            words.evidence(request.meaning_floor) if ranking is not sound and words and request else None
        )
        for rank, index in enumerate(chosen, 1):
            suggestion = self._suggestion(table, scores, index, rank, length, query.shape[0], prompt)
            self._describe_rhythm(suggestion, table, index, placements.get(index), length)
            suggestion.sound_score = round(float(sound[index]), 6)
            suggestion.score = round(float(ranking[index]), 6)
            suggestion.matched_words = words.matched.get(table.paths[index], []) if words else []
            self._explain(
                suggestion, table, index, placements.get(index), terms, mention_weight, request, evidence
            )
            found.append(suggestion)
        fields = self.catalog.track_fields([s.path for s in found])
        for suggestion in found:
            suggestion.key = next(iter(fields.get(suggestion.path, {}).get("key", ())), None)
        return found

    def _place(self, table: TrackTable, index: int, query: np.ndarray, bias: np.ndarray | None) -> Placement:
        """The track's best musical start (search/offsets.py) from its stored segments and rhythm."""
        return place_many([self._segments(table, index, bias)], query, self.segment_seconds)[0]

    def _segments(self, table: TrackTable, index: int, bias: np.ndarray | None) -> TrackSegments:
        """What the refinement reads of one track: its segments, their times, rhythm and prompt bias."""
        first, count = int(table.starts[index]), int(table.counts[index])
        rows = slice(first, first + count)
        duration = (
            table.tracks[index].duration
            or float(table.segment_starts[first + count - 1]) + self.segment_seconds
        )
        starts = table.segment_starts[rows]
        ends = np.minimum(starts + self.segment_seconds, duration)
        # The track's rows of the bias only (a float64 copy of all of it, per track, cost 0.5 ms at 1 M segments).
        return TrackSegments(table.embeddings[rows], starts, ends, self._rhythm(table.hashes[index]), duration,
                             None if bias is None else np.asarray(bias[rows], np.float64))  # fmt: skip

    def _rhythm(self, content_hash: str) -> Rhythm | None:
        rhythms = self._view("rhythms", dict)
        if content_hash not in rhythms:
            rhythms[content_hash] = self.catalog.rhythm(content_hash)
        return rhythms[content_hash]

    def _explain(
        self,
        suggestion: Suggestion,
        table: TrackTable,
        index: int,
        placed: Placement | None,
        terms: PromptTerms | None,
        mention_weight: float,
        request: SuggestRequest | None,
        evidence: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        """The suggestion's "why" fields (see Suggestion) for the track at `index`."""
        if placed is not None and len(placed.starts):
            suggestion.fine_curve = [
                [round(float(t), 3), round(float(v), 5)]
                for t, v in zip(placed.starts, placed.scores, strict=True)
            ]
        if evidence is not None:
            suggestion.score_kind = "fused"
            suggestion.evidence = {"words": round(float(evidence[0][index]), 4),
                                   "meaning": round(float(evidence[1][index]), 4)}  # fmt: skip
        if terms is None or not terms.has_terms(mention_weight):
            return
        columns, names = self._term_columns(table, request)
        first, count = int(table.starts[index]), int(table.counts[index])
        starts = table.segment_starts[first : first + count]
        inside = np.flatnonzero(
            (starts < suggestion.end) & (starts + self.segment_seconds > suggestion.start)
        )
        matches = term_matches(terms, columns[first + inside] if len(inside) else columns[first:first + 1],
                               names, mention_weight)  # fmt: skip
        share = request.prompt_share if request is not None else 1.0  # as the bias was scaled in rank
        for match in matches:
            match["contribution"] = round(match["contribution"] * share, 5)
        suggestion.term_matches = matches

    def _describe_rhythm(
        self, suggestion: Suggestion, table: TrackTable, index: int, placed: Placement | None, length: float
    ) -> None:
        rhythm = self._rhythm(table.hashes[index])
        if rhythm is not None:
            suggestion.sections = [round(float(t), 3) for t in rhythm.sections]
            tempo = rhythm.beats.tempo
            suggestion.measured_tempo = round(float(tempo), 2) if np.isfinite(tempo) else None
            suggestion.loudness = round(float(rhythm.loudness), 2) if np.isfinite(rhythm.loudness) else None
        if placed is None:
            return
        duration = suggestion.duration
        suggestion.start = round(placed.start, 3)
        suggestion.end = round(min(placed.start + length, duration) if duration else placed.start + length, 3)
        suggestion.start_bar = placed.bar
        suggestion.on_downbeat = placed.on_downbeat
        suggestion.section_start = placed.section_start
        if rhythm is not None:
            downbeats = rhythm.beats.downbeats
            inside = downbeats[(downbeats >= placed.start - 1e-6) & (downbeats < suggestion.end)]
            suggestion.downbeats = [round(float(t), 3) for t in inside]

    def _term_columns(
        self, table: TrackTable, request: SuggestRequest | None
    ) -> tuple[np.ndarray, list[str]]:
        """What prompt terms read, per segment: the taggers' tag probabilities ('MTT:piano') and, unless
        the request turns them off, the measured sound concepts in [0, 1] across the library
        ('SOUND:building', engine/music/descriptors.py)."""
        tags, names = self._tag_matrix(table)
        if request is not None and not request.descriptors:
            return tags, names

        def build() -> tuple[np.ndarray, list[str]]:
            measured = self.catalog.segment_descriptors(table)
            if not measured:
                return tags, names
            concepts = descriptor_columns(measured, table.starts, table.counts)
            matrix = np.column_stack([tags, *concepts.values()]).astype(np.float32)
            return matrix, [*names, *(f"SOUND:{name}" for name in concepts)]

        return self._view(f"terms:{id(table)}", build)

    def _tag_matrix(self, table: TrackTable) -> tuple[np.ndarray, list[str]]:
        """The taggers' probabilities [N, T] aligned with `table`, and their column names."""
        return self._view(
            f"tags:{id(table)}", lambda: (self.catalog.segment_tag_matrix(table), self.catalog.tag_names())
        )

    def _fused(
        self,
        table: TrackTable,
        sound: np.ndarray,
        keep: np.ndarray | None,
        words_text: str | None,
        request: SuggestRequest | None,
    ) -> tuple[np.ndarray, WordSignals | None]:
        """The ranking scores: the sound's own, or fused with the words' when the prompt has words to
        match and the library has any (search/fusion.py)."""
        if request is None or not words_text or self.bundle is None:
            return sound, None
        if request.words_weight == 0 and request.meaning_weight == 0:
            return sound, None
        bundle = self.bundle
        meanings = self._view(
            f"meanings:{id(table)}:{bundle.folder}:{bundle.bundle_hash}",
            lambda: track_meanings(self.catalog, bundle, table.paths),
        )  # only the first query after a write reads and embeds the words
        words = word_signals(self.catalog, bundle, table.paths, words_text, meanings)
        if not words.has_words.any():
            return sound, words  # nothing to fuse: exactly the sound's order
        full_text, meaning = words.evidence(request.meaning_floor)
        share = request.prompt_share  # the words speak for the prompt: they count as much as it does
        signals = [
            Signal("words", full_text, request.words_weight * share),
            Signal("meaning", meaning, request.meaning_weight * share),
        ]
        mask = keep if keep is not None else np.ones(len(sound), bool)
        return fuse(sound, signals, request.sound_weight, mask), words

    def similar(
        self,
        reference: str,
        start: float | None = None,
        end: float | None = None,
        filters: Filters | None = None,
        top: int = 10,
    ) -> tuple[list[Suggestion], list[SegmentHit]]:
        """Tracks and single segments most like a catalogued track (or a part of it), in the music model's
        space centred on the library's mean: the like-only case of search/like.py."""
        from viml.search.like import similar

        return similar(self, reference, start, end, filters, top)

    def _suggestion(
        self,
        table: TrackTable,
        scores: WindowScores,
        index: int,
        rank: int,
        length: float,
        k: int,
        prompt: str | None,
    ) -> Suggestion:
        start_row = int(table.starts[index])
        offset = int(scores.best_offset[index])
        curve = scores.scores[start_row : start_row + int(scores.offsets[index])]
        start = float(table.segment_starts[start_row + offset])
        track = table.tracks[index]
        duration = track.duration
        last = min(offset + k, int(table.counts[index])) - 1
        threshold = self.bundle.analysis.tag_threshold if self.bundle is not None else None
        matrix, names = self._tag_matrix(table)
        tags = matched_tags(
            matrix[start_row + offset : start_row + last + 1],
            names,
            prompt,
            **({"threshold": threshold} if threshold else {}),
        )
        return Suggestion(
            rank=rank,
            path=table.paths[index],
            score=round(float(scores.best[index]), 6),
            start=start,
            end=min(start + length, duration) if duration else start + length,
            matched_tags=tags,
            curve=[round(float(v), 5) for v in curve],
            segment_seconds=self.segment_seconds,
            title=track.title,
            artist=track.artist,
            album=track.album,
            genre=track.genre,
            bpm=track.bpm,
            duration=duration,
            top_tags=top_tags(matrix[start_row : start_row + int(table.counts[index])], names),
        )
