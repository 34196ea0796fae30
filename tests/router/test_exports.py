import router


def test_public_api_is_pinned():
    assert sorted(router.__all__) == sorted([
        "Chunk", "ConfigError", "DataError", "Encoder", "HybridRouter", "InvalidQueryError", "KeywordMatch",
        "KeywordRoutingStrategy", "LLMProvider", "LabelledQuery", "LinearHead", "Message", "ProviderError", "ProviderUnavailable",
        "Route", "RouteDecision", "RouteScore", "RouterError", "RoutingStrategy", "SemanticRoutingStrategy",
        "TierTimings", "build_router", "load_config",
    ])
    for name in router.__all__:
        assert getattr(router, name) is not None
