"""The torch-free CLIP tokenizer gives exactly open_clip's token ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from viml.engine.runtime.clip_tokenizer import ClipTokenizer

open_clip = pytest.importorskip("open_clip")

TEXTS = [
    "a dog",
    "",
    "   lots   of\twhite\nspace  ",
    "Épée & naïve café — “quotes” and ‘apostrophes’!!",
    "日本語のテキスト と 中文 🎵🎶 emoji",
    "It&amp;#39;s HTML &lt;escaped&gt; text",
    "don't STOP me now, we'll've it'd",
    "numbers 3.14159 and 2024-01-01 and 1,000,000",
    "mojibake: cafÃ© faÃ§ade",
    "x" * 400,
    " ".join(["energetic rock with guitars"] * 40),  # > 77 tokens: truncated, last token end-of-text
]


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(Path(open_clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz"))


def test_same_ids_as_open_clip(tokenizer: ClipTokenizer) -> None:
    expected = open_clip.get_tokenizer("ViT-B-32")(TEXTS).numpy()
    actual = tokenizer(TEXTS)
    assert actual.dtype == np.int64 and actual.shape == (len(TEXTS), 77)
    np.testing.assert_array_equal(actual, expected)


def test_truncation_ends_with_end_of_text(tokenizer: ClipTokenizer) -> None:
    row = tokenizer(TEXTS[-1])[0]
    assert row[0] == tokenizer.sot_token_id and row[-1] == tokenizer.eot_token_id
    assert (row != 0).all()


def test_other_context_length(tokenizer: ClipTokenizer) -> None:
    expected = open_clip.get_tokenizer("ViT-B-32")(TEXTS[:4], context_length=16).numpy()
    np.testing.assert_array_equal(tokenizer(TEXTS[:4], context_length=16), expected)
