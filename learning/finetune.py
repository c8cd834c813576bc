"""Fine-tuning the ViML towers on your own edits: the hold-out by project, then `training.train`.

The start is the bundle in use: its towers' own weights (`towers.safetensors` in trained and demo
bundles), or a fresh small model (training/model_configs) for a zero-shot bundle or with `fresh`.
One epoch is one pass over the training pairs in batches; a checkpoint is written after every epoch
(safetensors + JSON), and a rerun with the same inputs resumes from the last one.

With validation pairs (`fine_tune_best`), every epoch is scored on them and the best epoch is kept, not
the last: a few hundred pairs are soon learnt by heart, and a small set overfits within a few epochs.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from viml.core.errors import UserFacingError
from viml.learning.pairs import EditPair
from viml.training.features import FeatureSet
from viml.training.model import ViMLConfig
from viml.training.train import STATE_JSON, TrainConfig, train

if TYPE_CHECKING:
    from viml.training.metrics import RetrievalResult

FRESH_MODEL = "viml-small"  # training/model_configs/viml-small.json: sized for CPU and small sets
VALIDATION_JSON = "validation.json"  # the per-epoch validation scores of a run, and its best epoch
BEST_CHECKPOINT = "best.safetensors"


@dataclass(frozen=True)
class FineTuneConfig:
    epochs: int = 40
    batch_size: int = 32
    # Fine-tuning moves trained weights less than training from scratch does.
    learning_rate: float = 1e-4
    fresh_learning_rate: float = 5e-4
    window_segments: int = 3
    text_methods: tuple[str, ...] = ("tags", "data2text")
    seed: int = 0
    device: str = "auto"  # CUDA when torch sees one, else CPU

    def train_config(self, train_pairs: int, fresh: bool) -> TrainConfig:
        batch = max(2, min(self.batch_size, train_pairs))
        per_epoch = math.ceil(train_pairs / batch)
        steps = self.epochs * per_epoch
        return TrainConfig(
            steps=steps,
            batch_size=batch,
            learning_rate=self.fresh_learning_rate if fresh else self.learning_rate,
            warmup_steps=max(1, steps // 10),
            window_segments=self.window_segments,
            text_methods=list(self.text_methods),
            seed=self.seed,
            checkpoint_every=per_epoch,
            device=self.device,
        )


def split_by_project(
    pairs: Sequence[EditPair],
    holdout: float,
    seed: int = 0,
    holdout_projects: Iterable[str] | None = None,
) -> set[str]:
    """The projects held out for evaluation: never split, so one project's clips sit on one side only.

    Projects are drawn in a seeded order until their pairs make up at least `holdout` of all pairs; at
    least one project stays for training. `holdout_projects` names them instead. Fewer than two
    projects: nothing is held out.
    """
    if not 0.0 <= holdout < 1.0:
        raise UserFacingError(f"the hold-out share must be at least 0 and below 1, got {holdout}")
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.project] = counts.get(pair.project, 0) + 1
    if holdout_projects is not None:
        chosen = set(holdout_projects)
        unknown = sorted(chosen - set(counts))
        if unknown:
            raise UserFacingError(f"no pairs come from the held-out project(s) {', '.join(unknown)}")
        if chosen == set(counts):
            raise UserFacingError("every project is held out: leave at least one to train on")
        return chosen
    if len(counts) < 2 or holdout == 0.0:
        return set()
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    total, held = sum(counts.values()), 0
    chosen = set()
    for project in order[:-1]:  # the last one always trains
        if held >= holdout * total:
            break
        chosen.add(project)
        held += counts[project]
    return chosen


def fine_tune(
    features: FeatureSet,
    model_config: ViMLConfig,
    config: FineTuneConfig,
    run_dir: Path,
    start: Path | None,
    provenance: dict[str, str] | None = None,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> Path:
    """Train on the items of split "train" into `run_dir` (resuming a run there), from the checkpoint
    `start` (None: a fresh model); returns the checkpoint. `stop_after_epochs` ends early (resumable)."""
    train_pairs = len(features.split("train"))
    if train_pairs < 2:
        raise UserFacingError(
            f"{train_pairs} usable training pair(s): learning needs at least two (each pair's music is the "
            "others' negative)"
        )
    train_config = config.train_config(train_pairs, fresh=start is None)
    stop = stop_after_epochs * train_config.checkpoint_every if stop_after_epochs else None
    return train(
        features,
        model_config,
        train_config,
        run_dir,
        progress=progress,
        provenance=provenance,
        stop_at_step=stop,
        init_from=start,
    )


def epochs_done(run_dir: Path, steps_per_epoch: int) -> int:
    """Whole epochs a run folder holds (0 when it holds none)."""
    state = run_dir / STATE_JSON
    if not state.is_file():
        return 0
    return int(json.loads(state.read_text())["step"]) // max(1, steps_per_epoch)


@dataclass
class EpochChoice:
    """The epoch `fine_tune_best` kept, and how every epoch scored on the validation pairs."""

    checkpoint: Path
    epoch: int
    history: list[dict] = field(default_factory=list)  # epoch (0: the start), median rank, R@10
    stopped_early: bool = False

    @property
    def best(self) -> dict:
        return next(row for row in self.history if row["epoch"] == self.epoch)

    @property
    def start(self) -> dict | None:
        return next((row for row in self.history if row["epoch"] == 0), None)


def _rank(row: dict) -> tuple[float, float]:
    """Order of epochs: more validation music in the top 10 (what an editor sees), then median rank."""
    return -row["R@10"], row["median rank"]


def fine_tune_best(
    features: FeatureSet,
    model_config: ViMLConfig,
    config: FineTuneConfig,
    run_dir: Path,
    start: Path | None,
    validate: Callable[[Path], RetrievalResult],
    provenance: dict[str, str] | None = None,
    progress: bool = True,
    patience: int = 10,
) -> EpochChoice:
    """`fine_tune` one epoch at a time, scoring each epoch's checkpoint with `validate` (the validation
    pairs); keeps the best trained epoch and stops once `patience` epochs in a row did no better. The
    start is scored too (epoch 0), for the report. Resumable: the scores so far live in the run folder."""
    from viml.learning.evaluate import metrics_row

    run_dir.mkdir(parents=True, exist_ok=True)
    record_path = run_dir / VALIDATION_JSON
    record = (
        json.loads(record_path.read_text()) if record_path.is_file() else {"history": [], "stopped": False}
    )
    history: list[dict] = record["history"]

    def row(epoch: int, result: RetrievalResult) -> dict:
        metrics = metrics_row(result)
        return {"epoch": epoch, "median rank": metrics["median rank"], "R@10": metrics["R@10"]}

    def save() -> None:
        temporary = record_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, record_path)

    if start is not None and not history:
        history.append(row(0, validate(start)))
        save()
    trained = [r for r in history if r["epoch"] > 0]
    best = min(trained, key=lambda r: (*_rank(r), r["epoch"])) if trained else None
    epoch = trained[-1]["epoch"] if trained else 0
    while not record["stopped"] and epoch < config.epochs:
        epoch += 1
        checkpoint = fine_tune(
            features, model_config, config, run_dir, start, provenance, progress, stop_after_epochs=epoch
        )
        scored = row(epoch, validate(checkpoint))
        if best is None or _rank(scored) < _rank(best):
            temporary = run_dir / (BEST_CHECKPOINT + ".tmp")
            shutil.copyfile(checkpoint, temporary)
            os.replace(temporary, run_dir / BEST_CHECKPOINT)
            best = scored
        history.append(scored)
        assert best is not None
        record["stopped"] = epoch - best["epoch"] >= patience and epoch < config.epochs
        save()
    assert best is not None
    return EpochChoice(run_dir / BEST_CHECKPOINT, best["epoch"], history, record["stopped"])
