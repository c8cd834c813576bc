"""Opening a model bundle for ranking: its retrieval space and query encoder (see retrieval.py).

The bundle code (engine/bundles) provides `load_bundle(name_or_path)` returning an object with
`retrieval_space` (a RetrievalSpace) and `query_encoder` (a QueryEncoder). This module is the one place
the catalog reaches for it, so the CLI and the desktop app fail the same clear way when it is missing.
"""

from __future__ import annotations

from viml.catalog.retrieval import QueryEncoder, RetrievalSpace

from viml.errors import UserFacingError


def open_bundle(name_or_path: str | None) -> tuple[RetrievalSpace, QueryEncoder]:
    try:
        from viml.engine.bundles import load_bundle  # type: ignore[attr-defined]
    except ImportError as error:
        raise UserFacingError(
            "this ViML cannot load model bundles for ranking yet (viml.engine.bundles.load_bundle is missing)"
        ) from error
    bundle = load_bundle(name_or_path)
    space, encoder = bundle.retrieval_space, bundle.query_encoder
    if not isinstance(space, RetrievalSpace) or not isinstance(encoder, QueryEncoder):
        raise UserFacingError(
            f"bundle {name_or_path or '(default)'} does not provide a retrieval space and query encoder"
        )
    return space, encoder
