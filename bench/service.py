"""Suggest latency over HTTP (`viml serve` in a child) against the same search in process.

    python bench/service.py --catalog C --bundle B [--video V --in 1 --out 5] [--repeats 20] [--json out.json]

Baseline in the same run: `Searcher.suggest` in this process on the same catalog and bundle, warm
(each prompt once before timing, as the service warms at start). The service's numbers include the
HTTP round trip on 127.0.0.1, JSON both ways, the guard and the per-request catalog open.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROMPTS = ["calm piano", "fast drums", "dark synth", "happy guitar", "ambient pads"]
VIML = [sys.executable, "-c", "import sys; from viml.cli import main; sys.exit(main())"]


def timed(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--video")
    parser.add_argument("--in", dest="start", type=float, default=0.0)
    parser.add_argument("--out", dest="end", type=float)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from viml.catalog.store import Catalog
    from viml.engine.runtime import open_bundle
    from viml.search import Searcher, SuggestRequest
    from viml.search.service.tokens import service_dir

    bundle = open_bundle(args.bundle)
    bodies = [{"prompt": p, "top": 10} for p in PROMPTS]
    if args.video:
        bodies.append({"video": args.video, "start": args.start, "end": args.end, "top": 10})

    def in_process(body: dict) -> None:
        with Catalog(args.catalog, must_exist=True) as catalog:  # as the service: one open per request
            Searcher(catalog, bundle).suggest(SuggestRequest(**body))

    endpoint = service_dir() / "endpoint.json"
    endpoint.unlink(missing_ok=True)
    server = subprocess.Popen(
        [*VIML, "serve", "--catalog", args.catalog, "--bundle", args.bundle, "--port", "0"]
    )
    try:
        while not endpoint.exists():
            if server.poll() is not None:
                raise SystemExit("viml serve did not start")
            time.sleep(0.1)
        url = json.loads(endpoint.read_text())["url"]
        headers = {"Authorization": f"Bearer {(service_dir() / 'token').read_text().strip()}"}
        # httpx writes the headers and the body apart: without TCP_NODELAY, Nagle and the server's delayed
        # ACK add ~40 ms to every POST (measured). http.client (the add-ons' client) sends them together.
        transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        client = httpx.Client(base_url=url, headers=headers, timeout=120, transport=transport)
        results = {}
        for body in bodies:
            name = body.get("prompt") or "clip"
            in_process(body)
            client.post("/v1/suggest", json=body).raise_for_status()
            local = timed(lambda b=body: in_process(b), args.repeats)
            remote = timed(lambda b=body: client.post("/v1/suggest", json=b).raise_for_status(), args.repeats)
            results[name] = {
                "in_process_ms": statistics.median(local),
                "http_ms": statistics.median(remote),
                "ratio": statistics.median(remote) / statistics.median(local),
            }
            print(f"{name:14} in process {results[name]['in_process_ms']:7.2f} ms   over HTTP "
                  f"{results[name]['http_ms']:7.2f} ms   x{results[name]['ratio']:.2f}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=20)
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
