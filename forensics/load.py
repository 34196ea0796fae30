"""Load test of POST /v1/route: `concurrency` clients send labelled queries for `duration` seconds.

    python -m forensics.benchmark_suite load --url http://127.0.0.1:7860 --data FILE --concurrency 16 --duration 30 --json
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from router.schema import LabelledQuery


def run_load(url: str, rows: Sequence[LabelledQuery], concurrency: int = 16, duration: float = 30.0,
             api_key: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Requests per second, latency percentiles (ms), errors and accuracy of /v1/route under load."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    queries = itertools.cycle([(r.query, r.route) for r in rows])
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    right = [0]
    stop = time.monotonic() + duration

    def client() -> None:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http:
            while time.monotonic() < stop:
                with lock:
                    query, route = next(queries)
                start = time.perf_counter()
                try:
                    response = http.post("/v1/route", json={"query": query})
                    ok, why = response.status_code == 200, str(response.status_code)
                except httpx.HTTPError as e:
                    ok, why = False, type(e).__name__
                ms = (time.perf_counter() - start) * 1000
                with lock:
                    if ok:
                        latencies.append(ms)
                        right[0] += response.json().get("route") == route
                    else:
                        errors[why] = errors.get(why, 0) + 1

    begin = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - begin
    done = np.asarray(latencies) if latencies else np.asarray([0.0])
    return {"url": url, "concurrency": concurrency, "duration_s": round(elapsed, 2), "requests": len(latencies),
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(float(np.percentile(done, 50)), 2),
            "p99_ms": round(float(np.percentile(done, 99)), 2), "errors": sum(errors.values()),
            "errors_by_kind": errors, "accuracy": round(right[0] / len(latencies), 4) if latencies else None}


def print_load(report: dict[str, Any]) -> None:
    print(f"{report['requests']} requests in {report['duration_s']} s at concurrency {report['concurrency']}: "
          f"{report['requests_per_s']} req/s, p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
          f"errors {report['errors']}")
