"""One search for every surface: the same requests through `viml suggest` (a child process), the desktop
back end and the library API give identical rankings, offsets and scores.

Requests: a prompt with weights and negations (zero-shot bundle, real MiniLM + musicnn); a clip with a
prompt (demo bundle, trained towers); a prompt with filters (length range and an excluded track).
"""

from __future__ import annotations

import json

import e2e_helpers as e2e
import pytest

pytest.importorskip("open_clip")


def cli_results(home, catalog, bundle, *args: str) -> list[tuple[str, float, float]]:
    done = e2e.viml("suggest", *args, "--catalog", str(catalog), "--bundle", str(bundle), "-n", "6",
                    "--format", "json", home=home)  # fmt: skip
    return [(r["path"], r["start"], r["score"]) for r in json.loads(done.stdout[done.stdout.index("[") :])]


def library_results(catalog, bundle, **request) -> list[tuple[str, float, float]]:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest

    with Catalog(catalog, must_exist=True) as opened:
        found = Searcher(opened, open_bundle(bundle)).suggest(SuggestRequest(top=6, **request)).suggestions
    return [(s.path, s.start, s.score) for s in found]


def desktop_results(catalog, bundle, video=None, start=0.0, end=0.0, prompt="", influence=0.5, filters=None):
    from viml.desktop import backend

    rows = backend.suggest(catalog, str(bundle), video, start, end, prompt, influence, top=6, filters=filters)
    return [(row.path, row.offset, row.score) for row in rows]


def same(*rankings: list[tuple[str, float, float]]) -> None:
    first = rankings[0]
    assert len(first) == 6
    for other in rankings[1:]:
        assert [(p, o) for p, o, _ in other] == [(p, o) for p, o, _ in first]
        # Scores agree to the rounding every surface reports (6 decimals); thread counts may differ.
        assert [s for *_, s in other] == pytest.approx([s for *_, s in first], abs=2e-6)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    home = e2e.home()
    catalog = tmp_path_factory.mktemp("one_search") / "catalog.sqlite"
    for bundle in (e2e.zero_shot_bundle(), e2e.demo_bundle()):
        e2e.viml("scan", str(e2e.world().root / "music"), "--catalog", str(catalog), "--bundle", str(bundle),
                 "-j", "1", "--quiet", home=home)  # fmt: skip
    return home, catalog


def test_prompt_with_weights_and_negations(scanned):
    home, catalog = scanned
    bundle = e2e.zero_shot_bundle()
    prompt = "calm ambient pads^2, no vocals -drums"
    cli = cli_results(home, catalog, bundle, "--prompt", prompt)
    same(
        cli, library_results(catalog, bundle, prompt=prompt), desktop_results(catalog, bundle, prompt=prompt)
    )
    # The terms really act: the same prompt without them ranks differently.
    plain = library_results(catalog, bundle, prompt="calm ambient pads")
    assert [s for *_, s in plain] != [s for *_, s in cli]


def test_clip_and_prompt(scanned):
    home, catalog = scanned
    bundle = e2e.demo_bundle()
    video = str(e2e.world().video_path(e2e.world().pieces[2]))
    cli = cli_results(home, catalog, bundle, video, "--in", "1", "--out", "9", "--prompt", "dark techno",
                      "--influence", "0.7")  # fmt: skip
    same(
        cli,
        library_results(
            catalog, bundle, video=video, start=1.0, end=9.0, prompt="dark techno", influence=0.7
        ),
        desktop_results(catalog, bundle, video, 1.0, 9.0, "dark techno", 0.7),
    )


def test_filters(scanned):
    from viml.search import Filters

    home, catalog = scanned
    bundle = e2e.zero_shot_bundle()
    pieces = e2e.world().pieces
    excluded = str(e2e.world().music_path(pieces[0]))
    longest = max(p.seconds for p in pieces)
    filters = Filters(max_duration=longest - 0.5, exclude={excluded})
    cli = cli_results(home, catalog, bundle, "--prompt", "piano", "--duration", f"-{longest - 0.5}",
                      "--exclude", excluded)  # fmt: skip
    lib = library_results(catalog, bundle, prompt="piano", filters=filters)
    desk = desktop_results(catalog, bundle, prompt="piano", filters=filters)
    assert excluded not in {p for p, *_ in cli} and 0 < len(cli) < 6
    assert [(p, o) for p, o, _ in lib] == [(p, o) for p, o, _ in cli] == [(p, o) for p, o, _ in desk]
    assert [s for *_, s in lib] == pytest.approx([s for *_, s in cli], abs=2e-6)
