import orjson
import pytest

from corpusforge import run
from corpusforge.document import Document
from corpusforge.errors import RecipeError
from corpusforge.models.judge import JudgeFailed, LLMJudge, parse_judgement
from corpusforge.models.judge_cache import JudgeCache
from corpusforge.models.top_fraction import KeepTopFraction
from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import Recipe

from .llm_server import ChatServer

pytest.importorskip("httpx")


@pytest.fixture
def server():
    with ChatServer() as srv:
        yield srv


def judge(server: ChatServer, tmp_path, **kw) -> LLMJudge:
    kw = {"cache_path": str(tmp_path / "cache.sqlite"), "backoff": 0.01, **kw}
    return LLMJudge(base_url=server.base_url, model="judge-test", **kw)


def run_step(step, texts: list[str], tmp_path) -> tuple[list[Document], TaskContext]:
    """Run ``step`` over documents made of ``texts`` in one task; the kept documents and the context."""
    ctx = TaskContext("curate", 0, tmp_path / "out")
    docs = [Document(t, id=f"d{i}", source="mem") for i, t in enumerate(texts)]
    step.setup(ctx)
    return list(step(iter(docs), ctx)), ctx


def test_replies_are_parsed_strictly_then_by_fallback_else_unscored():
    assert parse_judgement('{"score": 4, "reason": "clear"}') == (4.0, "clear", "json")
    assert parse_judgement('ok ```json\n{"score": 2, "reason": "thin"}\n```')[::2] == (2.0, "fallback")
    assert parse_judgement('{"score": "3"}')[::2] == (3.0, "fallback")  # a string score is not strict JSON
    assert parse_judgement("Score: 5/5, excellent")[::2] == (5.0, "fallback")
    assert parse_judgement("Among 12 tips I would give it 1")[::2] == (1.0, "fallback")  # 12 is off the scale
    assert parse_judgement('{"score": 9}')[::2] == (None, "unscored")
    assert parse_judgement("no idea")[::2] == (None, "unscored")


def test_scores_thresholds_and_usage_then_a_second_run_sends_no_request(server, tmp_path):
    texts = ["[score 4] a", "[score 1] b", "[fenced 2] c", "[prose 5] d", "[garbage] e"]
    kept, ctx = run_step(judge(server, tmp_path, min_score=3), texts, tmp_path)
    assert [d.id for d in kept] == ["d0", "d3", "d4"]  # the unscored one is kept (unscored: keep)
    assert [d.metadata["judge_educational_value"] for d in kept] == [4.0, 5.0, None]
    assert kept[0].metadata["judge_educational_value_reason"] == "planted"
    stats = next(iter(ctx.step_stats.values()))
    assert stats.drops == {"below_min_score": 2}
    assert stats.counts == {"requests": 5, "cache_hits": 0, "retries": 0, "parsed_json": 2, "parsed_fallback": 2,
                            "unscored": 1, "prompt_tokens": sum(len(t.split()) + 100 for t in texts),
                            "completion_tokens": 35}
    assert len(server.log) == 5
    again, ctx2 = run_step(judge(server, tmp_path, min_score=3), texts, tmp_path)
    assert len(server.log) == 5 and [d.id for d in again] == ["d0", "d3", "d4"]
    c2 = next(iter(ctx2.step_stats.values())).counts
    assert c2["cache_hits"] == 5 and c2["requests"] == 0 and c2["prompt_tokens"] == 0
    # a different prompt is a different question: it is asked, not served from the cache
    run_step(judge(server, tmp_path, criterion="coherence"), texts[:1], tmp_path)
    assert len(server.log) == 6


def test_429_waits_for_retry_after_and_5xx_is_retried(server, tmp_path):
    kept, ctx = run_step(judge(server, tmp_path), ["[429] x", "[500] y"], tmp_path)
    assert [d.metadata["judge_educational_value"] for d in kept] == [3.0, 3.0]
    (t0, s0), (t1, s1) = server.requests_for("[429]")
    assert (s0, s1) == (429, 200) and t1 - t0 >= 0.3  # backoff alone would be ~0.01 s
    assert [s for _, s in server.requests_for("[500]")] == [500, 500, 200]
    assert next(iter(ctx.step_stats.values())).counts["retries"] == 3


def test_requests_run_concurrently_up_to_the_bound(server, tmp_path):
    run_step(judge(server, tmp_path, concurrency=3), [f"[slow] {i}" for i in range(9)], tmp_path)
    assert server.max_in_flight == 3


def test_a_request_that_cannot_succeed_fails_the_task_but_keeps_paid_answers(server, tmp_path):
    with pytest.raises(JudgeFailed, match=r"/v1/chat/completions: HTTP 400.*does not exist"):
        run_step(judge(server, tmp_path), ["[score 4] ok", "[400] bad"], tmp_path)
    assert len(JudgeCache(tmp_path / "cache.sqlite")) == 1
    kept, ctx = run_step(judge(server, tmp_path, on_error="unscored", unscored="drop"),
                         ["[score 4] ok", "[400] bad"], tmp_path)
    assert [d.id for d in kept] == ["d0"]
    stats = next(iter(ctx.step_stats.values()))
    assert stats.drops == {"unscored": 1} and stats.counts["failed"] == 1 and stats.counts["cache_hits"] == 1


def test_api_key_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    with ChatServer(api_key="s3cret") as srv:
        monkeypatch.delenv("JUDGE_KEY", raising=False)
        with pytest.raises(ValueError, match="'JUDGE_KEY'"):
            run_step(judge(srv, tmp_path, api_key_env="JUDGE_KEY"), ["[score 2] a"], tmp_path)
        monkeypatch.setenv("JUDGE_KEY", "s3cret")
        kept, _ = run_step(judge(srv, tmp_path, api_key_env="JUDGE_KEY"), ["[score 2] a"], tmp_path)
        assert kept[0].metadata["judge_educational_value"] == 2.0


def test_options_are_validated_in_the_recipe():
    base = {"type": "llm_judge", "base_url": "http://127.0.0.1:1/v1", "model": "m"}
    with pytest.raises(RecipeError, match=r"prompt must contain \{text\}"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [{**base, "prompt": "Rate it"}]})
    with pytest.raises(RecipeError, match="criterion"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [{**base, "criterion": "funny"}]})
    with pytest.raises(RecipeError, match="alternative to min_score"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [{**base, "min_score": 3,
                                                                      "keep_top_fraction": 0.5}]})
    assert isinstance(LLMJudge(base_url="http://x/v1", model="m", keep_top_fraction=0.5), KeepTopFraction)


def test_pipeline_with_two_workers_shares_the_cache_and_keeps_the_top_fraction(server, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in range(4):  # four tasks whose judge calls run in two worker processes
        rows = [{"text": f"[score {(f + j) % 6}] file {f} line {j} with a few words"} for j in range(4)]
        (src / f"part_{f}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    cache = tmp_path / "shared-cache.sqlite"

    def recipe(**judge_opts):
        step = {"type": "llm_judge", "base_url": server.base_url, "model": "judge-test", "cache_path": str(cache),
                "criterion": "coherence", **judge_opts}
        return {"sources": [{"path": str(src)}], "steps": [step], "tokenizer": {"vocab_size": 300},
                "sharding": {"sequence_length": 16, "splits": {"train": 1.0}}, "executor": {"task_bytes": 1000}}

    first = run(recipe(min_score=2), output=str(tmp_path / "a"), workers=2, progress=False)
    assert len(server.log) == 16 and len(JudgeCache(cache)) == 16
    judged = first["stages"][0]["steps"][1]
    assert judged["counts"]["requests"] == 16 and judged["counts"]["completion_tokens"] == 16 * 7
    assert first["documents"]["kept"] == sum((f + j) % 6 >= 2 for f in range(4) for j in range(4))
    second = run(recipe(keep_top_fraction=0.25), output=str(tmp_path / "b"), workers=2, progress=False)
    assert len(server.log) == 16  # every answer came from the cache
    assert second["documents"]["kept"] == 4
    assert second["stages"][0]["steps"][1]["counts"]["cache_hits"] == 16  # the scorer's counters reach stats.json
    scores = sorted(((f + j) % 6 for f in range(4) for j in range(4)), reverse=True)
    decide = next(s for s in second["stages"] if s["kind"] == "decide")
    assert decide["result"]["cut"] == scores[3]


def test_top_fraction_ranks_scored_documents_only_and_unscored_follow_the_option(server, tmp_path):
    from .test_top_fraction import run_corpus_step

    texts = ["[score 5] a", "[score 1] b", "[garbage] c", "[score 4] d", "[score 0] e"]
    for policy, gone in (("keep", {1: "below_top_fraction", 4: "below_top_fraction"}),
                         ("drop", {1: "below_top_fraction", 2: "unscored", 4: "below_top_fraction"})):
        step = judge(server, tmp_path, keep_top_fraction=0.5, unscored=policy)  # 2 of the 4 scored
        removed = run_corpus_step(step, [[Document(t, f"d{i}", "m") for i, t in enumerate(texts)]],
                                  tmp_path / policy)
        assert removed == {0: gone}
    toxic = judge(server, tmp_path, criterion="toxicity", keep_top_fraction=0.25)  # the least toxic quarter
    removed = run_corpus_step(toxic, [[Document(t, f"d{i}", "m") for i, t in enumerate(texts)]], tmp_path / "tox")
    assert sorted(set(range(5)) - set(removed[0])) == [2, 4]  # the unscored one is kept, e scores 0


def _down_url() -> str:
    """A loopback URL nothing listens on (a port just given back by the kernel)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_down_server_fails_the_run_at_its_start_in_one_line(tmp_path):
    import time

    from click.testing import CliRunner

    from corpusforge.cli import main

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("Some text to judge, long enough to keep.\n", encoding="utf-8")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(orjson.dumps({"sources": [{"path": str(tmp_path / "data")}],
                                    "steps": [{"type": "llm_judge", "base_url": _down_url(), "model": "m"}]}).decode())
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["run", str(recipe), "-o", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 2 and time.monotonic() - t0 < 10
    line = res.output.strip()
    assert "\n" not in line and "steps[0] (llm_judge).base_url: cannot connect to 127.0.0.1:" in line
    assert "connection refused" in line and not (tmp_path / "out" / "_work").exists()  # no work was done


def test_a_server_that_stops_answering_fails_the_task_after_one_requests_retries(tmp_path):
    import time

    with ChatServer() as srv:
        step = judge(srv, tmp_path, concurrency=1, retries=3, backoff=0.05)
        ctx = TaskContext("curate", 0, tmp_path / "out")
        step.setup(ctx)  # the server answers the start check
    t0 = time.monotonic()
    with pytest.raises(JudgeFailed, match=r"40 request\(s\) failed; the first: .*connection error.* after 4 attempts"):
        list(step(iter([Document(f"doc {i}", id=f"d{i}", source="mem") for i in range(40)]), ctx))
    assert time.monotonic() - t0 < 5  # one request retried (~0.3 s of backoff), 39 not sent: not 40 x retries
    assert next(iter(ctx.step_stats.values())).counts["retries"] == 3


def test_with_on_error_unscored_a_down_server_leaves_documents_unscored_at_once(tmp_path):
    step = LLMJudge(base_url=_down_url(), model="m", cache_path=str(tmp_path / "c.sqlite"), on_error="unscored")
    kept, ctx = run_step(step, ["a", "b", "c"], tmp_path)
    assert [d.metadata["judge_educational_value"] for d in kept] == [None, None, None]
    assert next(iter(ctx.step_stats.values())).counts["failed"] == 3


def test_fresh_keeps_the_judge_cache_so_paid_requests_are_not_sent_again(tmp_path):
    from corpusforge.recipe import load_recipe
    from corpusforge.runner import run as run_recipe

    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"{i}.txt").write_text(f"[score {i + 2}] document number {i}\n", encoding="utf-8")
    with ChatServer() as srv:
        recipe = load_recipe({"sources": [{"path": str(tmp_path / "data")}],
                              "steps": [{"type": "llm_judge", "base_url": srv.base_url, "model": "judge-test"}],
                              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 16}})
        first = run_recipe(recipe, tmp_path / "out", workers=1, progress=False)
        again = run_recipe(recipe, tmp_path / "out", workers=1, progress=False, fresh=True)
        assert len(srv.log) == 3
    counts = [s["stages"][0]["steps"][1]["counts"] for s in (first, again)]
    assert counts[0]["requests"] == 3 and counts[1]["requests"] == 0 and counts[1]["cache_hits"] == 3
    assert (tmp_path / "out" / "_work" / "llm_judge" / "cache.sqlite").is_file()
