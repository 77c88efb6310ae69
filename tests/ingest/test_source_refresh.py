"""Re-runs of non-file sources: a change policy with a content fingerprint (SQL, REST, URLs, HF
datasets), per-URL checkpoints, a per-host rate limit shared by sources and processes, robots.txt.
Web servers are real, on loopback (the two-host fixture of test_web_security)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from corpusforge import run
from corpusforge.observe.stats import TaskContext
from corpusforge.sources.base import RefreshPolicy, parse_duration
from corpusforge.sources.web import UrlsSource
from tests.ingest.loopback import Server
from tests.ingest.test_web_security import ARTICLE

RECIPE_TAIL = {"steps": [], "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 32},
               "output": {"documents": "jsonl"}}


def _documents(out: Path) -> list[str]:
    return sorted(json.loads(line)["text"] for f in (out / "documents").rglob("*.jsonl")
                  for line in f.read_text().splitlines())


def _staged_mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "_work" / "curate").glob("*.parquet")}


# -- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("15m", 900.0),
                                            ("6h", 21600.0), ("2d", 172800.0), ("1w", 604800.0)])
def test_refresh_ttl_takes_seconds_or_a_duration(value, seconds):
    assert parse_duration(value) == seconds


def test_refresh_ttl_is_required_by_ttl_and_refused_elsewhere():
    with pytest.raises(ValueError, match="refresh: ttl needs refresh_ttl"):
        RefreshPolicy.of("ttl", None)
    with pytest.raises(ValueError, match="only used with refresh: ttl"):
        RefreshPolicy.of("always", "6h")
    with pytest.raises(ValueError, match="not a duration"):
        RefreshPolicy.of("ttl", "soon")


def test_a_check_is_due_always_after_the_ttl_or_never_after_the_first():
    assert RefreshPolicy.of("always", None).due(100.0, 101.0)
    assert not RefreshPolicy.of("never", None).due(100.0, 1e9)
    assert not RefreshPolicy.of("never", None).due(None, 1e9)
    ttl = RefreshPolicy.of("ttl", "1m")
    assert not ttl.due(100.0, 159.0) and ttl.due(100.0, 160.0) and ttl.due(None, 0.0)


# -- SQL -----------------------------------------------------------------------------------------


def _posts_db(path: Path, ids: range, updated: str = "2026-01-01") -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("create table if not exists posts (id integer primary key, body text, updated text)")
        conn.executemany("insert into posts values (?, ?, ?)",
                         [(i, f"post number {i} says something worth reading", updated) for i in ids])


def _sql_recipe(db: Path, **options) -> dict:
    src = {"type": "sql", "name": "db", "url": f"sqlite:///{db}", "query": "select id, body, updated from posts order by id",
           "text_field": "body", "id_field": "id", **options}
    return {"sources": [src], **RECIPE_TAIL}


def test_new_database_rows_are_read_on_a_rerun_and_the_run_says_why(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(100))
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    _posts_db(db, range(100, 112))
    capsys.readouterr()
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    assert "source 'db': 12 new rows (count 100 → 112), re-reading" in capsys.readouterr().err
    assert len(_documents(out)) == 112


def test_an_unchanged_database_is_not_read_again(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(20))
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    before = _staged_mtimes(out)
    capsys.readouterr()
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    assert "source 'db': unchanged since the last check" in capsys.readouterr().err
    assert _staged_mtimes(out) == before


def test_an_edited_row_is_seen_through_updated_column(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(20))
    recipe = _sql_recipe(db, updated_column="updated", fingerprint_rows=0)
    run(recipe, output=str(out), workers=1, progress=False)
    with sqlite3.connect(db) as conn:
        conn.execute("update posts set body = 'an edited post with new words in it', updated = '2026-02-01' where id = 3")
    capsys.readouterr()
    run(recipe, output=str(out), workers=1, progress=False)
    assert ("source 'db': rows updated (max(updated) 2026-01-01 → 2026-02-01), re-reading"
            in capsys.readouterr().err)
    assert "an edited post with new words in it" in _documents(out)


def test_an_edited_row_of_a_small_table_is_seen_without_updated_column(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(20))
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    with sqlite3.connect(db) as conn:
        conn.execute("update posts set body = 'an edited post with new words in it' where id = 3")
    capsys.readouterr()
    run(_sql_recipe(db), output=str(out), workers=1, progress=False)
    assert "source 'db': rows changed (same count 20, different content), re-reading" in capsys.readouterr().err
    assert "an edited post with new words in it" in _documents(out)


def test_refresh_never_keeps_the_first_read_and_names_fresh(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(10))
    run(_sql_recipe(db, refresh="never"), output=str(out), workers=1, progress=False)
    _posts_db(db, range(10, 15))
    capsys.readouterr()
    run(_sql_recipe(db, refresh="never"), output=str(out), workers=1, progress=False)
    err = capsys.readouterr().err
    assert "source 'db': not checked for changes (refresh: never); --fresh or refresh: always re-reads it" in err
    assert len(_documents(out)) == 10


def test_refresh_ttl_skips_the_check_within_the_ttl(tmp_path, capsys):
    db, out = tmp_path / "x.db", tmp_path / "out"
    _posts_db(db, range(10))
    run(_sql_recipe(db, refresh="ttl", refresh_ttl="1h"), output=str(out), workers=1, progress=False)
    _posts_db(db, range(10, 15))
    capsys.readouterr()
    run(_sql_recipe(db, refresh="ttl", refresh_ttl="1h"), output=str(out), workers=1, progress=False)
    assert "checked less than refresh_ttl (3600 s) ago" in capsys.readouterr().err
    assert len(_documents(out)) == 10


# -- HF dataset (local copy) ---------------------------------------------------------------------


def test_a_changed_local_dataset_copy_is_read_again(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    ds, out = tmp_path / "ds", tmp_path / "out"
    recipe = {"sources": [{"type": "hf_dataset", "name": "hf", "path": str(ds)}], **RECIPE_TAIL}
    datasets.Dataset.from_dict({"text": [f"document number {i} of the set" for i in range(3)]}).save_to_disk(str(ds))
    run(recipe, output=str(out), workers=1, progress=False)
    datasets.Dataset.from_dict({"text": [f"document number {i} of the set" for i in range(5)]}).save_to_disk(str(ds))
    capsys.readouterr()
    run(recipe, output=str(out), workers=1, progress=False)
    assert "source 'hf': files under" in capsys.readouterr().err
    assert len(_documents(out)) == 5


# -- REST ----------------------------------------------------------------------------------------


def test_a_changed_first_page_of_an_api_is_read_again(hosts, tmp_path, capsys):
    a, _ = hosts
    records = [{"text": "the first record of the api with some words"}]
    a.route(lambda h, p, q: (200, {"Content-Type": "application/json"}, json.dumps({"items": records}).encode()))
    recipe = {"sources": [{"type": "rest_api", "name": "api", "url": f"{a.base}/api", "records_path": "items",
                           "rate_limit": 100}], **RECIPE_TAIL}
    out = tmp_path / "out"
    run(recipe, output=str(out), workers=1, progress=False)
    capsys.readouterr()
    run(recipe, output=str(out), workers=1, progress=False)
    assert "source 'api': unchanged since the last check" in capsys.readouterr().err
    records.insert(0, {"text": "a newer record of the api with more words"})
    run(recipe, output=str(out), workers=1, progress=False)
    assert "source 'api': first page changed, re-reading" in capsys.readouterr().err
    assert len(_documents(out)) == 2


# -- URLs: checkpoints per URL ------------------------------------------------------------------


def _etag_route(bodies: dict[str, str], gets: list[tuple[str, int]]):
    """Pages with an ETag; a matching If-None-Match gets 304. ``gets`` logs (path, status)."""

    def route(h, p, q):
        if p not in bodies:
            return 404, {}, b""
        tag = f'"{abs(hash(bodies[p]))}"'
        status = 304 if h.headers.get("If-None-Match") == tag else 200
        gets.append((p, status))
        body = b"" if status == 304 else ARTICLE.format(title=bodies[p]).encode()
        return status, {"Content-Type": "text/html; charset=utf-8", "ETag": tag}, body

    return route


def _urls_recipe(urls: list[str], **options) -> dict:
    return {"sources": [{"type": "urls", "name": "web", "urls": urls, "rate_limit": 200, **options}], **RECIPE_TAIL}


def test_adding_one_url_downloads_only_that_url(hosts, tmp_path, capsys):
    a, _ = hosts
    bodies = {f"/p{i}": f"Page {i}" for i in range(4)}
    gets: list[tuple[str, int]] = []
    a.route(_etag_route(bodies, gets))
    out = tmp_path / "out"
    run(_urls_recipe([f"{a.base}/p{i}" for i in range(3)]), output=str(out), workers=1, progress=False)
    assert sorted(gets) == [("/p0", 200), ("/p1", 200), ("/p2", 200)]
    gets.clear()
    capsys.readouterr()
    run(_urls_recipe([f"{a.base}/p{i}" for i in range(4)]), output=str(out), workers=1, progress=False)
    assert sorted(gets) == [("/p0", 304), ("/p1", 304), ("/p2", 304), ("/p3", 200)]
    assert "source 'web': 1 of 4 URLs: added, re-reading" in capsys.readouterr().err
    assert len(_documents(out)) == 4


def test_a_changed_page_is_downloaded_again_and_the_run_says_so(hosts, tmp_path, capsys):
    a, _ = hosts
    bodies = {"/p0": "Page zero", "/p1": "Page one"}
    gets: list[tuple[str, int]] = []
    a.route(_etag_route(bodies, gets))
    out = tmp_path / "out"
    recipe = _urls_recipe([f"{a.base}/p0", f"{a.base}/p1"])
    run(recipe, output=str(out), workers=1, progress=False)
    bodies["/p1"] = "Page one, second edition"
    gets.clear()
    capsys.readouterr()
    run(recipe, output=str(out), workers=1, progress=False)
    err = capsys.readouterr().err
    assert sorted(gets) == [("/p0", 304), ("/p1", 200)]
    assert "source 'web': 1 of 2 URLs: content changed (sha256 " in err and "re-reading" in err
    assert sum("second edition" in d for d in _documents(out)) == 1


def test_a_killed_run_fetches_only_the_urls_it_had_not_finished(hosts, tmp_path):
    a, _ = hosts
    release, served, lock = threading.Event(), [], threading.Lock()

    def route(h, p, q):
        if p == "/robots.txt":
            return 404, {}, b""
        with lock:
            served.append(p)
            n = len(served)
        if n > 15:  # the 16th request and later hang until the run is killed
            release.wait(30)
        return 200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()

    a.route(route)
    recipe = _urls_recipe([f"{a.base}/p{i}" for i in range(30)], concurrency=4, retries=0)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(tmp_path / "recipe.yaml"), "--output", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = out / "_work" / "sources" / "web" / "fetched"
    deadline = time.monotonic() + 120
    while len(list(store.glob("*.json"))) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    release.set()
    done = len(list(store.glob("*.json")))
    assert done == 15
    first = list(served)
    served.clear()
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    assert len(served) == 30 - done  # nothing stored is fetched again
    assert set(served).isdisjoint(first[:15])
    assert len(_documents(out)) == 30


def test_documents_are_in_url_order_whatever_order_the_fetches_end(hosts, tmp_path):
    a, _ = hosts

    def route(h, p, q):
        if p == "/robots.txt":
            return 404, {}, b""
        time.sleep(0.3 if p == "/p0" else 0.0)  # the first URL completes last
        return 200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()

    a.route(route)
    src = UrlsSource(name="web", urls=[f"{a.base}/p{i}" for i in range(4)], rate_limit=200)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, TaskContext("curate", 0, tmp_path))]
    assert [d.metadata["title"] for d in docs] == ["/p0", "/p1", "/p2", "/p3"]


# -- rate limit per host, robots.txt -------------------------------------------------------------


def _start_times(server: Server, prefix: str) -> list[float]:
    return sorted(t for t, p, _, _ in server.httpd.seen if p.startswith(prefix))


def test_two_sources_on_one_host_share_its_rate_limit_and_the_stricter_rate_applies(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, b"a short text page with a few words"))
    slow = UrlsSource(name="slow", urls=[f"{a.base}/s{i}" for i in range(5)], rate_limit=4, respect_robots=False)
    fast = UrlsSource(name="fast", urls=[f"{a.base}/f{i}" for i in range(5)], rate_limit=50, respect_robots=False)

    def read(src):
        ctx = TaskContext("curate", 0, tmp_path / src.source_name)
        return [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]

    threads = [threading.Thread(target=read, args=(s,)) for s in (slow, fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts = _start_times(a, "/")
    assert len(starts) == 10
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 4.4  # 10 requests at 4/s: >= 2.25 s


def test_two_processes_on_one_host_share_its_rate_limit(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, b"a short text page with a few words"))
    script = ("import sys; from corpusforge.sources.web import UrlsSource; "
              "from corpusforge.observe.stats import TaskContext; from pathlib import Path; "
              "s = UrlsSource(name='w', urls=[f'{sys.argv[1]}/{sys.argv[2]}{i}' for i in range(4)], rate_limit=4, "
              "respect_robots=False); "
              "[d for t in s.plan(1 << 20) for d in s.read(t, TaskContext('curate', 0, Path(sys.argv[3])))]")
    procs = [subprocess.Popen([sys.executable, "-c", script, a.base, name, str(tmp_path / name)]) for name in "xy"]
    assert [p.wait(120) for p in procs] == [0, 0]
    starts = _start_times(a, "/")
    assert len(starts) == 8
    assert (len(starts) - 1) / (starts[-1] - starts[0]) <= 4.4  # 8 requests at 4/s together: >= 1.75 s


def test_robots_txt_disallowed_urls_are_quarantined_and_the_rest_fetched(hosts, tmp_path):
    a, _ = hosts
    robots = b"User-agent: *\nDisallow: /private/\n"
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, robots) if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    src = UrlsSource(name="web", urls=[f"{a.base}/public/1", f"{a.base}/private/2", f"{a.base}/public/3"],
                     rate_limit=200)
    ctx = TaskContext("curate", 0, tmp_path)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, ctx)]
    assert [d.metadata["title"] for d in docs] == ["/public/1", "/public/3"]
    assert ctx.quarantined == [{"location": f"{a.base}/private/2", "reason": "disallowed by robots.txt"}]
    paths = [p for _, p, _, _ in a.httpd.seen]
    assert paths.count("/robots.txt") == 1 and "/private/2" not in paths


def test_robots_txt_rules_for_the_configured_user_agent_apply(hosts, tmp_path):
    a, _ = hosts
    robots = b"User-agent: mybot\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, robots) if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    src = UrlsSource(name="web", urls=[f"{a.base}/x"], rate_limit=200, user_agent="mybot/1.0")
    ctx = TaskContext("curate", 0, tmp_path)
    assert [d for t in src.plan(1 << 20) for d in src.read(t, ctx)] == []
    assert ctx.quarantined[0]["reason"] == "disallowed by robots.txt"
    assert a.headers_at("/robots.txt")[0]["user-agent"] == "mybot/1.0"


def test_respect_robots_false_fetches_what_robots_txt_disallows(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /\n") if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    src = UrlsSource(name="web", urls=[f"{a.base}/x"], rate_limit=200, respect_robots=False)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, TaskContext("curate", 0, tmp_path))]
    assert len(docs) == 1 and "/robots.txt" not in [p for _, p, _, _ in a.httpd.seen]


def test_crawl_delay_is_a_lower_bound_on_the_hosts_interval(hosts, tmp_path):
    _, b = hosts
    b.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 1\n")
            if p == "/robots.txt" else (200, {"Content-Type": "text/plain"}, b"a short page of plain text"))
    src = UrlsSource(name="web", urls=[f"{b.base}/p{i}" for i in range(3)], rate_limit=100)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, TaskContext("curate", 0, tmp_path))]
    assert len(docs) == 3
    starts = _start_times(b, "/p")
    assert min(y - x for x, y in zip(starts, starts[1:], strict=False)) >= 0.95  # Python's robotparser: whole seconds


def test_an_unset_headers_env_variable_is_one_error_naming_the_source(hosts, tmp_path, monkeypatch):
    from corpusforge.errors import CorpusforgeError

    a, _ = hosts
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    recipe = _urls_recipe([f"{a.base}/p0"], headers_env={"Authorization": "NO_SUCH_TOKEN"})
    with pytest.raises(CorpusforgeError, match="source 'web': headers_env: environment variable 'NO_SUCH_TOKEN'"):
        run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    assert a.httpd.seen == []


def test_a_query_that_cannot_be_nested_is_fingerprinted_by_reading_it(tmp_path):
    from corpusforge.sources.sql import SqlSource

    db = tmp_path / "x.db"
    _posts_db(db, range(3))
    # A PRAGMA returns rows but cannot be wrapped in SELECT COUNT(*) FROM (...).
    src = SqlSource(name="db", url=f"sqlite:///{db}", query="pragma table_info(posts)", text_field="name")
    [fp] = src.fingerprints(list(src.plan(1 << 20)[0].parts), tmp_path)
    assert fp["count"] == 3 and len(fp["rows_sha256"]) == 64


def test_a_robots_txt_answering_503_disallows_the_host(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (503, {}, b"") if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    src = UrlsSource(name="web", urls=[f"{a.base}/x"], rate_limit=200, retries=1, backoff=0)
    ctx = TaskContext("curate", 0, tmp_path)
    assert [d for t in src.plan(1 << 20) for d in src.read(t, ctx)] == []
    assert ctx.quarantined[0]["reason"] == "disallowed by robots.txt (robots.txt unreachable: HTTP 503 after 2 attempts)"
    assert "/x" not in [p for _, p, _, _ in a.httpd.seen]


def test_a_missing_robots_txt_allows_everything(hosts, tmp_path):
    a, _ = hosts
    a.route(lambda h, p, q: (404, {}, b"") if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    src = UrlsSource(name="web", urls=[f"{a.base}/x"], rate_limit=200)
    docs = [d for t in src.plan(1 << 20) for d in src.read(t, TaskContext("curate", 0, tmp_path))]
    assert [d.metadata["title"] for d in docs] == ["/x"]


def test_urls_that_differ_only_in_a_secret_keep_their_own_fingerprints(tmp_path):
    from corpusforge.sources.base import Part, Source, TaskInput
    from corpusforge.sources.manifest import fingerprint_digest, refresh_fingerprints

    class Fixed(Source):
        source_name, refresh = "s", RefreshPolicy.of("always", None)

        def plan(self, task_bytes):
            return []

        def read(self, task, ctx):
            return iter(())

        def fingerprints(self, parts, work, since=None):
            return [{"n": p.path[-1]} for p in parts]

    tasks = [TaskInput("s", (Part("https://x.org/a?api_key=1"), Part("https://x.org/a?api_key=2")))]
    [planned] = refresh_fingerprints(tmp_path, tasks, {"s": Fixed()}, say=lambda line: None)
    assert [p.digest for p in planned.parts] == [fingerprint_digest({"n": "1"}), fingerprint_digest({"n": "2"})]
    assert b"api_key=1" not in (tmp_path / "_state" / "fingerprints.jsonl").read_bytes()


def test_a_page_disallowed_since_the_last_run_is_quarantined_not_served_from_the_store(hosts, tmp_path, capsys):
    a, _ = hosts
    robots = {"body": b"User-agent: *\nAllow: /\n"}
    a.route(lambda h, p, q: (200, {"Content-Type": "text/plain"}, robots["body"]) if p == "/robots.txt"
            else (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE.format(title=p).encode()))
    out = tmp_path / "out"
    recipe = _urls_recipe([f"{a.base}/p0", f"{a.base}/p1"])
    run(recipe, output=str(out), workers=1, progress=False)
    robots["body"] = b"User-agent: *\nDisallow: /p1\n"
    capsys.readouterr()
    stats = run(recipe, output=str(out), workers=1, progress=False)
    assert "source 'web': 1 of 2 URLs: now disallowed by robots.txt, re-reading" in capsys.readouterr().err
    assert len(_documents(out)) == 1 and stats["quarantine"] == {"disallowed by robots.txt": 1}
