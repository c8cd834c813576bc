"""Training text synthesised from music tags (the paper's tags / data2text / prompt2text), and
held-out query text for evaluation. Runs without torch; prompt2text talks HTTP to any
OpenAI-compatible language model server."""

from viml.engine.text.synthesis import (
    METHODS,
    QUERY_METHODS,
    TextFileError,
    load_texts,
    read_tagged,
    sample_text,
    synthesize,
    synthesize_collection,
    write_texts,
)

__all__ = [
    "METHODS",
    "QUERY_METHODS",
    "TextFileError",
    "load_texts",
    "read_tagged",
    "sample_text",
    "synthesize",
    "synthesize_collection",
    "write_texts",
]
