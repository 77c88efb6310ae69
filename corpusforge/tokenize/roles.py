"""Which tokens of a tokenizer are its BOS/EOS/PAD/UNK, and the files that tell ``transformers``.

Roles come from the recipe (``tokenizer: {bos: ..., eos: ..., pad: ...}``), else from a saved
``transformers`` folder's ``tokenizer_config.json`` / ``special_tokens_map.json`` beside the
tokenizer file, else from the model itself (SentencePiece's own ids, or well-known token names).
A run writes the roles it used beside its output's tokenizer, so ``AutoTokenizer`` and the run's
own shard tasks read the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from corpusforge import layout
from corpusforge.errors import RecipeError
from corpusforge.state import atomic_write_bytes
from corpusforge.tokenize.special import (
    APPENDED_PAD,
    DEFAULT_MASKED,
    ROLES,
    SPECIAL_TOKENS,
    SpecialIds,
    mask_ids,
)

AUTO = "auto"  # a role the recipe leaves to the tokenizer
CONFIG_NAME, MAP_NAME = layout.TOKENIZER_CONFIG, layout.SPECIAL_TOKENS_MAP
# Names tried, in order, when nothing else names a role (RT-DLM/peer, SentencePiece/Llama, GPT-2/Llama 3).
WELL_KNOWN = {
    "bos": ("<BOS>", "<s>", "<|begin_of_text|>", "<|startoftext|>", "[BOS]"),
    "eos": ("<EOS>", "</s>", "<|endoftext|>", "<|end_of_text|>", "[EOS]"),
    "pad": ("<PAD>", "<pad>", "[PAD]", "<|pad|>", "<|padding|>"),
    "unk": ("<UNK>", "<unk>", "[UNK]"),
}
RTDLM_ROLES = {"bos": "<BOS>", "eos": "<EOS>", "pad": "<PAD>", "unk": "<UNK>"}
# media.sequence.MARKERS: the packer and the media stage place these ids.
MEDIA_MARKERS = {"<IMG>": 4, "<IMG_END>": 5, "<AUDIO>": 6, "<AUDIO_END>": 7, "<VIDEO>": 8, "<VIDEO_END>": 9}


def _content(value: Any) -> str | None:
    """A token as ``transformers`` saves it: a string, or an AddedToken dict with ``content``."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) or value is None else None


def roles_from_files(tokenizer_file: Path) -> dict[str, str | None]:
    """The roles a ``transformers`` folder names beside ``tokenizer_file`` (only the ones it names;
    a role saved as null is named None)."""
    out: dict[str, str | None] = {}
    for name in (CONFIG_NAME, MAP_NAME):
        f = tokenizer_file.parent / name
        if not f.is_file():
            continue
        try:
            data = orjson.loads(f.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise RecipeError(f"tokenizer.path: {str(f)!r} is not valid JSON ({exc})") from None
        for role in ROLES:
            key = f"{role}_token"
            if isinstance(data, dict) and key in data and role not in out:
                out[role] = _content(data[key])
    return out


def resolve_special(
    enc: Any,
    path: Path,
    requested: Mapping[str, str | None] | None = None,
    layout: str = AUTO,
    masked: Iterable[str] = DEFAULT_MASKED,
    media: bool = False,
) -> SpecialIds:
    """The special ids a run uses with the loaded encoder ``enc`` (from ``path``); appends the
    tokens it lacks (``<|pad|>``; the RT-DLM 16 for ``layout: rtdlm``) where it can, else a
    ``RecipeError`` saying what to change."""
    where = f"tokenizer.path {str(path)!r}"
    appended: dict[str, int] = {}
    spm = not hasattr(enc, "tok")
    if layout == "rtdlm":
        missing = [t for t in SPECIAL_TOKENS if enc.token_id(t) is None]
        if missing and spm:
            raise RecipeError(f"{where}: special_tokens: rtdlm needs {', '.join(missing)}, and a SentencePiece "
                              "model is not extended: drop tokenizer.special_tokens to use its own special tokens, "
                              "or train one (corpusforge tokenizer train text --type sentencepiece_unigram)")
        if missing:
            appended.update(enc.append(missing))
        names: dict[str, str | None] = dict(RTDLM_ROLES)
    else:
        names = roles_from_files(path)
        for role, value in (requested or {}).items():
            if value != AUTO:
                names[role] = value
        for role in ROLES:
            if role not in names:
                names[role] = enc.default_role(role) if spm else next(
                    (t for t in WELL_KNOWN[role] if enc.token_id(t) is not None), None)
    ids: dict[str, int | None] = {}
    for role in ROLES:
        name = names.get(role)
        ids[role] = None if name is None else enc.token_id(name)
        if name is not None and ids[role] is None:
            raise RecipeError(f"{where}: tokenizer.{role} {name!r} is not in the tokenizer's vocabulary")
    if ids["eos"] is None:
        raise RecipeError(f"{where}: the tokenizer has no EOS token to end documents with; name one in the recipe, "
                          "e.g. tokenizer: {eos: '<|endoftext|>'}")
    if ids["bos"] == ids["eos"]:
        ids["bos"] = None  # GPT-2 style: documents are framed doc EOS
    if ids["pad"] is None or ids["pad"] in (ids["bos"], ids["eos"]):
        # Padding needs an id of its own: one shared with EOS would take EOS's label away.
        if spm:
            raise RecipeError(f"{where}: padding needs a token that is neither BOS nor EOS, and a SentencePiece "
                              "model is not extended: name one the text never produces, e.g. "
                              "tokenizer: {pad: '<unk>'} for a byte-fallback model")
        appended.update(enc.append([APPENDED_PAD]))
        ids["pad"], names["pad"] = appended[APPENDED_PAD], APPENDED_PAD
    if media:
        wrong = [f"{t} is id {enc.token_id(t)}, must be {i}" for t, i in MEDIA_MARKERS.items() if enc.token_id(t) != i]
        if wrong:
            raise RecipeError(f"{where}: a multimodal run needs the media markers at ids 4-9 ({'; '.join(wrong)}): "
                              "use a tokenizer corpusforge trains (leave tokenizer.path out)")
    tokens = enc.special_tokens()
    tokens.update({n: i for n, i in zip((names[r] for r in ROLES), (ids[r] for r in ROLES), strict=True)
                   if n is not None and i is not None})
    base = SpecialIds(pad=int(ids["pad"]), eos=int(ids["eos"]), bos=ids["bos"], unk=ids["unk"], tokens=tokens,
                      appended=appended)
    try:
        return SpecialIds(base.pad, base.eos, base.bos, base.unk, tokens, mask_ids(base, masked), appended)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None


def role_names(special: SpecialIds) -> dict[str, str | None]:
    """Each role's token string (None where the run has none)."""
    by_id = {i: t for t, i in special.tokens.items()}
    return {role: by_id.get(getattr(special, role)) if getattr(special, role) is not None else None
            for role in ROLES}


def write_hf_config(folder: Path, special: SpecialIds, hf: bool, max_length: int | None = None) -> None:
    """``tokenizer_config.json`` and ``special_tokens_map.json`` beside the output's tokenizer, so
    ``transformers.AutoTokenizer.from_pretrained(folder)`` knows BOS/EOS/PAD/UNK."""
    names = role_names(special)
    roles = {f"{role}_token": names[role] for role in ROLES}
    config: dict[str, Any] = {**roles, "clean_up_tokenization_spaces": False}
    if hf:
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if max_length:
        config["model_max_length"] = max_length
    opt = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    atomic_write_bytes(folder / CONFIG_NAME, orjson.dumps(config, option=opt))
    atomic_write_bytes(folder / MAP_NAME, orjson.dumps({k: v for k, v in roles.items() if v is not None}, option=opt))
