"""Routing strategies: one technique per module."""

from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.semantic import SemanticRoutingStrategy

__all__ = ["KeywordRoutingStrategy", "SemanticRoutingStrategy"]
