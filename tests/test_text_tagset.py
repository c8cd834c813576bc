"""The tag table and the step from tagger probabilities to concepts."""

from __future__ import annotations

import ast
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from viml.engine.text.tagset import (
    TagDataError,
    active_concepts,
    active_tags,
    contradictions,
    load_table,
    mentions,
)

MUSICNN_WHEEL = Path("/root/.cache/viml/wheels/musicnn-0.1.0-py3-none-any.whl")


def test_table_covers_both_musicnn_vocabularies_exactly():
    if not MUSICNN_WHEEL.exists():
        pytest.skip("musicnn wheel not in the local cache")
    source = zipfile.ZipFile(MUSICNN_WHEEL).read("musicnn/configuration.py").decode()
    labels = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and node.targets[0].id in ("MTT_LABELS", "MSD_LABELS")
    }
    table = load_table()
    assert list(table.vocabularies["MTT"]) == labels["MTT_LABELS"]
    assert list(table.vocabularies["MSD"]) == labels["MSD_LABELS"]


def test_table_is_consistent():
    table = load_table()
    for key, concept in table.concepts.items():
        assert concept.text and concept.mentions, key
        for other in concept.contradicts:
            assert key in table.concepts[other].contradicts, (key, other)  # symmetric
    used = {key for vocabulary in table.vocabularies.values() for key in vocabulary.values()}
    assert used == set(table.concepts)  # no concept without a tag


def test_threshold_merging_and_order():
    probabilities = {
        "MTT": {"piano": 0.8, "female": 0.4, "woman": 0.6, "drums": 0.29, "slow": 0.3},
        "MSD": {"female vocalists": 0.5, "jazz": 0.1},
    }
    facts = active_concepts(probabilities, threshold=0.3)
    assert [f.concept.key for f in facts] == ["piano", "female vocals", "slow"]
    female = facts[1]
    assert female.probability == 0.6 and set(female.tags) == {"female", "woman", "female vocalists"}


def test_contradictions_keep_the_more_probable_concept():
    facts = active_concepts({"MTT": {"slow": 0.7, "fast": 0.4, "no vocals": 0.5, "singing": 0.6}})
    keys = [f.concept.key for f in facts]
    assert keys == ["slow", "vocals"]


def test_nothing_above_threshold_keeps_the_best_tag():
    facts = active_concepts({"MTT": {"techno": 0.2, "rock": 0.05}})
    assert [f.concept.key for f in facts] == ["techno"]
    assert active_tags({"MTT": {"techno": 0.2, "rock": 0.05}}) == [("techno", 0.2)]


def test_tags_are_deduplicated_across_vocabularies():
    tags = active_tags({"MTT": {"rock": 0.5, "guitar": 0.9}, "MSD": {"rock": 0.7}})
    assert tags == [("guitar", 0.9), ("rock", 0.7)]


def test_unknown_tags_and_flat_mappings_and_numpy_values():
    facts = active_concepts({"piano": np.float32(0.9), "Theremin": 0.8})
    assert [f.concept.key for f in facts] == ["piano", "theremin"]
    assert facts[1].concept.type == "other"


@pytest.mark.parametrize(
    "bad",
    [
        "piano",
        {"MTT": {"piano": "high"}},
        {"MTT": {"piano": 1.5}},
        {"MTT": {"piano": math.nan}},
        {"MTT": ["piano"]},
        {"MTT": {"piano": True}},
    ],
)
def test_malformed_probabilities_raise_a_clear_error(bad):
    with pytest.raises(TagDataError):
        active_concepts(bad)


def test_mentions_respect_negation_and_word_boundaries():
    table = load_table()
    vocals, male = table.concept("vocals"), table.concept("male vocals")
    assert mentions("A song with soaring vocals.", vocals)
    assert not mentions("A piece with no vocals at all.", vocals)
    assert not mentions("Sung by a woman.", male)  # 'man' inside 'woman' is not a mention
    assert mentions("A man sings softly.", male)


def test_contradictions_in_text():
    table = load_table()
    instrumental = [table.concept("instrumental"), table.concept("piano")]
    assert contradictions("Solo piano with a female singer.", instrumental) == ["female vocals", "vocals"]
    assert contradictions("Solo piano without vocals.", instrumental) == []
    assert contradictions("A fast and happy tune.", [table.concept("slow"), table.concept("sad")]) == [
        "fast",
        "happy",
    ]
