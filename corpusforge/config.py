"""Build registered components from plain dicts, validating arguments against their signatures.

A step's (or source's) config is its constructor's keyword arguments, so the type hints on
``__init__`` are the schema: pydantic checks them and the error names the field, the value and
what is allowed.
"""

from __future__ import annotations

import inspect
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from corpusforge.errors import RecipeError
from corpusforge.registry import Registry


@cache
def _params_model(cls: type) -> type[BaseModel]:
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):
        hints = {}
    fields: dict[str, Any] = {}
    for pname, p in sig.parameters.items():
        if pname == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = hints.get(pname, Any)
        fields[pname] = (ann, ... if p.default is inspect.Parameter.empty else p.default)
    return create_model(
        f"{cls.__name__}Params",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def allowed_params(cls: type) -> list[str]:
    return list(_params_model(cls).model_fields)


def format_validation_error(
    err: ValidationError, where: str, allowed: dict[str, list[str]] | None = None,
    model: type[BaseModel] | None = None,
) -> str:
    """One line per problem: ``where.field: value 'x' — what is wrong / allowed``.

    An unknown option lists ``allowed["params"]``, or the fields of the part of ``model`` it was
    found in (``sharding.max_shard_bytez`` lists the ``sharding`` options)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        field = f"{where}.{loc}" if where and loc else (where or loc)
        if e["type"] == "extra_forbidden":
            options = (allowed or {}).get("params") or _fields_at(model, e["loc"][:-1])
            lines.append(f"{field}: unknown option; allowed options: {', '.join(options) or '(none)'}")
        elif e["type"] == "missing":
            lines.append(f"{field}: required option is missing")
        else:
            lines.append(f"{field}: value {e.get('input')!r} is invalid: {e['msg']}")
    return "\n".join(lines)


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The option names of the pydantic model reached from ``model`` along ``loc`` (list indexes
    and dict keys skipped), or [] where ``loc`` leads to no model."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        model = next(iter(_model_types(info.annotation)), None) if info is not None else None
    return sorted(f.alias or name for name, f in model.model_fields.items()) if model is not None else []


def _model_types(annotation: Any) -> list[type]:
    """The pydantic models inside an annotation (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _model_types(arg)]


def validate_params(cls: type, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Validated, coerced keyword arguments for ``cls(**params)``; RecipeError on any problem."""
    model = _params_model(cls)
    try:
        obj = model.model_validate(params)
    except ValidationError as err:
        raise RecipeError(
            format_validation_error(err, where, {"params": list(model.model_fields)})
        ) from None
    return {k: getattr(obj, k) for k in params}


def build(registry: Registry, spec: dict[str, Any], where: str) -> Any:
    """Instantiate ``registry[spec['type']]`` with the rest of ``spec`` as validated arguments."""
    if "type" not in spec:
        raise RecipeError(f"{where}.type: required; allowed: {', '.join(registry.names())}")
    params = {k: v for k, v in spec.items() if k != "type"}
    cls = registry.get(spec["type"], where=f"{where}.type")
    kwargs = validate_params(cls, params, where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"{where} ({spec['type']}): {exc}") from None
