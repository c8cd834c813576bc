"""The one way the product opens a model bundle for ranking: `load_retrieval(bundle) -> (space, encoder)`.

`viml suggest`, `viml scan` and the desktop app all come here, so they fail the same clear way (no bundle,
a tampered bundle, a bundle that is not a ranking model) and share what a bundle caches. Opened bundles
are kept per process, keyed by folder, bundle hash and options: the desktop's queries reuse onnxruntime
sessions and the prompt/clip caches, and a bundle rebuilt under the same name (new hash) is opened anew.
"""

from __future__ import annotations

import threading
from pathlib import Path

from viml.catalog.retrieval import QueryEncoder, RetrievalSpace
from viml.engine.bundles.manifest import read_manifest
from viml.engine.bundles.store import resolve_bundle
from viml.engine.runtime.bundle import RuntimeBundle, verify_bundle_files

from viml.errors import UserFacingError

_opened: dict[tuple, tuple[RuntimeBundle, RetrievalSpace, QueryEncoder]] = {}
_lock = threading.Lock()  # the desktop may ask from two worker threads at once


def open_retrieval(
    bundle: str | Path | None = None,
    provider: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
) -> tuple[RuntimeBundle, RetrievalSpace, QueryEncoder]:
    """The bundle (name, folder, or None for the configured default) with its space and query encoder.

    `threads` caps onnxruntime's intra-op threads (None: one per core); the desktop keeps a core free
    for its GUI thread this way."""
    folder = resolve_bundle(bundle)
    manifest = read_manifest(folder)
    verify_bundle_files(folder, manifest)  # sha256 once per process while the files are unchanged
    key = (str(folder.resolve()), manifest["bundle_hash"], provider, precision, threads)
    with _lock:
        if key not in _opened:
            runtime = RuntimeBundle(folder, manifest, provider=provider, precision=precision, threads=threads)
            space, encoder = runtime.retrieval_space(), runtime.query_encoder()
            if not isinstance(space, RetrievalSpace) or not isinstance(encoder, QueryEncoder):
                raise UserFacingError(
                    f"bundle {runtime.name!r} does not provide a retrieval space and query encoder"
                )
            _opened[key] = (runtime, space, encoder)
        return _opened[key]


def load_retrieval(
    bundle: str | Path | None = None, provider: str = "auto", precision: str = "auto"
) -> tuple[RetrievalSpace, QueryEncoder]:
    """(RetrievalSpace, QueryEncoder) of a bundle: what the catalog ranks with (see catalog/retrieval.py)."""
    _, space, encoder = open_retrieval(bundle, provider, precision)
    return space, encoder
