"""prompt2text: exemplar choice, the analogy prompt (golden file), answer parsing and filtering."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from viml.core.errors import UserFacingError
from viml.engine.text.prompt2text import (
    Exemplar,
    build_messages,
    choose_exemplars,
    load_exemplars,
    parse_description,
    rejection_reason,
    write_exemplars,
)
from viml.engine.text.tagset import active_concepts, concepts_from_names

GOLDEN = Path(__file__).parent / "data" / "text_prompt_golden.json"
TAGS = {
    "MTT": {"piano": 0.82, "classical": 0.61, "slow": 0.55, "no vocals": 0.41},
    "MSD": {"sad": 0.35, "Mellow": 0.2},
}


def test_prompt_matches_golden_file():
    """The full prompt for fixed tags, the shipped exemplars and a fixed seed. After an intended change,
    regenerate with VIML_UPDATE_GOLDEN=1 and review the diff."""
    concepts = [fact.concept for fact in active_concepts(TAGS)]
    messages = build_messages(concepts, choose_exemplars(concepts, load_exemplars(), random.Random(0)))
    if os.environ.get("VIML_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(messages, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert messages == json.loads(GOLDEN.read_text(encoding="utf-8"))
    question = messages[-1]["content"].split("\n\n")[-1]
    assert question == "Tags: piano, classical, slow, no vocals, sad\nDescription:"


def test_exemplars_are_chosen_by_tag_overlap():
    pool = [
        Exemplar(("rock", "guitar", "drums"), "rock one"),
        Exemplar(("piano", "classical"), "piano one"),
        Exemplar(("piano", "classical", "slow", "instrumental"), "closest"),
        Exemplar(("techno",), "far one"),
        Exemplar(("metal",), "far two"),
    ]
    concepts = concepts_from_names(["piano", "classical", "slow", "no vocals"])
    for seed in range(10):
        chosen = choose_exemplars(concepts, pool, random.Random(seed), count=2)
        assert len(chosen) == 2  # drawn from the 4 best, so several texts per item get different prompts
        if any(e.description == "closest" for e in chosen):
            assert chosen[-1].description == "closest"  # the nearest sits next to the question
    best = choose_exemplars(concepts, pool, random.Random(0), count=5)
    assert [e.description for e in best][-2:] == ["piano one", "closest"]


def test_shipped_exemplars_use_known_tags():
    exemplars = load_exemplars()
    assert len(exemplars) >= 20
    for exemplar in exemplars:
        assert all(c.type != "other" or c.key in ("beat", "solo") for c in exemplar.concepts()), exemplar.tags


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("  A calm piano piece.  ", "A calm piano piece."),
        ("Description: A calm piano piece.", "A calm piano piece."),
        ('"A calm piano piece."', "A calm piano piece."),
        ("A calm piano piece.\n\nTags: rock, guitar\nDescription: Loud rock.", "A calm piano piece."),
        ("Here is a description:\nA calm piano piece.", "A calm piano piece."),
        ("A calm piano\npiece.", "A calm piano piece."),
        ("**Description:** A calm piano piece.", "A calm piano piece."),
        ("", ""),
    ],
)
def test_parse_description(answer, expected):
    assert parse_description(answer) == expected


def test_rejections():
    concepts = [fact.concept for fact in active_concepts(TAGS)]
    assert rejection_reason("A slow, sad classical piano piece.", concepts) is None
    assert rejection_reason("", concepts) == "empty"
    assert rejection_reason("...", concepts) == "empty"
    assert rejection_reason("word " * 61, concepts) == "overlong"
    assert rejection_reason("A sad piano ballad with a male singer.", concepts).startswith("contradicts")
    assert rejection_reason("A fast, happy piano tune.", concepts) == "contradicts the tags: fast, happy"


def test_exemplar_files_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "mine.json"
    write_exemplars(path, [Exemplar(("piano",), "Soft piano.")])
    assert load_exemplars(path) == [Exemplar(("piano",), "Soft piano.")]
    (tmp_path / "bad.json").write_text('{"something": 1}')
    with pytest.raises(UserFacingError, match="not an exemplar file"):
        load_exemplars(tmp_path / "bad.json")
    with pytest.raises(UserFacingError, match="cannot read"):
        load_exemplars(tmp_path / "missing.json")
