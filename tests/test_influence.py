"""The influence's ends mean what they say, on every surface: 0 is the picture alone (the prompt is not
read at all), 1 the prompt alone (the ranking is exactly the prompt-only search's; the clip only sets
how long each part is). Checked through the library API, the desktop back end, `viml suggest` and
`viml serve` on the e2e world scanned with real musicnn + BeatNet, ranked by the demo bundle (trained
towers that read pictures); the mixing itself on the demo bundle's real query tower.
"""

from __future__ import annotations

import json

import e2e_helpers as e2e
import httpx
import numpy as np
import pytest
from service_helpers import library, running_service

pytest.importorskip("open_clip")  # the demo bundle is trained with a tiny CLIP

# Different enough to rank differently; each has terms (piano, drums, synth) that bias the tags.
PROMPTS = ("tense dark synths, no drums", "calm piano^2")
CLIP = {"start": 0.0, "end": 8.0}


def world_video(index: int = 2) -> str:
    world = e2e.world()
    return str(world.video_path(world.pieces[index]))


def ranking(suggestions) -> list[tuple[str, float, float]]:
    """What a ranking is: which tracks, in which order, from where, with which score."""
    return [(s["path"], s["start"], s["score"]) for s in suggestions]


def library_suggest(**request) -> list[dict]:
    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest

    lib = library()
    with Catalog(lib.catalog, must_exist=True) as catalog:
        result = Searcher(catalog, open_bundle(str(lib.bundle))).suggest(SuggestRequest(top=6, **request))
    return [s.as_dict() for s in result.suggestions]


def test_text_only_is_the_prompt_only_ranking_exactly():
    video = world_video()
    for prompt in PROMPTS:
        alone = library_suggest(prompt=prompt)
        text_only = library_suggest(video=video, prompt=prompt, influence=1.0, **CLIP)
        assert len(alone) == 6 and ranking(text_only) == ranking(alone), prompt
        for part in text_only:  # the clip's length still sets the part's
            assert part["end"] - part["start"] == pytest.approx(
                min(8.0, part["duration"] - part["start"]), abs=1e-3
            )
        # Another clip does not change it either: the picture is not read.
        other = library_suggest(video=world_video(4), prompt=prompt, influence=1.0, **CLIP)
        assert ranking(other) == ranking(alone)
    # ... and the prompt does decide: the two prompts' rankings differ.
    first, second = (ranking(library_suggest(video=video, prompt=p, influence=1.0, **CLIP)) for p in PROMPTS)
    assert first != second


def test_video_only_ignores_the_prompt():
    video = world_video()
    picture = library_suggest(video=video, **CLIP)
    assert len(picture) == 6
    for prompt in PROMPTS:
        found = library_suggest(video=video, prompt=prompt, influence=0.0, **CLIP)
        assert found == picture, prompt  # everything: order, parts, scores, matched tags and words


def test_between_the_ends_both_count():
    video = world_video()
    picture = ranking(library_suggest(video=video, **CLIP))
    mixed = [
        ranking(library_suggest(video=video, prompt=PROMPTS[0], influence=w, **CLIP)) for w in (0.3, 0.7)
    ]
    text = ranking(library_suggest(prompt=PROMPTS[0]))
    for found in mixed:
        assert found != picture and [s for *_, s in found] != [s for *_, s in text]


def test_the_mix_walks_from_the_picture_through_the_joint_query_to_the_prompt():
    """trained_query on the demo bundle's real towers: the ends are one side's own query, 0.5 the joint
    query, and each half a straight line between them."""
    from viml.engine.runtime import open_bundle
    from viml.engine.vectors import normalize_rows
    from viml.search.query import trained_query

    bundle = open_bundle(str(library().bundle), shared=False)
    towers = bundle.towers
    frames = bundle.clips.clip_embeddings(world_video(), 0.0, 8.0)
    text = bundle.clips.prompt_embedding("calm piano")
    picture = towers.query_segments(frames, None)
    joint = towers.query_segments(frames, text)
    prompt = towers.query_segments(None, text)
    assert prompt.shape[0] == 1 and picture.shape[0] == len(frames) > 0
    np.testing.assert_allclose(trained_query(towers, frames, text, 0.0), picture, atol=1e-6)
    np.testing.assert_allclose(trained_query(towers, frames, text, 1.0), prompt, atol=1e-6)
    np.testing.assert_allclose(trained_query(towers, frames, text, 0.5), joint, atol=1e-6)
    np.testing.assert_allclose(
        trained_query(towers, frames, text, 0.25), normalize_rows(0.5 * picture + 0.5 * joint), atol=1e-5
    )
    np.testing.assert_allclose(
        trained_query(towers, frames, text, 0.75), normalize_rows(0.5 * joint + 0.5 * prompt), atol=1e-5
    )


def test_zero_shot_ends():
    from viml.search.query import zero_shot_query

    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((4, 8)).astype(np.float32) for _ in range(3)]
    text = rng.standard_normal(8).astype(np.float32)
    text_only = zero_shot_query(frames, text, 1.0)
    assert text_only.shape == (1, 8)  # the prompt's one row, as a prompt alone
    np.testing.assert_allclose(text_only, zero_shot_query(None, text), atol=1e-6)
    np.testing.assert_allclose(zero_shot_query(frames, text, 0.0), zero_shot_query(frames, None), atol=1e-6)


def test_desktop_back_end_ends():
    from viml.desktop import backend

    lib, video = library(), world_video()

    def rows(prompt: str, influence: float, clip: bool = True) -> list[tuple[str, float, float]]:
        found = backend.suggest(lib.catalog, str(lib.bundle), video if clip else None, 0.0, 8.0, prompt,
                                influence, top=6)  # fmt: skip
        return [(row.path, row.offset, row.score) for row in found]

    for prompt in PROMPTS:
        assert rows(prompt, 1.0) == rows(prompt, 0.5, clip=False) == ranking(library_suggest(prompt=prompt))
        assert rows(prompt, 0.0) == rows("", 0.5) == ranking(library_suggest(video=video, **CLIP))


def cli(*args: str) -> list[dict]:
    lib = library()
    done = e2e.viml("suggest", *args, "--catalog", str(lib.catalog), "--bundle", str(lib.bundle), "-n", "6",
                    "--format", "json", home=lib.home)  # fmt: skip
    return json.loads(done.stdout[done.stdout.index("[") :])


def test_cli_ends():
    video = world_video()
    clip = [video, "--in", "0", "--out", "8"]
    prompt = PROMPTS[1]
    assert ranking(cli(*clip, "--prompt", prompt, "--influence", "1")) == ranking(cli("--prompt", prompt))
    picture = cli(*clip)
    for prompt in PROMPTS:
        assert cli(*clip, "--prompt", prompt, "--influence", "0") == picture


def test_service_ends():
    video = world_video()
    with running_service(library()) as service:

        def post(**body) -> list[dict]:
            answer = httpx.post(service.url + "/v1/suggest", headers=service.headers(), timeout=120,
                                json={"top": 6, **body})  # fmt: skip
            assert answer.status_code == 200, answer.text
            return answer.json()["suggestions"]

        for prompt in PROMPTS:
            text_only = post(video=video, prompt=prompt, influence=1, **CLIP)
            assert (
                ranking(text_only) == ranking(post(prompt=prompt)) == ranking(library_suggest(prompt=prompt))
            )
        picture = post(video=video, **CLIP)
        assert [post(video=video, prompt=p, influence=0, **CLIP) for p in PROMPTS] == [picture, picture]
