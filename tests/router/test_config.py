"""Compose every config group, instantiate it, and check that broken configs are explained."""

import pytest

from router.config import CONFIG_DIR, build_router, build_routes, load_config
from router.errors import ConfigError
from router.hybrid import HybridRouter

GROUPS = {group.name: sorted(p.stem for p in group.glob("*.yaml")) for group in CONFIG_DIR.iterdir() if group.is_dir()}


@pytest.mark.model
@pytest.mark.parametrize("router_option", GROUPS["router"])
@pytest.mark.parametrize("encoder_option", GROUPS["encoder"])
def test_every_router_and_encoder_option_builds(router_option, encoder_option):
    cfg = load_config([f"router={router_option}", f"encoder={encoder_option}"])
    router = build_router(cfg)
    assert isinstance(router, HybridRouter)
    assert (router.keyword is None) == (router_option == "semantic")
    assert (router.semantic is None) == (router_option == "keyword")
    assert router.route("I want you to act as a pirate").route in router.routes


@pytest.mark.parametrize("option", GROUPS["routes"])
def test_every_route_table_is_valid(option):
    cfg = load_config([f"routes={option}"])
    routes = build_routes(cfg.routes, cfg.experts)
    assert {r.expert for r in routes} <= set(cfg.experts)
    build_router(load_config([f"routes={option}", "router=keyword"]))  # validates every pattern


def test_default_table_covers_the_nine_routes_with_the_documented_experts():
    cfg = load_config()
    experts = {r.name: r.expert for r in build_routes(cfg.routes, cfg.experts)}
    assert experts == {
        "code": "professor", "math": "professor", "reasoning": "professor", "summarize": "professor",
        "extract": "professor", "chitchat": "zoomer", "knowledge": "zoomer", "creative": "zoomer", "roleplay": "zoomer",
    }
    assert cfg.experts.professor.model == "llama3.2:3b" and cfg.experts.zoomer.model == "tinyllama"
    assert cfg.router.default_route in experts


def test_overrides_reach_the_objects():
    router = build_router(load_config(["router=keyword", "router.default_route=math", "router.keyword.head_chars=50"]))
    assert router.default_route == "math" and router.keyword.head_chars == 50


@pytest.mark.parametrize("overrides, message", [
    (["router.semantic.treshold=0.4"], "router.semantic.treshold"),
    (["router=hybird"], "hybird.*Available options in 'router': hybrid keyword semantic"),
    (["encoder=gpu"], "encoder/gpu"),
    (["router.default_route=cooking", "router=keyword"], "'cooking' is not a route"),
    (["router=keyword", "router.keyword.priority=[mth]"], "unknown route.*mth"),
    (["+routes.code.keywords=['(a+)+']", "router=keyword"], None),
    (["routes.code.keywords=['(a+)+']", "router=keyword"], r"'\(a\+\)\+' of route 'code'.*catastrophically"),
    (["routes.code.expert=wizard", "router=keyword"], "Route 'code' names expert 'wizard'"),
    (["router=keyword", "router.keyword.head_chars=0"], "head_chars"),
    (["router=keyword", "router.keyword.bogus=1"], "bogus"),
])
def test_broken_config_is_one_clear_paragraph(overrides, message):
    if message is None:  # appending to an existing key is a Hydra error too
        with pytest.raises(ConfigError):
            build_router(load_config(overrides))
        return
    with pytest.raises(ConfigError, match=message) as info:
        build_router(load_config(overrides))
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_the_linear_head_is_configured_and_can_be_switched_off(fake_encoder):
    from router.strategies.linear_head import LinearHead

    router = build_router(load_config(["router=hybrid", "router.semantic.head.knn_weight=1.5"]), encoder=fake_encoder)
    assert isinstance(router.semantic.head, LinearHead) and router.semantic.head.knn_weight == 1.5
    off = build_router(load_config(["router=hybrid", "router.semantic.head=null"]), encoder=fake_encoder)
    assert off.semantic.head is None
