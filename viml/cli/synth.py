"""`viml synth`: write training texts for a tagged collection (tags, data2text, prompt2text), held-out
query texts for evaluation, or import human captions (YT8M-MusicTextClips)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from viml.cli._args import fraction, output_file, positive, positive_count, seed, whole

ORDER = 60
METHOD_CHOICES = ("tags", "data2text", "prompt2text", "heldout")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="synthesise training texts from music tags (tags, data2text, prompt2text)",
        description=(
            "Write texts describing each item of a tagged collection (JSONL lines "
            '{"id": ..., "tags": {"MTT": {"piano": 0.8, ...}, "MSD": {...}}}) to a JSONL file of '
            '{"id", "method", "texts"} that training reads. prompt2text asks a language model server with '
            "the OpenAI-compatible chat API (llama.cpp, vLLM, Ollama, hosted), set by --llm-url/--llm-model or "
            "VIML_LLM_URL/VIML_LLM_MODEL/VIML_LLM_API_KEY; its answers are cached, so reruns are free. "
            "'heldout' writes evaluation queries in wording no training method uses. With --import-captions, "
            "converts YT8M-MusicTextClips CSV captions instead."
        ),
    )
    parser.add_argument("tags", nargs="?", metavar="TAGS.jsonl", help="tagged collection (JSONL)")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="data2text", help="default data2text")
    parser.add_argument(
        "--per-item", type=positive_count, default=1, metavar="N", help="distinct texts per item (default 1)"
    )
    parser.add_argument(
        "--threshold", type=fraction, default=0.3, help="lowest tag probability used (default 0.3)"
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed; same seed, same texts (default 0)")
    parser.add_argument(
        "-o", "--out", type=output_file, required=True, metavar="PATH", help="texts JSONL to write"
    )
    llm = parser.add_argument_group("prompt2text (language model server)")
    llm.add_argument("--llm-url", help="OpenAI-compatible base URL, e.g. http://localhost:8080/v1")
    llm.add_argument("--llm-model", help="model name the server knows")
    llm.add_argument("--llm-api-key", help="API key (better: VIML_LLM_API_KEY)")
    llm.add_argument("--timeout", type=positive, help="seconds per request (default 60)")
    llm.add_argument("--retries", type=whole(0), help="retries per request on 429/5xx/timeouts (default 5)")
    llm.add_argument("--rpm", type=positive, help="at most this many requests per minute")
    llm.add_argument(
        "--exemplars", metavar="PATH", help="exemplar pairs (JSON/JSONL) instead of the built-in ones"
    )
    captions = parser.add_argument_group("human captions")
    captions.add_argument(
        "--import-captions",
        metavar="CSV",
        help="YT8M-MusicTextClips CSV: write its captions as texts (method human)",
    )
    captions.add_argument(
        "--exemplars-out",
        type=output_file,
        metavar="PATH",
        help="with --import-captions and TAGS: also write exemplars for prompt2text",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from viml.core.errors import UserFacingError
    from viml.engine.text import read_tagged, synthesize_collection, write_texts

    for given in (args.tags, args.import_captions, args.exemplars):
        if given and Path(given).resolve() == Path(args.out).resolve():
            raise UserFacingError(f"--out {args.out} would overwrite the input {given}; choose another path")
    tagged = dict(read_tagged(args.tags)) if args.tags else None
    if args.import_captions:
        return _import_captions(args, tagged)
    if tagged is None:
        raise UserFacingError("give a tagged collection (TAGS.jsonl), or --import-captions CSV")

    options: dict = {"threshold": args.threshold}
    client = None
    if args.method == "prompt2text":
        from viml.engine.text.llm import ChatClient, LLMConfig
        from viml.engine.text.prompt2text import load_exemplars

        config = LLMConfig.from_env(
            args.llm_url, args.llm_model, args.llm_api_key,
            timeout_s=args.timeout, max_retries=args.retries, requests_per_minute=args.rpm,
        )  # fmt: skip
        if not getattr(args, "verbose", False):  # httpx logs every request at INFO: too chatty for bulk runs
            logging.getLogger("httpx").setLevel(logging.WARNING)
        client = ChatClient(config)
        options.update(client=client, exemplars=load_exemplars(args.exemplars) if args.exemplars else None)
    try:
        texts, failed = synthesize_collection(
            _progress(tagged), args.method, args.per_item, args.seed, **options
        )
    finally:
        if client is not None:
            client.close()
    write_texts(args.out, texts, args.method)
    count = sum(len(v) for v in texts.values())
    print(f"wrote {count} {args.method} texts for {len(texts)} of {len(tagged)} items to {args.out}")
    if client is not None:
        print(f"language model: {client.requests_sent} requests, {client.cache_hits} answers from the cache")
    if failed:
        item_id, reason = next(iter(failed.items()))
        print(f"{len(failed)} items got no text; first: {item_id}: {reason}", file=sys.stderr)
    return 0


def _import_captions(args: argparse.Namespace, tagged: dict | None) -> int:
    from viml.core.errors import UserFacingError
    from viml.engine.text import write_texts
    from viml.engine.text.musictextclips import (
        captions_by_id,
        clip_times,
        exemplars_from_captions,
        read_captions,
    )
    from viml.engine.text.prompt2text import write_exemplars

    captions = read_captions(args.import_captions)
    texts = captions_by_id(captions)
    write_texts(args.out, texts, "human", extra=clip_times(captions))
    print(f"wrote {sum(len(v) for v in texts.values())} human captions for {len(texts)} clips to {args.out}")
    if args.exemplars_out:
        if tagged is None:
            raise UserFacingError(
                "--exemplars-out needs the tagged clips (TAGS.jsonl) to pair captions with tags"
            )
        exemplars = exemplars_from_captions(captions, tagged, args.threshold)
        write_exemplars(args.exemplars_out, exemplars)
        print(f"wrote {len(exemplars)} exemplars ({len(tagged)} tagged items) to {args.exemplars_out}")
    return 0


def _progress(tagged: dict) -> dict:
    """The items, with a progress bar on a terminal (prompt2text over thousands of items takes a while)."""
    if not sys.stderr.isatty():
        return tagged
    from tqdm import tqdm

    class Progress(dict):
        def items(self):  # synthesize_collection walks items(); tick once per item
            return tqdm(super().items(), total=len(self), unit="item", file=sys.stderr)

    return Progress(tagged)
