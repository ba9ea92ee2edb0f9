"""Building the output models fast: the core fills every field itself from validated inputs.

``BaseModel.model_construct`` spends most of its time on generality (defaults, aliases, extras) the core does
not need; at 1 000 loads it was a third of the decision. :func:`construct` sets exactly the fields given and
skips validation — only for values the core computed from a validated snapshot, with every field present
(``tests/allocator_core`` checks that the outputs validate back to equal models).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def construct(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (all of its fields), without validation."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj
