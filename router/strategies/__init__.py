"""Routing strategies: one technique per module."""

from router.strategies.keyword import KeywordRoutingStrategy
from router.strategies.linear_head import LinearHead
from router.strategies.semantic import SemanticRoutingStrategy

__all__ = ["KeywordRoutingStrategy", "LinearHead", "SemanticRoutingStrategy"]
