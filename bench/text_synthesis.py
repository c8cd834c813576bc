"""Text synthesis speed and diversity, in one command.

    python bench/text_synthesis.py [--items 300] [--per-item 4] [--json PATH]

Tag sets are drawn at random from the musicnn vocabularies (3-8 tags above 0.3 per item). For each
method: milliseconds per text, and its ratio to the "tags" baseline measured in the same run; distinct
texts per item; and how much of the wording (word types other than the tags' own words) the method
shares with the held-out queries (lower: the queries are further from the training text). prompt2text
runs the real HTTP client against the local STAND-IN server (not a language model), cold and then from
the cache.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path


def random_items(count: int, seed: int) -> dict[str, dict]:
    from viml.engine.text.tagset import load_table

    table = load_table()
    rng = random.Random(seed)
    items = {}
    for index in range(count):
        tags: dict[str, dict[str, float]] = {}
        for _ in range(rng.randint(3, 8)):
            vocabulary = rng.choice(sorted(table.vocabularies))
            tag = rng.choice(sorted(table.vocabularies[vocabulary]))
            tags.setdefault(vocabulary, {})[tag] = round(rng.uniform(0.3, 0.95), 3)
        items[f"item-{index}"] = tags
    return items


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--per-item", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    from viml.demo.standin import StandInLMServer
    from viml.engine.text.llm import ChatClient, LLMConfig
    from viml.engine.text.synthesis import synthesize_collection
    from viml.engine.text.tagset import load_table

    items = random_items(args.items, args.seed)
    tag_words = set()
    table = load_table()
    for concept in table.concepts.values():
        tag_words |= words(concept.text) | words(" ".join(concept.mentions))
    for vocabulary in table.vocabularies.values():
        tag_words |= words(" ".join(vocabulary))

    results: dict[str, dict] = {}
    outputs: dict[str, dict[str, list[str]]] = {}

    def run(name: str, method: str, **kwargs) -> None:
        started = time.perf_counter()
        texts, failed = synthesize_collection(items, method, args.per_item, args.seed, **kwargs)
        seconds = time.perf_counter() - started
        count = sum(map(len, texts.values()))
        outputs[name] = texts
        results[name] = {
            "milliseconds per text": round(1000 * seconds / max(count, 1), 3),
            "distinct texts per item": round(count / len(items), 2),
            "items without text": len(failed),
        }

    run("tags", "tags")
    run("data2text", "data2text")
    run("heldout queries", "heldout")
    with StandInLMServer() as server, tempfile.TemporaryDirectory() as cache:
        client = ChatClient(LLMConfig(server.url, server.model), cache_path=Path(cache))
        run("prompt2text (stand-in server, cold)", "prompt2text", client=client)
        requests = client.requests_sent
        run("prompt2text (stand-in server, cached)", "prompt2text", client=client)
        results["prompt2text (stand-in server, cached)"]["requests sent"] = client.requests_sent - requests
        client.close()

    baseline = results["tags"]["milliseconds per text"]
    heldout_words = (
        set().union(*(words(t) for ts in outputs["heldout queries"].values() for t in ts)) - tag_words
    )
    for name, figures in results.items():
        figures["time vs tags"] = round(figures["milliseconds per text"] / baseline, 2) if baseline else None
        method_words = set().union(*(words(t) for ts in outputs[name].values() for t in ts)) - tag_words
        figures["non-tag words shared with held-out queries"] = (
            round(len(method_words & heldout_words) / len(heldout_words), 3) if heldout_words else None
        )

    width = max(map(len, results))
    print(f"{args.items} random tag sets, {args.per_item} texts per item")
    print(f"{'method':<{width}}  ms/text  x tags  texts/item  shared wording")
    for name, f in results.items():
        print(
            f"{name:<{width}}  {f['milliseconds per text']:7.3f}  {f['time vs tags']:6.1f}  "
            f"{f['distinct texts per item']:10.2f}  {f['non-tag words shared with held-out queries']:.3f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"items": args.items, "per item": args.per_item, "methods": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
