"""Why a suggestion is where it is, in words: the results row's tooltip.

From what the hybrid search says about each result (search/searcher.py `Suggestion`, search/explain.py):
which words of the library matched the prompt (and in which field), which prompt terms the best part has
(tags and measured sound, and what each added), the best part's tags, and what the score means — the
sound's match alone, or that match fused with the words (search/fusion.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from viml.desktop.style import format_time
from viml.engine.tags import TAG_THRESHOLD

if TYPE_CHECKING:
    from viml.desktop.results import Suggestion
    from viml.search import Suggestion as SearchSuggestion


@dataclass(frozen=True)
class Why:
    score_kind: str = "sound"  # "sound" | "fused"
    sound_score: float | None = None
    evidence: tuple[tuple[str, float], ...] = ()  # (signal, evidence in [0, 1]) when fused
    matched_tags: tuple[dict, ...] = ()  # the best part's tags at or above the threshold
    matched_words: tuple[dict, ...] = ()  # {"field", "word"}
    top_tags: tuple[dict, ...] = ()  # the track's strongest tags, whatever their probability
    term_matches: tuple[dict, ...] = ()  # search/explain.py term_matches
    start_bar: int | None = None
    on_downbeat: bool = False
    section_start: bool = False

    @classmethod
    def of(cls, item: SearchSuggestion) -> Why:
        return cls(
            score_kind=item.score_kind,
            sound_score=item.sound_score,
            evidence=tuple(item.evidence.items()),
            matched_tags=tuple(item.matched_tags),
            matched_words=tuple(item.matched_words),
            top_tags=tuple(item.top_tags),
            term_matches=tuple(item.term_matches),
            start_bar=item.start_bar,
            on_downbeat=item.on_downbeat,
            section_start=item.section_start,
        )


def row_tags(why: Why, count: int = 4) -> tuple[tuple[str, ...], bool]:
    """What the Tags cell lists and whether they are weak: the best part's tags when any reaches the
    threshold, else the track's strongest (real libraries often have none above it: the cell was empty)."""
    if why.matched_tags:
        return tuple(tag["tag"] for tag in why.matched_tags[:count]), False
    return tuple(tag["tag"] for tag in why.top_tags[:count]), bool(why.top_tags)


def _words(matches: tuple[dict, ...]) -> str:
    return ", ".join(f"{match['field']} “{match['word']}”" for match in matches)


def _percent(probability: float) -> str:
    return f"{100 * probability:.0f}%"


def why_lines(item: Suggestion) -> list[str]:
    """The explanation, one line each (empty when the row came without one)."""
    why = item.why
    if why is None:
        return []
    lines = []
    if why.score_kind == "fused":
        lines.append(
            f"Score {item.score:.2f}: the sound's match in standard deviations of this library's scores for "
            "this search, plus what the library's words say about the prompt (1 = the best word match)"
        )
        if why.sound_score is not None:
            lines.append(f"  sound: {why.sound_score:.3f} (the best part against the query)")
        evidence = dict(why.evidence)
        if why.matched_words:
            lines.append(f"  words: {evidence.get('words', 0):.2f}, matched {_words(why.matched_words)}")
        elif "words" in evidence:
            lines.append("  words: no word of this track's tags, name or folder matched")
        if evidence.get("meaning"):
            lines.append(
                f"  meaning: {evidence['meaning']:.2f} (the prompt's meaning against the track's words)"
            )
    else:
        lines.append(
            f"Score {item.score:.3f}: how well the best part's music matches the query (cosine similarity in "
            "the bundle's space, prompt terms included); compare it within one search"
        )
        if why.matched_words:
            lines.append(f"  words matched: {_words(why.matched_words)}")
    if why.term_matches:
        parts = []
        for match in why.term_matches:
            sign = "+" if match["contribution"] >= 0 else "−"
            kind = "measured" if match["measured"] else "tag"
            parts.append(
                f"{match['source']} ({kind}, ×{match['weight']:g}): {_percent(match['probability'])} "
                f"→ {sign}{abs(match['contribution']):.3f}"
            )
        lines.append("Prompt terms in the best part: " + "; ".join(parts))
    if why.matched_tags:
        shown = ", ".join(
            f"{tag['tag']} {_percent(tag['probability'])}"
            + (" (in the prompt)" if tag.get("in_prompt") else "")
            for tag in why.matched_tags
        )
        lines.append(f"Tags of the best part: {shown}")
    elif why.top_tags:
        shown = ", ".join(f"{tag['tag']} {_percent(tag['probability'])}" for tag in why.top_tags)
        lines.append(
            f"No tag reaches {_percent(TAG_THRESHOLD)} in the best part; the track's strongest: {shown}"
        )
    part = f"Best part {format_time(item.offset)} – {format_time(item.offset + item.length)}"
    if why.start_bar is not None:
        part += f", bar {why.start_bar}" + (" (a section starts there)" if why.section_start else "")
    if item.clip_length is not None:
        part += f"; the clip is {item.clip_length:.1f} s"
        if item.clip_length > item.length + 0.05:
            part += f", {item.clip_length - item.length:.1f} s longer than the music left after the part"
    lines.append(part)
    return lines
