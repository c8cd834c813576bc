"""Fit a music track to a clip's length, musically (docs/sections/fit.md).

`plan_fit` turns a track's rhythm, a wanted start and a target duration into a `FitPlan`: source spans
that start on a downbeat, join only at downbeats (so every cut is beat-matched) and last exactly the
target. It scores every candidate edit with one cost (in "bar-equivalents", constants below) and keeps
the cheapest:

- "ending": straight from the start to the track's own ending (the remaining music is close to the
  target; the small difference is trimmed from, or left as silence after, the final sound);
- "bars": whole bars removed (one block) or repeated (a loop) at downbeat crossfades so that the track's
  own ending lands on the out point;
- "fade": the music reaches a section or phrase boundary (4 or 8 bars from a section start), that
  downbeat sounds, and it fades out over the rest (a beat to two bars); loops first if the track is short;
- "cut": no beats found: the exact length from the start with a fade (said in the plan's note).

`render_fit` renders a plan sample-exactly (equal-power crossfades that end just before each downbeat,
so the new bar's transient is intact), `write_audio` writes WAV/FLAC atomically with PyAV, and
`fit_timeline` / `write_fit_timeline` give the same edit as an OpenTimelineIO timeline (.otio, .edl).
"""

from __future__ import annotations

import math
import os
import tempfile
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from viml.core.errors import MediaError, UserFacingError
from viml.engine.media import limits
from viml.engine.media.container import decode_tolerantly, first_decodable, open_media

from .rhythm.types import Rhythm

STRATEGIES = ("ending", "bars", "fade", "cut")
PREFERENCES = ("auto", "ending", "bars", "fade")

# Rendering. A crossfade ends GUARD before the downbeat it joins on, so the incoming bar's attack plays
# at full gain even when the tracked beat is a few ms late; 40 ms is short enough to keep the groove and
# long enough that no click is heard.
CROSSFADE = 0.040
GUARD = 0.008
FADE_IN = 0.002  # the first sample is rarely a zero crossing
END_FADE = 0.005  # the track's own last samples, before any silence
# Costs, in bar-equivalents: one well-placed cut costs CUT; ending slack costs SLACK_PER_BAR per bar of
# music trimmed from (or silence left after) the track's ending; a fade ending costs FADE on top of
# its boundary's cost. The order (ending < fade < bars when each fits well) is what editors expect.
CUT = 1.5
REPEAT_AGAIN = 0.5  # each further pass of the same loop: it sounds like the first
SLACK_PER_BAR = 2.0
MAX_SLACK_BARS = 1.0
FADE = 1.0
TAIL_PER_BAR = 0.5  # fade tail away from one bar
TAIL_IDEAL_BARS = 1.0
TAIL_MAX_BARS = 2.0
LOUDNESS_STEP_DB = 6.0  # a jump in short-term loudness this big at a cut costs 1
FALLBACK = 10.0
FALLBACK_FADE = 1.0  # seconds, the "cut" strategy's fade (at most a quarter of the output)
ENDING_FADE_MAX = 1.0  # seconds, fade when the track's ending must be trimmed
SECTION_SNAP_BARS = 1.5  # a section start this close to the wanted start wins over the nearest downbeat
MAX_FIT_SECONDS = 3600.0  # the whole source is held in memory (stereo float32: 1.4 GB an hour at 96 kHz)
# Boundary quality of a downbeat: 0 at a section start, then by its bar offset from the section start.
_ALIGNMENT = ((8, 0.25), (4, 0.5), (2, 1.25))
_MISALIGNED = 2.0


@dataclass(frozen=True)
class Span:
    """One piece of the source, played in order. `crossfade`: seconds of equal-power crossfade that
    end where this span starts (0 for the first); the fade takes the crossfade's length of source
    before `source_start` as pre-roll."""

    source_start: float
    source_end: float
    crossfade: float = 0.0
    start_bar: int | None = None  # 1-based bar whose downbeat this span starts on
    end_bar: int | None = None  # 1-based bar whose downbeat it ends on (None: the track's end or a tail)

    @property
    def length(self) -> float:
        return self.source_end - self.source_start


@dataclass(frozen=True)
class FitPlan:
    spans: tuple[Span, ...]
    duration: float  # seconds of output, exact
    fade_out: float  # seconds of fade ending where the music ends (0: the track's own ending)
    strategy: str  # one of STRATEGIES
    start: float  # seconds into the source where the output starts (a downbeat, unless "cut")
    start_bar: int | None  # 1-based bar number of the start (None without beats)
    source_duration: float
    tempo: float = float("nan")
    beats_per_bar: int = 0
    cost: float = 0.0
    note: str = ""  # why the plan differs from what was asked (fallbacks, moved start)
    ending: str = ""  # how it ends, in words (for describe)

    @property
    def music_end(self) -> float:
        """Output time where the music stops (silence after it, up to `duration`)."""
        return min(self.duration, sum(span.length for span in self.spans))

    @property
    def silence(self) -> float:
        return max(0.0, self.duration - self.music_end)

    @property
    def parts(self) -> tuple[tuple[float, float], ...]:
        """The source's parts the edit plays, in order: (source_start, source_end) of each span."""
        return tuple((float(span.source_start), float(span.source_end)) for span in self.spans)

    def source_time(self, edit_seconds: float) -> float:
        return source_time(self.parts, edit_seconds)

    def joints(self) -> list[float]:
        """Output times of the cuts between spans (where each crossfade ends)."""
        return np.cumsum([span.length for span in self.spans[:-1]]).tolist()

    def describe(self) -> str:
        parts = [
            f"starts at bar {self.start_bar} ({clock(self.start)})"
            if self.start_bar
            else f"starts at {clock(self.start)}"
        ]
        parts += _edit_words(self.spans)
        parts.append(self.ending)
        text = ", ".join(part for part in parts if part)
        return f"{text}; {clock(self.duration)} in all" + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["spans"] = [asdict(span) for span in self.spans]
        data["description"] = self.describe()
        data["silence"] = self.silence
        return data


def source_time(spans: Sequence[tuple[float, float]], edit_seconds: float) -> float:
    """Where in the source an edit of `spans` ((source_start, source_end), played in order, each from the
    cut where the one before ends) is `edit_seconds` in; before the edit, its start; past the music, the
    last span's end (the edit's silence)."""
    if not spans:
        return 0.0
    edit_start = 0.0
    for first, last in spans:
        if edit_seconds < edit_start + (last - first):
            return first + max(0.0, edit_seconds - edit_start)
        edit_start += last - first
    return spans[-1][1]


def clock(seconds: float) -> str:
    """1:04.2"""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    if round(rest, 1) >= 60.0:
        minutes, rest = minutes + 1, 0.0
    return f"{int(minutes)}:{rest:04.1f}"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"


def _edit_words(spans: tuple[Span, ...]) -> list[str]:
    """'drops bars 17-24', 'repeats bars 5-8 (3 times)' from the bar numbers at each joint."""
    words: list[str] = []
    previous: tuple[str, int, int] | None = None
    count = 0
    for before, after in zip(spans[:-1], spans[1:], strict=True):
        out, into = before.end_bar, after.start_bar
        if out is None or into is None:
            continue
        edit = ("drops", out, into - 1) if into > out else ("repeats", into, out - 1)
        if edit == previous:
            count += 1
            continue
        if previous is not None:
            words.append(_edit_phrase(previous, count))
        previous, count = edit, 1
    if previous is not None:
        words.append(_edit_phrase(previous, count))
    return words


def _edit_phrase(edit: tuple[str, int, int], count: int) -> str:
    verb, first, last = edit
    bars = f"bar {first}" if first == last else f"bars {first}-{last}"
    return f"{verb} {bars}" + (f" ({count} times)" if count > 1 else "")


# ------------------------------------------------------------------------------------------- planning


@dataclass
class _Grid:
    """The downbeats a plan may cut on, the track's end, and what the costs need."""

    downbeats: np.ndarray  # [n] seconds
    end: float
    bar: float  # typical bar length (seconds)
    beat: float
    anchors: list[int]  # downbeat indices of section starts, ascending, 0 first
    loudness: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loudness_hop: float = 1.0

    def boundary_cost(self, index: int) -> float:
        anchor = self.anchors[max(0, bisect_right(self.anchors, index) - 1)]
        if index == anchor:
            return 0.0
        offset = index - anchor
        return next((cost for size, cost in _ALIGNMENT if offset % size == 0), _MISALIGNED)

    def loud(self, index: int) -> float:
        """Short-term loudness over the bar starting at downbeat `index` (LUFS, silence at -70)."""
        if not len(self.loudness):
            return 0.0
        start = self.downbeats[index] if index < len(self.downbeats) else self.end
        times = np.arange(len(self.loudness)) * self.loudness_hop
        value = np.interp(start + min(self.bar, 3.0) / 2, times, self.loudness)
        return float(max(value, -70.0)) if math.isfinite(value) else -70.0

    def jump_cost(self, out: int, into: int) -> float:
        """Play to downbeat `out`, continue from downbeat `into`."""
        step = abs(self.loud(out) - self.loud(into)) / LOUDNESS_STEP_DB
        return CUT + 0.5 * (self.boundary_cost(out) + self.boundary_cost(into)) + step

    def time(self, index: int | None) -> float:
        return self.end if index is None else float(self.downbeats[index])


@dataclass
class _Candidate:
    strategy: str
    runs: list[tuple[int, int | None]]  # contiguous source bars: (first downbeat, stop downbeat | None=end)
    cost: float
    tail: float = 0.0  # "fade": seconds played past the last run's stop downbeat, fading out
    note: str = ""


def plan_fit(rhythm: Rhythm, start: float, duration: float, *, prefer: str = "auto") -> FitPlan:
    """The cheapest musical edit of `rhythm`'s track that starts near `start` and lasts `duration` s.

    `prefer`: "auto" (cheapest overall), or "ending", "bars", "fade" (the cheapest of that strategy;
    when it cannot fit, the cheapest overall, with a note saying why). Raises UserFacingError for a start
    outside the track or a duration that is not positive.
    """
    if prefer not in PREFERENCES:
        raise ValueError(f"prefer must be one of {PREFERENCES}, got {prefer!r}")
    end = _track_end(rhythm)
    if not (math.isfinite(duration) and duration > 0):
        raise UserFacingError(f"the duration must be more than 0 s, got {duration:g}")
    if not (math.isfinite(start) and 0 <= start < end):
        raise UserFacingError(f"start {clock(start)} is outside the track (0:00.0 to {clock(end)})")
    grid = _grid(rhythm, end)
    if grid is None:
        return _fallback_plan(rhythm, start, duration, end, "no beats found: a fade at the exact length")
    s = _start_index(grid, start)
    candidates = _candidates(grid, s, duration)
    chosen = min(candidates, key=lambda c: c.cost)
    note = ""
    if prefer != "auto":
        wanted = [c for c in candidates if c.strategy == prefer]
        if wanted:
            chosen = min(wanted, key=lambda c: c.cost)
        else:
            note = f"no {prefer!r} edit fits, so {chosen.strategy!r}"
    moved = abs(grid.downbeats[s] - start)
    if moved > grid.bar:
        note = "; ".join(filter(None, [f"start moved {moved:.1f} s to a downbeat", note]))
    return _plan(grid, rhythm, chosen, duration, note)


def _track_end(rhythm: Rhythm) -> float:
    if rhythm.duration > 0:
        return float(rhythm.duration)
    times = np.asarray(rhythm.beats.times, np.float64)
    if len(times) >= 2:  # no analysed length: one beat after the last
        return float(times[-1] + np.median(np.diff(times)))
    raise UserFacingError("the track's length is unknown (its rhythm has no duration and no beats)")


def _grid(rhythm: Rhythm, end: float) -> _Grid | None:
    beats = rhythm.beats
    times = np.asarray(beats.times, np.float64)
    downbeats = np.asarray(beats.downbeats, np.float64)
    downbeats = downbeats[downbeats < end]
    if len(downbeats) < 2:
        return None
    bar = float(np.median(np.diff(downbeats)))
    beat = float(np.median(np.diff(times))) if len(times) >= 2 else bar / max(1, beats.beats_per_bar)
    anchors = {0}
    for section in np.asarray(rhythm.sections, np.float64):
        index = int(np.argmin(np.abs(downbeats - section)))
        if abs(downbeats[index] - section) <= bar / 2:
            anchors.add(index)
    return _Grid(
        downbeats,
        end,
        bar,
        beat,
        sorted(anchors),
        np.asarray(rhythm.loudness_curve, np.float64),
        rhythm.loudness_hop,
    )


def _start_index(grid: _Grid, start: float) -> int:
    """The downbeat nearest `start`, or a section start within SECTION_SNAP_BARS; never the last downbeat
    (a start needs one whole bar after it, or no cut could follow)."""
    usable = grid.downbeats[:-1]
    nearest = int(np.argmin(np.abs(usable - start)))
    sections = [a for a in grid.anchors if a < len(usable)]
    close = [a for a in sections if abs(usable[a] - start) <= SECTION_SNAP_BARS * grid.bar]
    return min(close, key=lambda a: abs(usable[a] - start)) if close else nearest


def _length(grid: _Grid, runs: list[tuple[int, int | None]]) -> float:
    return sum(grid.time(stop) - grid.time(first) for first, stop in runs)


def _slack_cost(grid: _Grid, slack: float) -> float | None:
    """Cost of ending `slack` s off the target (None beyond MAX_SLACK_BARS)."""
    if abs(slack) > MAX_SLACK_BARS * grid.bar:
        return None
    return SLACK_PER_BAR * abs(slack) / grid.bar


def _candidates(grid: _Grid, s: int, duration: float) -> list[_Candidate]:
    found = _ending_candidates(grid, s, duration) + _fade_candidates(grid, s, duration)
    start = grid.time(s)
    length = min(duration, grid.end - start)
    found.append(_Candidate("cut", [(s, None)], FALLBACK, tail=length))  # always possible
    return found


def _ending_candidates(grid: _Grid, s: int, duration: float) -> list[_Candidate]:
    """Edits that finish on the track's ending: none, one block of bars removed, or a loop repeated."""
    n = len(grid.downbeats)
    remaining = grid.end - grid.time(s)
    found = []
    slack = _slack_cost(grid, remaining - duration)
    if slack is not None:
        found.append(_Candidate("ending", [(s, None)], slack))
    db = grid.downbeats
    if remaining > duration:  # remove bars [i, j): play s..i, then j..end
        need = remaining - duration
        for i in range(s + 1, n - 1):
            landing = int(np.searchsorted(db, db[i] + need))
            for j in {landing - 1, landing}:
                if i < j <= n - 1:
                    cost = _slack_cost(grid, need - (db[j] - db[i]))
                    if cost is not None:
                        found.append(_Candidate("bars", [(s, i), (j, None)], cost + grid.jump_cost(i, j)))
    else:
        found += _loop_candidates(grid, s, duration - remaining, ending=True)
    return found


def _loop_lengths(grid: _Grid, s: int, j: int) -> set[int]:
    lengths = {1, 2, 3, 4, 6, 8, 12, 16, 32, j - s, j} | {j - a for a in grid.anchors if a < j}
    return {length for length in lengths if 1 <= length <= j}


def _loop_candidates(grid: _Grid, s: int, add: float, ending: bool) -> list[_Candidate]:
    """Play to downbeat j, go back L bars m times (and r bars once, to fit), then on from j.

    ending=True: runs that finish on the track's ending, `add` seconds longer than straight playing.
    ending=False: runs long enough to pass `add` (a fade ending is placed on them afterwards)."""
    db = grid.downbeats
    n = len(db)
    found = []
    for j in range(s + 1, n):
        for length in _loop_lengths(grid, s, j):
            i = j - length
            loop = db[j] - db[i]
            base = grid.jump_cost(j, i)
            if not ending:
                times = max(1, math.ceil(add / loop))
                runs = [(s, j), *[(i, j)] * times, (j, None)]
                found.append(_Candidate("fade", runs, base + REPEAT_AGAIN * (times - 1)))
                continue
            times = int(add // loop)
            rest = add - times * loop
            options = [(times + 1, 0)]
            back = int(np.searchsorted(db, db[j] - rest))  # jump back by r bars: r = j - back
            options += [(times, j - k) for k in (back - 1, back) if 0 <= k <= j]
            for repeats, r in options:
                if repeats == 0 and r == 0:
                    continue
                added = repeats * loop + (db[j] - db[j - r] if r else 0.0)
                slack = _slack_cost(grid, add - added)
                if slack is None:
                    continue
                cost = slack + (base + REPEAT_AGAIN * (repeats - 1) if repeats else 0.0)
                runs = [(s, j), *[(i, j)] * repeats]
                if r:
                    cost += grid.jump_cost(j, j - r)
                    runs.append((j - r, j))
                found.append(_Candidate("bars", [*runs, (j, None)], cost))
    return found


def _fade_candidates(grid: _Grid, s: int, duration: float) -> list[_Candidate]:
    """Reach a downbeat at duration - tail (tail a beat to TAIL_MAX_BARS), then fade over the tail.

    On the straight path, on paths that drop whole phrases (cut out and in on 4-bar boundaries) and,
    for short tracks, on loops."""
    low, high = max(grid.beat, 0.25), TAIL_MAX_BARS * grid.bar
    remaining = grid.end - grid.time(s)
    paths = [_Candidate("fade", [(s, None)], 0.0)]
    if remaining < duration + grid.bar * TAIL_IDEAL_BARS:  # too short: loop first
        loops = _loop_candidates(grid, s, duration - remaining + grid.bar * TAIL_IDEAL_BARS, ending=False)
        paths += sorted(loops, key=lambda c: c.cost)[:20]
    found = [c for path in paths for c in _fade_endings(grid, path, duration, low, high)]
    if remaining > duration + low:
        found += _phrase_drop_fades(grid, s, duration, low, high)
    return found


def _fade_endings(
    grid: _Grid, path: _Candidate, duration: float, low: float, high: float
) -> list[_Candidate]:
    """Every downbeat of `path` where the rest of `duration` is a usable fade tail."""
    found = []
    position = 0.0
    runs: list[tuple[int, int | None]] = []
    for first, stop in path.runs:
        last = len(grid.downbeats) - 1 if stop is None else stop
        for p in range(first, last + 1):
            tail = duration - (position + grid.time(p) - grid.time(first))
            fits = low <= tail <= high and grid.time(p) + tail <= grid.end
            if fits and (p > first or not runs):
                cost = path.cost + _fade_cost(grid, p, tail)
                found.append(_Candidate("fade", [*runs, (first, p)], cost, tail=tail))
        runs.append((first, stop))
        position += grid.time(stop) - grid.time(first)
        if position > duration:
            break
    return found


def _phrase_drop_fades(grid: _Grid, s: int, duration: float, low: float, high: float) -> list[_Candidate]:
    """Play s..i, drop to j (both 4-bar aligned), fade at a 4-bar aligned p after j."""
    db = grid.downbeats
    n = len(db)
    aligned = [k for k in range(n) if grid.boundary_cost(k) <= 0.5]
    found = []
    for i in (k for k in aligned if k > s):
        played = db[i] - db[s]
        if played + low > duration:
            break
        for j in (k for k in aligned if k > i):
            # boundary p after j: tail = duration - played - (db[p] - db[j]) within [low, high]
            first = int(np.searchsorted(db, db[j] + duration - played - high))
            stop = int(np.searchsorted(db, db[j] + duration - played - low, side="right"))
            for p in range(max(first, j), min(stop, n)):
                tail = duration - played - (db[p] - db[j])
                if grid.boundary_cost(p) <= 0.5 and db[p] + tail <= grid.end:
                    cost = grid.jump_cost(i, j) + _fade_cost(grid, p, tail)
                    found.append(_Candidate("fade", [(s, i), (j, p)], cost, tail=tail))
    return found


def _fade_cost(grid: _Grid, p: int, tail: float) -> float:
    return FADE + grid.boundary_cost(p) + TAIL_PER_BAR * abs(tail - TAIL_IDEAL_BARS * grid.bar) / grid.bar


def _merged(runs: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    """Runs where one stops at the downbeat the next starts on are one run (no cut there)."""
    out = [runs[0]]
    for first, stop in runs[1:]:
        if out[-1][1] == first:
            out[-1] = (out[-1][0], stop)
        else:
            out.append((first, stop))
    return out


def _plan(grid: _Grid, rhythm: Rhythm, chosen: _Candidate, duration: float, note: str) -> FitPlan:
    """Spans from runs: joints GUARD before their downbeats; the ending trimmed, faded or padded."""
    runs = _merged(chosen.runs)
    spans: list[Span] = []
    for k, (first, stop) in enumerate(runs):
        begin = grid.time(first) if k == 0 else max(0.0, grid.time(first) - GUARD)
        last = k == len(runs) - 1
        if not last:
            finish = grid.time(stop) - GUARD
        elif chosen.strategy in ("fade", "cut"):
            finish = grid.time(stop) + chosen.tail if chosen.strategy == "fade" else begin + chosen.tail
        else:
            finish = grid.end
        spans.append(Span(begin, finish, 0.0, first + 1, None if last else stop + 1))
    spans = _with_crossfades(spans)
    played = sum(span.length for span in spans)
    s = runs[0][0]
    if chosen.strategy == "fade":
        fade = chosen.tail
        where = _boundary_words(grid, runs[-1][1])
        ending = f"fades out over {_seconds(fade)} from bar {runs[-1][1] + 1}{where}"
    elif chosen.strategy == "cut":
        fade = min(FALLBACK_FADE, duration / 4)
        ending = f"fades out over {_seconds(fade)}"
        if played < duration - 1e-6:
            note = "; ".join(filter(None, [note, f"the track ends {duration - played:.1f} s early"]))
    else:
        over = played - duration
        if over > 1e-4:
            fade = min(ENDING_FADE_MAX, max(2 * over, 0.01), duration / 4)
            ending = f"ends on the track's ending (its last {over:.2f} s faded out)"
        elif over < -1e-4:
            fade = END_FADE
            ending = f"ends on the track's ending, {-over:.2f} s before the out point"
        else:
            fade, ending = 0.0, "ends on the track's ending"
    return FitPlan(
        spans=tuple(spans),
        duration=float(duration),
        fade_out=float(fade),
        strategy=chosen.strategy,
        start=spans[0].source_start,
        start_bar=s + 1,
        source_duration=grid.end,
        tempo=float(rhythm.beats.tempo),
        beats_per_bar=int(rhythm.beats.beats_per_bar),
        cost=float(chosen.cost),
        note=note or chosen.note,
        ending=ending,
    )


def _boundary_words(grid: _Grid, index: int) -> str:
    if index in grid.anchors and index > 0:
        return " (a section start)"
    cost = grid.boundary_cost(index)
    return {0.25: " (an 8-bar phrase)", 0.5: " (a 4-bar phrase)"}.get(cost, "")


def _with_crossfades(spans: list[Span]) -> list[Span]:
    """CROSSFADE at each joint, shorter where a span is short (at most a quarter of either side) and
    where the source has no pre-roll before the incoming span."""
    out = [spans[0]]
    for before, after in zip(spans[:-1], spans[1:], strict=True):
        length = min(CROSSFADE, before.length / 4, after.length / 4, after.source_start)
        out.append(
            Span(after.source_start, after.source_end, max(0.0, length), after.start_bar, after.end_bar)
        )
    return out


def _fallback_plan(rhythm: Rhythm, start: float, duration: float, end: float, note: str) -> FitPlan:
    finish = min(end, start + duration)
    fade = min(FALLBACK_FADE, duration / 4)
    if finish - start < duration - 1e-6:
        note += f"; the track ends {duration - (finish - start):.1f} s early"
    return FitPlan(
        spans=(Span(start, finish),),
        duration=float(duration),
        fade_out=float(fade),
        strategy="cut",
        start=float(start),
        start_bar=None,
        source_duration=end,
        tempo=float(rhythm.beats.tempo),
        beats_per_bar=int(rhythm.beats.beats_per_bar),
        cost=FALLBACK,
        note=note,
        ending=f"fades out over {_seconds(fade)}",
    )


# ------------------------------------------------------------------------------------------ rendering


def render_fit(audio: np.ndarray, sample_rate: int, plan: FitPlan) -> np.ndarray:
    """The edit as float32 [round(duration * sample_rate), channels] (1-D input: one channel).

    Each span is added at its output position; at a joint the outgoing span's last `crossfade` seconds
    fade out (cosine) while the incoming span's pre-roll fades in (sine): equal power, ending at the cut.
    """
    source = np.asarray(audio, np.float32)
    if source.ndim == 1:
        source = source[:, None]
    total = int(round(plan.duration * sample_rate))
    out = np.zeros((total, source.shape[1]), np.float32)
    position = 0
    for k, span in enumerate(plan.spans):
        if position >= total:
            break
        first = int(round(span.source_start * sample_rate))
        count = min(int(round(span.source_end * sample_rate)) - first, total - position)
        out[position : position + count] = _take(source, first, first + count)
        fade = min(int(round(span.crossfade * sample_rate)), position) if k else 0
        if fade:
            rising, falling = _equal_power(fade)
            out[position - fade : position] *= falling
            out[position - fade : position] += _take(source, first - fade, first) * rising
        position += count
    _ramp(out, 0, min(int(round(FADE_IN * sample_rate)), position), rising=True)
    fade_out = min(int(round(plan.fade_out * sample_rate)), position)
    _ramp(out, position - fade_out, position, rising=False)
    return out


def _take(source: np.ndarray, first: int, stop: int) -> np.ndarray:
    """source[first:stop], zeros where the range runs off either end."""
    if first >= 0 and stop <= len(source):
        return source[first:stop]
    block = np.zeros((stop - first, source.shape[1]), np.float32)
    low, high = max(first, 0), min(stop, len(source))
    if high > low:
        block[low - first : high - first] = source[low:high]
    return block


def _equal_power(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) gains over `count` samples, sampled at the sample centres: sin^2 + cos^2 = 1."""
    phase = (np.arange(count, dtype=np.float32) + 0.5) * (np.float32(np.pi / 2) / count)
    return np.sin(phase)[:, None], np.cos(phase)[:, None]


def _ramp(out: np.ndarray, first: int, stop: int, rising: bool) -> None:
    if stop <= first:
        return
    rise, fall = _equal_power(stop - first)
    out[first:stop] *= rise if rising else fall


# ----------------------------------------------------------------------------------------- loudness


PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS: headroom for the inter-sample peaks of a lossy preview


def gain_to_target(loudness_lufs: float, target_lufs: float = -16.0, peak: float | None = None) -> float:
    """Linear gain that brings a track of integrated `loudness_lufs` to `target_lufs` for auditions,
    limited so that a sample `peak` (linear, e.g. 0.9) stays under -1 dBFS. Silence or an unknown
    loudness (-inf, NaN) gets 1.0: there is nothing to match."""
    if not math.isfinite(loudness_lufs) or not math.isfinite(target_lufs):
        return 1.0
    gain = 10 ** ((target_lufs - loudness_lufs) / 20)
    if peak is not None and peak > 0 and math.isfinite(peak):
        gain = min(gain, PEAK_CEILING / peak)
    return float(gain)


# ------------------------------------------------------------------------------------------- audio I/O


# Suffix -> (container format, {bits: (codec, sample format)}).
_WRITERS = {
    ".wav": ("wav", {16: ("pcm_s16le", "s16"), 24: ("pcm_s24le", "s32")}),
    ".flac": ("flac", {16: ("flac", "s16")}),
}
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def audio_format(path: str | os.PathLike) -> str:
    """The container `write_audio` uses for `path`, or UserFacingError for an unknown extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in _WRITERS:
        known = ", ".join(sorted(_WRITERS))
        raise UserFacingError(f"{path}: cannot write {suffix or 'a file without extension'}; use {known}")
    return suffix


def read_source_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The first audio stream at its own rate and channel count: (float32 [samples, channels], rate).

    `engine.media.read_audio` gives mono at a chosen rate (for the models); fitting keeps the source as
    it is. Raises MediaError for unreadable files, files outside `engine.media.limits` or longer than
    MAX_FIT_SECONDS."""
    with open_media(path) as container:
        stream = first_decodable(container, "audio", path)
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        if rate < limits.MIN_SAMPLE_RATE or not 1 <= channels <= limits.MAX_CHANNELS:
            raise MediaError(path, f"{rate} Hz, {channels} channels: not an audio format ViML reads")
        layout = stream.codec_context.layout.name
        converter = av.AudioResampler(format="flt", layout=layout, rate=rate)
        blocks, count = [], 0
        try:
            for frame in decode_tolerantly(container, stream, path, "audio", 20):
                for packed in converter.resample(frame):
                    blocks.append(packed.to_ndarray().reshape(-1, channels))
                    count += len(blocks[-1])
                if count > MAX_FIT_SECONDS * rate:
                    raise MediaError(path, f"longer than {MAX_FIT_SECONDS / 60:.0f} minutes: too long to fit")
            blocks += [f.to_ndarray().reshape(-1, channels) for f in converter.resample(None)]
        except av.FFmpegError as error:
            raise MediaError(path, f"audio decode failed ({error})") from error
    if not blocks:
        raise MediaError(path, "no audio could be decoded (empty stream, or a corrupt or truncated file)")
    return np.clip(np.concatenate(blocks), -1.0, 1.0), rate


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, bits: int = 16) -> Path:
    """Write float32 [samples, channels] as WAV (16 or 24 bit PCM) or FLAC (16 bit), by suffix.

    Written to a temporary file in the same folder and moved into place, so a failure (full disk, a
    killed process) never leaves a partial file under `path`."""
    path = Path(path)
    container_format, codecs = _WRITERS[audio_format(path)]
    if bits not in codecs:
        raise UserFacingError(f"{path}: {bits}-bit {path.suffix} is not written; use {sorted(codecs)}")
    codec, sample_format = codecs[bits]
    data = np.asarray(audio, np.float32)
    data = data[:, None] if data.ndim == 1 else data
    channels = data.shape[1]
    if channels not in _LAYOUTS:
        raise UserFacingError(f"{path}: cannot write {channels} channels")
    full = 2 ** (bits - 1) - 1
    integers = np.round(np.clip(data, -1.0, 1.0) * full)
    # pcm_s24le takes s32 samples with the 24 bits at the top.
    integers = integers.astype(np.int16) if sample_format == "s16" else integers.astype(np.int32) << 8
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        with av.open(temporary, "w", format=container_format) as container:
            stream = container.add_stream(codec, rate=sample_rate)
            stream.codec_context.layout = _LAYOUTS[channels]
            stream.codec_context.format = sample_format
            block = 4096
            for offset in range(0, len(integers), block):
                chunk = np.ascontiguousarray(integers[offset : offset + block]).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout=_LAYOUTS[channels])
                frame.sample_rate = sample_rate
                frame.pts, frame.time_base = offset, Fraction(1, sample_rate)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# -------------------------------------------------------------------------------------------- timeline


TIMELINE_SUFFIXES = (".otio", ".edl")


def fit_timeline(plan: FitPlan, source_path: str | os.PathLike, rate: float = 25.0, name: str | None = None):
    """The edit as an opentimelineio Timeline: one audio track, one clip per span (media reference with
    the whole file as `available_range`), an SMPTE dissolve per crossfade (in_offset = the crossfade,
    out_offset 0: it ends at the cut, as rendered), silence as a gap, the fade-out as a marker on the
    last clip. Times are whole frames at `rate`, as editors and EDLs count them: each cut moves by at
    most half a frame. The exact seconds are in each clip's metadata["viml"], the plan in the
    timeline's."""
    import opentimelineio as otio

    def frames(count: int):
        return otio.opentime.RationalTime(count, rate)

    def frame(seconds: float) -> int:
        return int(round(seconds * rate))

    source = Path(os.path.abspath(source_path))
    timeline = otio.schema.Timeline(name=name or f"{source.stem} fitted to {clock(plan.duration)}")
    timeline.global_start_time = frames(0)
    timeline.metadata["viml"] = plan.to_dict()
    track = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    available = otio.opentime.TimeRange(frames(0), frames(frame(plan.source_duration)))
    edges = np.minimum(
        np.concatenate([[0.0], np.cumsum([span.length for span in plan.spans])]), plan.music_end
    )
    record = [frame(edge) for edge in edges]  # output frame of each span's start, and of the music's end
    for number, span in enumerate(plan.spans, 1):
        length = record[number] - record[number - 1]
        if length <= 0:
            continue
        first = frame(span.source_start)
        fade = max(1, frame(span.crossfade)) if span.crossfade > 0 else 0
        if fade and len(track) and fade <= min(first, length, track[-1].source_range.duration.value):
            track.append(
                otio.schema.Transition(
                    name="crossfade",
                    transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                    in_offset=frames(fade),
                    out_offset=frames(0),
                )
            )
        reference = otio.schema.ExternalReference(target_url=source.as_uri(), available_range=available)
        bars = f"bar {span.start_bar}" if span.start_bar else clock(span.source_start)
        clip = otio.schema.Clip(
            name=f"{source.name} from {bars}",
            media_reference=reference,
            source_range=otio.opentime.TimeRange(frames(first), frames(length)),
        )
        clip.metadata["viml"] = {
            "source_start": span.source_start,
            "source_end": span.source_start + edges[number] - edges[number - 1],
            "crossfade": span.crossfade,
            "output_start": float(edges[number - 1]),
        }
        track.append(clip)
    fade = min(frame(plan.fade_out), record[-1])
    if fade > 0 and len(track):
        last = track[-1]
        marker = otio.schema.Marker(
            name=f"fade out {plan.fade_out:.2f} s",
            marked_range=otio.opentime.TimeRange(
                last.source_range.end_time_exclusive() - frames(fade), frames(fade)
            ),
        )
        marker.metadata["viml"] = {"fade_out": plan.fade_out}
        last.markers.append(marker)
    silence = frame(plan.duration) - record[-1]
    if silence > 0:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(frames(0), frames(silence))))
    timeline.tracks.append(track)
    return timeline


def write_fit_timeline(timeline, path: str | os.PathLike) -> Path:
    """Write `timeline` as .otio (OpenTimelineIO JSON) or .edl (CMX 3600), atomically.

    CMX 3600 holds one track of events and its OTIO adapter insists on exactly one video track, writing
    only the first track: the audio track goes first, with an empty video track after it, so the EDL
    lists audio events ("A" channel). The EDL adapter is the otio-cmx3600-adapter package."""
    import opentimelineio as otio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIMELINE_SUFFIXES:
        raise UserFacingError(f"{path}: timelines are written as {' or '.join(TIMELINE_SUFFIXES)}")
    if suffix == ".edl":
        if "cmx_3600" not in otio.adapters.available_adapter_names():
            raise UserFacingError(
                f"cannot write {path}: the CMX 3600 EDL adapter is not installed "
                "(pip install otio-cmx3600-adapter), or write .otio instead"
            )
        timeline = _edl_ready(timeline)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        otio.adapters.write_to_file(
            timeline, temporary, adapter_name="cmx_3600" if suffix == ".edl" else None
        )
        os.replace(temporary, path)
    except otio.exceptions.OTIOError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UserFacingError(f"cannot write the timeline to {path}: {error}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _edl_ready(timeline):
    """A copy with the audio track first and an empty video track after it (see write_fit_timeline)."""
    import opentimelineio as otio

    copy = timeline.deepcopy()
    audio = [track for track in copy.tracks if track.kind == otio.schema.TrackKind.Audio]
    if len(audio) != 1 or any(track.kind == otio.schema.TrackKind.Video for track in copy.tracks):
        raise UserFacingError("an EDL of a fitted track holds exactly one audio track and no video")
    result = otio.schema.Timeline(name=copy.name, global_start_time=copy.global_start_time)
    result.metadata.update(copy.metadata)
    moved = audio[0]
    del copy.tracks[list(copy.tracks).index(moved)]  # a child has one parent
    result.tracks.append(moved)
    result.tracks.append(otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video))
    return result
