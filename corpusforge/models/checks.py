"""Model checks at run start: every local model path, device and credential a recipe names is looked
at before any work, so a wrong one fails in a second with one line (what, where, the fix) instead of
a 40-frame traceback from transformers after curation has run.

Only files are read (``config.json``, the tokenizer's and weights' names); no model is loaded, except
that ``device: cuda`` asks torch whether a GPU is visible.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from corpusforge.errors import RecipeError

if TYPE_CHECKING:
    from corpusforge.recipe import Recipe

_FOLDER_FIX = "give a local model folder (config.json, weights, tokenizer, as save_pretrained writes); nothing is downloaded"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                    "sentencepiece.bpe.model", "source.spm")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".index.json", ".pt", ".pth", ".h5", ".msgpack")
# Which architectures a step needs, by the suffixes of ``config.json``'s ``architectures``.
_CAUSAL = ("ForCausalLM", "LMHeadModel")
_CLASSIFIER = ("ForSequenceClassification",)
_SEQ2SEQ = ("ForConditionalGeneration", "MTModel", "ForSeq2SeqLM")


def model_folder_problem(where: str, path: str | None, tokenizer: bool = True) -> tuple[str | None, dict[str, Any]]:
    """Why ``path`` is not a usable local model folder (None if it is), and its ``config.json``."""
    if not path:
        return f"{where}: no model path given; {_FOLDER_FIX}", {}
    p = Path(path).expanduser()
    if not p.exists():
        return f"{where}: {path} does not exist; {_FOLDER_FIX}", {}
    if not p.is_dir():
        return f"{where}: {path} is a file, not a model folder; {_FOLDER_FIX}", {}
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{where}: {path} has no config.json; {_FOLDER_FIX}", {}
    except (OSError, ValueError) as e:
        return f"{where}: {path}/config.json cannot be read ({e}); {_FOLDER_FIX}", {}
    if not isinstance(config, dict):
        return f"{where}: {path}/config.json is not a JSON object; {_FOLDER_FIX}", {}
    names = [f.name for f in p.iterdir()]
    if not any(n.endswith(_WEIGHT_SUFFIXES) for n in names):
        return f"{where}: {path} holds no weights (*.safetensors, pytorch_model.bin); {_FOLDER_FIX}", config
    if tokenizer and not any(n in _TOKENIZER_FILES for n in names):
        return f"{where}: {path} holds no tokenizer (tokenizer.json, tokenizer_config.json, vocab); save the " \
               "tokenizer beside the model (tokenizer.save_pretrained)", config
    return None, config


def _architectures(config: dict[str, Any]) -> list[str]:
    archs = config.get("architectures")
    return [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []


def _kind_problem(where: str, path: str, config: dict[str, Any], want: tuple[str, ...], what: str) -> str | None:
    """Why the folder's declared architecture is not ``what`` (None when it is, or declares none)."""
    archs = _architectures(config)
    if not archs or any(a.endswith(want) for a in archs):
        return None
    return f"{where}: {path} is a {archs[0]}, not a {what}; give a {what} folder"


def _has_pad_token(path: str, config: dict[str, Any]) -> bool:
    """Whether a classifier can pad a batch: a pad token in the tokenizer or a pad id in the config."""
    if config.get("pad_token_id") is not None:
        return True
    try:
        tok = json.loads((Path(path).expanduser() / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # nothing to tell: leave it to the loader
    return bool(tok.get("pad_token"))


def device_problem(where: str, device: str | None) -> str | None:
    """Why ``device`` cannot be used here (a CUDA device with no GPU visible), or None."""
    if not device or not str(device).startswith("cuda"):
        return None
    try:
        import torch
    except ImportError:
        return f"{where}: {device} needs torch: pip install 'corpusforge[ml]'"
    if not torch.cuda.is_available():
        return f"{where}: {device} but no CUDA GPU is visible here; use device: cpu or leave device unset (auto)"
    index = str(device).partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        return f"{where}: {device} but only {torch.cuda.device_count()} GPU(s) are visible (cuda:0..)"
    return None


def reachable_problem(where: str, base_url: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers a TCP connect to ``base_url``'s host and port within ``timeout`` s, or None."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}: {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as e:
        why = "connection refused" if isinstance(e, ConnectionRefusedError) else (str(e) or type(e).__name__)
        return (f"{where}: cannot connect to {parts.hostname}:{port} ({why}); start the server or fix base_url "
                "(checked before any work)")


def _step_problems(i: int, spec: dict[str, Any], step: Any) -> list[str]:
    from corpusforge.models.top_fraction import KeepTopFraction

    if isinstance(step, KeepTopFraction):  # keep_top_fraction wraps the scoring step
        step = step.scorer
    kind = spec.get("type")
    at = f"steps[{i}] ({kind})"
    out: list[str] = []
    if kind == "perplexity":
        path = str(step.model_path)
        if step.is_ngram():
            if not Path(path).expanduser().is_file():
                out.append(f"{at}.model_path: {path} does not exist; give an ARPA (.arpa, .arpa.gz) or KenLM binary "
                           "file, or a local causal LM folder")
        else:
            problem, config = model_folder_problem(f"{at}.model_path", path)
            problem = problem or _kind_problem(f"{at}.model_path", path, config, _CAUSAL, "causal language model")
            out += [problem] if problem else []
            if step.normalize:
                out.append(f"{at}.normalize: applies to n-gram models only; {path} is a model folder")
    elif kind == "classifier":
        path = str(step.model_path)
        problem, config = model_folder_problem(f"{at}.model_path", path)
        if problem is None and any(a.endswith(_CAUSAL) for a in _architectures(config)):
            problem = (f"{at}.model_path: {path} is a causal language model ({_architectures(config)[0]}), not a "
                       "sequence classifier; give a *ForSequenceClassification folder (e.g. FineWeb-Edu's classifier)")
        if problem is None and not _has_pad_token(path, config):
            problem = (f"{at}.model_path: {path} has no pad token, so batches cannot be padded; set pad_token in "
                       "its tokenizer_config.json (or pad_token_id in config.json)")
        out += [problem] if problem else []
    elif kind == "back_translation":
        for option in ("model_path", "reverse_model_path"):
            path = str(getattr(step, option))
            problem, config = model_folder_problem(f"{at}.{option}", path)
            problem = problem or _kind_problem(f"{at}.{option}", path, config, _SEQ2SEQ, "seq2seq translation model")
            out += [problem] if problem else []
    elif kind in ("toxicity", "embedding_dedup"):
        option = "model_path" if kind == "toxicity" else "model"
        path = getattr(step, option, None)
        if path:
            problem, _ = model_folder_problem(f"{at}.{option}", str(path))
            out += [problem] if problem else []
    elif kind == "llm_judge":
        if step.api_key_env and not os.environ.get(step.api_key_env):
            out.append(f"{at}.api_key_env: the environment variable {step.api_key_env} is not set; export it "
                       "(the key itself never goes in the recipe) or set api_key_env: null for a server without one")
        problem = reachable_problem(f"{at}.base_url", step.base_url, min(5.0, step.http.timeout))
        out += [problem] if problem else []
    device = getattr(step, "device", None)
    problem = device_problem(f"{at}.device", device if isinstance(device, str) else None)
    return out + ([problem] if problem else [])


def model_problems(recipe: Recipe, steps: bool = True) -> list[str]:
    """One line per model path, device or credential of ``recipe`` that cannot work here
    (``steps=False``: the embeddings and media sections only, for ``corpusforge embed``)."""
    out: list[str] = []
    for i, (spec, step) in enumerate(zip(recipe.steps, recipe.build_steps() if steps else [], strict=False)):
        out += _step_problems(i, spec, step)
    emb = recipe.embeddings
    if emb is not None:
        if emb.model is not None:
            problem, _ = model_folder_problem("embeddings.model", emb.model)
            out += [problem] if problem else []
        problem = device_problem("embeddings.device", emb.device)
        out += [problem] if problem else []
    media = recipe.media
    if media is not None:
        for modality, path in media.encoders.items():
            problem, _ = model_folder_problem(f"media.encoders.{modality}", path, tokenizer=False)
            out += [problem] if problem else []
        for modality, path in media.codebooks.items():
            if not Path(path).expanduser().is_dir():
                out.append(f"media.codebooks.{modality}: {path} is not a folder; give a codebook folder that "
                           "'corpusforge tokenizer train' wrote, or remove it to train one")
    return out


def check_models(recipe: Recipe, steps: bool = True) -> None:
    """Raise ``RecipeError`` (one line per problem) when a model, device or credential cannot work here."""
    problems = model_problems(recipe, steps)
    if problems:
        raise RecipeError("\n".join(problems))
