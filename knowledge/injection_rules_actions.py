"""The English patterns of the injection detector for what a planted message asks a model to do:
keep something from the user, call a tool, send data out, or speak in a chat template. See
``knowledge.injection_rules`` for the vocabulary and for why each pattern needs what it needs.
"""

from __future__ import annotations

import re

from knowledge.injection_rules import QUOTE, SNAKE, _ANSWER_NOUN, _CHAT_PEOPLE, _PEOPLE, Rule, rule

_AGENT_TOOLS = ("create_work_order", "list_work_orders", "sensor_latest", "sensor_history", "site_check",
                "inspect_image")

RULES_EN_ACTIONS: list[Rule] = [
    rule("conceal_from_user", (),
          r"\b(?:do\s+not|don't|never|without)\s+(?:tell|inform|mention|alert)(?:ing)?\s+"
          rf"(?:this\s+|it\s+)?(?:to\s+)?(?:the\s+user\b|{_CHAT_PEOPLE}\b)"
          r"(?!'s|\s+(?:name|id|password|account|manual|guide|interface))"),
    rule("conceal_from_user", (),
          r"\b(?:keep|hide)\s+(?:this|it)\s+(?:secret\s+|hidden\s+)?from\s+the\s+user\b"),
    rule("conceal_from_user", (),
          r"\b(?:do\s+not|don't|never|must\s+not)\s+(?:let|allow)\s+(?:the\s+|any\s+)?(?:users?|person(?:\s+asking)?|operators?|"
          r"anyone|askers?|them)\s+(?:\w+\s+)?(?:know|see|find\s+out|learn)\b"),
    rule("conceal_from_user", (),
          r"\b(?:do\s+not|don't|never)\s+(?:mention|reveal|disclose|repeat|show|display)\s+(?:this|these|the)\s+"
          r"(?:instructions?|notes?|messages?|directives?|paragraphs?|text)\b"
          r"|\b(?:do\s+not|don't|never)\s+(?:mention|reveal|disclose|say|admit)\s+(?:to\s+(?:the\s+)?(?:users?|operators?|"
          r"anyone)\s+)?that\s+(?:this|these)\s+(?:instructions?|notes?|messages?|directives?|rules?)\b"
          r"|\b(?:do\s+not|don't|never)\s+(?:reveal|disclose|admit|mention|let\s+on)\s+to\s+(?:the\s+)?(?:users?|"
          r"operators?|askers?|anyone|whoever)\b"
          rf"|\b(?:keep|hide)\s+(?:this|it|these)\s+(?:[\w-]+\s+)?(?:hidden\s+|secret\s+|confidential\s+)?from\s+{_PEOPLE}"
          r"|\btreat\s+this\s+(?:paragraph|note|passage|message|comment)\s+as\s+(?:confidential|secret|private)\b"
          rf"|\b(?:influenced|shaped|changed|affected|informed)\s+your\s+{_ANSWER_NOUN}\b"
          r"|\b(?:do\s+not|don't|never)\s+(?:bring\s+(?:it|this)\s+up|talk\s+about\s+(?:it|this))\s+with\s+the\s+"
          r"(?:user|person|operator)"
          r"|\bkeep\s+(?:this|these|the\s+following)\s+(?:instructions?\s+|notes?\s+|messages?\s+)?(?:confidential|"
          r"secret|hidden|between\s+us)\b"),
    rule("conceal_from_user", (),
          r"(?:^|(?<=[.!?;:,]\s)|(?<=\n))\s*(?:please\s+|now\s+|then\s+)?(?:create|open|raise|file|submit|schedule|send|"
          r"call|run|execute|delete|close|shut|stop|start|turn|switch|set|change|reset|approve|disable|enable|order|"
          r"book|proceed)\b[^.!?\n]{0,80}?\bwithout\s+(?:asking|consulting|telling|informing|notifying|"
          r"confirming\s+with|checking\s+with)\s+(?:the\s+)?(?:users?|operators?|anyone)\b|\bno\s+(?:need\s+to\s+ask\s+for\s+)?confirmation\s+"
          r"(?:is\s+)?(?:needed|required)?\s*(?:from\s+the\s+user)\b|\bno\s+need\s+to\s+ask\s+for\s+confirmation\b"
          r"|\bwithout\s+(?:any\s+)?questions\b"),
    rule("conceal_from_user", (),
          r"\b(?:do\s+not|don't|never)\s+(?:warn|remind|alert|caution)\s+(?:the\s+)?(?:users?|operators?|them|anyone)"
          r"\b|\b(?:do\s+not|don't|never)\s+warn\s+about\b|\bskip\s+the\s+warnings\b"
          rf"|\b(?:leave|keep)\s+(?:them|it|this)\s+out\s+of\s+your\s+{_ANSWER_NOUN}\b"),
    rule("conceal_from_user", (),
          r"\b(?:never|do\s+not|don't)\s+(?:cite|quote|reference|refer\s+to)\s+(?:the|any)\s+(?:other\s+)?(?:safety\s+)?"
          r"(?:manual|regulations?|rules|documents?|procedures?)\b"
          r"|\bomit\s+any\s+mention\s+of\b"),
    rule("tool_call_request", (),
          rf"\b(?:call|invoke|trigger|execute|run|use)\s+(?:the\s+|a\s+)?(?:tool|function)\s*[(:]?\s*{QUOTE}{SNAKE}"),
    rule("tool_call_request", ("_",), rf"\b(?:call|invoke)\s+(?:the\s+)?{QUOTE}{SNAKE}"),
    rule("tool_call_request", (),
          r"\b(?:call|invoke)\s+(?:the|a|any|this|your)\s+(?:[\w-]+\s+){0,2}tools?\b"
          r"(?!\s+(?:room|crib|kit|box|bag|set|chest|holder|rack|steel|block|store))"),
    # The agent's own tool names have no business in a plant document.
    rule("tool_call_request", _AGENT_TOOLS, rf"\b(?:{'|'.join(_AGENT_TOOLS)})\b"),
    rule("function_call_json", (),
          r"\{\s*[\"'](?:tool|tool_name|tool_calls?|function|function_call)[\"']\s*:"),
    rule("function_call_json", (),
          r"\{\s*[\"']name[\"']\s*:\s*[\"'][^\"']{1,64}[\"']\s*,\s*"
          r"[\"'](?:arguments|args|parameters|input|action_input)[\"']\s*:"),
    rule("prompt_exfiltration", (),
          r"\b(?:reveal|print|show|repeat|output|leak|display|disclose|tell\s+me)\s+(?:me\s+)?(?:your|the)\s+"
          r"(?:system\s+prompt|initial\s+prompt|hidden\s+prompt|(?:system\s+|original\s+)?instructions\s+verbatim)\b"
          r"|\b(?:reveal|print|show|repeat|output|leak|display|disclose|include|list|dump)\s+(?:me\s+)?(?:the\s+text\s+of\s+)?"
          r"(?:your|the)\s+(?:hidden|secret|internal|system|initial|original)\s+(?:configuration|instructions|"
          r"prompt|message|rules)\b"
          r"|\b(?:reveal|print|show|repeat|output|disclose|include)\s+(?:me\s+)?(?:the\s+)?(?:hidden\s+)?instructions\s+"
          r"you\s+(?:were|have\s+been)\s+given\b"
          rf"|\binclude\s+your\s+system\s+(?:prompt|message)\b"),
    rule("data_exfiltration", (),
          r"\b(?:send|e-?mail|post|upload|forward|transmit|leak|submit)\s+(?:the\s+|your\s+|all\s+|this\s+)?"
          r"(?:(?:full|whole|entire|complete)\s+)?(?:conversation|chat|chat\s+history|conversation\s+history|"
          r"user's\s+(?:\w+\s+)?(?:and\s+\w+\s+)?\w+|credentials|passwords?|api\s+keys?|tokens?|system\s+prompt|"
          r"previous\s+messages|(?:full\s+)?system\s+(?:instructions|message|configuration))\b[^.!?\n]{0,60}?\b(?:to|via)\b"
          r"|\b(?:include|put|embed|append|encode|add)\b[^.!?\n]{0,30}?\b(?:values|readings|data|conversation|chat\s+log|"
          r"questions?|history|names?|passwords?|tokens?|keys?)\b[^.!?\n]{0,30}?\b(?:image\s+(?:url|link)|query\s+string|"
          r"url\s+parameter)"
          r"|\b(?:send|copy|forward|e-?mail|post|upload)\b[^.!?\n]{0,40}?\b(?:user's|conversation|chat\s+(?:log|history)|"
          r"question\s+and)"
          r"[^.!?\n]{0,60}?(?:[\w.+-]+@[\w-]+\.[\w.]+|https?://)"
          r"|(?<!\bto\s)(?<!\bwho\s)(?<!\bcan\s)(?<!\bcould\s)(?<!\bmay\s)\bexfiltrate\s+(?:the|all|this|any|"
          r"user|sensor|conversation|chat|data)\b"
          r"|\b(?:include|list|put|paste|append|add)\s+(?:the\s+|all\s+|your\s+)?(?:full\s+)?(?:conversation|chat\s+history|"
          r"conversation\s+history|api\s+keys?|passwords?|credentials|secrets|tokens)\b[^.!?\n]{0,60}?\b"
          rf"(?:in|into|to)\s+(?:your|the|every)\s+(?:next\s+)?{_ANSWER_NOUN}\b"
          r"|\b(?:api\s+keys?|passwords?|credentials|secrets)\s+(?:and\s+\w+\s+)?(?:that\s+)?you\s+(?:have\s+access\s+to|"
          r"can\s+see)\b"
          rf"|\b(?:reveal|disclose|share)\s+(?:confidential|secret|internal)\s+[\w\s]{{0,30}}?\bto\s+{_CHAT_PEOPLE}\b"),
    rule("data_exfiltration", ("](http", "](https"),
          r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]*[?&](?:data|d|q|c|conv|conversation|chat|msg|text|info|"
          r"content|payload|log|history|secret|key|token|p)=[^)\s]*\)"),
    rule("chat_template_token", (),
          r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>"
          r"|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>", 0),
    # Chat-role markers, uppercase at a line or sentence start. A bare "SYSTEM:" is weak.
    rule("role_marker", (),
          r"(?:^|(?<=[.!?:;]\s))[\[<#*\s]*(?:SYSTEM|ASSISTANT|DEVELOPER)\s+(?:NOTICE|OVERRIDE|PROMPT|INSTRUCTIONS?)"
          r"\s*[\]>]?\s*:", re.MULTILINE),
    rule("role_marker", (),
          r"(?:^|(?<=[.!?:;]\s))[\[<#*\s]*(?:SYSTEM|ASSISTANT|DEVELOPER)(?:\s+[A-Z]+)?\s*[\]>]?\s*:", re.MULTILINE, weak=True),
    rule("role_marker", ("system",), r"\bsystem\s+(?:notice|override|prompt|instructions?)\s*:", weak=True),
    rule("role_marker", (),
          r"\bsystem[- ]level\s+(?:update|instruction|directive|override)s?\s+for\b"
          r"|\b(?:as|into|like)\s+(?:a|the|your)\s+(?:new\s+)?system\s+(?:message|prompt)\b"),
]
