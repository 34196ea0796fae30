"""LLM router: send each chat query to the right local expert model.

>>> from router import build_router, load_config
>>> router = build_router(load_config(["router=keyword"]))
>>> router.route("I want you to act as a travel guide").route
'roleplay'
"""

from router.config import build_router, load_config
from router.errors import (
    ConfigError,
    DataError,
    InvalidQueryError,
    ProviderError,
    ProviderUnavailable,
    RouterError,
)
from router.hybrid import HybridRouter
from router.protocols import Encoder, LLMProvider, RoutingStrategy
from router.schema import Chunk, KeywordMatch, LabelledQuery, Message, Route, RouteDecision, RouteScore, TierTimings
from router.strategies import KeywordRoutingStrategy, LinearHead, SemanticRoutingStrategy

__all__ = [
    "Chunk",
    "ConfigError",
    "DataError",
    "Encoder",
    "HybridRouter",
    "InvalidQueryError",
    "KeywordMatch",
    "KeywordRoutingStrategy",
    "LLMProvider",
    "LabelledQuery",
    "LinearHead",
    "Message",
    "ProviderError",
    "ProviderUnavailable",
    "Route",
    "RouteDecision",
    "RouteScore",
    "RouterError",
    "RoutingStrategy",
    "SemanticRoutingStrategy",
    "TierTimings",
    "build_router",
    "load_config",
]
