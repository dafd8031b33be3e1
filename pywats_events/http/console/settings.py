"""``[http.console]``: whether the operator console is served, and who may use it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseModel):
    """Settings of the web console (``[http.console]``; environment ``PYWATS_HTTP_CONSOLE__<FIELD>``).

    Attributes:
        enabled: serve the console at ``/`` (off by default: nothing is exposed nobody asked for).
        viewer_tokens: tokens that log in with the read-only role (see everything, change nothing).
        admin_tokens: tokens that log in with the admin role (acknowledge, replay, purge, force breakers).
        session_secret: key signing the session cookie; unset, a random key per process (sessions end
            with a restart; set it when several processes serve one console behind a balancer).
        session_max_age: seconds a login lasts.
        page_size: rows per page of the event and dead-letter listings (paged on the server).
        live_interval: seconds between live updates pushed to open pages (server-sent events).

    Raises:
        pydantic.ValidationError: enabled without any token, an empty token, or out-of-range numbers.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    viewer_tokens: list[SecretStr] = Field(default_factory=list)
    admin_tokens: list[SecretStr] = Field(default_factory=list)
    session_secret: SecretStr | None = None
    session_max_age: int = Field(default=8 * 3600, ge=60)
    page_size: int = Field(default=50, ge=5, le=500)
    live_interval: float = Field(default=0.5, ge=0.1, le=30)

    @field_validator("viewer_tokens", "admin_tokens", mode="before")
    @classmethod
    def _one_token(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("viewer_tokens", "admin_tokens")
    @classmethod
    def _non_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(t.get_secret_value()) < 8 for t in value):
            raise ValueError("a console token must have at least 8 characters")
        return value

    @model_validator(mode="after")
    def _tokens_when_enabled(self) -> ConsoleSettings:
        if self.enabled and not (self.viewer_tokens or self.admin_tokens):
            raise ValueError("the console is enabled but has no viewer_tokens or admin_tokens: nobody could log in")
        return self
