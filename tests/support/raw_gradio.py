"""Call a Gradio event the way an attacker would: raw HTTP to the queue, by component, hidden or not.

`api_visibility="private"` only hides an event from the API docs; its handler still answers
`POST <root>/gradio_api/queue/join`. These helpers find an event by its trigger's `elem_id` in the
page config and call it with plain httpx, optionally with a signed-in user's cookies.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Outcome:
    """How an event call ended: its outputs, or Gradio's error message."""

    success: bool
    data: list[Any] | None
    error: str | None
    status: int = 200


def login(root: str, user: str, password: str) -> httpx.Client:
    """An httpx client holding a Gradio login session for the Blocks mounted at `root`."""
    client = httpx.Client(base_url=root, timeout=30, follow_redirects=True)
    response = client.post("login", data={"username": user, "password": password})
    response.raise_for_status()
    return client


def anonymous(root: str) -> httpx.Client:
    return httpx.Client(base_url=root, timeout=30, follow_redirects=True)


def config(client: httpx.Client) -> dict:
    response = client.get("config")
    response.raise_for_status()
    return response.json()


def fn_index(cfg: dict, elem_id: str, event: str = "click") -> int:
    """The id of the event that `event` on the component with `elem_id` triggers."""
    ids = [c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id]
    if not ids:
        raise KeyError(f"No component with elem_id {elem_id!r}")
    for dep in cfg["dependencies"]:
        if any(t[0] == ids[0] and t[1] == event for t in dep.get("targets", [])):
            return dep["id"]
    raise KeyError(f"No {event} event on {elem_id!r}")


def fn_by_api_name(cfg: dict, api_name: str) -> int:
    for dep in cfg["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep["id"]
    raise KeyError(api_name)


def call(client: httpx.Client, fn: int, data: list[Any], session_hash: str | None = None,
         trigger_id: int | None = None) -> Outcome:
    """Join the queue for event `fn` with `data` and read the stream until the event completes."""
    session_hash = session_hash or uuid.uuid4().hex[:12]
    join = client.post("gradio_api/queue/join", json={
        "data": data, "fn_index": fn, "session_hash": session_hash, "event_data": None, "trigger_id": trigger_id})
    if join.status_code != 200:
        return Outcome(False, None, join.text, join.status_code)
    with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session_hash}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                if message.get("success"):
                    return Outcome(True, output.get("data"), None)
                return Outcome(False, None, str(output.get("error") or output))
    return Outcome(False, None, "the stream ended without a result")


def inputs_for(cfg: dict, fn: int, **values: Any) -> list[Any]:
    """The event's inputs: each component's current default, or `values[elem_id]` (dashes as underscores)."""
    components = {c["id"]: c for c in cfg["components"]}
    dep = next(d for d in cfg["dependencies"] if d["id"] == fn)
    data = []
    for cid in dep["inputs"]:
        props = components[cid].get("props", {})
        key = (props.get("elem_id") or "").replace("-", "_")
        data.append(values[key] if key in values else props.get("value"))
    return data
