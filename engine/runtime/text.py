"""Prompt → L2-normalised embedding with onnxruntime: CLIP's text tower or all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from viml.engine.runtime.clip_tokenizer import ClipTokenizer

if TYPE_CHECKING:
    import onnxruntime


class MiniLMTokenizer:
    """WordPiece via the `tokenizers` package and the model's own tokenizer.json, as sentence-transformers
    calls it: truncate at `max_length` (256 for all-MiniLM-L6-v2, not the file's 128), pad to the longest."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask


class OnnxTextEncoder:
    """Batched text encoding; `name` and `embed_dim` match the torch side's TextEncoder protocol."""

    def __init__(
        self,
        name: str,
        session: onnxruntime.InferenceSession,
        tokenizer: ClipTokenizer | MiniLMTokenizer,
        embed_dim: int,
        batch_size: int = 64,
    ) -> None:
        self.name = name
        self.session = session
        self.tokenizer = tokenizer
        self.embed_dim = embed_dim
        self.batch_size = batch_size
        self._input_names = [node.name for node in session.get_inputs()]

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        outputs = [np.zeros((0, self.embed_dim), np.float32)]
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            if isinstance(self.tokenizer, ClipTokenizer):
                feeds = {self._input_names[0]: self.tokenizer(batch)}
            else:
                ids, mask = self.tokenizer(batch)
                feeds = {"input_ids": ids, "attention_mask": mask}
            outputs.append(self.session.run(None, feeds)[0].astype(np.float32, copy=False))
        return np.concatenate(outputs)
