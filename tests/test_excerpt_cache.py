"""catalog/excerpts.py, the one excerpt cache of the desktop app and `viml serve`: what its key holds,
eviction by size (least recently used first), damaged entries rendered again and never served, and what
each mode renders (this test's VIML_HOME has no converted BeatNet: "auto" falls back to the plain cut)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from hostile_media import write_wav
from viml.catalog import excerpts, fitting
from viml.catalog.excerpts import RAW, SIDECAR, ExcerptCache, ExcerptRequest
from viml.core.errors import UserFacingError
from viml.engine.music.fit import read_source_audio
from viml.engine.music.rhythm.loudness import integrated_loudness

RATE = 22050


def tone(path, seconds: float, level: float = 0.2):
    t = np.arange(round(seconds * RATE)) / RATE
    left = level * np.sin(2 * np.pi * 220.0 * t)
    return write_wav(path, np.stack([left, 0.5 * left]).astype(np.float32), RATE)


@pytest.fixture
def counted(monkeypatch):
    """The plain renderer's calls (a lookup renders nothing)."""
    calls = []
    real = fitting.render_plain_excerpt

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(fitting, "render_plain_excerpt", counting)
    return calls


def test_the_key_changes_with_each_parameter_and_with_the_file(tmp_path):
    source = tone(tmp_path / "a.wav", 4.0)
    other = tone(tmp_path / "b.wav", 4.0)  # the same samples at another path
    base = ExcerptRequest(str(source), "A", 1.0, 2.0)
    changed = [
        dataclasses.replace(base, path=str(other)),
        dataclasses.replace(base, start=1.5),
        dataclasses.replace(base, duration=2.5),
        dataclasses.replace(base, strategy="bars"),
        dataclasses.replace(base, target_lufs=-20.0),
        dataclasses.replace(base, target_lufs=None),
        dataclasses.replace(base, mode="fitted"),
        dataclasses.replace(base, mode="plain"),
        dataclasses.replace(base, mode=RAW, target_lufs=None),
    ]
    keys = [base.key(), *(request.key() for request in changed)]
    assert None not in keys and len(set(keys)) == len(keys)
    # The title only names the file; a mode that ignores the strategy or the level ignores it in its key.
    assert dataclasses.replace(base, title="B").key() == base.key()
    plain = dataclasses.replace(base, mode="plain")
    assert dataclasses.replace(plain, strategy="bars").key() == plain.key()
    raw = dataclasses.replace(base, mode=RAW, target_lufs=None)
    assert dataclasses.replace(raw, target_lufs=-20.0).key() == raw.key()

    info = source.stat()
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # touched: edited
    assert base.key() not in (None, keys[0])
    source.unlink()
    assert base.key() is None  # gone: nothing to look up
    with pytest.raises(UserFacingError, match="unknown excerpt mode 'loud'"):
        ExcerptRequest(str(other), "", 0.0, 1.0, mode="loud")


def test_eviction_by_size_least_recently_used_first(tmp_path, counted):
    source = tone(tmp_path / "s.wav", 10.0)
    requests = [ExcerptRequest(str(source), "s", start, 2.0, mode="plain") for start in (0.0, 2.0, 4.0, 6.0)]
    probe = ExcerptCache(tmp_path / "probe")
    probe.render(requests[0])
    entry_bytes = sum(f.stat().st_size for f in (probe.folder / requests[0].key()).iterdir())

    cache = ExcerptCache(tmp_path / "cache", max_bytes=int(2.5 * entry_bytes))
    first, second, third, fourth = requests
    cache.render(first)
    cache.render(second)
    assert cache.lookup(first) is not None  # used again: the second is now the oldest
    cache.render(third)
    assert cache.lookup(second) is None
    assert cache.lookup(first) is not None and cache.lookup(third) is not None
    assert len(list(cache.folder.iterdir())) == 2
    # A bound below one entry keeps the one just written (it is being handed out), nothing else.
    cache.max_bytes = entry_bytes // 2
    cache.render(fourth)
    assert [p.name for p in cache.folder.iterdir()] == [fourth.key()]
    assert cache.lookup(fourth) is not None
    assert len(counted) == 5  # the probe and four renders; the lookups rendered nothing


def damage_wav(entry, name):
    wav = entry / name
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])  # a truncated copy


def damage_sidecar(entry, name):
    (entry / SIDECAR).write_text('{"file": "', encoding="utf-8")  # cut off mid-write


def drop_sidecar(entry, name):
    (entry / SIDECAR).unlink()  # a render killed before its sidecar: the entry is incomplete


def drop_wav(entry, name):
    (entry / name).unlink()


def stale_sidecar(entry, name):
    done = json.loads((entry / SIDECAR).read_text(encoding="utf-8"))
    del done["bytes"]  # an older sidecar without the size
    (entry / SIDECAR).write_text(json.dumps(done), encoding="utf-8")


@pytest.mark.parametrize("damage", [damage_wav, damage_sidecar, drop_sidecar, drop_wav, stale_sidecar])
def test_a_damaged_entry_is_rendered_again_never_served(tmp_path, counted, damage):
    source = tone(tmp_path / "s.wav", 6.0)
    request = ExcerptRequest(str(source), "s", 1.0, 3.0, mode="plain")
    cache = ExcerptCache(tmp_path / "cache")
    first = cache.render(request)
    whole = first.path.read_bytes()
    damage(first.path.parent, first.path.name)
    assert cache.lookup(request) is None
    again = cache.render(request)
    assert len(counted) == 2
    assert again.path == first.path and again.path.read_bytes() == whole
    found = cache.lookup(request)
    assert found == again
    audio, rate = read_source_audio(found.path)
    assert rate == RATE and audio.shape == (3 * RATE, 2)
    assert not [p for p in found.path.parent.iterdir() if p.name.endswith(".part")]


def test_what_each_mode_renders(tmp_path):
    source = tone(tmp_path / "s.wav", 5.0)
    samples, _ = read_source_audio(source)
    cache = ExcerptCache(tmp_path / "cache")

    auto = cache.render(ExcerptRequest(str(source), "", 1.0, 3.0))
    assert (auto.fitted, auto.fell_back) == (False, True)  # no beats known, BeatNet not converted
    assert cache.lookup(ExcerptRequest(str(source), "", 1.0, 3.0)).fell_back
    with pytest.raises(UserFacingError, match="beats are not in the catalog and cannot be measured"):
        cache.render(ExcerptRequest(str(source), "", 1.0, 3.0, mode="fitted"))

    # Plain: exactly the length (silence after the track's end), gained to the target.
    plain = cache.render(ExcerptRequest(str(source), "", 3.0, 4.0, mode="plain"))
    assert (plain.fitted, plain.fell_back) == (False, False)
    assert plain.spans == ((3.0, 5.0),) and plain.source_time(1.5) == 4.5  # the track ends at 5 s
    assert cache.lookup(ExcerptRequest(str(source), "", 3.0, 4.0, mode="plain")).spans == plain.spans
    cut, _ = read_source_audio(plain.path)
    assert cut.shape == (4 * RATE, 2) and not cut[2 * RATE :].any()
    assert integrated_loudness(cut.mean(axis=1), RATE) == pytest.approx(fitting.FIT_LUFS, abs=0.5)
    middle = slice(RATE // 2, RATE)  # between the fade-in and the fade-out: the source, gained
    original = samples[3 * RATE :][middle]
    gain = float(np.dot(cut[middle].ravel(), original.ravel()) / np.dot(original.ravel(), original.ravel()))
    assert gain > 1.1 and np.abs(cut[middle] - gain * original).max() < 3 / 32768

    # Raw: the source's own samples, ending with the track; no fade, no gain.
    raw = cache.render(ExcerptRequest(str(source), "", 3.0, 4.0, target_lufs=None, mode=RAW))
    heard, _ = read_source_audio(raw.path)
    assert heard.shape == (2 * RATE, 2) and raw.duration == pytest.approx(2.0)
    assert np.abs(heard - samples[3 * RATE :]).max() < 2 / 32768
    with pytest.raises(UserFacingError, match="starts at 9 s but the track is 5.0 s long"):
        cache.render(ExcerptRequest(str(source), "", 9.0, 1.0, mode=RAW))
    assert excerpts.MODES == ("auto", "fitted", "plain")
