"""Conversation-aware routing: a follow-up keeps its conversation's route, a new topic routes on its own.

"Make it shorter", "why?" or "what about a ternary tree?" say little alone and land on whichever route
their few words resemble. A message counts as a follow-up when it points back at the conversation
(anaphora: "your previous answer", "the above", "rewrite it"; a thing the earlier turns named, "the
story", "this process"), or when alone it is not confident and it shares words with the earlier turns,
opens with a connective, or leans on a pronoun, or when the message read with the previous turn ranks
the conversation's route first while the message alone does not rule that route out. A message that
is confident alone and points at nothing starts a new topic and routes as if it were the first, so a
conversation never sticks to a route it has left. Long messages that carry their own material ("explain
this: <code>") are judged alone whenever they are confident.

A persona set up for the rest of the conversation ("act as a translator; I will provide sentences",
"from now on you are...") stands: later messages are the persona's input and keep its route, however
they look alone, until one leaves it ("stop pretending", "out of character", "new topic").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.errors import ConfigError
from router.schema import ConversationContext, RouteDecision
from router.text import head_tail

_SCAN_CHARS = 400  # cues sit at the start of a follow-up; scanning is bounded whatever its length
_NOUN = (r"(?:response|answer|reply|replies|message|output|question|example|point|version|story|poem|code|"
         r"function|program|solution|text|list|paragraph|problem|task|plan|explanation|suggestion|idea|draft|"
         r"email|essay|script|proposal|statement|result|one|table|outline|summary|letter|article|advice)s?")
# Each pattern names a way of pointing back at the conversation; none has nested repeats (user text).
ANAPHORA: dict[str, re.Pattern] = {name: re.compile(pattern, re.I) for name, pattern in {
    "an earlier answer": rf"\b(?:your|the|my|that|this)\s+(?:own\s+)?(?:previous|earlier|last|prior|above|original|"
                         rf"preceding|former)\s+{_NOUN}\b",
    "your answer": rf"\byour\s+(?:own\s+)?{_NOUN}\b",
    "the above": rf"\b(?:the|that|this)\s+above\b|\babove\s+{_NOUN}\b",
    "the same task": r"\bsame\s+(?:task|question|problem|thing|way|strategy|format|exercise)\b|"
                     r"\b(?:do|repeat|try)\s+(?:it|that|this)\s+again\b",
    "what about": r"^\W*(?:what|how)\s+about\b|^\W*what\s+if\b|^\W*and\s+(?:what|how|if|why)\b",
    "do it": r"\b(?:rewrite|rephrase|reword|shorten|lengthen|expand|simplify|translate|revise|rework|modify|alter|"
             r"amend|update|edit|fix|improve|continue|redo|repeat|summari[sz]e|explain|elaborate\s+on|parallelize|"
             r"optimi[sz]e|refactor|replace|change|convert|turn|test|debug|run)\s+(?:it|that|them|those|these)\b|"
             r"\b(?:check|recheck|double-check|verify|put|format|sort|list|number|organi[sz]e|group|arrange)\s+(?:it|them)\b",
    "it did not work": r"\b(?:it|that|this)\s+(?:still\s+)?(?:doesn't|does\s+not|didn't|did\s+not|"
                       r"won't|will\s+not|isn't|is\s+not|wasn't|was\s+not|don't|do\s+not)\s+(?:seem\s+to\s+)?"
                       r"(?:work|run|compile|help|make\s+sense|add\s+up|correct|right)\b|"
                       r"\b(?:it|that|this)\s+(?:still\s+)?(?:fails|failed|crashes|crashed|breaks|broke|errors)\b",
    "not understood": r"\bI\s+(?:still\s+)?(?:don't|do\s+not|didn't|did\s+not|can't|cannot)\s+(?:get|understand|follow|see)\s+"
                      r"(?:it|that|this|why|how|what\s+you)\b",
    # a short question whose object is "it" ("who opposed it?"); not "what time is it?"
    "a question about it": r"^\W*(?:[\w'-]+\s+){1,6}(?<!\bis\s)(?<!\bwas\s)(?<!\bare\s)(?:it|them)\s*\?\s*$",
    "make it": r"\b(?:make|keep)\s+(?:it|that|this|them)\s+(?:\w+er|more|less)\b",
    "you said": r"\byou\s+(?:just\s+)?(?:said|wrote|mentioned|suggested|gave|listed|described|used|made|proposed)\b",
    "how you got it": r"\bhow\s+(?:did|do|would|could)\s+you\s+(?:get|arrive|come\s+up|calculate|compute|derive|figure|"
                      r"know|find|decide|choose|pick|solve)\b",
    "an edit": r"^\W*(?:(?:can|could|would)\s+you\s+|please\s+|now\s+|also\s+|ok\s+|okay\s+|and\s+)*(?:add|include|remove|"
               r"drop|use|put\s+in)\s+(?:some\s+|more\s+|a\s+few\s+|the\s+)?(?:comments?|docstrings?|type\s+hints?|unit\s+"
               r"tests?|tests?|error\s+handling|logging|examples?|emojis?|headings?|headers?|bullet\s+points?|bullets|"
               r"a\s+title|citations?|sources|references|details?|a\s+conclusion|an\s+intro(?:duction)?|a\s+summary|"
               r"numbers|units|steps)(?:\s+(?:to\s+it|please|too|as\s+well))?\W*$",
    "one more": r"\b(?:another|one\s+more)\s+(?:one|example|option|idea|version|way)\b|\bgive\s+me\s+(?:another|more)\b",
    "asks for more": r"\b(?:more|further)\s+(?:detail|details|information|context|depth|examples?)\b|"
                     r"\b(?:what|anything|something)\s+else\b|\b(?:give|show|provide)\s+(?:me\s+|us\s+)?"
                     r"(?:an?\s+|some\s+|more\s+)?(?:concrete\s+)?examples?\W*$",
    "what it meant": r"\bwhat\s+(?:do|did)\s+you\s+mean\b|\b(?:by|with|of)\s+(?:that|this|it)\W*$",
    "a bare follow-up": r"^\W*(?:why|how\s+so|really|are\s+you\s+sure|go\s+on|continue|more|again|elaborate|"
                        r"explain(?:\s+(?:more|further|why))?|tell\s+me\s+more|say\s+more|keep\s+going|shorter|"
                        r"longer|simpler|examples?|and|or|and\s+then|then\s+what)\W*$",
    "a numbered item": r"\b(?:the|your)\s+(?:first|second|third|fourth|fifth|last|\d+(?:st|nd|rd|th))\s+"
                       r"(?:example|one|point|option|item|case|step|idea|paragraph|sentence|answer|suggestion)s?\b",
}.items()}
# A persona set up for the rest of the conversation ("from now on you are...", "act as a translator; I
# will provide sentences"): later messages are the persona's input, whatever they look like alone.
STANDING = re.compile(
    r"\bfrom\s+now\s+on\b|\bfrom\s+this\s+(?:point|moment)\b|\bfor\s+the\s+rest\s+of\s+(?:this|the|our)\b|"
    r"\bthroughout\s+(?:this|the|our)\s+(?:conversation|chat|session|dialogue|interaction)\b|"
    r"\bin\s+all\s+(?:the\s+|our\s+)?(?:following|future|subsequent|later)\b|"
    r"\b(?:all|any|every|each)\s+(?:of\s+)?(?:my\s+|the\s+|your\s+)?(?:following|future|subsequent|next)\b|"
    r"\buntil\s+I\s+(?:say|tell|ask)\b|\bno\s+matter\s+what\b|\b(?:stay|remain|keep)\s+in\s+(?:character|role|persona)\b|"
    r"\bI(?:\s+will|'ll)\s+(?:provide|give|send|type|ask|tell|share|write|describe|present|paste|enter|say)\b|"
    r"\byou(?:\s+will|'ll)\s+be\s+(?:provided|given|sent|asked|told|shown)\b|\bregardless\s+of\s+(?:what|which|the|how)\b|"
    r"\byou\s+(?:will\s+|must\s+|should\s+)?always\b|\balways\s+(?:respond|reply|answer|speak|talk|write)\b|"
    r"\b(?:my|our|the)\s+first\s+(?:question|command|request|message|sentence|line|task|suggestion)\b|"
    r"\bto\s+(?:begin|start)\b", re.I)
# A message that leaves the persona: "stop pretending", "out of character", "new topic".
PERSONA_EXIT = re.compile(
    r"\bstop\s+(?:acting|pretending|being|playing|role-?playing|the\s+(?:role|game|act|roleplay))\b|"
    r"\b(?:drop|end|exit|leave|break|quit)\s+(?:the|this|your)\s+(?:role|character|persona|act|game|role-?play)\b|"
    r"\bout\s+of\s+character\b|\bOOC\b|\bforget\s+(?:the|your|that|this|all|about\s+the)\s+(?:\w+\s+)?"
    r"(?:role|persona|character|instructions?|game)\b|\bno\s+(?:more|longer)\s+(?:role-?play|pretend)|"
    r"\b(?:new|different|unrelated)\s+(?:topic|subject|question|conversation)\b|\bchange\s+(?:of\s+)?(?:the\s+)?subject\b|"
    r"\btalk\s+about\s+something\s+else\b|\bsomething\s+(?:completely\s+|totally\s+)?(?:different|unrelated)\b|"
    r"\bback\s+to\s+(?:normal|yourself)\b|\b(?:as|be)\s+yourself\b|"
    r"^\W*(?:(?:ok|okay|alright|all\s+right)\W+)?(?:stop|enough)\s*[.!;]", re.I)
_CONNECTIVE = re.compile(r"^\W*(?:and|but|so|also|then|now|ok|okay|instead|plus|or|still|yet|thanks|great|"
                         r"cool|nice)\b", re.I)
_PRONOUN = re.compile(r"\b(?:it|this|these|those|them|they|its|their|he|she|him|her)\b", re.I)
_YOU = re.compile(r"\b(?:you|your|yours|yourself)\b", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_POINTER = r"\b(?:the|this|that|these|those|each|both|such)\s+(?:[A-Za-z-]+\s+){0,2}?"
# Words too common, or too generic as instructions, to tie a message to a conversation.
STOP_WORDS = frozenset("""
about above after again also always another answer any anything around back based because been before being
below best better between both bring can could create describe detail details does doing done each else even
every example examples explain first following from further give given good great have having help here
into just keep know like list little long make many more most much must need next only other over please
provide question really should show some something such sure tell than thank thanks that their them then
there these they thing things think this those through time under used using very want well were what when
where which while will with within without would write your yours
""".split())


def _stem(word: str) -> str:
    """A crude stem, enough to match "impacts" with "impact" and "equations" with "equation".

    >>> _stem("Impacts"), _stem("process"), _stem("stories")
    ('impact', 'process', 'story')
    """
    word = word.lower().strip("'-")
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 4:
        return word[:-1]
    return word


def content_words(text: str) -> dict[str, str]:
    """Stem -> first spelling of each word of 4+ letters that is not a stop word.

    >>> sorted(content_words("Describe the process of photosynthesis, please"))
    ['photosynthesi', 'process']
    """
    words: dict[str, str] = {}
    for w in _WORD.findall(text):
        stem = _stem(w)
        if stem not in STOP_WORDS and w.lower() not in STOP_WORDS:
            words.setdefault(stem, w)
    return words


@dataclass(frozen=True, slots=True)
class FollowUpCues:
    """What in a message points back at the conversation.

    `anaphora` names phrases that refer to earlier turns; `referenced` holds words of earlier turns the
    message points at ("the story", a shared name); `shared` every content word it shares with them;
    `weak` openings and pronouns that suggest a follow-up without proving one.
    """

    anaphora: tuple[str, ...] = ()
    referenced: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    words: int = 0


def follow_up_cues(message: str, earlier: Sequence[str] = ()) -> FollowUpCues:
    """The cues in `message` that it continues the conversation whose user turns were `earlier`.

    >>> follow_up_cues("Rewrite your previous answer as a haiku").anaphora
    ('an earlier answer',)
    >>> follow_up_cues("How can we reverse this process?", ["Describe the process of photosynthesis"]).referenced
    ('process',)
    """
    text = head_tail(message, _SCAN_CHARS, 100)
    words = len(message.split())
    anaphora = tuple(name for name, pattern in ANAPHORA.items() if pattern.search(text))
    before: dict[str, str] = {}
    for turn in earlier:
        before.update(content_words(head_tail(turn, 2000, 500)))
    mine = content_words(text)
    shared = tuple(mine[s] for s in mine if s in before)
    referenced = []
    for word in shared:
        pointed = re.search(_POINTER + re.escape(word) + r"\b", text, re.I)
        named = word[:1].isupper() and re.search(r"[^.!?\s]\s+" + re.escape(word) + r"\b", text)  # a shared name
        if pointed or named:
            referenced.append(word)
    weak = []
    if _CONNECTIVE.search(text):
        weak.append("opens with a connective")
    if words <= 12 and _PRONOUN.search(text):
        weak.append("a short message leaning on a pronoun")
    return FollowUpCues(anaphora, tuple(referenced), shared, tuple(weak), words)


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a conversation stands: its route and the user turn (1-based) that set it."""

    route: str
    turn: int
    decision: RouteDecision
    standing: str = ""  # the words by which the turn set up a persona for the rest of the conversation


@dataclass(frozen=True, slots=True)
class ConversationPolicy:
    """The `router.conversation` settings and the follow-up decision they drive."""

    enabled: bool = True            # false: every message is routed alone, as without a conversation
    max_turns: int = 6              # earlier user turns looked at (older ones no longer steer routing)
    confident_margin: float = 0.5   # an L2 margin (the strategy's units) at which a message stands alone
    long_words: int = 25            # a message this long carries its own material: judged alone
    context_chars: int = 400        # characters of the previous turn read with the message
    # Routes whose conversations set up a persona ("act as a Linux terminal"): a later message that is
    # not confident alone, or is addressed to the assistant ("you"), still talks to the persona.
    persona_routes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ConfigError(f"router.conversation.max_turns must be >= 1, got {self.max_turns}.")
        if self.long_words < 1 or self.context_chars < 0:
            raise ConfigError("router.conversation.long_words must be >= 1 and context_chars >= 0.")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ConversationPolicy:
        """Settings from a config block; unknown keys are refused, naming the allowed ones."""
        values = dict(values or {})
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError(f"Unknown key(s) {unknown} under router.conversation. Allowed: {', '.join(allowed)}")
        if "persona_routes" in values:
            values["persona_routes"] = tuple(values["persona_routes"] or ())
        return cls(**values)

    def follow(self, message: str, alone: RouteDecision, thread: Thread, earlier: Sequence[str],
               route_text: Callable[[str], RouteDecision]) -> RouteDecision:
        """The decision for `message` after the user turns `earlier`, given what it would get alone."""
        turn = len(earlier) + 1
        scanned = head_tail(message, _SCAN_CHARS, 100)
        left = PERSONA_EXIT.search(scanned) if thread.route in self.persona_routes else None
        if left and alone.route == thread.route:
            # "stop the roleplay. write a python script...": the words that leave the persona name it, so
            # the rest of the message says where it goes
            rest = scanned[:left.start()] + " " + scanned[left.end():]
            if len(_WORD.findall(rest)) >= 2:
                alone = dataclasses.replace(route_text(rest), reason=f"leaves the persona ('{left.group(0)}'); the "
                                            f"rest of the message routed alone")
        if alone.route == thread.route:
            return _noted(alone, ConversationContext("same topic", turn, thread.route, thread.turn, alone.route),
                          f"same topic: '{alone.route}' as turn {thread.turn}")
        cues = follow_up_cues(message, earlier[-2:])
        confident = alone.tier == "L1" or (alone.tier == "L2" and alone.margin >= self.confident_margin)
        names = (*cues.anaphora, *(f"refers to '{w}'" for w in cues.referenced), *cues.weak)
        if thread.standing and not left:
            why = f"the persona set up at turn {thread.turn} stands: '{thread.standing}'"
            names = ("a standing persona", *names)
        else:
            why = self._why_follow_up(message, alone, thread, earlier, cues, confident, route_text)
        if why is None:
            return _noted(alone, ConversationContext("new topic", turn, thread.route, thread.turn, alone.route, names),
                          f"new topic (was '{thread.route}')")
        anchor = thread.decision
        kept = dataclasses.replace(
            anchor, route=thread.route, expert=anchor.expert, tier="context", rule=None,
            top_routes=alone.top_routes, scale=alone.scale, timings=alone.timings,
            reason=(f"a follow-up ({why}): keeps the conversation's route '{thread.route}', set at turn "
                    f"{thread.turn}; alone it would go to '{alone.route}' ({alone.tier}, margin {alone.margin:.2f})"),
        )
        return _noted(kept, ConversationContext("follow-up", turn, thread.route, thread.turn, alone.route, names),
                      f"follow-up: kept '{thread.route}' from turn {thread.turn}")

    def next_thread(self, before: Thread | None, message: str, decision: RouteDecision, turn: int) -> Thread:
        """Where the conversation stands after user turn `turn` (`message`, decided as `decision`)."""
        text = head_tail(message, 2000, 500)
        context = decision.conversation
        if before is not None and context is not None and context.kind != "new topic" and decision.route == before.route:
            if PERSONA_EXIT.search(head_tail(message, _SCAN_CHARS, 100)):  # the window `follow` read it in
                return dataclasses.replace(before, standing="")
            return before if before.standing else dataclasses.replace(before, standing=self._standing(before.route, text))
        return Thread(decision.route, turn, decision, self._standing(decision.route, text))

    def _standing(self, route: str, text: str) -> str:
        """The words by which `text` keeps a persona of `route` for the rest of the conversation, or ''."""
        found = STANDING.search(text) if route in self.persona_routes else None
        return " ".join(found.group(0).split()) if found else ""

    def _why_follow_up(self, message: str, alone: RouteDecision, thread: Thread, earlier: Sequence[str],
                       cues: FollowUpCues, confident: bool, route_text: Callable[[str], RouteDecision]) -> str | None:
        """Why the message continues the conversation, or None when it starts a new topic."""
        if cues.words > self.long_words and confident:
            return None  # it carries its own material ("summarize this: <article>") and is clear about it
        if cues.anaphora:
            return f"refers back: {cues.anaphora[0]}"
        if cues.referenced:
            return f"refers to '{cues.referenced[0]}' from earlier"
        if confident:
            return None
        # Weaker cues count only where the message alone does not rule the conversation's route out.
        if thread.route not in {s.route for s in alone.top_routes}:
            return None
        if thread.route in self.persona_routes and _YOU.search(message):
            return "addressed to the persona the conversation set up"
        if cues.shared:
            return f"shares '{cues.shared[0]}' with earlier turns and is not confident alone"
        if cues.weak:
            return f"{cues.weak[0]} and is not confident alone"
        if self.context_chars and alone.top_routes[1:2] and alone.top_routes[1].route == thread.route:
            with_context = route_text(head_tail(earlier[-1], self.context_chars, 0, "") + "\n" + message)
            if with_context.route == thread.route:
                return f"read with the previous turn it ranks '{thread.route}' first"
        return None


def user_turns(history: Sequence[Any], max_turns: int) -> list[str]:
    """The last `max_turns` non-empty user messages of a history of Message objects or {role, content} dicts.

    >>> user_turns([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], 4)
    ['hi']
    """
    turns = []
    for m in history:
        role, content = (m.get("role"), m.get("content")) if isinstance(m, Mapping) else (m.role, m.content)
        if role == "user" and isinstance(content, str) and content.strip():
            turns.append(content)
    return turns[-max_turns:]


def _noted(decision: RouteDecision, context: ConversationContext, text: str) -> RouteDecision:
    return dataclasses.replace(decision, context=text, conversation=context)
