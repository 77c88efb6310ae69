"""The secrets step: credentials are redacted, ordinary hashes and ids are not."""

import base64
import hashlib
import json
from pathlib import Path

import pytest

from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext
from corpusforge.privacy.secrets import SecretDetector, Secrets, shannon_entropy

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# Fixed, syntactically valid fakes (never real credentials).
SECRETS = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLQ",
    "github_token": "ghp_R8yXk2Lq9ZtW4mVb7Nc1Hd5Fg3Js6Ka0Pe2U",
    "stripe_key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "google_api_key": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "openai_key": "sk-proj-Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kL9n",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}


def redact(text: str, **kw) -> str:
    step = Secrets(**kw)
    return step.redact(text, step.detector.find(text))


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_provider_token_is_redacted_with_its_kind(kind):
    assert redact(f"token: {SECRETS[kind]}\n", typed=True) == f"token: <SECRET:{kind}>\n"


def test_private_key_block_is_redacted_whole():
    text = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----\nbye"
    assert redact(text) == "key:\n<SECRET>\nbye"


def test_password_in_connection_string_keeps_user_and_host():
    assert redact("DATABASE_URL=postgres://app:Xk9#pL2q@db.internal:5432/main") == (
        "DATABASE_URL=postgres://app:<SECRET>@db.internal:5432/main")


def test_slack_webhook_is_redacted():
    text = "post to https://hooks.slack.com/services/T0ABCDEFG/B0ABCDEFGHI/abcdefghijklmnopqrstuvwx now"
    assert redact(text) == "post to <SECRET> now"


def test_high_entropy_value_assigned_to_secret_name_is_redacted():
    assert redact('api_key = "q8Zr2LmX0vT7wPk4"') == 'api_key = "<SECRET>"'
    assert redact("DB_PASSWORD=Tr0ub4dor&3xyz") == "DB_PASSWORD=<SECRET>"


@pytest.mark.parametrize("text", [
    "md5 = " + hashlib.md5(b"x").hexdigest(),
    'sha256: "' + hashlib.sha256(b"x").hexdigest() + '"',
    "fixed in commit " + hashlib.sha1(b"x").hexdigest(),
    "token = 'c9bf9e57-1685-4c89-bafb-ff5af830be8a'",
    '<script src="a.js" integrity="sha384-' + base64.b64encode(hashlib.sha384(b"x").digest()).decode() + '"></script>',
    "password = os.environ['DB_PASSWORD']",
    'password: "${DB_PASSWORD}"',
    "secret = get_secret(name)",
    "the task-force used sk-style notation",
])
def test_hashes_uuids_integrity_strings_and_references_are_not_secrets(text):
    assert SecretDetector().find(text) == []


def test_low_entropy_assignment_is_kept():
    assert shannon_entropy("aaaaaaaa") == 0.0
    assert redact('token = "aaaaaaaaaaaa"') == 'token = "aaaaaaaaaaaa"'


def test_step_counts_kinds_and_records_reason(tmp_path):
    step = Secrets()
    ctx = TaskContext("curate", 0, tmp_path, audit=True)
    docs = [Document(f"a {SECRETS['github_token']} b {SECRETS['jwt']}", "d0", "mem://x")]
    (doc,) = list(step(iter(docs), ctx))
    assert doc.text == "a <SECRET> b <SECRET>"
    assert doc.metadata["secrets"] == {"github_token": 1, "jwt": 1}
    assert ctx.stats_for(step).to_dict()["counts"] == {"github_token": 1, "jwt": 1}
    assert json.loads(ctx._audit[0])["reason"] == "secret:github_token,jwt"


def test_real_code_corpus_has_no_false_secrets():
    det = SecretDetector()
    hits = []
    with open(DATA / "code" / "code.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            hits += [(rec["path"], rec["text"][s.start:s.end]) for s in det.find(rec["text"])]
    assert hits == []
