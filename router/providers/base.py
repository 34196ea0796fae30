"""Parts shared by the HTTP providers: typed options that reject unknown keys, and a health report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from router.errors import ConfigError

OptionsT = TypeVar("OptionsT", bound="ProviderOptions")


class ProviderOptions(BaseModel):
    """Sampling options common to every backend; a subclass adds the backend's own.

    Strict: a typo or a wrong type fails loudly instead of being ignored by the server.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        # One stop string, or a tuple from a frozen config, are both fine; the wire wants a list.
        if isinstance(value, str):
            return [value]
        return list(value) if isinstance(value, tuple) else value

    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        """The option names this backend accepts, sorted."""
        return tuple(sorted(cls.model_fields))


def validate_options(schema: type[OptionsT], options: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """Check `options` against `schema` and return the ones that are set, ready for the wire.

    >>> validate_options(ProviderOptions, {"temperature": 0, "stop": "###"}, "X")
    {'temperature': 0.0, 'stop': ['###']}
    """
    options = dict(options or {})
    allowed = schema.allowed()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"Unknown option '{unknown[0]}' for {owner}. Allowed: {', '.join(allowed)}")
    try:
        parsed = schema(**options)
    except ValidationError as e:
        error = e.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        raise ConfigError(
            f"Option '{key}' for {owner} is invalid ({options.get(key)!r}): {error['msg']}. Allowed: {', '.join(allowed)}"
        ) from e
    return parsed.model_dump(exclude_none=True)


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """Whether a backend answers, its version, the models it can serve, and what to do if it does not."""

    reachable: bool
    version: str | None = None
    models: tuple[str, ...] = ()
    error: str | None = None
