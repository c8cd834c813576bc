"""`viml learn` after the harvest: features from the catalog, the hold-out by project, resumable
fine-tuning, the exported bundle's manifest, and the refusal of a bundle that does worse than its start.

The world: eight videos of distinct colours, eight tone files catalogued with RANDOM segment embeddings
(12-d) and tags, so the music features can only have come from the catalog, never from decoding the
audio. The bundle is real: a zero-shot bundle with the tiny random CLIP frame encoder and MiniLM.
"""

from __future__ import annotations

import colorsys
import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest
from viml.catalog.analysis import fingerprint
from viml.catalog.store import Catalog
from viml.catalog.timeline_formats import write
from viml.engine.bundles.manifest import read_manifest
from viml.engine.bundles.store import default_bundle_name, set_default_bundle
from viml.engine.music.types import MusicSegments
from viml.engine.runtime import open_bundle
from viml.learning.pairs import EditPair

from tests.media_factory import write_audio

torch = pytest.importorskip("torch")

COUNT = 8
SEGMENTS = 3  # 30 s of music per track
MUSIC_DIM = 12
FPS = 24
MTT = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano"]
TINY = {
    "width": 32,
    "heads": 2,
    "layers": 1,
    "fusion_layers": 1,
    "embed_dim": 16,
    "max_segments": 8,
    "dropout": 0.0,
}


@dataclass
class World:
    folder: Path
    videos: list[Path]
    music: list[Path]
    base: Path  # the zero-shot bundle folder
    catalog: Path

    def pair(self, project: str, video: int, music: int, offset: float = 0.0) -> EditPair:
        return EditPair(project, str(self.videos[video]), 0.0, 10.0, str(self.music[music]), offset)


def colour_video(path: Path, seconds: float, hue: float, size: tuple[int, int] = (64, 48)) -> Path:
    """Two halves of complementary colours: each video looks different to the frame encoder."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[:, : size[0] // 2] = np.array(colorsys.hsv_to_rgb(hue, 0.9, 0.9)) * 255
    frame[:, size[0] // 2 :] = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1, 0.6, 0.5)) * 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(int(seconds * FPS)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def random_segments(rng: np.random.Generator, count: int = SEGMENTS) -> MusicSegments:
    return MusicSegments(
        starts=np.arange(count) * 10.0,
        ends=np.arange(1, count + 1) * 10.0,
        embeddings=rng.standard_normal((count, MUSIC_DIM)).astype(np.float32),
        tag_probabilities={"MTT": rng.uniform(0, 1, (count, len(MTT))).astype(np.float32)},
        tag_names={"MTT": list(MTT)},
    )


def catalogue(catalog: Catalog, path: Path, analyzer: str, segments: MusicSegments) -> None:
    """Store a file's analysis the way a scan commits it (no music model involved)."""
    run = catalog.start_run(str(path.parent), analyzer)
    catalog.write_analysis(fingerprint(str(path)), analyzer, segments, run)
    catalog.finish_run(run, "done", {})


def write_edit(
    world: World, path: Path, shots: list[tuple[int, int]], music: list[Path] | None = None
) -> Path:
    """A past edit: V1 the clips one after another, A1 under each the music of its shot (an index into
    `music`, default the world's songs) from the start of the song."""
    rate = FPS
    songs = music or world.music
    timeline = otio.schema.Timeline(name=path.stem)
    picture, sound = otio.schema.Track(kind="Video"), otio.schema.Track(kind="Audio")
    for video, song in shots:
        for track, source, length in ((picture, world.videos[video], 10), (sound, songs[song], 30)):
            available = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                otio.opentime.RationalTime(length * rate, rate))  # fmt: skip
            track.append(otio.schema.Clip(
                name=source.name, media_reference=otio.schema.ExternalReference(source.as_uri(), available),
                source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                     otio.opentime.RationalTime(10 * rate, rate))))  # fmt: skip
    timeline.tracks.extend([picture, sound])
    write(timeline, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return make_world(tmp_path_factory.mktemp("learn_world"))


def make_world(folder: Path) -> World:
    from viml.export_onnx.build import build_bundle

    videos = [colour_video(folder / f"clip{i}.mp4", 10, i / COUNT) for i in range(COUNT)]
    music = [
        write_audio(folder / f"song{i}.wav", seconds=30, sample_rate=8000, frequency=220 + 40 * i)
        for i in range(COUNT)
    ]
    base = build_bundle(
        "base", clip="viml-tiny:random", include_music=False, quantize=False, output_dir=folder / "bundles"
    )
    analysis_id = open_bundle(base).analysis.analysis_id
    rng = np.random.default_rng(0)
    with Catalog(folder / "catalog.sqlite") as catalog:
        for path in music:
            catalogue(catalog, path, analysis_id, random_segments(rng))
    return World(folder, videos, music, base, folder / "catalog.sqlite")


def test_features_come_from_the_catalog_segments_and_bad_pairs_are_skipped(world, tmp_path):
    from viml.learning.evaluate import evaluate_bundle
    from viml.learning.features import pair_features

    catalog_path = tmp_path / "catalog.sqlite"
    shutil.copy2(world.catalog, catalog_path)
    bundle = open_bundle(world.base)
    gone = Path(shutil.copy2(world.music[3], tmp_path / "gone.wav"))
    other = Path(shutil.copy2(world.music[4], tmp_path / "other.wav"))
    with open(other, "ab") as handle:
        handle.write(b"\0" * 64)  # other content: another catalog entry
    uncatalogued = tmp_path / "new.wav"
    shutil.copy2(world.music[5], uncatalogued)
    rng = np.random.default_rng(7)
    with Catalog(catalog_path) as catalog:
        catalogue(catalog, gone, bundle.analysis.analysis_id, random_segments(rng))
        catalogue(catalog, other, "another-model-0123", random_segments(rng))
        gone.unlink()  # catalogued, then deleted: its features can only come from the catalog
        pairs = [
            world.pair("a", 0, 0, offset=0.0),
            world.pair("a", 1, 1, offset=14.0),  # nearest catalogued segment starts at 10 s
            world.pair("b", 2, 2, offset=16.0),  # ... at 20 s
            EditPair("b", str(world.videos[3]), 0.0, 10.0, str(gone), 10.0),
            EditPair("c", str(world.videos[4]), 0.0, 10.0, str(uncatalogued), 0.0),
            EditPair("c", str(world.videos[5]), 0.0, 10.0, str(other), 0.0),
            EditPair("c", str(tmp_path / "missing.mp4"), 0.0, 10.0, str(world.music[6]), 0.0),
            world.pair("c", 7, 7, offset=45.0),  # past the 30 s track
        ]
        learned = pair_features(pairs, bundle, catalog, progress=False)
        stored = {p: catalog.music_segments(catalog.track(p).hash) for p in (*world.music[:3], gone)}
        # The zero-shot start ranks in its own space over every content analysed for its music model: the
        # eight (the deleted copy of song3 shares its content and counts once), not the one analysed by
        # another model.
        kept = [learned.pairs[item.id] for item in learned.features.items]
        truths = [learned.music_hash[item.id] for item in learned.features.items]
        assert evaluate_bundle(bundle, catalog, kept, truths).pool_size == COUNT

    used = [learned.pairs[item.id] for item in learned.features.items]
    assert [(p.video, p.music) for p in used] == [(p.video, p.music) for p in pairs[:4]]
    for item, first in zip(learned.features.items, (0, 1, 2, 1), strict=True):
        music = stored[Path(learned.pairs[item.id].music)]
        np.testing.assert_array_equal(item.music, music.embeddings[first : first + 1])
        assert item.video.shape == (1, 128)  # one 10 s segment through the tiny CLIP frame encoder
        assert item.texts["tags"] and item.texts["data2text"]
        assert item.text_embeddings["tags"].shape == (len(item.texts["tags"]), 384)  # MiniLM
    whys = {Path(s.what.split(" ")[0]).name: s.why for s in learned.skipped}
    assert "scan its folder first" in whys["clip4.mp4"]
    assert "rescan its folder" in whys["clip5.mp4"]
    assert "video cannot be read" in whys["missing.mp4"]
    assert "past the end" in whys["clip7.mp4"]


def test_the_holdout_never_splits_a_project() -> None:
    from viml.core.errors import UserFacingError
    from viml.learning.finetune import split_by_project

    rng = np.random.default_rng(1)
    for seed in range(20):
        sizes = rng.integers(1, 9, size=int(rng.integers(2, 12)))
        pairs = [EditPair(f"p{p}", f"v{p}-{i}", 0, 5, "m", 0) for p, n in enumerate(sizes) for i in range(n)]
        for share in (0.1, 0.2, 0.5):
            held = split_by_project(pairs, share, seed)
            train = {pair.project for pair in pairs} - held
            assert held and train, "both sides get at least one project"
            assert not any(p.project in held and p.project in train for p in pairs)
            held_pairs = sum(p.project in held for p in pairs)
            assert held_pairs >= share * len(pairs) or len(train) == 1
    one_project = [EditPair("only", f"v{i}", 0, 5, "m", 0) for i in range(5)]
    assert split_by_project(one_project, 0.2) == set()
    assert split_by_project(pairs, 0.2, holdout_projects=["p0"]) == {"p0"}
    with pytest.raises(UserFacingError, match="no pairs come from"):
        split_by_project(pairs, 0.2, holdout_projects=["nowhere"])


def test_training_resumes_where_it_stopped(world, tmp_path):
    from viml.learning.features import pair_features
    from viml.learning.finetune import FineTuneConfig, epochs_done, fine_tune
    from viml.learning.learn import run_key
    from viml.training.model import ViMLConfig, load_checkpoint

    bundle = open_bundle(world.base)
    with Catalog(world.catalog) as catalog:
        learned = pair_features(
            [world.pair(f"p{i % 4}", i, i) for i in range(COUNT)], bundle, catalog, progress=False
        )
    model = ViMLConfig(video_dim=128, text_dim=384, music_dim=MUSIC_DIM, **TINY)
    config = FineTuneConfig(epochs=4, batch_size=4, device="cpu")  # 2 steps an epoch
    whole = fine_tune(learned.features, model, config, tmp_path / "whole", None, progress=False)
    stopped = tmp_path / "stopped"
    fine_tune(learned.features, model, config, stopped, None, progress=False, stop_after_epochs=2)
    assert epochs_done(stopped, 2) == 2
    resumed = fine_tune(learned.features, model, config, stopped, None, progress=False)
    assert epochs_done(stopped, 2) == 4
    a, b = load_checkpoint(whole)[0].state_dict(), load_checkpoint(resumed)[0].state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)
    with pytest.raises(ValueError, match="different configuration"):
        fine_tune(
            learned.features, model, FineTuneConfig(epochs=5, batch_size=4, device="cpu"), stopped, None
        )
    # Other inputs never meet this folder: the run key names the pairs, their sides and the settings.
    key = run_key(learned, bundle, False, model, config)
    learned.features.items[0].split = "test"
    assert run_key(learned, bundle, False, model, config) != key


def test_a_bundle_that_does_worse_than_its_start_is_not_made_the_default(world, tmp_path, capsys):
    """The start fits the true pairs; the fine-tune is taught the same clips with other music, and the
    held-out project keeps the true pairs: it must do worse there, and stay out of the default."""
    from viml.learning.evaluate import evaluate_bundle
    from viml.learning.finetune import FineTuneConfig
    from viml.learning.learn import LearnOptions, learn

    from viml.cli import main

    base = open_bundle(world.base)
    # Every segment of each true track is paired with its clip: a search ranks a track by its best
    # window, so the start must learn that the other tracks' every segment is not the clip's.
    true_pairs = [world.pair(f"fit-{i % 4}", i, i, 10.0 * s) for i in range(COUNT) for s in range(SEGMENTS)]
    with Catalog(world.catalog) as catalog:
        fit = learn(
            true_pairs, [], base, catalog,
            LearnOptions(holdout=0.0, validation=0.0, fresh_overrides=TINY, out="start", fine_tune=FineTuneConfig(
                epochs=150, batch_size=len(true_pairs), fresh_learning_rate=3e-3, device="cpu")),
            progress=False,
        )  # fmt: skip
        assert not fit.made_default and "nothing was held out" in fit.default_why
        start = open_bundle("start")
        truths = [catalog.track(p.music).hash for p in true_pairs]
        assert evaluate_bundle(start, catalog, true_pairs, truths).median_rank == 1.0  # it fits them
    set_default_bundle("start")
    manifest = read_manifest(fit.bundle)
    assert manifest["trained_on"].startswith(
        "ViML towers: trained on 24 pairs from 4 of your projects, starting from a fresh viml-small model"
    )

    def edit(name: str, shots: list[tuple[int, int]]) -> Path:
        return write_edit(world, tmp_path / f"{name}.otio", shots)

    truth = edit("truth", [(0, 0), (1, 1)])
    shifted = [(i, (i + 3) % COUNT) for i in range(COUNT)]
    mixed = [edit("mixed-a", shifted[:4]), edit("mixed-b", shifted[4:])]
    code = main([
        "learn", str(truth), *map(str, mixed), "--bundle", "start", "--catalog", str(world.catalog),
        "--holdout-project", str(truth), "--epochs", "100", "--lr", "3e-3", "--batch-size", "8",
        "--out", "worse", "--device", "cpu", "--no-llm", "--json",
    ])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["pairs found"] == 10 and report["skipped"] == []
    assert report["held-out projects"] == [str(truth)] and report["held-out pairs"] == 2
    new, old = report["held-out metrics, new bundle"], report["held-out metrics, start bundle"]
    assert new["median rank"] > old["median rank"]
    assert new["pool"] == old["pool"] == COUNT
    assert report["made default"] is False and "not made the default" in report["default decision"]
    assert default_bundle_name() == "start"
    manifest = read_manifest(Path(report["bundle folder"]))
    assert manifest["kind"] == "trained" and "towers.safetensors" in manifest["files"]
    assert manifest["trained_on"].startswith(
        "ViML towers: trained on 8 pairs from 2 of your projects, fine-tuned from bundle 'start'"
    )
    learned = manifest["learned"]
    assert learned["start bundle"]["name"] == "start" and learned["held-out projects"] == [str(truth)]
    assert learned["held-out"]["start bundle"] == old and learned["held-out"]["made default"] is False


def test_the_default_refusal_reads_median_rank_and_recall_at_10() -> None:
    from viml.learning.bundle import refusal
    from viml.training.metrics import summarize

    def result(ranks: list[int]):
        return summarize(np.array(ranks), 50)

    assert refusal(result([1, 2, 3]), result([2, 3, 4]), "b") is None  # better median rank
    assert "median rank 4 vs 3" in refusal(result([1, 4, 30]), result([1, 3, 4]), "b")
    # Fewer in the top 10 is worse, at the same or a better median rank; as many is not.
    assert "top 10" in refusal(result([1, 3, 30]), result([2, 3, 4]), "b")
    assert "top 10 than bundle 'b' (33.3% vs 50.0%; median rank 12 vs 14.5)" in refusal(
        result([1, 12, 14]), result([5, 9, 20, 40]), "b"
    )
    assert refusal(result([1, 3, 9]), result([2, 3, 4]), "b") is None


def test_learn_from_marks_without_pairs_says_so(world, capsys):
    from viml.cli import main

    assert main(["learn", "--bundle", str(world.base), "--catalog", str(world.catalog)]) == 1
    assert "give past timelines" in capsys.readouterr().err
    code = main(["learn", "--from-marks", "--bundle", str(world.base), "--catalog", str(world.catalog)])
    assert code == 1
    assert "0 usable pair(s) of 0 found: learning needs at least two" in capsys.readouterr().err


def test_prompt2text_comes_from_the_configured_server_and_a_failing_one_is_reported(world, tmp_path):
    """With a language model server (the stand-in, over real HTTP), every pair gains prompt2text texts,
    embedded with the others; an unreachable one leaves prompt2text out with why and keeps the rest."""
    from viml.demo.standin import StandInLMServer, stand_in_description
    from viml.engine.text.llm import ChatClient, LLMConfig
    from viml.learning.features import pair_features

    bundle = open_bundle(world.base)
    pairs = [world.pair("p", i, i) for i in range(3)]
    with Catalog(world.catalog) as catalog, StandInLMServer() as server:
        with ChatClient(LLMConfig(server.url, server.model, backoff_s=0), tmp_path / "llm") as client:
            learned = pair_features(pairs, bundle, catalog, client=client, progress=False)
        answers = {stand_in_description(request["messages"]) for request in server.requests}
    assert learned.notes == ["prompt2text: texts for 3 pairs, none for 0"]
    for item in learned.features.items:
        assert item.texts["prompt2text"] and set(item.texts["prompt2text"]) <= answers
        assert item.text_embeddings["prompt2text"].shape == (len(item.texts["prompt2text"]), 384)
        assert item.texts["tags"] and item.texts["data2text"]

    gone = StandInLMServer()
    url = gone.url
    gone.stop()  # the port is closed again
    with Catalog(world.catalog) as catalog:
        client = ChatClient(LLMConfig(url, "m", max_retries=1, backoff_s=0), tmp_path / "llm-gone")
        learned = pair_features(pairs, bundle, catalog, client=client, progress=False)
    assert len(learned.notes) == 1 and learned.notes[0].startswith("prompt2text left out:")
    assert all("prompt2text" not in item.texts and item.texts["tags"] for item in learned.features.items)


def test_too_few_pairs_still_says_why_each_was_skipped(world, tmp_path, capsys):
    from viml.cli import main

    broken = tmp_path / "broken.otio"
    broken.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    args = ["learn", str(broken), "--bundle", str(world.base), "--catalog", str(world.catalog), "--no-llm"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "skipped broken.otio" in out and "cannot read it as OpenTimelineIO" in out
    assert "0 usable pair(s) of 0 found" in err and "1 skipped, each with why above" in err
    assert main([*args, "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["pairs found"] == 0 and report["timelines"] == [str(broken)]
    assert [s["what"] for s in report["skipped"]] == ["broken.otio"]


def test_the_best_validation_epoch_is_kept_and_a_killed_run_resumes_to_the_same_choice(world, tmp_path):
    """Every epoch is scored on the validation pairs; the best is kept (not the last), training stops after
    `patience` epochs without a better one, and a run killed mid-way resumes to the same choice."""
    from viml.learning.features import pair_features
    from viml.learning.finetune import BEST_CHECKPOINT, FineTuneConfig, fine_tune_best
    from viml.training.metrics import summarize
    from viml.training.model import ViMLConfig, load_checkpoint

    bundle = open_bundle(world.base)
    with Catalog(world.catalog) as catalog:
        learned = pair_features(
            [world.pair(f"p{i % 4}", i, i) for i in range(COUNT)], bundle, catalog, progress=False
        )
    model = ViMLConfig(video_dim=128, text_dim=384, music_dim=MUSIC_DIM, **TINY)
    config = FineTuneConfig(epochs=8, batch_size=4, device="cpu")
    hits_by_epoch = {1: 1, 2: 3, 3: 2, 4: 3, 5: 1, 6: 4, 7: 4, 8: 4}  # of 4 validation clips in the top 10

    class Validator:
        def __init__(self, kill_at: int | None = None) -> None:
            self.epochs: list[int] = []
            self.digests: dict[int, str] = {}
            self.kill_at = kill_at

        def __call__(self, checkpoint: Path):
            epoch = len(self.epochs) + 1 + self.offset
            if epoch == self.kill_at:
                raise KeyboardInterrupt  # killed after the epoch's checkpoint, before its score
            self.epochs.append(epoch)
            self.digests[epoch] = load_checkpoint(checkpoint)[0].state_dict()
            hits = hits_by_epoch[epoch]
            return summarize(np.array([1] * hits + [40] * (4 - hits)), 50)

        offset = 0

    whole = Validator()
    choice = fine_tune_best(learned.features, model, config, tmp_path / "whole", None, whole, patience=3,
                            progress=False)  # fmt: skip
    # Epochs 2 and 4 tie (3 hits): the first is kept; 3 epochs without a better one stop it after 5.
    assert (choice.epoch, whole.epochs, choice.stopped_early) == (2, [1, 2, 3, 4, 5], True)
    assert [row["epoch"] for row in choice.history] == [1, 2, 3, 4, 5] and choice.start is None

    def same(a: dict, b: dict) -> bool:
        return all(torch.allclose(a[name], b[name]) for name in a)

    best = load_checkpoint(tmp_path / "whole" / BEST_CHECKPOINT)[0].state_dict()
    assert same(best, whole.digests[2]) and not same(best, whole.digests[5])
    again = Validator()
    assert fine_tune_best(learned.features, model, config, tmp_path / "whole", None, again, patience=3,
                          progress=False).epoch == 2 and again.epochs == []  # fmt: skip

    killed = Validator(kill_at=3)
    with pytest.raises(KeyboardInterrupt):
        fine_tune_best(learned.features, model, config, tmp_path / "killed", None, killed, patience=3,
                       progress=False)  # fmt: skip
    resumed = Validator()
    resumed.offset = 2  # epochs 1-2 were scored before the kill
    choice = fine_tune_best(learned.features, model, config, tmp_path / "killed", None, resumed, patience=3,
                            progress=False)  # fmt: skip
    assert choice.epoch == 2 and resumed.epochs == [3, 4, 5]
    assert all(
        same(resumed.digests[e], whole.digests[e]) for e in (3, 4, 5)
    )  # the weights of an unbroken run


def test_learn_keeps_the_best_validation_epoch_and_reports_it(world, capsys):
    """Three training projects or more: one validates (whole), the kept epoch and its scores are in the
    report and the manifest."""
    from viml.learning.finetune import FineTuneConfig
    from viml.learning.learn import LearnOptions, learn

    pairs = [world.pair(f"v{i % 4}", i, i) for i in range(COUNT)]
    with Catalog(world.catalog) as catalog:
        report = learn(
            pairs, [], open_bundle(world.base), catalog,
            LearnOptions(holdout_projects=("v0",), fresh_overrides=TINY, out="validated", make_default=False,
                         fine_tune=FineTuneConfig(epochs=6, batch_size=4, device="cpu")),
            progress=False,
        )  # fmt: skip
    assert (report.heldout_pairs, report.validation_projects, report.validation_pairs) == (2, 1, 2)
    assert report.train_pairs == 4
    assert [row["epoch"] for row in report.validation_history][0] == 1  # fresh towers: no epoch 0
    assert 1 <= report.chosen_epoch <= 6
    assert any(note.startswith(f"kept epoch {report.chosen_epoch} of 6") for note in report.notes)
    learned = read_manifest(report.bundle)["learned"]
    assert learned["chosen epoch"] == report.chosen_epoch and learned["validation pairs"] == 2
