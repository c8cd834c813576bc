"""A model bundle opened for inference: verified files, lazily created onnxruntime sessions, encoders.

bundle = open_bundle()                   # the default bundle (or a name / folder), hashes verified
bundle.analysis                          # the AnalysisSpec every consumer obeys (engine/bundles/spec.py)
bundle.prompt_encoder.encode_texts([...])
bundle.clips.clip_embeddings(video, t0, t1)   # per-segment frame embeddings, cached
bundle.towers                            # the trained ViML towers (None for zero-shot bundles)
bundle.music_model()                     # the bundle's own music model, for scans and tagging

`open_bundle` is the one way the product opens a bundle. Opened bundles are kept per process, keyed by
folder, bundle hash and options: the desktop's queries reuse onnxruntime sessions and the prompt/clip
caches, and a bundle rebuilt under the same name (new hash) is opened anew.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from viml.core.errors import UserFacingError
from viml.engine.bundles.manifest import BundleError, read_manifest, verify_files
from viml.engine.bundles.spec import AnalysisSpec, spec_from_manifest
from viml.engine.bundles.store import resolve_bundle
from viml.engine.runtime.clip_tokenizer import ClipTokenizer
from viml.engine.runtime.clips import ClipCache
from viml.engine.runtime.frames import DEFAULT_REUSE_THRESHOLD, FrameEncoder
from viml.engine.runtime.providers import create_session
from viml.engine.runtime.text import MiniLMTokenizer, OnnxTextEncoder
from viml.engine.runtime.towers import Towers

if TYPE_CHECKING:
    import onnxruntime
    from viml.engine.music.runtime import MusicModel

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float", "int8")
# Verified bundles in this process, keyed by what would change if a file did: re-verify only then.
_verified: set[tuple] = set()
_opened: dict[tuple, RuntimeBundle] = {}
_open_lock = threading.Lock()  # the desktop may ask from two worker threads at once


class NoPicturesError(UserFacingError):
    """The bundle has no frame encoder (a zero-shot bundle built without CLIP weights)."""


class RuntimeBundle:
    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        provider: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        reuse_threshold: float = DEFAULT_REUSE_THRESHOLD,
    ) -> None:
        if precision not in PRECISIONS:
            raise UserFacingError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.folder = Path(folder)
        self.manifest = manifest
        self.provider = provider
        self.precision = precision
        self.threads = threads
        self.reuse_threshold = reuse_threshold
        self._sessions: dict[str, Any] = {}

    # -- what the bundle is ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def bundle_hash(self) -> str:
        return self.manifest["bundle_hash"]

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return self.manifest["models"]

    @property
    def reads_pictures(self) -> bool:
        return "frame_encoder" in self.models

    def file_hash(self, role: str) -> str:
        return self.manifest["files"][self.models[role]["file"]]

    def file(self, relative: str) -> Path:
        """A file the manifest names: only one of its hashed (and so verified) files is ever opened."""
        if relative not in self.manifest["files"]:
            raise BundleError(f"bundle {self.name!r} names {relative!r}, which it does not hash; rebuild it")
        return self.folder / relative

    # -- sessions and encoders ---------------------------------------------------------------------
    def model_path(self, role: str) -> Path:
        if role not in self.models:
            raise BundleError(f"bundle {self.name!r} ({self.kind}) has no {role.replace('_', ' ')}")
        entry = self.models[role]
        variant = entry.get("variants", {}).get("int8")
        use_int8 = variant is not None and (
            self.precision == "int8" or (self.precision == "auto" and self._on_cpu())
        )
        return self.file(variant["file"] if use_int8 else entry["file"])

    def session(self, role: str) -> onnxruntime.InferenceSession:
        if role not in self._sessions:
            self._sessions[role] = create_session(self.model_path(role), self.provider, self.threads)
        return self._sessions[role]

    def _on_cpu(self) -> bool:
        from viml.engine.runtime.providers import requested_providers

        # int8 kernels pay off on CPU; on CUDA the float graph is faster and exact.
        return requested_providers(self.provider)[0] == "CPUExecutionProvider"

    @cached_property
    def frame_encoder(self) -> FrameEncoder:
        if not self.reads_pictures:
            raise NoPicturesError(
                f"bundle {self.name!r} cannot read pictures: it was built without CLIP weights, so it "
                "answers prompts only. Rebuild it with CLIP weights, e.g. `viml bundle build --zero-shot "
                "--clip ViT-B-32:openai` (needs the download once) or `--clip ViT-B-32:/path/to/checkpoint.bin`"
            )
        return FrameEncoder(
            self.session("frame_encoder"),
            self.manifest["preprocessing"]["image"],
            int(self.models["frame_encoder"]["embed_dim"]),
            reuse_threshold=self.reuse_threshold,
        )

    def text_encoder(self, role: str) -> OnnxTextEncoder:
        entry = self.models.get(role)
        if entry is None:
            raise BundleError(f"bundle {self.name!r} has no {role.replace('_', ' ')}")
        spec = entry["tokenizer"]
        path = self.file(spec["file"])
        if spec["type"] == "clip_bpe":
            tokenizer = ClipTokenizer(path, int(spec["context_length"]))
        else:
            tokenizer = MiniLMTokenizer(path, int(spec["max_length"]))
        return OnnxTextEncoder(
            entry.get("source", role), self.session(role), tokenizer, int(entry["embed_dim"])
        )

    @property
    def prompt_role(self) -> str:
        """Which text encoder prompts (and zero-shot segment descriptions) go through."""
        return self.manifest["text_input"]

    @cached_property
    def prompt_encoder(self) -> OnnxTextEncoder:
        return self.text_encoder(self.prompt_role)

    @cached_property
    def analysis(self) -> AnalysisSpec:
        return spec_from_manifest(self.manifest)

    @cached_property
    def clips(self) -> ClipCache:
        return ClipCache(self)

    @cached_property
    def towers(self) -> Towers | None:
        return Towers(self) if "query_tower" in self.models and "music_tower" in self.models else None

    def music_model(self) -> MusicModel:
        """The bundle's own music model: its manifest is one of the bundle's verified files, and
        `MusicModel.load` checks every file it opens against that manifest's sha256."""
        from viml.engine.music.runtime import MusicModel

        if "music_model" not in self.manifest:
            raise BundleError(f"bundle {self.name!r} has no music model")
        device = "cpu" if self.provider == "cpu" else "auto"
        folder = self.file(f"{self.manifest['music_model']['folder']}/manifest.json").parent
        return MusicModel.load(folder, device=device, threads=self.threads)


def open_bundle(
    bundle: str | Path | None = None,
    provider: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    reuse_threshold: float = DEFAULT_REUSE_THRESHOLD,
    shared: bool = True,
) -> RuntimeBundle:
    """The bundle (name, folder, or None for the configured default), verified, opened once per process.

    `threads` caps onnxruntime's intra-op threads (None: one per core); the desktop keeps a core free for
    its GUI thread this way. `shared=False` opens a private instance (fresh caches and sessions)."""
    folder = resolve_bundle(bundle)
    manifest = read_manifest(folder)
    verify_bundle_files(folder, manifest)  # sha256 once per process while the files are unchanged
    options = {
        "provider": provider,
        "precision": precision,
        "threads": threads,
        "reuse_threshold": reuse_threshold,
    }
    if not shared:
        return RuntimeBundle(folder, manifest, **options)
    key = (str(folder.resolve()), manifest["bundle_hash"], manifest.get("manifest_hash"), *options.values())
    with _open_lock:
        if key not in _opened:
            _opened[key] = RuntimeBundle(folder, manifest, **options)
        return _opened[key]


def verify_bundle_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Raise BundleError naming every changed or missing file; cached per process while files are unchanged."""
    key = (str(folder.resolve()), manifest["bundle_hash"], *_stat_signature(folder, manifest))
    if key in _verified:
        return
    problems = verify_files(folder, manifest)
    if problems:
        raise BundleError(
            f"bundle {folder.name!r} failed verification: {'; '.join(problems)}. Rebuild it "
            "(`viml bundle build ...`) or copy it again"
        )
    _verified.add(key)


def _stat_signature(folder: Path, manifest: dict[str, Any]) -> tuple:
    signature = []
    for relative in sorted(manifest["files"]):
        try:
            stat = os.stat(folder / relative)
            signature.append((relative, stat.st_size, stat.st_mtime_ns))
        except OSError:
            signature.append((relative, -1, -1))
    return (hashlib.sha256(repr(signature).encode()).hexdigest(),)
