"""Prompt injection: a weighted rule score for input that tries to take over the prompt, and the
guide's escapePromptInjection, which defuses chat-template control tokens a user pasted in.

Scores combine as 1 - Π(1 - wᵢ): one strong phrasing blocks alone, weak hints only count together.
Text is NFKC-normalised and stripped of zero-width characters first (`normalise`), so full-width
or spaced-out phrasings score as their plain forms.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

from .pii import ZERO_WIDTH_CHARS

_ZERO_WIDTH = dict.fromkeys(map(ord, ZERO_WIDTH_CHARS), None)

_I = re.IGNORECASE
# (rule, weight, pattern). Scores combine as 1 - Π(1 - wᵢ): one strong phrasing blocks alone,
# weak hints (role-play, "system prompt") only count together.
INJECTION_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    ("ignore_previous", 0.9, re.compile(
        r"\b(ignore|disregard|forget|skip|bypass|override|overlook|drop|abandon|set aside|discard|"
        r"pay no attention to|never\s?mind|stop following|do not follow|don't follow|no longer follow)\s+"
        r"(?:all\s+|any\s+|the\s+|your\s+|my\s+|these\s+|those\s+|of\s+|everything\s+)*"
        r"(previous|prior|above|earlier|preceding|initial|original|system|existing|former|old|"
        r"everything)\b.{0,30}?\b(instructions?|prompts?|rules?|directions?|guidelines?|context|"
        r"messages?|constraints?|commands?|directives?|said|told)", _I)),
    ("ignore_instructions_above", 0.85, re.compile(
        r"\b(ignore|disregard|forget|discard|never\s?mind|pay no attention to|override)\s+"
        r"(?:all\s+|any\s+|the\s+|your\s+|these\s+|those\s+|of\s+)*"
        r"(?:instructions?|rules|prompts?|directions|guidelines|context|messages)\s+"
        r"(?:above|before|so far|given (?:above|earlier|before)|you (?:were|have been) given)", _I)),
    # "disregard the above" with nothing after it, or with an order after it; not "disregard
    # the above, I sent it by mistake" nor "ignore the typo above"
    ("ignore_above", 0.85, re.compile(
        r"\b(ignore|disregard|forget|discard|never\s?mind|pay no attention to)\s+(?:all\s+(?:of\s+)?)?"
        r"(?:the\s+|that\s+|this\s+|everything\s+)?(?:above|foregoing|preceding)"
        r"(?:\s*[.!]*\s*$|(?:\s*[.,;:!-]+\s*|\s+and\s+(?:then\s+)?)(?:instead\s*,?\s*)?(?:just\s+|now\s+|please\s+)?"
        r"(?:say|print|write|output|respond|reply|answer|tell|translate|act|pretend|you|from now|return|"
        r"repeat|show|give|list|reveal|do|follow|enter|switch|start|begin|only|obey|type|send)\b)", _I)),
    # "your previous instructions are void", "the rules above no longer apply"
    ("instructions_void", 0.85, re.compile(
        r"(?:\b(?:previous|prior|above|earlier|original|old|initial|system|your|all)\b[^.\n]{0,20}?"
        r"\b(?:instructions?|rules|prompts?|guidelines|directions|constraints|commands)(?:\s+(?:above|before))?|"
        r"\b(?:instructions?|rules|prompts?|guidelines|directions|constraints|commands)\s+(?:above|before))\s+"
        r"(?:(?:are|is|were)\s+(?:now\s+|hereby\s+)?(?:void|null|cancel+ed|revoked|obsolete|invalid|suspended|"
        r"lifted|disabled)|(?:are\s+|is\s+)?no longer (?:valid|apply|applicable|in effect|active))\b(?!.{0,40}\?\s*$)", _I)),
    ("ignore_everything", 0.8, re.compile(
        r"\b(ignore|disregard|forget)\s+(everything|all)\s+(above|before|that came before|you (were|have been) told)", _I)),
    ("ignore_rules", 0.6, re.compile(
        r"\b(ignore|disregard|forget|override|stop following|do not follow|don't follow)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
        r"(instructions?|rules?|guidelines?|programming|guardrails?|restrictions?|policies|policy)\b", _I)),
    ("reveal_prompt", 0.75, re.compile(
        r"\b(reveal|show|print|display|output|repeat|tell me|give me|leak|dump|expose|share|"
        r"what (?:is|are|was|were) (?:your|the)|write out|recite|spell out)\b.{0,40}?"
        r"\b(system prompt|system message|initial prompt|hidden prompt|secret prompt|your (?:initial |original |hidden |secret )?instructions|"
        r"your prompt|(?:the )?prompt above|your rules|(?:original|initial|hidden|secret) instructions|developer message|"
        r"instructions above|text above)", _I)),
    ("system_prompt_mention", 0.3, re.compile(r"\b(system prompt|system message|developer message)\b", _I)),
    ("unrestricted_persona", 0.8, re.compile(
        r"\b(you are now|you're now|from now on,? you|act as|pretend (?:to be|you are|you're)|"
        r"roleplay as|behave as|become)\b.{0,60}?\b(unrestricted|unfiltered|uncensored|jailbroken|"
        r"without (?:any )?(?:restrictions|rules|limits|filters|guidelines|morals|ethics)|"
        r"no (?:restrictions|rules|limits|filters|guidelines|morals)|evil|amoral|free from)", _I)),
    # a new role handed to the model ("you are now an assistant that ..."), not a notice to a
    # customer ("you are now a member", "you are now connected")
    ("role_reassign", 0.55, re.compile(
        r"\b(?:you are now|you're now|from now on,? you (?:are|will be))\s+(?:a|an|my|the)\s+"
        r"(?!(?:member|customer|subscriber|user|participant|winner|owner|registered|verified|premium|vip|"
        r"part|proud|lucky|happy|new (?:member|customer|owner|subscriber))\b)", _I)),
    ("persona_switch", 0.3, re.compile(
        r"\b(you are now|you're now|from now on,? you (?:are|will|must)|pretend (?:to be|you are)|roleplay as)\b", _I)),
    # a bare name or word is a hint (DAN may be a coworker, iPhones get jailbroken); a mode is not
    ("jailbreak_name", 0.4, re.compile(r"\b(?:DAN|STAN|DUDE)\b(?!\w)", 0)),
    ("jailbreak_word", 0.4, re.compile(r"\bjailbr(?:eak|oken)\b", _I)),
    ("jailbreak_mode", 0.8, re.compile(
        r"\b(do anything now|developer mode|dev mode enabled|jailbreak mode|jailbroken mode|god mode|"
        r"sudo mode|admin mode|maintenance mode|(?:DAN|STAN) mode|you are (?:now )?(?:DAN|STAN))\b", _I)),
    ("special_tokens", 0.85, re.compile(
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|"
        r"<<\s*/?SYS\s*>>|<\s*/?\s*(?:system|sys)\s*>", _I)),
    ("fake_role_header", 0.6, re.compile(
        r"(?:^|\n)\s*(?:#{1,6}\s*)?(?:system|assistant|developer)\s*(?:message|prompt)?\s*:\s*\S", _I)),
    ("new_instructions", 0.6, re.compile(
        r"\b(new|updated|real|actual|true|revised|override|admin|system)\s+(instructions?|task|rules|directive|orders?)\s*[:：]"
        r"|\bBEGIN (?:SYSTEM|ADMIN|NEW) (?:PROMPT|INSTRUCTIONS?)|\bEND OF (?:PROMPT|INSTRUCTIONS|SYSTEM PROMPT)", _I)),
    ("disable_safety", 0.75, re.compile(
        r"\b(disable|turn off|switch off|bypass|circumvent|deactivate|remove|lift|ignore)\s+"
        r"(?:all\s+|your\s+|the\s+|any\s+)*(?:safety|content|ethical|moral|security)?\s*"
        r"(filters?|guardrails?|restrictions?|safeguards?|safety|censorship|moderation|limitations)", _I)),
    ("instead_say", 0.45, re.compile(
        r"\binstead,?\s+(?:just\s+)?(?:say|respond|output|print|reply|write|answer)\b", _I)),
    ("exfiltrate", 0.6, re.compile(
        r"\b(send|post|forward|upload|exfiltrate|transmit|leak)\b.{0,60}?\b(to|into)\s+(?:https?://|[\w.-]+@[\w.-]+)|"
        r"!\[[^\]]*\]\(https?://[^)]*\?[^)]*=", _I)),
    # Korean
    ("ko_ignore_previous", 0.9, re.compile(
        r"(이전|앞의|앞에서|앞에|위의|위에서|위에|위|기존|모든|앞서|지금까지|원래|처음|상기|이전에|앞선|먼저|방금|아까)"
        r"\s*(?:의\s*)?(?:(?:받은|주어진|말한|있는|나온|모든|쓴|적은|한|보낸|준|했던|써\s*둔|작성한)\s*)*"
        r"(지시|지침|명령|규칙|프롬프트|설정|대화|내용|안내|요청|말|것|건|거|글|부분|instructions?|rules?)"
        r"(?:사항|문|어|들)?\s*(?:은|는|을|를|이|가|도)?\s*(?:모두\s*|전부\s*|다\s*|싹\s*|완전히\s*)?"
        # "무시하셔도 됩니다" (you may ignore it: I sent it by mistake) gives leave, it is no order
        r"(무시(?!하셔도|해도|하셔도|하셨|했)|잊어|잊고|잊으|취소|무효|따르지\s*마|따르지\s*말|따르지\s*않|지워|"
        r"신경\s*(?:쓰지|끄|꺼)|상관\s*(?:하지|말|마|없이)|개의치|없던\s*(?:걸로|것으로|일로))")),
    ("ko_ignore_generic", 0.35, re.compile(r"(무시하고|무시해|잊어버리고|잊어버려|무시하세요|무시하십시오)")),
    ("ko_reveal_prompt", 0.8, re.compile(
        r"(시스템|system|초기|숨겨진|숨은|비밀|내부|원래)\s*(?:의\s*)?(프롬프트|메시지|지시|지침|설정|명령|prompt)"
        r"(?:문|어|사항)?\s*(?:을|를|이|가|은|는)?\s*.{0,20}?(알려|보여|출력|공개|말해|누설|유출|반복|그대로|적어|복사|뭐야|무엇)")),
    ("ko_system_prompt_mention", 0.3, re.compile(r"시스템\s*프롬프트")),
    ("ko_obey_only", 0.6, re.compile(r"(내|제|나의|저의)\s*(말|명령|지시)\s*만\s*(따르|따라|들어|복종)")),
    ("ko_role_reassign", 0.55, re.compile(
        r"(너는|당신은|넌)\s*(?:이제|지금부터|앞으로|이제부터)\s*.{0,30}?"
        r"(역할|AI|봇|인공지능|어시스턴트|비서|해커|캐릭터)\s*(?:이야|야|입니다|이다|이에요|예요|로서|로|을|를)")),
    ("ko_persona_switch", 0.35, re.compile(r"(너는|당신은|넌|너)\s*(이제|지금부터|앞으로)|지금부터\s*(너는|당신은|넌)")),
    ("ko_unrestricted", 0.8, re.compile(
        r"(제한|규칙|필터|검열|윤리|제약|규제)(?:이|가|도|은|는)?\s*(?:전혀\s*|아무\s*|하나도\s*)?(없는|없이|없다고|없어|받지\s*않는)")),
    ("ko_jailbreak", 0.8, re.compile(r"(탈옥|개발자\s*모드|관리자\s*모드|갓\s*모드|디버그\s*모드|제한\s*해제\s*모드)")),
    ("ko_disable_safety", 0.75, re.compile(
        r"(안전|보안|윤리|콘텐츠|콘텐트)?\s*(필터|제한|가이드라인|정책|규칙|검열|안전장치)(?:을|를|은|는)?\s*"
        r"(?:모두\s*|전부\s*|다\s*)?(해제|우회|꺼|끄고|끄세요|무시|비활성|풀어|없애)")),
    ("ko_new_instructions", 0.6, re.compile(r"(새로운|새|진짜|실제)\s*(지시|명령|규칙|임무|지침)(?:사항)?\s*[:：]")),
    ("ko_pretend", 0.3, re.compile(r"(인\s*척|척\s*해|척하고|척하세요|역할극|롤플레이)")),
]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)


@dataclass
class InjectionResult:
    score: float
    rules: list[str] = field(default_factory=list)


def injection_score(text: str) -> InjectionResult:
    """How much `text` reads like a prompt-injection attempt, 0..1, and which rules fired."""
    if not text:
        return InjectionResult(0.0)
    if len(text) <= CACHED_TEXT:
        score, fired = _short_score(text)
        return InjectionResult(score, list(fired))
    return InjectionResult(*_score(text))


# Texts a batch run sees on every case (a variable's name, a fixed instruction) are scored
# once: the score is a pure function of the text. Only short texts, so the cache stays small.
CACHED_TEXT = 512


@functools.lru_cache(maxsize=4096)
def _short_score(text: str) -> tuple[float, tuple[str, ...]]:
    score, fired = _score(text)
    return score, tuple(fired)


def _score(text: str) -> tuple[float, list[str]]:
    norm = normalise(text)
    keep = 1.0
    fired = []
    for name, weight, pattern in INJECTION_RULES:
        if pattern.search(norm):
            fired.append(name)
            keep *= 1.0 - weight
    return round(1.0 - keep, 4), fired


_SPECIAL = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<<\s*/?SYS\s*>>|<\s*/?\s*(?:system|sys)\s*>", re.IGNORECASE
)


def escape_injection(text: str) -> str:
    """The guide's escapePromptInjection: defuse chat-template control tokens and role tags a
    user pasted in, so they reach the model as plain text rather than structure."""
    return _SPECIAL.sub(lambda m: m.group().replace("<", "‹").replace(">", "›").replace("[", "(").replace("]", ")"), text)


escape_prompt_injection = escape_injection  # the guide's name
