"""Unknown keys in dot's configuration files, and the known key the user probably meant.

A misspelled key must not be dropped quietly: `trget: prod` would build against the default
target. These helpers find which keys are allowed where an unknown one was written, so messages
can say `did you mean 'target'?`.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the known key closest to `key`, or nothing when none is close."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model allows in the mapping at `loc` (a path of keys from the top).

    Args:
        model: The model of the whole file.
        loc: The path of the mapping holding an unknown key, as pydantic reports it.

    Returns:
        The field names of the model found there, or an empty list when `loc` does not lead
        to a model (a free-form mapping such as `vars`).
    """
    annotation: Any = model
    for part in loc:
        annotation = _member(_required(annotation), part)
        if annotation is None:
            return []
    found = _required(annotation)
    if isinstance(found, type) and issubclass(found, BaseModel):
        return list(found.model_fields)
    return []


def _member(annotation: Any, part: str | int) -> Any:
    """The annotation of `part` inside a value of type `annotation`, or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return None if field is None else field.annotation
    origin = get_origin(annotation)
    if origin is dict:
        return get_args(annotation)[1]
    if origin is list:
        return get_args(annotation)[0]
    return None


def _required(annotation: Any) -> Any:
    """`X` for `X | None`; any other annotation as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
