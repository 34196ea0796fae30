"""Plain-text renderings of routing decisions and answer stats for the workbench (Markdown)."""

from __future__ import annotations

import re

from router.schema import RouteDecision
from router.service import Finished


# Code fences (closed, or still open while an answer streams) and inline code spans: shown verbatim.
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]*`)", re.S)


def safe_markdown(text: str) -> str:
    r"""Model or user text as Markdown that fetches nothing: no raw HTML, images become plain links.

    >>> print(safe_markdown("![pixel](http://x.example/p.png) <img src=x> `a<b`"))
    !\[pixel](http://x.example/p.png) &lt;img src=x> `a<b`
    """
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside code
        parts[i] = parts[i].replace("<", "&lt;").replace("![", "!\\[")
    return "".join(parts)


def similarity_bar(score: float, width: int = 20) -> str:
    """A bar of `width` cells for a cosine similarity, clipped to [0, 1].

    >>> similarity_bar(0.5, 4)
    '██░░'
    """
    filled = round(max(0.0, min(1.0, score)) * width)
    return "█" * filled + "░" * (width - filled)


def format_us(us: float | None) -> str:
    """Microseconds as µs below a millisecond, else ms.

    >>> format_us(8.04), format_us(15230.0)
    ('8.0 µs', '15.2 ms')
    """
    if us is None:
        return "-"
    return f"{us:.1f} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def routing_card(decision: RouteDecision, model: str | None) -> str:
    """Which tier, route, expert and model, and why: the rule that fired or the top routes."""
    lines = [
        f"**Routing** · tier **{decision.tier}** · route **{decision.route}** → expert "
        f"**{decision.expert}**" + (f" (`{model}`)" if model else ""),
        f"score {decision.score:.3f} · margin {decision.margin:.3f} · router {format_us(decision.timings.total_us)}"
        f" (L1 {format_us(decision.timings.l1_us)}, L2 {format_us(decision.timings.l2_us)})",
    ]
    if decision.rule is not None:
        r = decision.rule
        pattern = r.pattern if len(r.pattern) <= 60 else r.pattern[:59] + "…"
        lines.append(f"rule `{pattern}` matched “{safe_markdown(r.text)}” at {r.start}–{r.end}")
    for s in decision.top_routes:
        lines.append(f"`{s.route:<10}` {similarity_bar(s.score)} {s.score:.3f}")
    if decision.tier != "L1":  # what ordered the routes, why the default, or why L2 overruled a rule
        lines.append(f"_{decision.reason}_")
    return "  \n".join(lines)


def answer_footer(done: Finished) -> str:
    """Time to first token, speed, tokens, total time, fallback and incompleteness of an answer."""
    parts = []
    s = done.stats
    if s is not None:
        if s.ttft_ms is not None:
            parts.append(f"first token {s.ttft_ms:.0f} ms")
        if s.tokens_per_s is not None:
            parts.append(f"{s.tokens_per_s:.1f} tok/s")
        if s.output_tokens is not None:
            parts.append(f"{s.output_tokens} tokens")
        if s.load_ms:
            parts.append(f"load {s.load_ms:.0f} ms")
    parts.append(f"total {done.total_ms / 1000:.2f} s")
    text = " · ".join(parts)
    if done.fallback_from:
        text += f"  \n↪ **fallback**: {done.fallback_from} failed, {done.expert} answered"
    if done.incomplete:
        text += "  \n⚠️ **incomplete**: the answer broke off; this is what arrived."
    return text
