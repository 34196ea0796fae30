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

A short question that leans on a pronoun after a pasted text ("is it fully remote?") asks about that text.
A message with nothing of its own ("where?", "eli5") follows; one that opens by announcing a new
topic ("unrelated, but...", "different question:", "btw", "otra cosa") routes alone. Small talk in the
middle of a task ("lol are you gpt4?", "love it") is answered alone and leaves the task open, so the
message after it can still follow up on the task.

A persona set up ("act as a travel guide", "you are my Spanish tutor") stands: later messages are the
persona's input and keep its route, however they look alone ("I'm in Lisbon", "ls -la"), until one
leaves it ("stop pretending", "ok stop the pirate thing", "let's stop the interview": what follows starts
a new topic) or, unless it was set up for the rest of the conversation ("from now on", "I will provide..."),
a rule sends a request elsewhere ("write a python function to...").
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
                     r"\b(?:do|repeat|try)\s+(?:it|that|this)\s+again\b|^\W*(?:again|once\s+more)\b|\b(?:do|try|same)\s+(?:the\s+same\s+)?(?:for|with)\s+"
                     r"(?:this|these|the\s+following)\b|\bdo\s+the\s+same\b",
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
    "doubt": r"^\W*(?:(?:hmm+|wait|but|so|um+|uh+)\W+)*(?:are\s+(?:you|u)\s+sure|is\s+(?:that|this)\s+(?:right|correct|true)|"
             r"that(?:'s|\s+is)\s+(?:wrong|not\s+right|incorrect)|(?:that|this)\s+can't\s+be\s+right)\b",
    "an adjustment": r"^\W*(?:(?:a\s+(?:bit|little|lot)|much|way|even)\s+)?(?:shorter|longer|simpler|funnier|punchier|shorter\s+still|"
                     r"more\s+(?:formal|casual|concise|detailed|polite|professional)|less\s+(?:formal|wordy|technical))"
                     r"(?:\s+(?:and|&|but)\s+(?:a\s+bit\s+)?(?:\w+er|more\s+\w+|less\s+\w+))?"  # "shorter and less formal"
                     r"\s*(?:[.!,;]|pls\b|please\b|$)",
    "continues with a connective": r"^\W*(?:and|or|but|also|plus)\s+(?:[\w'-]+[^\w'-]*){0,4}$",
    # a short question about a person or thing named before ("how long was she in england"), not a request about them
    "a question about someone named before": r"^\W*(?:(?:and|but|so)\s+)?(?:who|what|when|where|why|how|which|whose|is|was|are|"
                                             r"were|did|does|do|has|have|can|could|will|would)\b(?:\s+[\w'-]+){0,3}?\s+"
                                             r"(?:he|she|they|him|her|them|his|their)\b(?:[^\w'-]*[\w'-]+){0,5}[^\w'-]*$",
    "a question on it": r"^\W*(?:(?:and|but|so|ok|okay)\W+)?(?:does|did|will|would|can|could|should|has)\s+(?:it|that|this)\s+"
                        r"(?!rain|snow|matter)\w+",  # not "is it...": "is it safe to...?" asks about the world
    "a correction": r"^\W*(?:(?:no|nope|nah|sorry|wait|hmm+)\W+)*(?:I|i)\s+(?:meant|was\s+asking|asked\s+(?:for|about))\b|"
                    r"\bnot\s+what\s+(?:I|i)\s+(?:asked|meant|wanted|said)\b",
    # the commonest follow-ups in Spanish, German and French (the encoder and the rules read English)
    "a follow-up in another language": r"\b(?:no\s+entiendo|me\s+lo\s+puedes|puedes\s+explicar|explícamelo|explícame\s+(?:eso|esto)|"
                                       r"más\s+corto|más\s+largo|otra\s+vez|de\s+nuevo|añade|agrega|hazlo|cámbialo|"
                                       r"verstehe\s+(?:ich\s+)?(?:das\s+)?nicht|erklär\w*\s+(?:es|das)|kürzer|länger|nochmal|"
                                       r"noch\s+einmal|füg\w*\s+[\w\s]{1,40}?hinzu|je\s+ne\s+comprends\s+pas|réexpliquer|"
                                       r"explique(?:-le|-la|-moi\s+(?:ça|cela))|plus\s+court|plus\s+long|encore\s+une\s+fois|"
                                       r"ajoute|refais)\b",
    "make it": r"\b(?:make|keep)\s+(?:it|that|this|them)\s+(?:\w+er|more|less)\b|"
               # "now make the JSON object shorter": an imperative opening that adjusts a thing already made
               r"^\W*(?:(?:now|ok|okay|and|also|but|then|please|pls|(?:can|could)\s+you)\W+)*(?:make|keep)\s+"
               r"(?:the|your)\s+(?:[\w-]+\s+){0,3}?(?:shorter|longer|simpler|clearer|funnier|smaller|bigger|faster|"
               r"easier|tighter|punchier|cleaner|friendlier|warmer|stronger|safer|more\s+\w+|less\s+\w+)\b",
    "you said": r"\byou\s+(?:just\s+)?(?:said|wrote|mentioned|suggested|gave|listed|described|used|made|proposed|"
                r"left\s+out|forgot|missed|skipped|omitted|ignored|dropped|misread|misunderstood)\b",
    "what the text says": r"\b(?:does|did)\s+(?:it|the\s+(?:text|article|passage|email|contract|story|document|"
                          r"paragraph|report|recipe|letter|notes?))\s+(?:say|mention|state|tell|list|specify|include)\b|"
                          r"\b(?:mentioned|listed|stated|specified|written)\s+"
                          r"(?:anywhere|at\s+all|in\s+(?:it|there|the\s+\w+))\b|"
                          r"\bsay\s+anything\s+(?:about|on)\b",
    "how you got it": r"\bwhy\s+(?:did|would)\s+(?:you|u)\s+\w+|"
                      r"\bhow\s+(?:did|do|would|could)\s+(?:you|u)\s+(?:get|arrive|come\s+up|calculate|compute|derive|figure|"
                      r"know|find|decide|choose|pick|solve)\b",
    "an edit": r"^\W*(?:(?:can|could|would)\s+you\s+|please\s+|now\s+|also\s+|ok\s+|okay\s+|and\s+)*(?:add|include|remove|"
               r"drop|use|put\s+in)\s+(?:some\s+|more\s+|a\s+few\s+|the\s+)?(?:comments?|docstrings?|type\s+hints?|unit\s+"
               r"tests?|tests?|error\s+handling|logging|examples?|emojis?|headings?|headers?|bullet\s+points?|bullets|"
               r"a\s+title|citations?|sources|references|details?|a\s+conclusion|an\s+intro(?:duction)?|a\s+summary|"
               r"numbers|units|steps)(?:\s+(?:to\s+it|please|too|as\s+well))?\W*$",
    # "add a joke about him being late", "work in a line about the dog": more material for the piece in hand
    "an addition": r"^\W*(?:(?:(?:can|could|would)\s+(?:you|u)|please|pls|now|also|ok|okay|and|maybe)\W+)*"
                   r"(?:add|include|mention|work\s+in|throw\s+in|put\s+in|slip\s+in)\s+(?:a|an|one|some|another)\s+"
                   r"(?:[\w-]+\s+)?(?:joke|line|"
                   r"sentence|paragraph|bit|part|section|quote|anecdote|mention|reference|story|verse|stanza|scene|"
                   r"detail|pun)s?\s+(?:about|on|where|that|saying|with|to|for|from)\b",
    "one more": r"\b(?:another|one\s+more)\s+(?:one|example|option|idea|version|way)\b|\bgive\s+me\s+(?:another|more)\b|"
                r"\b(?:give|write|show|make|generate|list|suggest)\s+(?:me\s+)?"
                r"(?:\d+|two|three|four|five|a\s+few|some)\s+more\b|"
                r"\b(?:\d+|two|three|four|five|a\s+few|some|more|other|different)\s+(?:more\s+)?(?:variations?|versions?|"
                r"alternatives?|variants?|takes|rewrites)\b",
    "asks for more": r"\b(?:more|further)\s+(?:detail|details|information|context|depth|examples?)\b|"
                     r"\b(?:what|anything|something)\s+else\b|\b(?:give|show|provide)\s+(?:me\s+|us\s+)?"
                     r"(?:an?\s+|some\s+|more\s+)?(?:concrete\s+)?examples?\W*$",
    "what it meant": r"\bwhat\s+(?:do|did)\s+you\s+mean\b|\b(?:by|with|of)\s+(?:that|this|it)\W*$",
    "a bare follow-up": r"^\W*(?:why|how\s+so|really|are\s+you\s+sure|go\s+on|continue|more|again|elaborate|"
                        r"explain(?:\s+(?:more|further|why))?|tell\s+me\s+more|say\s+more|keep\s+going|shorter|"
                        r"longer|simpler|examples?|and|or|and\s+then|then\s+what|sources?|citations?|proof|eli5)\W*$",
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
    r"\bback\s+to\s+(?:normal|yourself)\b|\b(?:as|be)\s+yourself\b|\bnot\s+in\s+(?:character|role)\b|"
    r"\b(?:paus(?:e|ing)|step(?:ping)?\s+out\s+of|leav(?:e|ing)|break(?:ing)?|exit(?:ing)?|quit(?:ting)?|get(?:ting)?\s+out\s+of)"
    r"\s+(?:the|this|our|your)\s+(?:game|role|character|persona|act|role-?play|scene|story|adventure|interview|simulation)\b|"
    r"\b(?:let's|lets|let\s+us)\s+(?:stop|end|pause)\b|"
    r"\b(?:stop|end|pause)\s+(?:the|this|our)\s+(?:interview|game|scene|lesson|session|simulation|exercise|practice|quiz|"
    r"story|adventure|conversation|chat)\b|"
    r"\bstop\s+(?:the|this|your|with\s+the)\s+(?:[\w-]+\s+){0,2}?(?:thing|bit|act|voice|accent|stuff)\b|"
    r"\b(?:break|pause)\s+time\b|\bbut\s+seriously\b|\bseriously\s+though\b|\b(?:joking|kidding)\s+aside\b|"
    r"\b(?:i'?m|i\s+am)\s+done\s+(?:playing|pretending|role-?playing)\b|\bspaß\s+beiseite\b|\bbromas\s+aparte\b|"
    r"\bblague\s+à\s+part\b|\bscherzi\s+a\s+parte\b|\b(?:take|taking)\s+a\s+break\s+from\s+(?:the|this)\b|"
    r"^\W*(?:(?:ok|okay|alright|all\s+right|haha+|lol)\W+)?(?:stop|enough)(?:\W+(?:haha+|lol|lmao+|pls|please))?"
    r"\s*[.!;,]", re.I)
# Words at the start of a message that announce a new topic in any conversation ("unrelated, but...",
# "different question:", "btw", "nvm"): the rest of the message is routed alone unless it points back.
NEW_TOPIC = re.compile(
    r"\bunrelated\b|\boff[-\s]topic\b|\bon\s+(?:a|an)?\s*(?:different|unrelated|separate|other|another)\s+(?:note|topic|subject)\b|"
    r"\bon\s+another\s+note\b|\bswitching\s+(?:gears|topics?)\b|\bchang(?:e|ing)\s+(?:of\s+)?(?:the\s+)?(?:subject|topic)\b|"
    r"\b(?:new|different|diff|unrelated|separate|random|totally\s+different)\s+(?:topic|subject|question|q|thing|puzzle|task|request)\b|"
    r"\botra\s+(?:cosa|pregunta)\b|\bpor\s+cierto\b|\bcambiando\s+de\s+tema\b|\bandere\s+(?:frage|sache)\b|\bübrigens\b|"
    r"\bautre\s+(?:chose|question)\b|\bau\s+fait\b|\bchangement\s+de\s+sujet\b|\bquick\s+(?:q|question)\b|"
    r"\b(?:real|serious|actual)\s+(?:q|question)\b|^\W*(?:\w+\W+){0,2}?random(?:ly)?\s*(?:[,:;]|but\b|q\b)|"
    r"\bbtw\b|\bby\s+the\s+way\b|\bnvm\b|\bnever\s*mind\b|"
    r"\btalk\s+about\s+something\s+else\b",
    re.I)
_OPENING_CHARS = 60  # a topic-switch cue counts only among the first words of a message
# A bare acknowledgement ("love it", "thanks!", "nice"): answered on its own, it leaves the conversation's
# task where it was, so the next message can still follow up on it.
ACK = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|cool|nice|great|perfect|awesome|amazing|wonderful|excellent|lovely|good|wow|lol|haha+|"
    r"thanks|thank\s+(?:you|u)|thx|ty|cheers|got\s+it|i\s+see|makes\s+sense|love\s+(?:it|this|that)|"
    r"(?:muchas\s+)?gracias|vale|genial|perfecto|jaja+|(?:vielen\s+)?dank(?:e)?|perfekt|super|toll|merci(?:\s+beaucoup)?|parfait|"
    r"génial|d'accord|top|"
    r"(?:that's|thats|that\s+is|this\s+is)\s+(?:great|perfect|nice|awesome|good|amazing|helpful|cool)|"
    r"(?:so\s+|very\s+|really\s+)?(?:helpful|good|nice|cool))(?:\s+(?:so\s+much|a\s+lot|again|man|dude))?\W*){1,3}$",
    re.I)
# A message shaped as a request to an assistant ("can you...", "what is...", "write..."), not a line of dialogue.
_REQUEST = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|now|so|hey|please|pls|and|but|alright)\W+)*(?:(?:can|could|would|will)\s+(?:you|u)\b|"
    r"(?:what|what's|whats|how|why|when|where|who|which|is|are|does|do|write|create|make|give|solve|calculate|"
    r"compute|fix|debug|explain|summari[sz]e|translate|list|generate|implement|find|convert|tell|show|help)\b)", re.I)
# "y", "und", "et", "e": the same openings in Spanish, German, French and Portuguese ("e.g." is not one)
_CONNECTIVE = re.compile(r"^\W*(?:and|but|so|also|then|now|ok|okay|instead|plus|or|still|yet|thanks|great|cool|nice|"
                         r"y|pero|ahora|entonces|und|aber|jetzt|dann|et|mais|maintenant|alors|e|mas|agora|então)"
                         r"\b(?![.'-])", re.I)
_PRONOUN = re.compile(r"\b(?:it|this|these|those|them|they|its|their|he|she|him|her)\b", re.I)
# "write the tests too", "can you also show the count": a request that adds to the task in hand
_ADDITIVE = re.compile(r"\b(?:too|as\s+well)\W*$|"
                       r"^\W*(?:(?:ok|okay|perfect|great|thanks|now|and)\W+)*(?:can|could)\s+(?:you|u)\s+also\b|"
                       r"^\W*(?:(?:ok|okay|now|and)\W+)*also\b", re.I)
# A run of four letters outside A-Z ("谢谢帮我写", "спасибо"): words the English cues cannot read, not a fragment
_OTHER_SCRIPT_WORD = re.compile(r"[^\W\dA-Za-z_]{4,}")
_YOU = re.compile(r"\b(?:you|your|yours|yourself)\b", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_NAME = re.compile(r"(?<=[^.!?\s:;\n] )[A-Z][a-z][A-Za-z'-]{2,}")
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
    own: int = 0  # content words of the message: none makes a fragment that needs its conversation ("where?")


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
    names: set[str] = set()  # stems of words the earlier turns capitalized mid-sentence: names
    for turn in earlier:
        window = head_tail(turn, 2000, 500)
        before.update(content_words(window))
        names.update(_stem(w) for w in _NAME.findall(window))
    mine = content_words(text)
    shared = tuple(mine[s] for s in mine if s in before)
    referenced = []
    for word in shared:
        pointed = re.search(_POINTER + re.escape(word) + r"\b", text, re.I)
        named = _stem(word) in names or (  # a name from earlier, however the message spells it
            word[:1].isupper() and re.search(r"[^.!?\s]\s+" + re.escape(word) + r"\b", text))
        if pointed or named:
            referenced.append(word)
    weak = []
    if _CONNECTIVE.search(text):
        weak.append("opens with a connective")
    if words <= 12 and _PRONOUN.search(text):
        weak.append("a short message leaning on a pronoun")
    if words <= 25 and _ADDITIVE.search(text):
        weak.append("adds to what came before")
    return FollowUpCues(anaphora, tuple(referenced), shared, tuple(weak), words, len(mine))


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a conversation stands: its route and the user turn (1-based) that set it."""

    route: str
    turn: int
    decision: RouteDecision
    standing: str = ""  # the words by which the turn set up a persona that later messages talk to
    # True when those words ask for it explicitly ("from now on", "I will provide"): then only leaving it
    # ends it. A persona set up without them ("act as a travel guide") also gives way to a clear request
    # for another route ("write a python function to...").
    explicit: bool = False
    # The conversation's task when this thread is a small-talk aside ("are you gpt4?" in the middle of a
    # coding task): a later message that does not continue the aside is judged against the task.
    task: Thread | None = None


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
    # Routes whose requests a persona takes as its own input (small talk: "tell me a joke" to a pirate).
    persona_absorbs: tuple[str, ...] = ()
    # Routes of small talk: a new topic there is an aside that leaves the conversation's task open, so "fix
    # it" after "lol are you gpt4?" still follows the code.
    asides: tuple[str, ...] = ()
    # A message this unsure alone (margin below it) follows up on weak cues even where its own top routes
    # leave out the conversation's route: its ranking says little. 0 turns this off.
    unsure_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ConfigError(f"router.conversation.max_turns must be >= 1, got {self.max_turns}.")
        if self.long_words < 1 or self.context_chars < 0:
            raise ConfigError("router.conversation.long_words must be >= 1 and context_chars >= 0.")
        if self.unsure_margin < 0:
            raise ConfigError(f"router.conversation.unsure_margin must be >= 0, got {self.unsure_margin}.")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ConversationPolicy:
        """Settings from a config block; unknown keys are refused, naming the allowed ones."""
        values = dict(values or {})
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError(f"Unknown key(s) {unknown} under router.conversation. Allowed: {', '.join(allowed)}")
        for key in ("persona_routes", "persona_absorbs", "asides"):
            if key in values:
                values[key] = tuple(values[key] or ())
        return cls(**values)

    def follow(self, message: str, alone: RouteDecision, thread: Thread, earlier: Sequence[str],
               route_text: Callable[[str], RouteDecision]) -> RouteDecision:
        """The decision for `message` after the user turns `earlier`, given what it would get alone."""
        turn = len(earlier) + 1
        if thread.task is not None:
            task_turns = earlier[:thread.turn - 1]
            continues_aside = alone.route == thread.route and not follow_up_cues(message, task_turns[-2:]).shared
            if not continues_aside:  # "another one" after a joke stays with the joke; the rest goes to the task
                return self.follow(message, alone, thread.task, earlier, route_text)
        scanned = head_tail(message, _SCAN_CHARS, 100)
        left = PERSONA_EXIT.search(scanned) if thread.route in self.persona_routes else None
        switch = _announced_new_topic(scanned)
        # "stop the roleplay. write a python script...", "btw, what is 12 * 13?": the words that leave the
        # conversation may name its route themselves, so the rest of the message says where it goes
        for cue, what in ((left, "leaves the persona"), (switch, "announces a new topic")):
            rest = scanned[:cue.start()] + " " + scanned[cue.end():] if cue else ""
            if cue and alone.route == thread.route and len(_WORD.findall(rest)) >= 2:
                alone = dataclasses.replace(route_text(rest), reason=f"{what} ('{cue.group(0)}'); the rest of the "
                                            f"message routed alone")
        if alone.route == thread.route:
            return _noted(alone, ConversationContext("same topic", turn, thread.route, thread.turn, alone.route),
                          f"same topic: '{alone.route}' as turn {thread.turn}")
        if switch or left:  # "ok stop the pirate thing, is it true that...": what follows is not the persona's
            cue = f"announces a new topic ('{switch.group(0)}')" if switch else f"leaves the persona ('{left.group(0)}')"
            return _noted(alone, ConversationContext("new topic", turn, thread.route, thread.turn, alone.route, (cue,)),
                          f"new topic (was '{thread.route}')")
        cues = follow_up_cues(message, earlier[-2:])
        confident = alone.tier == "L1" or (alone.tier == "L2" and alone.margin >= self.confident_margin)
        names = (*cues.anaphora, *(f"refers to '{w}'" for w in cues.referenced), *cues.weak)
        stands = thread.standing and not left and (thread.explicit or not self._asks_elsewhere(message, alone))
        if stands:
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
                return dataclasses.replace(before, standing="", explicit=False)
            if before.explicit:
                return before
            standing, explicit = self._standing(before.route, text, decision)
            return dataclasses.replace(before, standing=standing, explicit=explicit) if explicit else before
        if before is not None and context is not None and ACK.search(head_tail(message, _SCAN_CHARS, 100)):
            return before  # "love it": answered alone, and the conversation's task is still open
        if before is not None and before.task is not None and context is not None and context.kind != "new topic" \
                and decision.route == before.task.route:
            return before.task  # back from the aside to the task
        if before is not None and context is not None and context.kind == "new topic" and decision.route in self.asides:
            return Thread(decision.route, turn, decision, task=before.task or before)
        standing, explicit = self._standing(decision.route, text, decision)
        return Thread(decision.route, turn, decision, standing, explicit)

    def _standing(self, route: str, text: str, decision: RouteDecision) -> tuple[str, bool]:
        """The words by which `text` sets up a persona of `route` that later messages talk to, or '', and
        whether they ask for it to stand for the rest of the conversation."""
        if route not in self.persona_routes:
            return "", False
        if found := STANDING.search(text):
            return " ".join(found.group(0).split()), True
        if decision.tier == "L1" and decision.rule is not None:
            return " ".join(decision.rule.text.split()), False
        if decision.tier in ("L2", "context") and decision.margin >= self.confident_margin:
            return " ".join(text.split()[:6]), False
        return "", False

    def _asks_elsewhere(self, message: str, alone: RouteDecision) -> bool:
        """Whether `message` is a clear request for another route: a rule decides it, and it reads as a request
        or is long enough to carry a task of its own."""
        if alone.tier != "L1" or alone.route in self.persona_absorbs:
            return False
        # a long message that a rule decides carries its own task (a traceback, a paragraph to condense)
        return len(message.split()) > self.long_words or _REQUEST.search(head_tail(message, _SCAN_CHARS, 0)) is not None

    def _why_follow_up(self, message: str, alone: RouteDecision, thread: Thread, earlier: Sequence[str],
                       cues: FollowUpCues, confident: bool, route_text: Callable[[str], RouteDecision]) -> str | None:
        """Why the message continues the conversation, or None when it starts a new topic."""
        if cues.words > self.long_words and confident and not _opens_with_anaphora(message):
            # it carries its own material ("summarize this: <article>") and is clear about it, unless its
            # opening points back ("same format please: <part 2 of the article>")
            return None
        if cues.anaphora:
            return f"refers back: {cues.anaphora[0]}"
        if confident and alone.route in self.persona_routes:
            return None  # it sets up a persona of its own ("pretend you are Napoleon"), whatever it names
        if cues.referenced:
            return f"refers to '{cues.referenced[0]}' from earlier"
        scanned = head_tail(message, _SCAN_CHARS, 100)
        if not cues.own and alone.tier != "L1" and not ACK.search(scanned) and not _OTHER_SCRIPT_WORD.search(scanned):
            return "a fragment that needs the conversation"  # "where?", "how long", "eli5": nothing of its own
        # A short question after a pasted document ("is it fully remote?", "und die Kündigungsfrist?") is most
        # likely about that document, whatever its few words resemble alone.
        set_by = head_tail(earlier[thread.turn - 1], 2000, 500) if 0 < thread.turn <= len(earlier) else ""
        on_material = len(set_by.split()) > 2 * self.long_words and cues.words <= 15
        if on_material and alone.tier != "L1" and _PRONOUN.search(message) and not _new_names(message, set_by):
            return "a short question leaning on a pronoun after a pasted text"  # "what was it originally making?"
        if confident:
            return None
        # Weaker cues count only where the message alone does not rule the conversation's route out, unless
        # it is too unsure alone for its ranking to rule anything out.
        if thread.route not in {s.route for s in alone.top_routes} and alone.margin >= self.unsure_margin \
                and not on_material:
            return None
        if thread.route in self.persona_routes and _YOU.search(message):
            return "addressed to the persona the conversation set up"
        if cues.shared:
            return f"shares '{cues.shared[0]}' with earlier turns and is not confident alone"
        if cues.weak:
            return f"{cues.weak[0]} and is not confident alone"
        # a long message carries its own material: only where its runner-up is the conversation's route
        second = alone.top_routes[1:2] and alone.top_routes[1].route == thread.route
        if self.context_chars and (cues.words <= self.long_words or second):
            with_context = route_text(head_tail(earlier[-1], self.context_chars, 0, "") + "\n" + message)
            if with_context.route == thread.route:
                return f"read with the previous turn it ranks '{thread.route}' first"
        return None


def _announced_new_topic(scanned: str) -> re.Match | None:
    """The words by which a message opens a new topic ("unrelated, but", "btw"), unless it still points back."""
    switch = NEW_TOPIC.search(scanned[:_OPENING_CHARS])
    if switch is None or len(scanned[:switch.start()].split()) > 4:
        return None  # "the crash seems unrelated to my change" is about the crash: the cue opens a message
    if any(p.search(scanned[switch.end():]) for p in ANAPHORA.values()):
        return None  # "btw, can you make it shorter?" still points back
    return switch


def _new_names(message: str, earlier: str) -> list[str]:
    """Names in `message` (capitalized mid-sentence) that `earlier` lacks: the message brings its own subject.

    >>> _new_names("who founded Tesla? I assumed it was Musk", "Electric vehicle sales rose, Tesla said")
    ['Musk']
    """
    known = earlier.lower()
    return [w for w in _NAME.findall(message) if w.lower() not in known]


def _opens_with_anaphora(message: str) -> bool:
    """Whether the first words of `message` point back at the conversation."""
    opening = head_tail(message, _OPENING_CHARS, 0, "")
    return any(pattern.search(opening) for pattern in ANAPHORA.values())


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
