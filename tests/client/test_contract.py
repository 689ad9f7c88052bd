"""The client's `Moderation` mirrors the service's public item field for field.

moderation_client may not import the service (an import-linter contract: platforms install it on its own), so
moderation_client/types.py copies service/core/views.py's `Moderation` by hand. This test may import both and
fails when one side gains, loses or retypes a field the other does not, naming the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

import moderation_client.types as client_types
from service.core import views

# Nested models of the public item and their client counterparts (compared field by field as well).
NESTED: dict[type, type] = {views.ModelRef: client_types.ModelRef, views.ErrorInfo: client_types.ItemError}
# Client-only fields that are not on the wire: the whole JSON answer, kept for fields the client does not know yet.
CLIENT_ONLY = {"raw"}
# Public fields the client does not mirror yet (still readable through `Moderation.raw`). Listed so that the gap
# can only change on purpose: a new service field fails this test until it is mirrored (or listed here).
NOT_MIRRORED_YET: set[str] = set()


def shape(tp: Any) -> Any:
    """A comparable form of an annotation: Literals by value set, unions by member set, nested models by pairing."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return ("Literal", frozenset(typing.get_args(tp)))
    if origin is Union or origin is types.UnionType:
        return ("Union", frozenset(shape(a) for a in typing.get_args(tp)))
    if origin is not None:
        return (origin, tuple(shape(a) for a in typing.get_args(tp)))
    if tp in NESTED:
        return ("model", NESTED[tp].__name__)
    if isinstance(tp, type) and tp in NESTED.values():
        return ("model", tp.__name__)
    return tp


def service_fields(model: type[Any]) -> dict[str, Any]:
    return {name: shape(f.annotation) for name, f in model.model_fields.items()}


def client_fields(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: shape(hints[f.name]) for f in dataclasses.fields(cls) if f.name not in CLIENT_ONLY}


def test_moderation_fields_and_types_match() -> None:
    ours, theirs = client_fields(client_types.Moderation), service_fields(views.Moderation)
    assert set(theirs) - set(ours) == NOT_MIRRORED_YET, "service fields the client lacks"
    assert set(ours) - set(theirs) == set(), "client fields the service does not send"
    mismatched = {name: (ours[name], theirs[name]) for name in ours if ours[name] != theirs[name]}
    assert mismatched == {}


def test_nested_models_match() -> None:
    for service_model, client_cls in NESTED.items():
        assert client_fields(client_cls) == service_fields(service_model), service_model.__name__


def test_the_shape_sees_a_retyped_field() -> None:
    """The comparison is not vacuous: a changed Literal, a dropped `| None` or a swapped nested model differ."""
    assert shape(Literal["a", "b"]) != shape(Literal["a"])
    assert shape(float | None) != shape(float)
    assert shape(list[views.ModelRef] | None) == shape(list[client_types.ModelRef] | None)
    assert shape(views.ErrorInfo | None) != shape(client_types.ModelRef | None)
    assert shape(dict[str, float]) != shape(dict[str, Any])
