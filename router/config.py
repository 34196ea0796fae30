"""Compose the Hydra config and build the router from it (the one core module that knows Hydra)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from router.conversation import ConversationPolicy
from router.data import load_labelled
from router.errors import ConfigError, RouterError
from router.hybrid import HybridRouter
from router.schema import Route

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def load_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose conf/ with Hydra-style overrides (`router.semantic.threshold=0.4`)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(_one_paragraph(e, overrides)) from e
    return cfg


def router_choice(overrides: Sequence[str] = ()) -> str:
    """The router config group these overrides select: the last `router=NAME`, else conf/config.yaml's default.

    >>> router_choice(["router=keyword"]), router_choice() in {"trained", "hybrid"}
    ('keyword', True)
    """
    chosen = [o.partition("=")[2] for o in overrides if o.partition("=")[0].lstrip("+") == "router"]
    if chosen:
        return chosen[-1]
    for item in OmegaConf.load(CONFIG_DIR / "config.yaml").get("defaults", []):
        if isinstance(item, DictConfig) and "router" in item:
            return str(item["router"])
    raise ConfigError("conf/config.yaml names no default router (defaults: - router: NAME).")


def calibration_base(choice: str, calibrated_path: str | Path) -> str:
    """The router config a calibration builds on when the app runs `router=choice`.

    A calibrated config (the one "Apply" writes) is recalibrated on top of the router it was built on,
    never on top of itself.
    """
    path = Path(calibrated_path)
    if choice != path.stem or not path.exists():
        return choice
    for item in OmegaConf.load(path).get("defaults", []):
        if isinstance(item, str) and item != "_self_":
            return item
    raise ConfigError(f"{path} names no router to build on (defaults: - NAME).")


def _one_paragraph(error: BaseException, overrides: Sequence[str]) -> str:
    """Hydra's message chain (outermost first, repeats dropped) on one line, plus a hint."""
    parts: list[str] = []
    while error is not None:
        text = " ".join(str(error).split())
        if text and not any(text in p for p in parts):
            parts.append(text)
        error = error.__cause__ or error.__context__
    text = " ".join(dict.fromkeys(parts)).rstrip(".") or "could not compose the config"
    hint = "Check the key names under conf/ (e.g. router.semantic.threshold=0.4)"
    if overrides:
        hint += f"; overrides given: {' '.join(overrides)}"
    return f"Invalid configuration: {text}. {hint}."


def build_routes(routes_cfg: Any, experts_cfg: Any) -> list[Route]:
    """Route objects from the route table, checking that each names a configured expert."""
    experts = set(experts_cfg or {})
    if not routes_cfg:
        raise ConfigError("The route table (routes:) is empty; define at least one route.")
    routes = []
    for name, spec in routes_cfg.items():
        spec = spec or {}
        expert = spec.get("expert")
        if expert not in experts:
            raise ConfigError(
                f"Route '{name}' names expert '{expert}', which is not configured. "
                f"Available experts: {', '.join(sorted(experts)) or 'none'}"
            )
        unknown = set(spec) - {"expert", "keywords", "utterances"}
        if unknown:
            raise ConfigError(f"Route '{name}' has unknown key(s) {sorted(unknown)}. Allowed: expert, keywords, utterances")
        routes.append(
            Route(
                name=str(name),
                expert=str(expert),
                keywords=tuple(spec.get("keywords") or ()),
                utterances=tuple(spec.get("utterances") or ()),
            )
        )
    return routes


def apply_mapping(routes: list[Route], path: str | None, experts_cfg: Any) -> list[Route]:
    """The routes with the experts a `routes_mapping` file (route: expert, from the Data tab) names instead."""
    if not path:
        return routes
    import yaml

    try:
        mapping = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"routes_mapping={path} cannot be read ({e}); fix the file or drop the override.") from e
    known, experts = {r.name for r in routes}, set(experts_cfg or {})
    for route, expert in mapping.items():
        if route not in known or expert not in experts:
            raise ConfigError(f"routes_mapping={path} maps '{route}' to '{expert}'. Routes: {', '.join(sorted(known))}; "
                              f"experts: {', '.join(sorted(experts))}.")
    return [dataclasses.replace(r, expert=str(mapping.get(r.name, r.expert))) for r in routes]


def build_router(cfg: DictConfig, encoder: Any = None) -> HybridRouter:
    """Instantiate the configured tiers over the route table.

    `encoder`: an already built encoder for the semantic tier instead of one from `cfg.encoder`
    (sweeps share one across configurations).
    """
    routes = apply_mapping(build_routes(cfg.routes, cfg.experts), cfg.get("routes_mapping"), cfg.experts)
    with _explained():
        keyword = semantic = None
        if cfg.router.get("keyword"):
            keyword = instantiate(cfg.router.keyword, _partial_=True)(routes=routes)
        if cfg.router.get("semantic"):
            exemplars = []
            if cfg.get("exemplars"):
                rows = load_labelled(cfg.exemplars, routes=[r.name for r in routes])
                exemplars = [(row.query, row.route) for row in rows]
            if encoder is None:
                encoder = build_encoder(cfg.encoder)
                if cfg.get("encoder_batching"):  # {max_wait_ms, max_batch}: concurrent queries share model runs
                    from router.batching import BatchingEncoder

                    encoder = BatchingEncoder(encoder, **OmegaConf.to_container(cfg.encoder_batching))
            semantic = instantiate(cfg.router.semantic, _partial_=True)(
                routes=routes, encoder=encoder, exemplars=exemplars
            )
        conversation = cfg.router.get("conversation")
        conversation = ConversationPolicy.from_mapping(OmegaConf.to_container(conversation) if conversation else None)
        return HybridRouter(routes, default_route=cfg.router.default_route, keyword=keyword, semantic=semantic,
                            conversation=conversation, unsure=cfg.router.get("unsure") or "default")


@contextmanager
def _explained() -> Iterator[None]:
    """Turn Hydra's instantiation errors into the RouterError a constructor raised, or a ConfigError."""
    try:
        yield
    except RouterError:
        raise
    except (HydraException, OmegaConfBaseException, TypeError) as e:
        if isinstance(e.__cause__, RouterError):  # raised by a constructor, wrapped by Hydra
            raise e.__cause__ from e
        raise ConfigError(_one_paragraph(e, ())) from e


def build_encoder(encoder_cfg: Any) -> Any:
    """The encoder a config's `encoder:` node describes."""
    with _explained():
        return instantiate(encoder_cfg)


def config_key(node: Any) -> str:
    """A config node as stable text, to key caches of objects built from it."""
    return OmegaConf.to_yaml(node)


def config_as_dict(cfg: Any) -> dict[str, Any]:
    """A composed config as plain, JSON-ready containers."""
    return OmegaConf.to_container(cfg, resolve=True)


def split_applicable(overrides: Sequence[str], base: DictConfig | None) -> tuple[list[str], list[str]]:
    """Split overrides into those that apply to `base` and those aimed under a node it sets to null.

    `router=keyword router.semantic.threshold=0.2` cannot compose (router.semantic is null there);
    such overrides are returned as ignored. With no base (the groups did not compose) all apply,
    so that composing them reports the real error.
    """
    if base is None:
        return list(overrides), []
    keep, ignored = [], []
    for override in overrides:
        parts = override.partition("=")[0].lstrip("+~").split(".")
        node: Any = base
        for part in parts[:-1]:
            if not isinstance(node, DictConfig) or part not in node:
                break
            node = node[part]
            if node is None:
                ignored.append(override)
                break
        else:
            keep.append(override)
    return keep, ignored


def build_experts(cfg: DictConfig) -> dict[str, Any]:
    """One Expert per entry of `experts:`, each with its provider built from `ollama:` or `openai:`."""
    from router.providers import OllamaProvider, OpenAICompatProvider
    from router.service import Expert

    experts = {}
    for name, spec in cfg.experts.items():
        backend = spec.get("provider", "ollama")
        if backend == "ollama":
            o = cfg.ollama
            provider = OllamaProvider(
                spec.model, host=o.host, connect_timeout=o.connect_timeout, read_timeout=o.read_timeout,
                options=OmegaConf.to_container(o.options) or None,
            )
        elif backend == "openai":
            o = cfg.openai
            provider = OpenAICompatProvider(
                spec.model, base_url=o.base_url, api_key=o.api_key, connect_timeout=o.connect_timeout,
                read_timeout=o.read_timeout, options=OmegaConf.to_container(o.options) or None,
            )
        else:
            raise ConfigError(f"Expert '{name}' has unknown provider '{backend}'. Available: ollama, openai")
        fallback = spec.get("fallback")
        if fallback is not None and fallback not in cfg.experts:
            raise ConfigError(f"Expert '{name}' falls back to '{fallback}', which is not an expert. "
                              f"Available: {', '.join(cfg.experts)}")
        experts[str(name)] = Expert(str(name), str(spec.model), provider, backend, fallback)
    return experts


def build_service(cfg: DictConfig) -> Any:
    """The chat service: the router plus the experts that answer."""
    from router.service import ChatService

    return ChatService(
        build_router(cfg), build_experts(cfg), max_prompt_chars=cfg.app.max_prompt_chars,
        system_prompt=cfg.app.system_prompt,
    )
