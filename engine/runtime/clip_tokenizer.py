"""CLIP's byte-level BPE tokenizer without torch: the same ids as `open_clip.get_tokenizer('ViT-B-32')`.

open_clip's tokenizer imports torch at module level, so the run time carries its own copy of the
algorithm (from OpenAI CLIP, MIT licence) and reads the BPE merges file that each bundle ships
(`bpe_simple_vocab_16e6.txt.gz`). Cleaning is open_clip's default: ftfy, double HTML unescape,
whitespace collapse, lower case. Output is an int64 array [N, context_length], zero-padded; text longer
than the context is truncated and its last token replaced by end-of-text, exactly like open_clip.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from pathlib import Path

import numpy as np

DEFAULT_CONTEXT_LENGTH = 77
# The 16e6 merges file has 262,144 lines; CLIP uses the first 48,894 merges (vocab 49,408 with specials).
_MERGE_COUNT = 49152 - 256 - 2


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character so BPE never sees whitespace/control bytes."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def _clean(text: str) -> str:
    import ftfy  # imported lazily: ftfy's import costs ~0.1 s and only text queries need it

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    def __init__(self, bpe_path: Path, context_length: int = DEFAULT_CONTEXT_LENGTH) -> None:
        import regex

        with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : _MERGE_COUNT + 1]]
        self.byte_encoder = _bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [symbol + "</w>" for symbol in vocab]
        vocab += ["".join(merge) for merge in merges]
        special_tokens = ["<start_of_text>", "<end_of_text>"]
        vocab += special_tokens
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.bpe_ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.cache: dict[str, str] = {token: token for token in special_tokens}
        self.pattern = regex.compile(
            "|".join(special_tokens) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )
        self.sot_token_id = self.encoder["<start_of_text>"]
        self.eot_token_id = self.encoder["<end_of_text>"]
        self.context_length = context_length
        self.vocab_size = len(self.encoder)

    def _bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word[:-1], word[1:], strict=True))
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in self.pattern.findall(_clean(text)):
            mapped = "".join(self.byte_encoder[byte] for byte in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(mapped).split(" "))
        return ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        result = np.zeros((len(texts), length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(tokens) > length:
                tokens = tokens[:length]
                tokens[-1] = self.eot_token_id
            result[row, : len(tokens)] = tokens
        return result
