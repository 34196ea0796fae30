"""Figures for README "Scaling out", against running replicas (make cluster):

    python scripts/cluster_bench.py lag --correct-on http://127.0.0.1:7861 --read-on http://127.0.0.1:7862 [--n 20]
    python scripts/cluster_bench.py load --url http://127.0.0.1:8080 [--concurrency 16] [--duration 30]

`lag`: a correction made through one replica's chat (the Gradio events, over HTTP, as the browser
does), then POST /v1/route on the other until it routes the query the corrected way: seconds from
the correction's reply to the changed decision, median of n. `load`: POST /v1/route requests/s
with `concurrency` clients for `duration` seconds (a mix of keyword- and embedding-decided queries).
Start the replicas with ARGS="limits.api_per_minute=100000000" or the rate limit answers 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid

import httpx

QUERIES = ["write a python function that reverses a list", "what is 15 percent of 240",
           "who wrote the novel frankenstein", "hi there, how are you today?", "write a haiku about rain",
           "summarize this article about whales in two sentences", "which weighs more, a kilo of feathers or steel",
           "I want you to act as a travel guide", "extract the dates from this email", "explain photosynthesis simply",
           "why is the sky blue", "plan a three day trip to rome"]


def _event(client: httpx.Client, api_name: str, data: list, session: str) -> list:
    """Call one Gradio event by api_name and return its output (the queue protocol a browser speaks)."""
    config = client.get("config").json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    joined = client.post("gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session,
                                                          "event_data": None, "trigger_id": None})
    joined.raise_for_status()
    with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and (message := json.loads(line[5:])).get("msg") == "process_completed":
                if not message.get("success"):
                    raise RuntimeError(f"{api_name} failed: {message}")
                return message["output"]["data"]
    raise RuntimeError(f"{api_name}: the stream ended without a result")


def lag(correct_on: str, read_on: str, n: int) -> dict:
    ui = httpx.Client(base_url=correct_on.rstrip("/") + "/", timeout=60, follow_redirects=True)
    api = httpx.Client(timeout=30)
    route = lambda q: api.post(f"{read_on.rstrip('/')}/v1/route", json={"query": q}).json()["route"]  # noqa: E731
    seconds = []
    for i in range(n):
        query = f"lag probe {uuid.uuid4().hex[:8]} quartz nebula {i}"
        target = "creative" if route(query) != "creative" else "math"
        session = uuid.uuid4().hex[:12]
        _event(ui, "chat", [query, [], None], session)
        reply = _event(ui, "correct", [None, target], session)[0]
        if "saved" not in reply:
            raise RuntimeError(f"correction refused: {reply}")
        start = time.monotonic()
        while route(query) != target:
            time.sleep(0.01)
        seconds.append(time.monotonic() - start)
    return {"n": n, "median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3)}


async def _load(url: str, concurrency: int, duration: float) -> dict:
    done, errors, latencies = 0, 0, []
    end = time.monotonic() + duration
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.monotonic() < end:
                t = time.monotonic()
                response = await client.post(f"{url.rstrip('/')}/v1/route", json={"query": QUERIES[i % len(QUERIES)]})
                i += 1
                if response.status_code == 200:
                    done += 1
                    latencies.append(time.monotonic() - t)
                else:
                    errors += 1
        start = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.monotonic() - start
    latencies.sort()
    return {"url": url, "concurrency": concurrency, "duration_s": round(elapsed, 1), "requests": done,
            "errors": errors, "requests_per_s": round(done / elapsed, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
            "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1) if latencies else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lag")
    p.add_argument("--correct-on", required=True)
    p.add_argument("--read-on", required=True)
    p.add_argument("--n", type=int, default=20)
    p = sub.add_parser("load")
    p.add_argument("--url", required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--duration", type=float, default=30)
    args = parser.parse_args(argv)
    if args.command == "lag":
        result = lag(args.correct_on, args.read_on, args.n)
    else:
        result = asyncio.run(_load(args.url, args.concurrency, args.duration))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
