"""LLM-as-judge: score documents 0-5 with any OpenAI-compatible chat-completions endpoint.

Requests go through ``sources.http_client.Fetcher`` (retries with backoff on 429/5xx, Retry-After
honoured), ``concurrency`` at a time; answers are cached on disk (``judge_cache``) so a re-run pays
nothing twice. A reply should be ``{"score": n, "reason": "..."}``; one that is not is read by a
fallback (an embedded JSON object, then a number), else the document is unscored.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

import orjson

from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.models.judge_cache import JudgeCache, Judgement, judge_key
from corpusforge.models.top_fraction import TopFraction, check_fraction
from corpusforge.registry import register
from corpusforge.sources.http_client import Fetcher, FetchError, HttpOptions
from corpusforge.step import Step

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

SYSTEM = ("You rate text for a language-model training corpus. Answer with one JSON object and nothing else: "
          '{"score": <integer 0-5>, "reason": "<one short sentence>"}.')
_ASK = "\n\nText:\n<<<\n{text}\n>>>\n\nReply with the JSON object only."
PROMPTS = {
    # Additive 0-5 rubric after the FineWeb-Edu annotation prompt (Penedo et al. 2024).
    "educational_value": (
        "Rate the educational value of the text for teaching from primary school to university level, "
        "adding points: +1 if it gives some basic information relevant to an educational topic, even mixed "
        "with ads or off-topic material; +1 if it addresses elements pertinent to education coherently, "
        "though incompletely; +1 if it is appropriate for educational use and introduces key concepts; "
        "+1 if it is highly relevant and beneficial, like a textbook chapter or tutorial; +1 if it is "
        "outstanding, thorough and clear, with no non-educational content. The score is the total, 0 to 5." + _ASK),
    "coherence": (
        "Rate how coherent the text is: 0 = random words, boilerplate soup or broken extraction; 1 = mostly "
        "fragments; 2 = some connected sentences amid noise; 3 = readable but disjointed; 4 = well connected "
        "with minor lapses; 5 = fluent, logically ordered and complete." + _ASK),
    "toxicity": (
        "Rate how toxic the text is: 0 = not at all; 1 = mild rudeness; 2 = insults or profanity; 3 = "
        "harassment or demeaning stereotypes; 4 = hate speech or threats; 5 = severe, explicit hate or "
        "incitement to violence." + _ASK),
}
SCALE = (0.0, 5.0)


class JudgeFailed(CorpusforgeError):
    """Requests to the judge endpoint failed for good (with ``on_error: fail``, the default)."""


_OBJECT = re.compile(r"\{[^{}]*\}", re.S)
_AFTER_SCORE = re.compile(r"score\W{0,4}(\d+(?:\.\d+)?)", re.I)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)")


def _in_scale(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if SCALE[0] <= x <= SCALE[1] else None


def parse_judgement(content: str) -> tuple[float | None, str, str]:
    """``(score, reason, how)`` from a reply; how is ``json``, ``fallback`` or ``unscored``.

    Strict: the whole reply is a JSON object with a numeric ``score`` in 0-5. Fallback: a JSON
    object inside the reply (a fenced block), else a number after the word "score", else the first
    number in 0-5. Anything else leaves the document unscored.
    """
    text = content.strip()
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("score"), int | float) and _in_scale(obj["score"]) is not None:
        return float(obj["score"]), str(obj.get("reason", ""))[:500], "json"
    for m in _OBJECT.finditer(text):
        try:
            inner = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            continue
        if isinstance(inner, dict) and (score := _in_scale(inner.get("score"))) is not None:
            return score, str(inner.get("reason", ""))[:500], "fallback"
    for pattern in (_AFTER_SCORE, _NUMBER):
        for m in pattern.finditer(text):
            if (score := _in_scale(m.group(1))) is not None:
                return score, text[:500], "fallback"
    return None, text[:500], "unscored"


@register("llm_judge")
class LLMJudge(TopFraction, Step):
    """Score each document 0-5 with an LLM behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``criterion`` picks a built-in prompt (``educational_value``, ``coherence``, ``toxicity``);
    ``prompt`` is a template of your own with ``{text}`` where the document goes. ``metadata[key]``
    holds the score (None when unscored) and ``metadata[key + "_reason"]`` the judge's reason.
    Reasons: ``below_min_score``, ``above_max_score``, ``unscored`` (with ``unscored: drop``).
    ``keep_top_fraction`` keeps the best fraction of the run instead (lowest, for ``toxicity``).
    """

    media_policy = "text"  # a media document is judged by its caption; one without text passes

    def __init__(
        self,
        base_url: str,
        model: str,
        criterion: Literal["educational_value", "coherence", "toxicity"] = "educational_value",
        prompt: str | None = None,
        api_key_env: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        keep_top_fraction: float | None = None,
        unscored: Literal["keep", "drop"] = "keep",
        on_error: Literal["fail", "unscored"] = "fail",
        key: str | None = None,
        max_chars: int = 6000,
        max_tokens: int = 128,
        temperature: float = 0.0,
        json_mode: bool = False,
        concurrency: int = 8,
        batch_size: int = 64,
        cache_path: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        timeout: float = 60.0,
        rate_limit: float = 0.0,
    ):
        if prompt is not None and "{text}" not in prompt:
            raise ValueError("prompt must contain {text} where the document goes")
        if concurrency < 1 or batch_size < 1 or max_chars < 1:
            raise ValueError("concurrency, batch_size and max_chars must be >= 1")
        check_fraction(keep_top_fraction, min_score=min_score, max_score=max_score)
        self.base_url, self.model, self.criterion = base_url.rstrip("/"), model, criterion
        self.api_key_env = api_key_env
        self.template = prompt if prompt is not None else PROMPTS[criterion]
        self.min_score, self.max_score, self.unscored, self.on_error = min_score, max_score, unscored, on_error
        self.key = key or ("judge_score" if prompt is not None else f"judge_{criterion}")
        self.max_chars, self.max_tokens = max_chars, max_tokens
        self.temperature, self.json_mode = temperature, json_mode
        self.concurrency, self.batch_size, self.cache_path = concurrency, batch_size, cache_path
        self.http = HttpOptions(rate_limit=rate_limit, retries=retries, backoff=backoff, max_backoff=max_backoff,
                                timeout=timeout)
        self.higher_is_better = prompt is not None or criterion != "toxicity"
        # Everything besides the document that shapes the answer, so a changed prompt is a new cache entry.
        shape = [SYSTEM, self.template, max_chars, max_tokens, temperature, json_mode]
        self.cache_template = orjson.dumps(shape).decode()
        self._fetcher: Fetcher | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._cache: JudgeCache | None = None
        self._headers: dict[str, str] = {}
        self._down: str | None = None  # why the server is unreachable, once a request failed for good on it

    def setup(self, ctx: TaskContext) -> None:
        if self._fetcher is None:
            from corpusforge.models.checks import reachable_problem

            if self.api_key_env:
                value = os.environ.get(self.api_key_env)
                if not value:
                    raise ValueError(f"llm_judge: environment variable {self.api_key_env!r} (api_key_env) "
                                     "is not set")
                self._headers = {"Authorization": f"Bearer {value}"}
            # A server that is down fails the task in seconds, not after every document's retries.
            self._down = reachable_problem("llm_judge: base_url", self.base_url, min(5.0, self.http.timeout))
            if self._down and self.on_error == "fail":
                raise JudgeFailed(self._down)
            self._fetcher = Fetcher(self.http, seed=f"{ctx.seed}:{ctx.task}")
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="llm_judge")
        if self._cache is None:
            self._cache = JudgeCache(self.cache_path or ctx.layout.judge_cache / "cache.sqlite")

    def _ask(self, text: str) -> Judgement | str:
        """One chat completion: the judgement, or the failure as a string."""
        assert self._fetcher is not None
        body: dict[str, Any] = {
            "model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": self.template.replace("{text}", text[: self.max_chars])}],
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        url = f"{self.base_url}/chat/completions"
        if self._down is not None:  # no request more to a server that stopped answering: the task fails now
            return f"{url}: not sent, the server stopped answering ({self._down})"
        try:
            reply = self._fetcher.request("POST", url, json=body, headers=self._headers).json()
            content = reply["choices"][0]["message"]["content"] or ""
            usage = reply.get("usage") or {}
        except FetchError as e:
            if str(e).endswith(" attempts"):  # retried to the end (unreachable, timing out, 5xx): stop asking
                self._down = str(e)
            return f"{url}: {e}{': ' + e.body if e.body else ''}"
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return f"{url}: not a chat completion reply ({type(e).__name__}: {e})"
        score, reason, how = parse_judgement(str(content))
        return Judgement(score, reason, how, int(usage.get("prompt_tokens") or 0),
                         int(usage.get("completion_tokens") or 0))

    def score_batch(self, docs: list[Document], ctx: TaskContext) -> list[float]:
        self.setup(ctx)
        assert self._cache is not None and self._pool is not None
        keys = [judge_key(self.model, self.cache_template, d.text) for d in docs]
        found = self._cache.get_many(keys)
        ctx.count(self, "cache_hits", sum(k in found for k in keys))
        todo = {k: d.text for k, d in zip(keys, docs, strict=True) if k not in found}
        fresh: dict[bytes, Judgement] = {}
        failures: dict[bytes, str] = {}
        retried = self._fetcher.retried if self._fetcher else 0
        for k, answer in zip(todo, self._pool.map(self._ask, todo.values()), strict=True):
            if isinstance(answer, str):
                failures[k] = answer
            else:
                fresh[k] = answer
        self._cache.put_many(fresh)  # stored before any failure is raised: the paid answers are kept
        ctx.count(self, "requests", len(todo))
        ctx.count(self, "retries", (self._fetcher.retried if self._fetcher else 0) - retried)
        for j in fresh.values():
            ctx.count(self, "prompt_tokens", j.prompt_tokens)
            ctx.count(self, "completion_tokens", j.completion_tokens)
        if failures:
            ctx.count(self, "failed", len(failures))
            if self.on_error == "fail":
                raise JudgeFailed(f"llm_judge: {len(failures)} request(s) failed; the first: "
                                  f"{next(iter(failures.values()))}")
        scores = []
        for k, doc in zip(keys, docs, strict=True):
            j = found.get(k) or fresh.get(k)
            if j is None:
                j = Judgement(None, failures[k], "failed")
            ctx.count(self, "unscored" if j.score is None else f"parsed_{j.parse}")
            doc.metadata[self.key] = j.score
            doc.metadata[f"{self.key}_reason"] = j.reason
            scores.append(math.nan if j.score is None else j.score)
        return scores

    def decide(self, doc: Document, score: float) -> str | None:
        if math.isnan(score):
            return "unscored" if self.unscored == "drop" else None
        if self.min_score is not None and score < self.min_score:
            return "below_min_score"
        if self.max_score is not None and score > self.max_score:
            return "above_max_score"
        return None

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        self.setup(ctx)
        it = iter(docs)
        while batch := list(islice(it, self.batch_size)):
            for doc, score in zip(batch, self.score_batch(batch, ctx), strict=True):
                reason = self.decide(doc, score)
                if reason is None:
                    yield doc
                else:
                    ctx.drop(self, doc, reason, None if math.isnan(score) else score)
