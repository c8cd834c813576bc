"""The library's words in the one search, end to end on real bundles and files: a tag edit and a rescan
change the ranking, the explanation names the field that matched, and a library without words ranks by
sound exactly as before."""

from __future__ import annotations

import shutil

import e2e_helpers as e2e
import pytest

pytest.importorskip("open_clip")


def scan(folder, catalog) -> None:
    e2e.viml("scan", str(folder), "--catalog", str(catalog), "--bundle", str(e2e.zero_shot_bundle()),
             "-j", "1", "--quiet", home=e2e.home())  # fmt: skip


def search(catalog, prompt: str, **options):  # noqa: ANN201 (list of viml.search.Suggestion)
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest

    with Catalog(catalog, must_exist=True) as opened:
        searcher = Searcher(opened, open_bundle(e2e.zero_shot_bundle()))
        return searcher.suggest(SuggestRequest(prompt=prompt, top=6, **options)).suggestions


def retitle(path, title: str) -> None:
    import mutagen

    audio = mutagen.File(path, easy=True)
    audio["title"] = title
    audio.save()


def test_a_tag_edit_and_a_rescan_change_the_ranking_and_say_why(tmp_path):
    music = tmp_path / "music"
    shutil.copytree(e2e.world().root / "music", music)
    catalog = tmp_path / "catalog.sqlite"
    scan(music, catalog)
    prompt = "celestial harp lullaby"
    before = search(catalog, prompt, words_weight=4.0)
    sound_before = search(catalog, prompt, words_weight=0, meaning_weight=0)
    target = next(s.path for s in reversed(before) if s.path.endswith((".flac", ".mp3", ".m4a")))
    assert not any(s.matched_words for s in before)  # no track's words say any of this yet
    retitle(target, "Celestial Harp Lullaby")
    scan(music, catalog)
    after = search(catalog, prompt, words_weight=4.0)  # a title match worth 4 standard deviations of sound
    assert after[0].path == target  # its title now says it
    assert {"field": "title", "word": "Celestial"} in after[0].matched_words
    # The best part still comes from the sound: the fused order moved, its window did not.
    assert after[0].start == next(s.start for s in before if s.path == target)
    sound_only = search(catalog, prompt, words_weight=0, meaning_weight=0)
    assert [s.path for s in sound_only] == [s.path for s in sound_before]  # the sound did not change


def test_a_library_without_words_ranks_by_sound_exactly_as_before(tmp_path):
    import mutagen

    plain = tmp_path / "plain"
    plain.mkdir()
    for number, source in enumerate(sorted((e2e.world().root / "music").iterdir())):
        target = plain / f"track{number:02d}{source.suffix}"
        shutil.copy(source, target)
        audio = mutagen.File(target)
        if audio is not None and audio.tags is not None:
            audio.delete()
    catalog = tmp_path / "catalog.sqlite"
    scan(plain, catalog)
    for prompt in ("dark techno", "calm ambient pads", "jazz piano, no drums"):
        fused = search(catalog, prompt)
        sound = search(catalog, prompt, words_weight=0, meaning_weight=0)
        assert [(s.path, s.start) for s in fused] == [(s.path, s.start) for s in sound], prompt
