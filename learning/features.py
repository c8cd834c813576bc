"""Training features of harvested edit pairs, computed with the bundle's own encoders.

Per pair:  video span ─the bundle's frame encoder (6 fps, cached by the run time)─▶ mean per 10 s segment
           music file ─catalog (segments stored at scan time, never decoded again)─▶ the segments from the
                       music offset on, as many as the video has
           the music window's tags ─text synthesis (tags, data2text; prompt2text with an LLM server)─▶
                       texts ─the bundle's text encoder─▶ text embeddings (dropped at p = 0.8 in training)

A pair whose music is not catalogued, or was analysed for another bundle's music model, or whose video
cannot be read, is skipped with the reason; nothing else stops the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from viml.core.errors import UserFacingError
from viml.engine.vectors import segment_means
from viml.learning.pairs import EditPair, Skipped
from viml.training.extract import TEXTS_PER_ITEM, embed_texts, synthesize_texts, track_tags
from viml.training.features import FeatureSet, ItemFeatures

if TYPE_CHECKING:
    from viml.catalog.store import Catalog
    from viml.engine.music.types import MusicSegments
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.engine.text.llm import ChatClient

log = logging.getLogger(__name__)

TEXT_METHODS = ("tags", "data2text")  # always; prompt2text joins them when an LLM server is configured
MINILM_ROLE = "text_encoder"


@dataclass
class LearnSet:
    """The usable pairs as a feature set (item id = `pair_id`), with what evaluation needs to rank them."""

    features: FeatureSet
    pairs: dict[str, EditPair]  # item id -> the pair
    music_hash: dict[str, str]  # item id -> content hash of its music in the catalog
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. why prompt2text was left out

    def items(self, split: str) -> list[ItemFeatures]:
        return self.features.split(split)

    @property
    def music_dim(self) -> int:
        return self.features.music_dim


def pair_id(pair: EditPair) -> str:
    """A stable id of one pair (its fields), so reruns with the same edits give the same items."""
    return hashlib.sha256(json.dumps(pair.as_dict(), sort_keys=True).encode("utf-8")).hexdigest()[:16]


def text_role(bundle: RuntimeBundle) -> str:
    """The text encoder training texts go through: the one the bundle's towers read prompts with, and
    MiniLM for a zero-shot bundle (its CLIP text tower, when present, is not what new towers are trained
    with: `viml train` and the demo use MiniLM too)."""
    return bundle.prompt_role if bundle.towers is not None else MINILM_ROLE


def pair_features(
    pairs: Sequence[EditPair],
    bundle: RuntimeBundle,
    catalog: Catalog,
    seed: int = 0,
    client: ChatClient | None = None,
    max_segments: int | None = None,
    progress: bool = True,
) -> LearnSet:
    """Features of every usable pair (all with split "train"; the hold-out is chosen afterwards)."""
    from tqdm import tqdm

    bundle.frame_encoder  # a bundle without one says how to get one, before any work  # noqa: B018
    analysis_id = bundle.analysis.analysis_id
    segments_of: dict[str, MusicSegments] = {}
    items: list[ItemFeatures] = []
    kept: dict[str, EditPair] = {}
    hashes: dict[str, str] = {}
    skipped: list[Skipped] = []
    for pair in tqdm(pairs, desc="features", unit="pair", disable=not progress, leave=False):
        item_id = pair_id(pair)
        if item_id in kept:
            skipped.append(Skipped(pair.project, _clip_name(pair), "the same pair appears twice; used once"))
            continue
        track = catalog.track(pair.music)
        if track is None:
            why = f"its music {pair.music} is not in the catalog: scan its folder first (`viml scan FOLDER`)"
            skipped.append(Skipped(pair.project, _clip_name(pair), why))
            continue
        if catalog.content_analyzer(track.hash) != analysis_id:
            why = (
                f"its music {pair.music} was analysed for another music model or segment rules than bundle "
                f"{bundle.name!r} reads: rescan its folder with `viml scan FOLDER --bundle {bundle.name}`"
            )
            skipped.append(Skipped(pair.project, _clip_name(pair), why))
            continue
        if track.hash not in segments_of:
            segments_of[track.hash] = catalog.music_segments(track.hash)
        music = segments_of[track.hash]
        first = music_window_start(music.starts, pair.music_offset, bundle.analysis.segment_seconds)
        if first is None:
            why = f"the music offset {pair.music_offset:.1f} s is past the end of {pair.music}"
            skipped.append(Skipped(pair.project, _clip_name(pair), why))
            continue
        try:
            frames = bundle.clips.clip_embeddings(pair.video, pair.video_in, pair.video_out)
        except (UserFacingError, ValueError) as error:
            skipped.append(Skipped(pair.project, _clip_name(pair), f"its video cannot be read: {error}"))
            continue
        frames = frames[: max_segments or len(frames)]
        if not frames:
            skipped.append(Skipped(pair.project, _clip_name(pair), "the video span holds no frames"))
            continue
        # The whole span is the query; training pairs its first segments with the music's (make_batch).
        window = slice(first, first + min(len(frames), len(music.starts) - first))
        tags = track_tags({v: p[window] for v, p in music.tag_probabilities.items()}, music.tag_names)
        texts = synthesize_texts(tags, item_id, TEXT_METHODS, seed)
        video = segment_means(frames)
        items.append(ItemFeatures(item_id, "train", video, music.embeddings[window].copy(), texts, {}, tags))
        kept[item_id] = pair
        hashes[item_id] = track.hash
    notes = _add_prompt2text(items, client, seed) if client is not None and items else []
    role = text_role(bundle)
    embed_texts(items, bundle.text_encoder(role))
    provenance = {
        "pairs": "your past edits (viml learn)",
        "frame_encoder": f"bundle {bundle.name!r} frame encoder ({bundle.file_hash('frame_encoder')[:12]})",
        "text_encoder": f"bundle {bundle.name!r} {role} ({bundle.file_hash(role)[:12]})",
        "music_model": f"catalog segments, analysis {analysis_id}",
    }
    features = FeatureSet(
        items, provenance, segment_seconds=bundle.analysis.segment_seconds, fps=bundle.analysis.fps
    )
    return LearnSet(features, kept, hashes, skipped, notes)


def music_window_start(starts: np.ndarray, offset: float, segment_seconds: float) -> int | None:
    """The catalogued segment the music window starts at: the one whose start is nearest the offset
    (segments sit on a fixed grid from the track's start; an edit's offset rarely falls on it)."""
    if len(starts) == 0 or offset >= float(starts[-1]) + segment_seconds:
        return None
    return int(np.argmin(np.abs(np.asarray(starts) - offset)))


def _add_prompt2text(items: list[ItemFeatures], client: ChatClient, seed: int) -> list[str]:
    """prompt2text texts through the configured language model server; a server that fails is reported
    and training goes on with the other methods."""
    from viml.engine.text.synthesis import synthesize_collection

    try:
        texts, failed = synthesize_collection(
            {item.id: item.tags for item in items}, "prompt2text", TEXTS_PER_ITEM, seed, client=client
        )
    except UserFacingError as error:
        return [f"prompt2text left out: {error}"]
    for item in items:
        item.texts["prompt2text"] = texts.get(item.id, [])
    return [f"prompt2text: texts for {len(texts)} pairs, none for {len(failed)}"]


def llm_client() -> ChatClient | None:
    """The configured language model client (VIML_LLM_URL/VIML_LLM_MODEL or settings), else None."""
    from viml.engine.text.llm import ChatClient, LLMConfig, LLMNotConfiguredError

    try:
        return ChatClient(LLMConfig.from_env())
    except LLMNotConfiguredError:
        return None


def _clip_name(pair: EditPair) -> str:
    return f"{pair.video} {pair.video_in:.2f}-{pair.video_out:.2f} s"
