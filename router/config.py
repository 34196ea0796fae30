"""Compose the Hydra config and build the router from it (the one core module that knows Hydra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

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


def build_router(cfg: DictConfig) -> HybridRouter:
    """Instantiate the configured tiers over the route table."""
    routes = build_routes(cfg.routes, cfg.experts)
    try:
        keyword = semantic = None
        if cfg.router.get("keyword"):
            keyword = instantiate(cfg.router.keyword, _partial_=True)(routes=routes)
        if cfg.router.get("semantic"):
            exemplars = []
            if cfg.get("exemplars"):
                rows = load_labelled(cfg.exemplars, routes=[r.name for r in routes])
                exemplars = [(row.query, row.route) for row in rows]
            encoder = instantiate(cfg.encoder)
            semantic = instantiate(cfg.router.semantic, _partial_=True)(
                routes=routes, encoder=encoder, exemplars=exemplars
            )
        return HybridRouter(routes, default_route=cfg.router.default_route, keyword=keyword, semantic=semantic)
    except RouterError:
        raise
    except (HydraException, OmegaConfBaseException, TypeError) as e:
        if isinstance(e.__cause__, RouterError):  # raised by a constructor, wrapped by Hydra
            raise e.__cause__ from e
        raise ConfigError(_one_paragraph(e, ())) from e
