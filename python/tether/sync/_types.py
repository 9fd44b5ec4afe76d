"""Pydantic integration: `TypeAdapter`s for typed attributes and validators for handler
parameters. Everything degrades to plain JSON values when pydantic is not installed."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from .errors import SyncValidationError

try:
    import pydantic
    from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
except ImportError:  # pragma: no cover - exercised by the no-pydantic install
    pydantic = None  # type: ignore[assignment]

_logger = logging.getLogger("tether.sync")

HAVE_PYDANTIC = pydantic is not None

__all__ = ["HAVE_PYDANTIC", "ParamsValidator", "adapters_for", "is_model", "model_attributes"]

_ADAPTERS: dict[Any, Any] = {}


def is_model(obj: object) -> bool:
    """Whether `obj` is a pydantic model instance."""
    return HAVE_PYDANTIC and isinstance(obj, BaseModel)


def is_model_class(cls: type) -> bool:
    """Whether `cls` is a pydantic model class."""
    return HAVE_PYDANTIC and isinstance(cls, type) and issubclass(cls, BaseModel)


def walkable_model(cls: type) -> bool:
    """Whether instances of `cls` dump to JSON exactly as their `__dict__` (so the native walk may
    read them instead of calling `dump_json`): a pydantic model without serializers, computed
    fields, excluded fields, extra fields or serialization aliases."""
    if not is_model_class(cls) or getattr(cls, "__pydantic_root_model__", False):
        return False
    try:
        decorators = cls.__pydantic_decorators__
        if decorators.field_serializers or decorators.model_serializers:
            return False
        if cls.model_computed_fields:
            return False
        config = cls.model_config
        if config.get("extra") == "allow" or config.get("serialize_by_alias"):
            return False
        for field in cls.model_fields.values():
            if field.exclude or field.serialization_alias not in (None,):
                return False
            for meta in field.metadata:
                if "Serializer" in type(meta).__name__:
                    return False
    except Exception:
        return False
    return True


def model_attributes(obj: Any) -> list[str]:
    """A pydantic model's fields then computed fields, in declaration order."""
    cls = type(obj)
    return [*cls.model_fields, *cls.model_computed_fields]


def _adapter(annotation: Any) -> Any:
    try:
        key = annotation if annotation.__hash__ is not None else id(annotation)
    except Exception:
        key = id(annotation)
    cached = _ADAPTERS.get(key)
    if cached is None:
        try:
            cached = TypeAdapter(annotation)
        except Exception as e:  # an annotation pydantic cannot handle: stay untyped
            _logger.debug("no TypeAdapter for %r: %s", annotation, e)
            cached = False
        _ADAPTERS[key] = cached
    return cached or None


def adapters_for(obj: Any, attrs: list[str]) -> dict[str, Any]:
    """The `TypeAdapter` of each attribute that has a type: model fields, computed fields'
    return types, or class-level annotations of plain classes. Empty without pydantic."""
    if not HAVE_PYDANTIC:
        return {}
    cls = type(obj)
    out: dict[str, Any] = {}
    if isinstance(obj, BaseModel):
        for attr in attrs:
            if attr in cls.model_fields:
                annotation = cls.model_fields[attr].annotation
            elif attr in cls.model_computed_fields:
                annotation = cls.model_computed_fields[attr].return_type
            else:
                continue
            if annotation not in (None, Any) and (ta := _adapter(annotation)) is not None:
                out[attr] = ta
        return out
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as e:
        _logger.debug("cannot read the annotations of %s: %s", cls.__name__, e)
        return {}
    for attr in attrs:
        annotation = hints.get(attr)
        if (
            annotation is None
            or annotation is Any
            or typing.get_origin(annotation) is typing.ClassVar
        ):
            continue
        if (ta := _adapter(annotation)) is not None:
            out[attr] = ta
    return out


def error_text(e: Exception) -> str:
    """A one-line summary of a pydantic `ValidationError` (or any error)."""
    if HAVE_PYDANTIC and isinstance(e, ValidationError):
        parts = []
        for err in e.errors(include_url=False):
            loc = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return "; ".join(parts)
    return str(e)


def validate(adapter: Any, value: Any) -> Any:
    """Validates (lax: "5" → 5, dicts → models) or raises `SyncValidationError`."""
    try:
        return adapter.validate_python(value)
    except Exception as e:
        raise SyncValidationError(error_text(e)) from None


class ParamsValidator:
    """Checks and coerces an action's or task's keyword arguments against its signature."""

    def __init__(
        self,
        func: Callable[..., Any],
        title: str,
        alias: Callable[[str], str] | None,
    ) -> None:
        self.title = title
        self.names: list[str] = []
        self.required: list[str] = []
        self.var_kw = False
        self.model: Any = None
        self.alias = alias
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            self.var_kw = True
            return
        fields: dict[str, Any] = {}
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception:
            hints = {}
        for p in sig.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                self.var_kw = True
                continue
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                continue
            self.names.append(p.name)
            if p.default is p.empty:
                self.required.append(p.name)
            annotation = hints.get(p.name, p.annotation)
            if annotation is p.empty:
                annotation = Any
            fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
        if HAVE_PYDANTIC and fields:
            try:
                config = ConfigDict(
                    extra="ignore",
                    arbitrary_types_allowed=True,
                    populate_by_name=True,
                    alias_generator=alias,
                )
                self.model = pydantic.create_model(title, __config__=config, **fields)
            except Exception as e:
                _logger.debug("no parameter model for %s: %s", title, e)
                self.model = None

    def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments to call the handler with, or `SyncValidationError`."""
        if self.model is not None:
            try:
                m = self.model.model_validate(params)
            except Exception as e:
                raise SyncValidationError(f"invalid parameters: {error_text(e)}") from None
            kwargs = {name: getattr(m, name) for name in self.names}
        else:
            kwargs = {}
            for name in self.names:
                if name in params:
                    kwargs[name] = params[name]
                elif self.alias is not None and self.alias(name) in params:
                    kwargs[name] = params[self.alias(name)]
            missing = [n for n in self.required if n not in kwargs]
            if missing:
                raise SyncValidationError(f"missing parameter(s): {', '.join(missing)}")
        if self.var_kw:
            known = set(self.names) | {self.alias(n) for n in self.names if self.alias}
            kwargs.update({k: v for k, v in params.items() if k not in known})
        return kwargs
