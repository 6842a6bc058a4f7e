"""Hypothesis strategies for JSON documents, shared by the parser and endpoint fuzz tests."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st


def json_values(allow_nan: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value; with allow_nan, also NaN and Infinity, which json.dumps writes but JSON forbids."""
    scalars = (
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=allow_nan, allow_infinity=allow_nan)
    )
    return st.recursive(
        scalars | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=25,
    )


JSON_VALUES = json_values()

Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every place in a JSON document that holds a value, the root excluded."""
    found: list[Path] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def one_field_changed(
    draw: st.DrawFn, documents: list[Any], values: st.SearchStrategy[Any] = JSON_VALUES, delete: bool = True
) -> Any:
    """A copy of one of the documents with one field, anywhere in it, deleted or replaced."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    path = draw(st.sampled_from(paths(document)))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(values)
    return document
