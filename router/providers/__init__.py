"""LLM providers: one backend per module, each a router.protocols.LLMProvider."""

from router.providers.base import BackendStatus, ProviderOptions
from router.providers.ollama import OllamaOptions, OllamaProvider, is_model_pulled
from router.providers.openai_compat import OpenAICompatOptions, OpenAICompatProvider

__all__ = [
    "BackendStatus",
    "OllamaOptions",
    "OllamaProvider",
    "OpenAICompatOptions",
    "OpenAICompatProvider",
    "ProviderOptions",
    "is_model_pulled",
]
