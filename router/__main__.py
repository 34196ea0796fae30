"""Command line for the router.

    python -m router route "some query" [key=value ...]   print the decision as JSON
    python -m router shell [key=value ...]                route queries typed one per line
    python -m router train [key=value ...]                fit the trained L2 (router=trained) into the cache
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from router.errors import RouterError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    route = sub.add_parser("route", help="route one query and print the decision as JSON")
    route.add_argument("query", help="the query to route; '-' reads it from standard input")
    route.add_argument("overrides", nargs="*", help="Hydra-style overrides, e.g. router.semantic.threshold=0.4")
    shell = sub.add_parser("shell", help="route queries typed one per line, until an empty line or EOF")
    shell.add_argument("overrides", nargs="*", help="Hydra-style overrides, e.g. router=keyword")
    train = sub.add_parser("train", help="fit the trained L2 on the corpus and the utterances, into the cache")
    train.add_argument("overrides", nargs="*", help="Hydra-style overrides, e.g. router.semantic.seed=1")
    args = parser.parse_args(argv)

    from router.config import build_router, load_config

    if args.command == "shell":
        return _shell(args.overrides)
    if args.command == "train":
        return _train(args.overrides)
    query = sys.stdin.read() if args.query == "-" else args.query
    try:
        if not query.strip():
            raise RouterError("The query is empty. Give a question or an instruction to route.")
        router = build_router(load_config(args.overrides))
        decision = router.route(query)
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
    return 0


def _train(overrides: Sequence[str]) -> int:
    """Fit (or find in the cache) the trained router and say where it is; the app then starts in seconds."""
    import logging
    from time import perf_counter

    from router.config import build_router, load_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    start = perf_counter()
    try:
        chosen = [] if any(o.startswith("router=") for o in overrides) else ["router=trained"]
        semantic = build_router(load_config([*chosen, *overrides])).semantic
        if getattr(semantic, "artifact", False) is False:
            raise RouterError("Only router=trained has a model to fit; the other routers need no training.")
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    artifact = getattr(semantic, "artifact", None)
    print(json.dumps({
        "examples": semantic.size, "datasets": getattr(semantic, "datasets", None),
        "seconds": round(perf_counter() - start, 1),
        "artifact": str(artifact) if artifact else None,
        "artifact_bytes": artifact.stat().st_size if artifact else None,
    }, indent=2))
    return 0


def _shell(overrides: Sequence[str]) -> int:
    from router.config import build_router, load_config

    try:
        router = build_router(load_config(overrides))
    except RouterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("Type a query and press Enter to see where it goes; an empty line quits.", file=sys.stderr)
    while True:
        try:
            query = input("query> ")
        except EOFError:
            return 0
        if not query.strip():
            return 0
        d = router.route(query)
        why = f"rule {d.rule.pattern!r} matched {d.rule.text!r}" if d.rule else ", ".join(
            f"{s.route} {s.score:.3f}" for s in d.top_routes
        )
        print(f"-> {d.route} (expert {d.expert}, tier {d.tier}, score {d.score:.3f}, margin {d.margin:.3f}, "
              f"{d.timings.total_us / 1000:.2f} ms) {why}")


if __name__ == "__main__":
    sys.exit(main())
