"""Training ViML on a feature cache: AdamW, seeded, resumable, checkpoints in safetensors (never pickle).

Each step draws a batch of distinct video-music pairs, a random window of up to `window_segments`
aligned segments from each (the video and the music of a music video share their timeline), and one
of the item's synthesised texts. The model drops the text with probability `text_dropout`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from viml.training.features import FeatureSet, ItemFeatures
from viml.training.loss import info_nce
from viml.training.model import ViML, ViMLConfig, load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"


@dataclass
class TrainConfig:
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    window_segments: int = 3
    # Synthesised text methods to train with; empty means a video-only model (no text at all).
    text_methods: list[str] = field(default_factory=lambda: ["tags"])
    seed: int = 0
    checkpoint_every: int = 250
    device: str = "auto"


def choose_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def make_batch(
    items: list[ItemFeatures],
    rng: np.random.Generator,
    window: int,
    text_methods: list[str],
    text_dim: int,
    start_at_zero: bool = False,
    text_choice: str = "random",
) -> dict[str, torch.Tensor]:
    """Pad aligned windows of video and music segments, and pick one text per item.

    `start_at_zero` and `text_choice="first"` make evaluation deterministic.
    """
    lengths, starts = [], []
    for item in items:
        available = min(len(item.video), len(item.music))
        length = min(window, available)
        lengths.append(length)
        starts.append(0 if start_at_zero else int(rng.integers(0, available - length + 1)))
    longest = max(lengths)
    batch = len(items)
    video = np.zeros((batch, longest, items[0].video.shape[1]), np.float32)
    music = np.zeros((batch, longest, items[0].music.shape[1]), np.float32)
    mask = np.zeros((batch, longest), bool)
    text = np.zeros((batch, text_dim), np.float32)
    text_present = np.zeros(batch, bool)
    for row, (item, start, length) in enumerate(zip(items, starts, lengths, strict=True)):
        video[row, :length] = item.video[start : start + length]
        music[row, :length] = item.music[start : start + length]
        mask[row, :length] = True
        methods = [m for m in text_methods if len(item.text_embeddings.get(m, ())) > 0]
        if methods:
            method = methods[int(rng.integers(len(methods)))] if text_choice == "random" else methods[0]
            candidates = item.text_embeddings[method]
            text[row] = (
                candidates[int(rng.integers(len(candidates)))] if text_choice == "random" else candidates[0]
            )
            text_present[row] = True
    return {
        "video": torch.from_numpy(video),
        "music": torch.from_numpy(music),
        "mask": torch.from_numpy(mask),
        "text": torch.from_numpy(text),
        "text_present": torch.from_numpy(text_present),
    }


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(
    features: FeatureSet,
    model_config: ViMLConfig,
    config: TrainConfig,
    out_dir: Path,
    progress: bool = True,
    provenance: dict[str, str] | None = None,
    stop_at_step: int | None = None,
    init_from: Path | None = None,
) -> Path:
    """Train (or resume) into `out_dir`; returns the path of the model checkpoint.

    `stop_at_step` ends this run early after a checkpoint (a time-boxed run; the next call resumes).
    `init_from`: start from this checkpoint's weights (fine-tuning; its config must be `model_config`)
    instead of a fresh initialisation; a resumed run continues from its own checkpoint instead.
    """
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    # The checkpoint carries the segment rules its features were cut with: the bundle's analysis spec.
    analysis = {"segment_seconds": features.segment_seconds, "fps": features.fps}
    provenance = {**(provenance or {}), "analysis": json.dumps(analysis)}
    device = choose_device(config.device)
    items = features.split("train")
    if len(items) < 2:
        raise ValueError("training needs at least two training items (InfoNCE needs negatives)")
    batch_size = min(config.batch_size, len(items))

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = ViML(model_config).to(device)
    if init_from is not None:
        start, _ = load_checkpoint(init_from, map_location=device)
        if asdict(start.config) != asdict(model_config):
            raise ValueError(f"{init_from} holds a model of another configuration than the one to train")
        model.load_state_dict(start.state_dict())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    step, losses = 0, []
    if (out_dir / STATE_JSON).exists():
        step, losses, rng = _resume(out_dir, model, optimizer, config, model_config, device)
        log.info("resuming training at step %d of %d", step, config.steps)

    model.train()
    bar = tqdm(total=config.steps, initial=step, desc="train", unit="step", disable=not progress, leave=False)
    last_step = min(config.steps, stop_at_step or config.steps)
    while step < last_step:
        chosen = rng.choice(len(items), size=batch_size, replace=False)
        batch = make_batch(
            [items[i] for i in chosen],
            rng,
            config.window_segments,
            config.text_methods,
            model_config.text_dim,
        )
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config)
        _, query = model.query_tower(batch["video"], batch["mask"], batch["text"], batch["text_present"])
        _, music = model.music_tower(batch["music"], batch["mask"])
        loss = info_nce(query, music, model_config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if step % config.checkpoint_every == 0 or step == last_step:
            _save_state(out_dir, model, optimizer, step, losses, rng, config, model_config, provenance)
    bar.close()
    return out_dir / CHECKPOINT_FILE


def _save_state(
    out_dir: Path,
    model: ViML,
    optimizer: torch.optim.Optimizer,
    step: int,
    losses: list[float],
    rng: np.random.Generator,
    config: TrainConfig,
    model_config: ViMLConfig,
    provenance: dict[str, str] | None,
) -> None:
    """Write model, optimizer and RNG state under temporary names, then rename (never half-written)."""
    from safetensors.torch import save_file

    extra = {"train_config": json.dumps(asdict(config)), "step": str(step), **(provenance or {})}
    save_checkpoint(model, out_dir / (CHECKPOINT_FILE + ".tmp"), extra)
    state = optimizer.state_dict()
    tensors = {"torch_rng": torch.get_rng_state()}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer/{index}/{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    save_file(tensors, str(out_dir / (STATE_FILE + ".tmp")))
    meta = {
        "step": step,
        "losses": losses,
        "numpy_rng": rng.bit_generator.state,
        "param_groups": state["param_groups"],
        "train_config": asdict(config),
        "model_config": asdict(model_config),
    }
    (out_dir / (STATE_JSON + ".tmp")).write_text(json.dumps(meta))
    # The JSON names the step, so it is renamed last: a kill between renames resumes from the older step
    # with newer weights at worst, never from a torn file.
    (out_dir / (CHECKPOINT_FILE + ".tmp")).replace(out_dir / CHECKPOINT_FILE)
    (out_dir / (STATE_FILE + ".tmp")).replace(out_dir / STATE_FILE)
    (out_dir / (STATE_JSON + ".tmp")).replace(out_dir / STATE_JSON)


def _resume(
    out_dir: Path,
    model: ViML,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    model_config: ViMLConfig,
    device: str,
) -> tuple[int, list[float], np.random.Generator]:
    from safetensors.torch import load_file

    meta = json.loads((out_dir / STATE_JSON).read_text())
    if meta["model_config"] != asdict(model_config) or meta["train_config"] != asdict(config):
        raise ValueError(f"{out_dir} holds a run with a different configuration; choose another --out folder")
    saved, _ = load_checkpoint(out_dir / CHECKPOINT_FILE, map_location=device)
    model.load_state_dict(saved.state_dict())
    tensors = load_file(str(out_dir / STATE_FILE))
    torch.set_rng_state(tensors.pop("torch_rng"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/")
        state.setdefault(int(index), {})[key] = value.to(device) if key != "step" else value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["step"]), list(meta["losses"]), rng
