"""Prompt terms: parsing weights and negations, and applying them through known tag matrices."""

from __future__ import annotations

import numpy as np
import pytest
from viml.catalog.store import Catalog, Fingerprint
from viml.core.errors import UserFacingError
from viml.engine.music.types import MusicSegments
from viml.engine.vectors import normalize_rows
from viml.search import Searcher, SearchResult
from viml.search.prompt_terms import ANY_VOCALS, TERM_SCALE, concept_columns, parse_prompt
from viml.search.ranking import window_scores
from viml.search.spaces import ensure_space


def weights(prompt: str, mention_weight: float = 0.0) -> dict[str, float]:
    return parse_prompt(prompt).weights(mention_weight)


@pytest.mark.parametrize(
    ("prompt", "text", "expected"),
    [
        ("piano^2 -drums", "piano", {"piano": 2.0, "drums": -1.0}),
        ("+piano -drums^1.5", "piano", {"piano": 1.0, "drums": -1.5}),
        ("calm music, not sad, no vocals", "calm music", {"sad": -1.0, ANY_VOCALS: -1.0}),
        ("epic battle music without drums or guitar", "epic battle music", {"drums": -1.0, "guitar": -1.0}),
        ("no heavy drums, happy", "happy", {"drums": -1.0}),  # negation reaches over "heavy"
        ("no drums epic music", "epic music", {"drums": -1.0}),  # and stops after the concept
        ('"string section"^1.5 sad', "string section sad", {"strings": 1.5}),
        ("without female vocals", "", {"female vocals": -1.0}),
        ("non-vocal ambient", "ambient", {ANY_VOCALS: -1.0}),
        ("not instrumental", "", {"instrumental": -1.0}),
        ("hip hop, not fast", "hip hop", {"fast": -1.0}),
        ("no xylophone, please", "please", {}),  # unknown negated word: out of the text, no term
        ("", "", {}),
    ],
)
def test_parse_prompt(prompt, text, expected):
    terms = parse_prompt(prompt)
    assert terms.text == text
    assert terms.weights() == expected


def test_plain_mentions_count_only_with_a_mention_weight():
    assert weights("sad piano") == {}
    assert weights("sad piano", mention_weight=0.5) == {"sad": 0.5, "piano": 0.5}
    assert weights("sad piano^3", mention_weight=0.5) == {"sad": 0.5, "piano": 3.0}
    # Synonyms from the tag table reach the same concept; a concept named twice adds up.
    assert weights("melancholy -gloomy") == {"sad": -1.0}
    assert weights("+piano +piano") == {"piano": 2.0}


NAMES = ["MTT:drums", "MTT:piano", "MTT:vocals", "MTT:female", "MSD:female vocalists", "MTT:sad"]


def test_concept_columns_merge_vocabularies_and_voices():
    columns = concept_columns(NAMES)
    assert columns["female vocals"] == [3, 4]
    assert columns[ANY_VOCALS] == [2, 3, 4]
    assert columns["drums"] == [0]


def test_segment_bias_is_the_documented_formula():
    tags = np.array(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0, 0.2],  # drums
            [0.0, 0.8, 0.0, 0.7, 0.9, 0.6],  # piano with a female singer, sad
            [0.0, 0.9, 0.0, 0.0, 0.0, 0.1],  # piano, instrumental
        ],
        np.float32,
    )
    bias = parse_prompt("piano^2 -drums no vocals").segment_bias(tags, NAMES)
    # TERM_SCALE · (2·p_piano − p_drums − max(p_vocals, p_female, p_female vocalists))
    expected = TERM_SCALE * np.array([2 * 0.1 - 0.9 - 0.0, 2 * 0.8 - 0.0 - 0.9, 2 * 0.9 - 0.0 - 0.0])
    np.testing.assert_allclose(bias, expected, atol=1e-6)
    assert parse_prompt("calm").segment_bias(tags, NAMES) is None
    assert parse_prompt("-flute").segment_bias(tags, NAMES) is None  # no column for the concept


def test_negation_reorders_what_the_embedding_cannot():
    """Two tracks identical to the embedding; only the tag term tells "no vocals" apart."""
    embeddings = normalize_rows(np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.01]], np.float32))
    tags = np.array([[0.0, 0.0, 0.95, 0.0, 0.0, 0.0], [0.0, 0.0, 0.05, 0.0, 0.0, 0.0], [0] * 6], np.float32)
    starts, counts = np.array([0, 1, 2]), np.array([1, 1, 1])
    query = np.array([[1.0, 0.0]], np.float32)
    plain = window_scores(embeddings, starts, counts, query)
    assert plain.best[0] == pytest.approx(plain.best[1])
    bias = parse_prompt("music, no vocals").segment_bias(tags, NAMES)
    scored = window_scores(embeddings, starts, counts, query, bias)
    assert scored.best[1] > scored.best[0]
    np.testing.assert_allclose(scored.best, plain.best + bias, atol=1e-6)


def test_bias_is_averaged_over_clip_windows():
    embeddings = normalize_rows(np.ones((4, 3), np.float32))
    bias = np.array([0.4, 0.0, 0.0, 0.2], np.float32)
    query = normalize_rows(np.ones((2, 3), np.float32))
    scores = window_scores(embeddings, np.array([0]), np.array([4]), query, bias)
    np.testing.assert_allclose(scores.scores[:3], 1.0 + np.array([0.2, 0.0, 0.1]), atol=1e-6)
    assert int(scores.best_offset[0]) == 0


def _music(tag_rows: list[list[float]], vectors: list[list[float]]) -> MusicSegments:
    rows = np.array(tag_rows, np.float32)
    count = len(rows)
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(1, count + 1) * 10.0,
        embeddings=np.array(vectors, np.float32),
        tag_probabilities={"MTT": rows[:, :4].copy(), "MSD": rows[:, 4:].copy()},
        tag_names={"MTT": ["drums", "piano", "vocals", "sad"], "MSD": ["female vocalists"]},
    )


class IdentitySpace:
    id = "identity-terms"

    def embed_segments(self, segments):
        return segments.embeddings


def test_suggest_applies_terms_from_the_catalog(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    tracks = {
        "drums.wav": _music([[0.9, 0.1, 0.0, 0.1, 0.0], [0.8, 0.2, 0.0, 0.1, 0.0]], [[1, 0], [1, 0]]),
        "song.wav": _music([[0.1, 0.8, 0.9, 0.7, 0.8]], [[1, 0.05]]),
        "piano.wav": _music([[0.0, 0.9, 0.0, 0.3, 0.0], [0.1, 0.7, 0.1, 0.2, 0.0]], [[1, 0.1], [0.9, 0.2]]),
    }
    run = catalog.start_run(str(tmp_path), "test")
    for name, music in tracks.items():
        fingerprint = Fingerprint(str(tmp_path / name), 1, 1, name, "wav", 10.0 * len(music.starts))
        catalog.write_analysis(fingerprint, "test", music, run)
    ensure_space(catalog, IdentitySpace())
    table = catalog.load_tracks(IdentitySpace.id)
    tags = catalog.segment_tag_matrix(table)
    assert tags.shape == (5, 5)
    names = catalog.tag_names()
    drums_row = table.starts[table.paths.index(str(tmp_path / "drums.wav"))]
    assert tags[drums_row, names.index("MTT:drums")] == pytest.approx(0.9)

    query = np.array([[1.0, 0.0]], np.float32)
    searcher = Searcher(catalog)  # no bundle: ranked in the given space
    plain = [r.path.rsplit("/", 1)[-1] for r in searcher.rank(query, top=3, space_id=IdentitySpace.id)]
    assert plain[0] == "drums.wav"  # the embedding alone prefers the drum track
    terms = parse_prompt("+piano -drums no vocals")
    ranked = searcher.rank(query, terms=terms, top=3, space_id=IdentitySpace.id)
    assert [r.path.rsplit("/", 1)[-1] for r in ranked] == ["piano.wav", "song.wav", "drums.wav"]
    # A prompt made only of terms ranks by tags alone.
    only = searcher.rank(None, terms=parse_prompt("+vocals^2"), top=3, space_id=IdentitySpace.id)
    assert only[0].path.endswith("song.wav")
    with pytest.raises(UserFacingError):
        searcher.rank(None, terms=parse_prompt("calm"), top=3, space_id=IdentitySpace.id)
    catalog.close()


def test_suggest_header_names_bundle_kind_and_terms():
    zero_shot = SearchResult([], parse_prompt("piano^2, no vocals"), "zs", "zero-shot", reads_pictures=False)
    assert zero_shot.header == "bundle: zs (zero-shot, prompt only); prompt terms: piano +2, any vocals −1"
    trained = SearchResult([], parse_prompt("calm"), "mine", "trained", reads_pictures=True)
    assert trained.header == "bundle: mine (trained)"
