"""Who is asking: accounts and API keys from the environment, roles, and the checks handlers make.

Three roles: `admin` (everything), `labeler` (chat, compare, vote, correct; sees and deletes only
their own records) and `visitor` (anonymous: chat, compare and vote; corrections stay in their own
session). Users come from `WORKBENCH_USERS="alice:admin:<password>,bob:labeler:<password>"`, REST
keys from `WORKBENCH_API_KEYS="<key>[:role],..."` (role defaults to labeler), the way Hugging Face
Spaces passes secrets. Every Gradio event handler and REST endpoint resolves a `Principal` and
checks it itself: a hidden button is not a permission.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from router.errors import ConfigError

USERS_ENV = "WORKBENCH_USERS"
KEYS_ENV = "WORKBENCH_API_KEYS"


class Role(str, Enum):
    """What a principal may do; the order is the order of privilege."""

    VISITOR = "visitor"
    LABELER = "labeler"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """A user, an API key's holder or an anonymous visitor, with a role.

    `name` is what stored records carry (never a secret); `client` is what rate limits count by.
    """

    name: str
    role: Role
    client: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_label(self) -> bool:
        """Whether corrections by this principal change routing for everyone."""
        return self.role in (Role.ADMIN, Role.LABELER)

    @property
    def owner_filter(self) -> str | None:
        """The `user` to filter stored records by: None (all) for an admin, else their own name."""
        return None if self.is_admin else self.name


class Forbidden(Exception):
    """The principal's role does not allow the action; the message says which role does."""


@dataclass(frozen=True, slots=True)
class _Secret:
    value: str = field(repr=False)  # never in a repr, a log line or an error message
    role: Role = Role.LABELER


def _role(text: str, where: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ConfigError(f"{where}: unknown role '{text.strip()}'. Available: admin, labeler") from None


def parse_users(text: str | None) -> dict[str, _Secret]:
    """`name:role:password` entries separated by commas (a password may contain ':', not ',').

    >>> sorted(parse_users("alice:admin:s3cret, bob:labeler:pa:ss"))
    ['alice', 'bob']
    """
    users: dict[str, _Secret] = {}
    for i, entry in enumerate(e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[0].strip() or not parts[2]:
            raise ConfigError(f"{USERS_ENV} entry {i + 1} is not name:role:password "
                              "(e.g. alice:admin:long-password,bob:labeler:another-one).")
        name, role = parts[0].strip(), _role(parts[1], f"{USERS_ENV} entry {i + 1} ({parts[0].strip()})")
        if role is Role.VISITOR:
            raise ConfigError(f"{USERS_ENV}: user '{name}' has role visitor; accounts are admin or labeler.")
        if name in users:
            raise ConfigError(f"{USERS_ENV} names user '{name}' twice.")
        users[name] = _Secret(parts[2], role)
    return users


def parse_keys(text: str | None) -> list[_Secret]:
    """`key[:role]` entries separated by commas; the role defaults to labeler.

    >>> [k.role.value for k in parse_keys("k-0123456789abcdef:admin,k-fedcba9876543210")]
    ['admin', 'labeler']
    """
    keys = []
    for i, entry in enumerate(e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        key, _, role = entry.partition(":")
        if len(key) < 16:
            raise ConfigError(f"{KEYS_ENV} entry {i + 1} is shorter than 16 characters; "
                              "use a long random key (python -c 'import secrets; print(secrets.token_urlsafe())').")
        keys.append(_Secret(key, _role(role, f"{KEYS_ENV} entry {i + 1}") if role else Role.LABELER))
    return keys


def key_name(key: str) -> str:
    """The name records made with an API key carry: a digest prefix, never the key.

    >>> key_name("k-123")
    'key:3605a9e4'
    """
    return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def is_loopback(host: str) -> bool:
    """Whether a bind address only serves this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class LoginThrottle:
    """Refuse logins for a name after `failures` wrong passwords within `window_s` seconds."""

    def __init__(self, failures: int = 5, window_s: float = 60.0) -> None:
        self.failures, self.window_s = failures, window_s
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = self._seen.get(name, deque())
            while recent and now - recent[0] > self.window_s:
                recent.popleft()
            return len(recent) >= self.failures

    def failed(self, name: str) -> None:
        with self._lock:
            if len(self._seen) > 10_000:  # a flood of made-up names must not grow memory without bound
                self._seen.clear()
            self._seen.setdefault(name, deque()).append(time.monotonic())


class Accounts:
    """The configured users and keys, and the mode the app runs in.

    Modes: `local` (loopback, no users, not a public demo: the one person at the keyboard is
    admin), `private` (users configured: everyone signs in), `public` (app.public_demo: anonymous
    visitors allowed; users sign in under `/team/` when there are any).
    """

    def __init__(self, users: Mapping[str, _Secret] | None = None, keys: list[_Secret] | None = None,
                 public_demo: bool = False) -> None:
        self._users = dict(users or {})
        self._keys = list(keys or [])
        self.public_demo = public_demo
        self.throttle = LoginThrottle()
        self._dummy = secrets.token_urlsafe(32)  # compared against when the name is unknown

    @classmethod
    def from_env(cls, environ: Mapping[str, str], host: str, public_demo: bool) -> Accounts:
        """Read users and keys; refuse a non-loopback bind that would serve anonymous admins."""
        if not isinstance(public_demo, bool):
            raise ConfigError(f"app.public_demo must be true or false, got {public_demo!r}.")
        accounts = cls(parse_users(environ.get(USERS_ENV)), parse_keys(environ.get(KEYS_ENV)), public_demo)
        if not is_loopback(host) and not accounts.has_users and not public_demo:
            raise ConfigError(
                f"app.host={host} serves other machines, but no users are configured, so every visitor "
                f"would be an admin. Set {USERS_ENV}='alice:admin:<password>,bob:labeler:<password>' "
                f"(and {KEYS_ENV}='<key>[:role]' for REST clients), or run a public demo where anonymous "
                "visitors may only chat, compare and vote: app.public_demo=true.")
        return accounts

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    @property
    def mode(self) -> str:
        if self.public_demo:
            return "public"
        return "private" if self._users else "local"

    @property
    def login_path(self) -> str | None:
        """Where users sign in: '/' (everyone must), '/team/' (beside an open demo) or None (no accounts)."""
        if not self._users:
            return None
        return "/team/" if self.public_demo else "/"

    def check_password(self, name: str, password: str) -> bool:
        """Gradio's login callback: constant-time, and throttled per name after repeated failures."""
        name = (name or "").strip()
        if self.throttle.blocked(name):
            return False
        secret = self._users.get(name)
        expected = secret.value if secret is not None else self._dummy
        ok = hmac.compare_digest((password or "").encode("utf-8"), expected.encode("utf-8")) and secret is not None
        if not ok:
            self.throttle.failed(name)
        return ok

    def user(self, name: str | None, client: str = "") -> Principal | None:
        """The principal of a signed-in user name (as Gradio's session reports it)."""
        secret = self._users.get(name or "")
        return Principal(name, secret.role, client or name) if secret is not None and name else None

    def for_key(self, key: str, client: str = "") -> Principal | None:
        """The principal of an API key, compared in constant time against every configured key."""
        found = None
        for secret in self._keys:
            if hmac.compare_digest(key.encode("utf-8"), secret.value.encode("utf-8")):
                found = secret
        return Principal(key_name(key), found.role, key_name(key)) if found is not None else None

    def anonymous(self, session: str = "", client: str = "") -> Principal | None:
        """Who an unauthenticated caller is: the local admin, a visitor, or nobody (must sign in)."""
        if self.mode == "local":
            return Principal("local", Role.ADMIN, client or "local")
        if self.mode == "public":
            tag = hashlib.sha256(session.encode("utf-8")).hexdigest()[:8] if session else "rest"
            return Principal(f"anonymous:{tag}", Role.VISITOR, client or f"anonymous:{tag}")
        return None

    def from_gradio(self, request: Any) -> Principal:
        """The principal behind a Gradio event (gr.Request); raises Forbidden if there is none."""
        client = _client(request)
        username = getattr(request, "username", None)
        if username:
            principal = self.user(username, client)
            if principal is not None:
                return principal
        principal = self.anonymous(getattr(request, "session_hash", "") or "", client)
        if principal is None:
            raise Forbidden("Sign in first.")
        return principal


def _client(request: Any) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", "") or ""


def require(principal: Principal, action: str, *, admin: bool = False, label: bool = False) -> None:
    """Raise Forbidden unless the principal may do `action` (admin only, or any signed-in role)."""
    if admin and not principal.is_admin:
        raise Forbidden(f"Only an admin can {action}. Sign in as an admin.")
    if label and not principal.can_label:
        raise Forbidden(f"Only a signed-in labeler or admin can {action}. Sign in first.")


def who_line(accounts: Accounts, request: Any) -> str:
    """One line at the top of the page: who the viewer is and what that lets them do."""
    try:
        principal = accounts.from_gradio(request)
    except Forbidden:
        return "Sign in to use the workbench."
    if accounts.mode == "local":
        return ("Local mode: you are the admin. No accounts are configured, so the workbench only serves "
                "this machine (app.host is a loopback address).")
    if principal.role is Role.VISITOR:
        team = " Team members: [sign in](/team/)." if accounts.login_path == "/team/" else ""
        return ("👋 Public demo: you can chat, compare and vote. Your routing corrections apply to **your session "
                f"only**; signed-in labelers change routing for everyone.{team}")
    return f"Signed in as **{principal.name}** ({principal.role.value}) · [sign out](logout)"


def caller(accounts: Accounts, request: Any, action: str = "", *, admin: bool = False, label: bool = False) -> Principal:
    """The principal behind a Gradio event, checked for `action`; refusals become a gr.Error.

    Every handler calls this first, so a direct HTTP call to the event meets the same check as the button.
    """
    import gradio as gr

    try:
        principal = accounts.from_gradio(request)
        require(principal, action, admin=admin, label=label)
    except Forbidden as e:
        raise gr.Error(str(e), title="Not allowed", print_exception=False) from None
    return principal
