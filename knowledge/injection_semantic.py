"""The detector's second layer: a learned judgement of sentences that talk to the assistant.

The patterns (``knowledge.injection``) are precise but only catch the wordings they were written
for; on paraphrases written after they were frozen they found about half. This layer embeds a
chunk's *candidate* sentences with the bundled multilingual e5 and scores each with a logistic
head (``injection_head.json``, trained by ``evals/injection_train.py`` on the dev attacks against
ordinary sentences of the shared corpus and samples). A chunk is flagged when its best sentence
scores above the calibrated threshold.

Cost is kept small by a prefilter: only sentences with a cue of being addressed to someone (you,
the assistant, a model, the user, answer/tell/reply/ignore/pretend …, 你/助手/用户/回答/忽略 …) are
embedded; most manual and regulation text has none. The head only means something on the vectors
it was trained on, so with any other embedder (the fake one in tests, MiniLM) the layer is off and
the detector's mode says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.injection_rules import normalize


HEAD_FILE = Path(__file__).resolve().parent / "injection_head.json"
MAX_SENTENCE = 400  # characters embedded per sentence; an attack sentence is short
MIN_SENTENCE = 4

# Sentence ends (EN and ZH), line breaks and list bullets. Semicolons too: an order often follows one.
_SPLIT = re.compile(r"(?<=[.!?;])\s+|[。！？；\n]+|\s+[•·▪-]\s+")

# A cue that a sentence addresses someone: second person, the assistant or a model, the reader as
# "the user"/"the operator", or a verb of answering, telling, ignoring or pretending.
_CUE_EN = re.compile(
    r"\b(?:you|your|yours|yourself|u|assistants?|ai|a\.i\.|models?|llms?|gpt|bots?|chatbots?|copilots?|"
    r"agents?|systems?|"
    r"automated|helpers?|machines?|speak|describe|present|report|going forward|"
    r"prompt|instructions?|user|users|operator|operators|reader|answer\w*|repl(?:y|ies|ied)|respond\w*|"
    r"response|tell|say|said|state|claim|reassure|confirm|assure|inform|ignore|disregard|forget|override|"
    r"pretend|act|role|persona|roleplay|never|always|from now on|henceforth|do not mention|don't mention|"
    r"whoever|anyone asking|when asked|if asked|questions?|send|conversation|chat|https?|previous|above|rules?)\b",
    re.I,
)
_CUE_ZH = re.compile(
    r"你|您|助手|用户|操作员|操作人员|提问|问到|问起|询问|回答|答复|回复|告诉|告知|说明|声称|表示|忽略|无视|"
    r"理会|不用管|上述|前面|遵守|机器|人类|读者|透露|说“|说\"|忘记|失效|作废|以上|之前|上面|规则|对话|发送|"
    r"扮演|假装|角色|模型|系统|机器人|智能|AI|指令|提示|今后|从现在起|以后|一律|始终|总是|永远"
)


def sentences(text: str) -> list[str]:
    """The text cut into sentences and clauses (English and Chinese), whitespace squashed."""
    out = []
    for piece in _SPLIT.split(normalize(text)):
        piece = " ".join(piece.split())
        if len(piece) >= MIN_SENTENCE:
            out.append(piece[:MAX_SENTENCE])
    return out


def is_candidate(sentence: str) -> bool:
    return bool(_CUE_EN.search(sentence) or _CUE_ZH.search(sentence))


def candidates(text: str) -> list[str]:
    """The sentences worth embedding: those with a cue of addressing someone."""
    return [s for s in sentences(text) if is_candidate(s)]


@dataclass(frozen=True)
class Head:
    """A logistic head over normalised e5 passage vectors; the threshold is on its probability."""

    weights: np.ndarray
    bias: float
    threshold: float
    embedder: str  # the model name the head was trained on (without the engine version)
    info: dict[str, Any]

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(vectors @ self.weights + self.bias)))

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> Head | None:
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(np.asarray(raw["weights"], dtype=np.float32), float(raw["bias"]), float(raw["threshold"]),
                   raw["embedder"], raw.get("info", {}))

    def save(self, path: Path = HEAD_FILE) -> None:
        path.write_text(json.dumps({
            "embedder": self.embedder, "threshold": round(self.threshold, 4), "bias": round(self.bias, 6),
            "weights": [round(float(w), 5) for w in self.weights], "info": self.info,
        }, ensure_ascii=False) + "\n", encoding="utf-8")


_HEAD: list[Head | None] = []  # loaded once per process


def head() -> Head | None:
    if not _HEAD:
        _HEAD.append(Head.load())
    return _HEAD[0]


class SemanticLayer:
    """Scores chunks' candidate sentences; ``for_embedder`` returns None when it cannot run."""

    def __init__(self, embedder: Any, head: Head):
        self.embedder = embedder
        self.head = head

    @classmethod
    def for_embedder(cls, embedder: Any) -> SemanticLayer | None:
        h = head()
        if embedder is None or h is None or not str(getattr(embedder, "name", "")).startswith(h.embedder):
            return None
        return cls(embedder, h)

    def best(self, texts: list[str]) -> list[tuple[float, str]]:
        """Per text: its best candidate sentence's score and the sentence ((0.0, "") without one).
        All candidates of all texts are embedded in one batch."""
        cands = [candidates(t) for t in texts]
        flat = [s for c in cands for s in c]
        if not flat:
            return [(0.0, "")] * len(texts)
        scores = self.head.scores(self.embedder.embed(flat))
        out, i = [], 0
        for c in cands:
            if not c:
                out.append((0.0, ""))
                continue
            j = int(np.argmax(scores[i:i + len(c)]))
            out.append((float(scores[i + j]), c[j]))
            i += len(c)
        return out
