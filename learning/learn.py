"""`viml learn` end to end: harvested pairs → features → fine-tuned towers → a trained bundle → held-out
metrics for it and for the bundle it started from → the default, unless it does worse.

A run's folder (cache/learn/<key>) is named by everything that decides its result: the pairs (with their
music's content and side of the hold-out), the start bundle's hash, the model and the training settings.
A rerun with the same inputs resumes its last epoch, or, when training had finished, reuses it; an export
already made from the same run is reused too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viml.core.errors import UserFacingError
from viml.core.paths import cache_dir
from viml.learning.bundle import export_learned, record_evaluation, refusal, start_checkpoint, trained_on_text
from viml.learning.evaluate import POOL_WORDS, evaluate_bundle, metrics_row
from viml.learning.features import LearnSet, llm_client, pair_features, text_role
from viml.learning.finetune import FRESH_MODEL, FineTuneConfig, fine_tune, fine_tune_best, split_by_project
from viml.learning.pairs import EditPair, Skipped
from viml.training.model import ViMLConfig

if TYPE_CHECKING:
    from viml.catalog.store import Catalog
    from viml.engine.runtime.bundle import RuntimeBundle
    from viml.training.metrics import RetrievalResult

log = logging.getLogger(__name__)

RUN_VERSION = 2  # raise when what a run computes changes, so old run folders are not resumed
# Validation ranks each clip's music among its own tracks and at most this many others from the catalog:
# scored every epoch, it must stay cheap in a library of 20,000 tracks.
VALIDATION_POOL = 1000
MIN_TRAINING_PROJECTS_FOR_VALIDATION = 3  # two stay for training, one validates


class TooFewPairsError(UserFacingError):
    """Fewer than two usable pairs; `skipped` says why each of the others could not be used."""

    def __init__(self, message: str, skipped: list[Skipped]) -> None:
        super().__init__(message)
        self.skipped = skipped


@dataclass(frozen=True)
class LearnOptions:
    holdout: float = 0.2
    holdout_projects: tuple[str, ...] | None = None
    # Share of the training pairs (whole projects) that choose the best epoch; 0: the last epoch is kept.
    validation: float = 0.2
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)
    fresh: bool = False  # new towers on the bundle's encoders even when it has trained ones
    fresh_model: str = FRESH_MODEL  # the size of new towers (training/model_configs/NAME.json)
    fresh_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. a tiny width for tests
    out: str | None = None  # the new bundle's name (default learned-<run key>)
    force: bool = False  # replace a bundle of that name made from another run
    make_default: bool = True  # when it does no worse than its start on the held-out edits
    output_dir: Path | None = None  # where bundles go (default the bundles folder)
    use_llm: bool = True  # prompt2text texts when a language model server is configured


@dataclass
class LearnReport:
    pairs_found: int
    skipped: list[Skipped]
    pairs_used: int
    train_pairs: int
    train_projects: int
    heldout_pairs: int
    heldout_projects: list[str]
    base: str
    start: str  # "fine-tuned from bundle 'demo'" / "a fresh viml-small model"
    bundle: Path
    new: RetrievalResult | None
    old: RetrievalResult | None
    made_default: bool
    default_why: str
    notes: list[str]
    validation_pairs: int = 0
    validation_projects: int = 0
    chosen_epoch: int | None = None  # the epoch kept (best on the validation pairs); None: the last
    validation_history: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def row(result: RetrievalResult | None) -> dict | None:
            return metrics_row(result) if result is not None else None

        return {
            "pairs found": self.pairs_found,
            "pairs used": self.pairs_used,
            "skipped": [s.as_dict() for s in self.skipped],
            "training pairs": self.train_pairs,
            "training projects": self.train_projects,
            "held-out pairs": self.heldout_pairs,
            "held-out projects": self.heldout_projects,
            "validation pairs": self.validation_pairs,
            "validation projects": self.validation_projects,
            "chosen epoch": self.chosen_epoch,
            "validation by epoch": self.validation_history,
            "start bundle": self.base,
            "start": self.start,
            "bundle": self.bundle.name,
            "bundle folder": str(self.bundle),
            "pool": POOL_WORDS,
            "held-out metrics, new bundle": row(self.new),
            "held-out metrics, start bundle": row(self.old),
            "made default": self.made_default,
            "default decision": self.default_why,
            "notes": self.notes,
        }


def learn(
    pairs: Sequence[EditPair],
    skipped: Sequence[Skipped],
    bundle: RuntimeBundle,
    catalog: Catalog,
    options: LearnOptions | None = None,
    progress: bool = True,
) -> LearnReport:
    options = options or LearnOptions()
    client = llm_client() if options.use_llm else None
    start = None if options.fresh else start_checkpoint(bundle)
    start_config = _checkpoint_config(start) if start is not None else None
    try:
        learned = pair_features(
            pairs,
            bundle,
            catalog,
            seed=options.fine_tune.seed,
            client=client,
            max_segments=start_config.max_segments if start_config else None,
            progress=progress,
        )
    finally:
        if client is not None:
            client.close()
    skipped = [*skipped, *learned.skipped]
    usable = list(learned.pairs.values())
    if len(usable) < 2:
        raise TooFewPairsError(
            f"{len(usable)} usable pair(s) of {len(pairs)} found: learning needs at least two"
            + (f" ({len(skipped)} skipped, each with why above)" if skipped else ""),
            skipped,
        )
    held = split_by_project(usable, options.holdout, options.fine_tune.seed, options.holdout_projects)
    for item in learned.features.items:
        item.split = "test" if learned.pairs[item.id].project in held else "train"
    validating = _validation_split(learned, options)
    model_config = start_config or _fresh(bundle, learned, options)
    key = run_key(learned, bundle, start is not None, model_config, options.fine_tune)
    run_dir = cache_dir() / "learn" / key
    train_items = learned.items("train")
    train_projects = {learned.pairs[item.id].project for item in train_items}
    fresh_words = f"a fresh {options.fresh_model} model"
    start_words = fresh_words if start is None else f"fine-tuned from bundle {bundle.name!r}"
    provenance = {**learned.features.provenance, "trained_on": f"{len(train_items)} pairs from your edits"}
    choice = None
    if validating:
        validate = _validator(learned, catalog, bundle, options.fine_tune.seed)
        choice = fine_tune_best(
            learned.features, model_config, options.fine_tune, run_dir, start, validate, provenance, progress
        )
        checkpoint = choice.checkpoint
        learned.notes.append(_choice_note(choice, options.fine_tune.epochs))
    else:
        checkpoint = fine_tune(
            learned.features, model_config, options.fine_tune, run_dir, start, provenance, progress
        )
    name = options.out or f"learned-{key[:8]}"
    summary = {
        "pairs": len(train_items),
        "projects": len(train_projects),
        "held-out pairs": len(learned.items("test")),
        "held-out projects": sorted(held),
        "start bundle": {"name": bundle.name, "kind": bundle.kind, "bundle_hash": bundle.bundle_hash},
        "start": start_words,
        "epochs": options.fine_tune.epochs,
        "validation pairs": len(learned.items("val")),
        "chosen epoch": choice.epoch if choice else None,
        "validation by epoch": choice.history if choice else [],
        "run": key,
    }
    folder = _existing_export(name, key, options.output_dir)
    if folder is None:
        folder = export_learned(
            bundle,
            checkpoint,
            name,
            text_role(bundle),
            trained_on_text(
                len(train_items), len(train_projects), bundle, start is None, options.fresh_model
            ),
            summary,
            output_dir=options.output_dir,
            force=options.force,
        )
    new, old, why = _evaluate_and_decide(folder, bundle, catalog, learned)
    made_default = False
    if why is None:
        if options.make_default and options.output_dir is None:
            from viml.engine.bundles.store import set_default_bundle

            set_default_bundle(name)
            made_default, why = True, "it does no worse than its start on the held-out edits: now the default"
        else:
            why = "it does no worse than its start on the held-out edits (the default was left as it was)"
    evaluation = {
        "pool": POOL_WORDS,
        "new bundle": metrics_row(new) if new else None,
        "start bundle": metrics_row(old) if old else None,
        "made default": made_default,
        "why": why,
    }
    record_evaluation(folder, evaluation)
    return LearnReport(
        pairs_found=len(pairs),
        skipped=skipped,
        pairs_used=len(usable),
        train_pairs=len(train_items),
        train_projects=len(train_projects),
        heldout_pairs=len(learned.items("test")),
        heldout_projects=sorted(held),
        base=bundle.name,
        start=start_words,
        bundle=folder,
        new=new,
        old=old,
        made_default=made_default,
        default_why=why,
        notes=learned.notes,
        validation_pairs=len(learned.items("val")),
        validation_projects=len({learned.pairs[i.id].project for i in learned.items("val")}),
        chosen_epoch=choice.epoch if choice else None,
        validation_history=choice.history if choice else [],
    )


def _evaluate_and_decide(
    folder: Path, base: RuntimeBundle, catalog: Catalog, learned: LearnSet
) -> tuple[RetrievalResult | None, RetrievalResult | None, str | None]:
    """Held-out metrics of the new and the start bundle, and why the new one may not be the default
    (None: it may)."""
    from viml.engine.runtime import open_bundle

    items = learned.items("test")
    if not items:
        return (
            None,
            None,
            (
                "nothing was held out (the pairs come from one project, or --holdout 0), so it cannot be "
                "compared with its start: not made the default; learn from two or more projects"
            ),
        )
    heldout = [learned.pairs[item.id] for item in items]
    truths = [learned.music_hash[item.id] for item in items]
    new_bundle = open_bundle(folder, provider=base.provider, threads=base.threads)
    new = evaluate_bundle(new_bundle, catalog, heldout, truths)
    old = evaluate_bundle(base, catalog, heldout, truths)
    reason = refusal(new, old, base.name)
    return new, old, (f"not made the default: {reason}" if reason else None)


def _validation_split(learned: LearnSet, options: LearnOptions) -> bool:
    """Move a share of the training projects to split "val" (whole projects, like the hold-out); False
    when there are too few projects to spare one."""
    train = [learned.pairs[item.id] for item in learned.items("train")]
    if options.validation <= 0 or len({p.project for p in train}) < MIN_TRAINING_PROJECTS_FOR_VALIDATION:
        return False
    chosen = split_by_project(train, options.validation, options.fine_tune.seed + 1)
    for item in learned.items("train"):
        if learned.pairs[item.id].project in chosen:
            item.split = "val"
    return bool(chosen)


def _validator(learned: LearnSet, catalog: Catalog, bundle: RuntimeBundle, seed: int):
    """Scores a checkpoint on the validation pairs: each clip's music among the validation tracks and at
    most VALIDATION_POOL other catalogued tracks (a seeded sample), as the held-out evaluation ranks."""
    import random

    from viml.learning.evaluate import analysed_contents, evaluate_model
    from viml.training.model import load_checkpoint

    items = learned.items("val")
    truths = [learned.music_hash[item.id] for item in items]
    analysis_id = bundle.analysis.analysis_id
    others = sorted(set(analysed_contents(catalog, analysis_id)) - set(truths))
    pool = sorted(set(truths) | set(random.Random(seed).sample(others, min(VALIDATION_POOL, len(others)))))

    def validate(checkpoint: Path) -> RetrievalResult:
        model, _ = load_checkpoint(checkpoint)
        return evaluate_model(model, catalog, analysis_id, items, truths, pool)

    return validate


def _choice_note(choice, epochs: int) -> str:
    best, start = choice.best, choice.start
    text = (
        f"kept epoch {choice.epoch} of {epochs}: the best on the validation edits (R@10 {best['R@10']:.1f}%, "
        f"median rank {best['median rank']:g}"
    )
    if start is not None:
        text += f"; the start: {start['R@10']:.1f}%, {start['median rank']:g}"
    text += ")"
    if choice.stopped_early:
        text += f"; stopped after epoch {choice.history[-1]['epoch']}: no better epoch since"
    return text


def run_key(
    learned: LearnSet,
    bundle: RuntimeBundle,
    from_start: bool,
    model_config: ViMLConfig,
    config: FineTuneConfig,
) -> str:
    content = {
        "version": RUN_VERSION,
        "items": sorted((i.id, learned.music_hash[i.id], i.split) for i in learned.features.items),
        "texts": sorted({m for i in learned.features.items for m in i.texts}),
        "bundle": bundle.bundle_hash,
        "from start": from_start,
        "model": asdict(model_config),
        "fine-tune": asdict(config),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def _checkpoint_config(checkpoint: Path) -> ViMLConfig:
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="numpy") as handle:
        return ViMLConfig.from_json((handle.metadata() or {})["viml_config"])


def _fresh(bundle: RuntimeBundle, learned: LearnSet, options: LearnOptions) -> ViMLConfig:
    role = text_role(bundle)
    dims = {
        "video_dim": int(bundle.models["frame_encoder"]["embed_dim"]),
        "text_dim": int(bundle.models[role]["embed_dim"]),
        "music_dim": learned.music_dim,
    }
    try:
        return ViMLConfig.named(options.fresh_model, **dims, **options.fresh_overrides)
    except ValueError as error:
        raise UserFacingError(str(error)) from error


def _existing_export(name: str, key: str, output_dir: Path | None) -> Path | None:
    """The bundle `name` when it was exported from this very run (a rerun), else None."""
    from viml.engine.bundles.manifest import BundleError, read_manifest
    from viml.engine.bundles.store import bundles_dir

    folder = (output_dir or bundles_dir()) / name
    try:
        manifest = read_manifest(folder)
    except BundleError:
        return None
    return folder if (manifest.get("learned") or {}).get("run") == key else None
