"""Plain-text renderings of routing decisions and answer stats for the workbench (Markdown)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from router.schema import RouteDecision, RouteScore
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


def shorten(text: str, width: int = 60) -> str:
    """One line of at most `width` characters, cut with an ellipsis.

    >>> shorten("a  b\\nc"), shorten("abcdef", 4)
    ('a b c', 'abc…')
    """
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


_MARKDOWN_MARKS = {c: f"&#{ord(c)};" for c in "\\`*_[]|<>&~"}


def with_hover(text: str, width: int = 60) -> str:
    """Inline code shortened to `width`, the full text on hover (an HTML title); nothing in it reads as Markdown.

    >>> with_hover("a*b")
    '<code>a&#42;b</code>'
    """
    flat = " ".join(text.split())
    short = "".join(_MARKDOWN_MARKS.get(c, c) for c in shorten(flat, width))
    if len(flat) <= width:
        return f"<code>{short}</code>"
    return f'<code title="{html.escape(flat)}">{short}</code>'


def by_similarity(decision: RouteDecision) -> tuple[RouteScore, ...]:
    """The top routes in the order of the similarities the card shows (the head may rank them otherwise)."""
    return tuple(sorted(decision.top_routes, key=lambda s: -s.score))


def head_ordered(decision: RouteDecision) -> bool:
    """Whether something other than similarity ordered the routes (the linear head): the margin is then in its units.

    With similarity alone, the margin is the best score's lead over the second, as shown.
    """
    top = decision.top_routes
    if decision.scale == "probability":  # the trained tier orders routes by the probabilities it shows
        return False
    if len(top) < 2:
        return "linear head" in decision.reason
    return list(top) != list(by_similarity(decision)) or abs(decision.margin - (top[0].score - top[1].score)) > 2e-4


def _default_reason(decision: RouteDecision) -> str:
    """Why no tier decided: the route that really scored highest, what the head preferred if it differs, and
    where the query went instead."""
    ranked = by_similarity(decision)
    if not ranked:
        return decision.reason
    best, first = ranked[0], decision.top_routes[0]
    needs = re.search(r"\(needs [^)]*\)", decision.reason)
    text = (f"no keyword rule fired and no route was confident enough: highest {decision.scale} '{best.route}' "
            f"{best.score:.3f}")
    if first.route != best.route:
        text += f"; the linear head ranked '{first.route}' ({first.score:.3f}) first"
    where = decision.reason.partition("; so it goes to ")[2]  # router.unsure: expert
    where = f"; so it goes to {where}" if where else f"; sent to the default route '{decision.route}'"
    return text + (f" {needs.group(0)}" if needs else "") + where


def routing_card(decision: RouteDecision, model: str | None, answered_by: str | None = None) -> str:
    """Which tier, route, expert and model, and why: the rule that fired or the top routes.

    `answered_by` is the expert that really answered (another one after a fallback), `model` its model.
    """
    head = f"**Routing** · tier **{decision.tier}** · route **{decision.route}** → expert **{decision.expert}**"
    if answered_by is not None and answered_by != decision.expert:
        head += f" · ↪ **{answered_by}** answered" + (f" (`{model}`)" if model else "") + f": {decision.expert} failed"
    elif model:
        head += f" (`{model}`)"
    numbers = [f"router {format_us(decision.timings.total_us)} (L1 {format_us(decision.timings.l1_us)}, "
               f"L2 {format_us(decision.timings.l2_us)})"]
    if decision.tier != "L1" and decision.top_routes:
        units = " (linear-head units)" if head_ordered(decision) else f" ({decision.scale})"
        mine = next((s.score for s in decision.top_routes if s.route == decision.route), None)
        others = [s.score for s in decision.top_routes if s.route != decision.route]
        if decision.tier in ("L2", "session") and mine is not None and others:
            numbers.insert(0, f"{decision.scale} {mine:.3f} · lead over the next route {mine - max(others):+.3f}")
        lead_shown = decision.tier in ("L2", "session") and decision.scale == "probability"  # the margin is the lead
        if decision.tier != "context" and not lead_shown:  # a kept follow-up's margin is the earlier turn's
            numbers.insert(len(numbers) - 1, f"margin {decision.margin:.3f}{units}")
    if decision.tier == "session":
        numbers.insert(0, f"similarity to your correction {decision.score:.3f}")
    lines = [head, " · ".join(numbers)]
    context = getattr(decision, "context", None)
    if context:
        lines.append(f"context: “{safe_markdown(shorten(str(context), 120))}”")
    if decision.rule is not None:
        r = decision.rule
        lines.append(f"rule {with_hover(r.pattern)} matched “{safe_markdown(shorten(r.text, 80))}” at {r.start}–{r.end}")
    blocks = ["  \n".join(lines)]
    if decision.top_routes:  # a table: the bars line up whatever the route names' lengths
        rows = [f"| {s.route}{' ✓' if s.route == decision.route else ''} | `{similarity_bar(s.score)}` | {s.score:.3f} |"
                for s in by_similarity(decision)]
        alone = " of the message alone" if decision.tier == "context" else ""
        blocks.append("\n".join([f"| route | {decision.scale}{alone} | |", "|:--|:--|--:|", *rows]))
    if decision.tier == "default":
        blocks.append(f"_{_default_reason(decision)}_")
    elif decision.tier != "L1":  # what ordered the routes, or why L2 overruled a rule
        blocks.append(f"_{decision.reason}_")
    return "\n\n".join(blocks)


def failure_list(error: str, experts: Mapping[str, str]) -> list[str]:
    """An error naming several experts' failures ("professor (m1): … zoomer (m2): …") as one item each.

    `experts` maps expert name to model, as the service writes them.

    >>> failure_list("a (m): down b (n): slow", {"a": "m", "b": "n"})
    ['a (m): down', 'b (n): slow']
    """
    heads = "|".join(re.escape(f"{name} ({model}): ") for name, model in experts.items())
    if not heads:
        return [error]
    starts = [m.start() for m in re.finditer(heads, error)]
    if len(starts) < 2:
        return [error]
    starts[0] = 0
    return [error[a:b].strip() for a, b in zip(starts, [*starts[1:], len(error)])]


def error_markdown(error: str, experts: Mapping[str, str]) -> str:
    """One failure as a sentence, several as a bulleted list."""
    items = failure_list(error, experts)
    if len(items) == 1:
        return safe_markdown(items[0])
    return "\n" + "\n".join(f"- {safe_markdown(item)}" for item in items)


def plain(text: str) -> str:
    """Markdown emphasis and code marks taken out, for pop-ups (gr.Info, gr.Warning) that show text as is.

    >>> plain("asking **zoomer** (`tinyllama`)")
    'asking zoomer (tinyllama)'
    """
    return re.sub(r"(\*\*|__|`)", "", text)


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
