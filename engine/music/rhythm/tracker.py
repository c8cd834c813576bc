"""Beats and downbeats from a beat network's activations: two Viterbi decodings we own.

1. **Beats** — the bar-pointer state space of Krebs, Böck & Widmer ("An efficient state-space model for
   joint tempo and meter tracking", ISMIR 2015), reduced to one beat: a state is (beat interval i in
   frames, position p in 0..i-1). Within a beat the position advances one frame at a time; only at the
   end of a beat may the interval change, to j with probability proportional to
   exp(-TEMPO_CHANGE * |j / i - 1|). The first 1/BEAT_STATE_SHARE of each beat are "beat states" that
   emit the beat activation a; the others emit (1 - a) / (BEAT_STATE_SHARE - 1). The most likely path
   (Viterbi, in logs) puts a beat where it enters position 0; each beat then moves to the activation's
   peak within the beat states, as madmom's `correct` option does. Cost per frame: one shift of the
   position vector plus an intervals x intervals maximum (about 42 x 42).
2. **Downbeats** — a second, small Viterbi over the beats: states (beats per bar m in {3, 4}, position
   k in 1..m); the position advances by one per beat, and with probability PHASE_CHANGE per beat the
   path may jump to any state (a pickup bar, a dropped beat, a change of metre). A beat emits
   d = downbeat / (beat + downbeat activation) at its peak for position 1 and 1 - d otherwise.

Tempo: 60 / the mean of the inter-beat intervals within 10 % of their median. Confidence: how far the activation at the beats stands above
the activation between them, times the share of beat intervals within 10 % of the median.
"""

from __future__ import annotations

import numpy as np
from viml.engine.music.rhythm.types import Beats

FPS = 50.0
MIN_BPM, MAX_BPM = 55.0, 215.0
TEMPO_CHANGE = 100.0  # madmom's transition_lambda: tempo changes between consecutive beats are rare
BEAT_STATE_SHARE = 16  # madmom's observation_lambda
PHASE_CHANGE = (
    1e-4  # per beat, the chance the bar position jumps (pickups, odd bars); chosen on the demo world
)
METERS = (3, 4)
# Below this activation the network hears no beat: frames before the first and after the last such
# peak are left out (a silent intro gets no beats).
ACTIVATION_FLOOR = 0.05
EDGE_SHARE = 0.3
_PEAK_FRAMES = 2  # activations are read as their maximum within +-2 frames (+-40 ms) of a beat
_TINY = 1e-12


def track_beats(activations: np.ndarray, fps: float = FPS) -> Beats:
    """Beats, bar positions, tempo and confidence from [T, 2] (beat, downbeat) activations at `fps`."""
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != 2:
        raise ValueError(f"expected [frames, 2] beat/downbeat activations, got {activations.shape}")
    beat_activation = np.clip(activations.sum(axis=1), 0.0, 1.0)
    above = np.flatnonzero(beat_activation > ACTIVATION_FLOOR)
    if len(above) < 2:
        return Beats.empty()
    first, last = above[0], above[-1] + 1
    frames = _trim_edges(beat_activation, _viterbi_beats(beat_activation[first:last], fps) + first)
    if len(frames) < 4:
        return Beats.empty()
    times = frames / fps
    positions, meter = _bar_positions(activations, frames)
    intervals = np.diff(times)
    median = float(np.median(intervals))
    steady = np.abs(intervals / median - 1.0) < 0.1
    tempo = 60.0 / float(intervals[steady].mean())  # the mean undoes the frame grid's rounding
    regular = float(steady.mean())
    on_beats = _peaks_at(beat_activation, frames).mean()
    off = np.ones(len(beat_activation), bool)
    for shift in range(-_PEAK_FRAMES, _PEAK_FRAMES + 1):
        off[np.clip(frames + shift, 0, len(off) - 1)] = False
    off[:first] = off[last:] = False
    off_beats = beat_activation[off].mean() if off.any() else 0.0
    confidence = float(np.clip(on_beats - off_beats, 0.0, 1.0) * regular)
    return Beats(times.astype(np.float64), positions, tempo, confidence, meter)


def _intervals(fps: float) -> np.ndarray:
    slowest = int(np.floor(60.0 * fps / MIN_BPM))
    fastest = int(np.ceil(60.0 * fps / MAX_BPM))
    return np.arange(fastest, slowest + 1)


def _viterbi_beats(activation: np.ndarray, fps: float) -> np.ndarray:
    """Frames of the beats on the most likely path through the beat state space."""
    intervals = _intervals(fps)
    firsts = np.concatenate([[0], np.cumsum(intervals)[:-1]])  # state index of position 0 per interval
    lasts = firsts + intervals - 1
    states = int(intervals.sum())
    position = np.arange(states) - np.repeat(firsts, intervals)
    interval_of = np.repeat(np.arange(len(intervals)), intervals)
    beat_state = position * BEAT_STATE_SHARE < intervals[interval_of]
    ratio = intervals[None, :] / intervals[:, None]  # [from, to]
    log_change = -TEMPO_CHANGE * np.abs(ratio - 1.0)
    log_change -= np.log(np.exp(log_change).sum(axis=1, keepdims=True))
    inner = np.flatnonzero(position > 0)  # position p comes from p - 1 within the same interval
    from_inner = inner - 1
    beat_index = np.flatnonzero(beat_state)
    columns = np.arange(len(intervals))

    log_beat = np.log(np.maximum(activation, _TINY))
    log_other = np.log(np.maximum((1.0 - activation) / (BEAT_STATE_SHARE - 1), _TINY))
    beat_gain = log_beat - log_other
    delta = np.full(states, -np.log(states)) + log_other[0]
    delta[beat_index] += beat_gain[0]
    frames = len(activation)
    came_from = np.empty((frames, len(intervals)), np.int16)  # best previous interval at each beat start
    new = np.empty(states)
    for t in range(1, frames):
        candidates = delta[lasts][:, None] + log_change  # [from, to]
        best = candidates.argmax(axis=0)
        came_from[t] = best
        new[firsts] = candidates[best, columns]
        new[inner] = delta[from_inner]
        new += log_other[t]
        new[beat_index] += beat_gain[t]
        delta, new = new, delta
        if t % 256 == 0:
            delta -= delta.max()  # keeps the logs in range over long tracks
    state = int(delta.argmax())
    beats = []
    for t in range(frames - 1, 0, -1):
        if position[state] == 0:
            beats.append(t)
            state = int(lasts[came_from[t, interval_of[state]]])
        else:
            state -= 1
    if position[state] == 0:
        beats.append(0)
    beats = np.array(beats[::-1], dtype=np.int64)
    return _to_peaks(activation, beats, intervals, interval_of)


def _to_peaks(activation: np.ndarray, beats: np.ndarray, intervals: np.ndarray, interval_of) -> np.ndarray:
    """Each beat moved to its activation's maximum within the beat states after it (and as many before)."""
    if len(beats) == 0:
        return beats
    spans = np.diff(beats, append=beats[-1] + np.median(np.diff(beats)) if len(beats) > 1 else 10)
    reach = np.maximum(1, np.ceil(spans / BEAT_STATE_SHARE).astype(np.int64))
    moved = beats.copy()
    for n, (frame, width) in enumerate(zip(beats, reach, strict=True)):
        lo, hi = max(0, frame - width), min(len(activation), frame + width + 1)
        moved[n] = lo + int(np.argmax(activation[lo:hi]))
    return np.unique(moved)


def _trim_edges(activation: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Leading and trailing beats the network barely heard (the path must run through an intro or an
    outro, but a beat there is a guess): below EDGE_SHARE of the median beat's activation."""
    if len(frames) == 0:
        return frames
    peaks = _peaks_at(activation, frames)
    heard = np.flatnonzero(peaks >= EDGE_SHARE * np.median(peaks))
    return frames[heard[0] : heard[-1] + 1] if len(heard) else frames[:0]


def _peaks_at(values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    window = np.arange(-_PEAK_FRAMES, _PEAK_FRAMES + 1)
    index = np.clip(frames[:, None] + window[None, :], 0, len(values) - 1)
    return values[index].max(axis=1)


def _bar_positions(activations: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Bar position (1 = downbeat) of every beat and the beats per bar, by Viterbi over the beats."""
    beat = _peaks_at(activations[:, 0], frames)
    down = _peaks_at(activations[:, 1], frames)
    share = np.clip(down / np.maximum(beat + down, _TINY), 1e-3, 1 - 1e-3)
    states = [(m, k) for m in METERS for k in range(1, m + 1)]
    count = len(states)
    follow = np.array([states.index((m, k % m + 1)) for m, k in states])
    log_stay = np.log(1.0 - PHASE_CHANGE)
    log_jump = np.log(PHASE_CHANGE / count)
    is_down = np.array([k == 1 for _, k in states])
    emit = np.where(is_down[None, :], np.log(share)[:, None], np.log(1 - share)[:, None])  # [B, S]
    delta = emit[0] - np.log(count)
    back = np.zeros((len(frames), count), np.int64)
    for b in range(1, len(frames)):
        stay = np.full(count, -np.inf)
        stay_from = np.zeros(count, np.int64)
        stay[follow] = delta + log_stay
        stay_from[follow] = np.arange(count)
        jump_from = int(delta.argmax())
        jump = delta[jump_from] + log_jump
        take_jump = jump > stay
        back[b] = np.where(take_jump, jump_from, stay_from)
        delta = np.where(take_jump, jump, stay) + emit[b]
    path = np.empty(len(frames), np.int64)
    path[-1] = int(delta.argmax())
    for b in range(len(frames) - 1, 0, -1):
        path[b - 1] = back[b, path[b]]
    meters = np.array([states[s][0] for s in path])
    positions = np.array([states[s][1] for s in path], dtype=np.int64)
    values, counts = np.unique(meters, return_counts=True)
    return positions, int(values[np.argmax(counts)])
