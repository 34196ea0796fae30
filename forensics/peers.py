"""Other routers, built over our route table and model, to time beside ours in the same run.

`semantic-router` is aurelio-labs/semantic-router (the `peers` extra: pip install -e '.[peers]'):
an `IndexedRouter` over a `LocalIndex`, holding the same utterances per route, with a
`LocalEncoder` that loads the bundled all-MiniLM-L6-v2 from its folder. Its top 5 hits scored by
their mean mirrors our L2. Nothing in it calls a network service: the index lives in memory and
the encoder reads the weights from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from router.encoders import bundled_model_dir
from router.errors import ConfigError
from router.schema import Route

PEERS = ("semantic-router",)


@dataclass(frozen=True)
class Peer:
    """A built peer router: `decide(query)` returns the name of the route it picks, or None."""

    name: str
    version: str
    decide: Callable[[str], str | None]


def build_peer(name: str, routes: Sequence[Route], model_dir: str | None = None) -> Peer:
    """The peer router called `name`, holding the utterances of `routes`."""
    if name == "semantic-router":
        return build_semantic_router(routes, model_dir)
    raise ConfigError(f"Unknown peer '{name}'. Available: {', '.join(PEERS)}")


def build_semantic_router(routes: Sequence[Route], model_dir: str | None = None, top_k: int = 5) -> Peer:
    """aurelio semantic-router over the same utterances and the same bundled model weights."""
    try:
        import semantic_router
        from semantic_router import IndexedRouter
        from semantic_router import Route as PeerRoute
        from semantic_router.encoders import LocalEncoder
        from semantic_router.index import LocalIndex
    except ImportError as e:
        raise ConfigError(
            "--peer semantic-router needs the semantic-router package, which is not installed. "
            "Run: pip install -e '.[peers]'"
        ) from e
    # A folder as `name` makes sentence-transformers load it from disk, never from the hub.
    encoder = LocalEncoder(name=str(model_dir or bundled_model_dir()), device="cpu")
    peer_routes = [PeerRoute(name=r.name, utterances=list(r.utterances)) for r in routes if r.utterances]
    if not peer_routes:
        raise ConfigError("The route table has no utterances, so semantic-router has nothing to index.")
    router = IndexedRouter(
        encoder=encoder, routes=peer_routes, index=LocalIndex(), top_k=top_k, aggregation="mean"
    )
    return Peer("semantic-router", semantic_router.__version__, lambda query: router(query).name)
