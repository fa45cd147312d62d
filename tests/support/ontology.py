"""Small builders of normalized ontology resources, so tests state only what matters."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from oms.model import (
    ACTION_TYPES,
    INTERFACES,
    LINK_TYPES,
    OBJECT_TYPES,
    SHARED_PROPERTIES,
    Resource,
    normalize,
    resource_key,
)


def prop(name: str, base: str = "string", **fields: Any) -> dict[str, Any]:
    return {"api_name": name, "data_type": {"base": base, "array": False}, **fields}


def object_type(name: str, *props: dict[str, Any], pk: str = "id", **fields: Any) -> Resource:
    key_prop = prop(pk, required=True)
    properties = [key_prop, *props] if all(p["api_name"] != pk for p in props) else list(props)
    raw = {"api_name": name, "primary_key": pk, "properties": properties, **fields}
    return normalize(OBJECT_TYPES, raw)


def link_type(
    name: str, source: str, target: str, cardinality: str = "MANY_TO_ONE", **fields: Any
) -> Resource:
    raw = {
        "api_name": name,
        "from_object_type": source,
        "to_object_type": target,
        "cardinality": cardinality,
        **fields,
    }
    return normalize(LINK_TYPES, raw)


def interface(name: str, *props: dict[str, Any], extends: tuple[str, ...] = ()) -> Resource:
    raw = {"api_name": name, "properties": list(props), "extends": list(extends)}
    return normalize(INTERFACES, raw)


def shared_property(name: str, base: str = "string", **fields: Any) -> Resource:
    raw = {"api_name": name, "data_type": {"base": base, "array": False}, **fields}
    return normalize(SHARED_PROPERTIES, raw)


def param(name: str, base: str | None = "string", **fields: Any) -> dict[str, Any]:
    data_type = None if base is None else {"base": base, "array": False}
    return {"api_name": name, "data_type": data_type, **fields}


def object_param(name: str, object_type_name: str, **fields: Any) -> dict[str, Any]:
    return {"api_name": name, "object_type": object_type_name, **fields}


def action_type(
    name: str, params: list[dict[str, Any]], rules: list[dict[str, Any]], **fields: Any
) -> Resource:
    raw = {"api_name": name, "parameters": params, "rules": rules, **fields}
    return normalize(ACTION_TYPES, raw)


def snapshot(*resources: tuple[str, Resource]) -> dict[str, Resource]:
    return {resource_key(collection, r["api_name"]): r for collection, r in resources}


def ot(resource: Resource) -> tuple[str, Resource]:
    return OBJECT_TYPES, resource


def lt(resource: Resource) -> tuple[str, Resource]:
    return LINK_TYPES, resource


def at(resource: Resource) -> tuple[str, Resource]:
    return ACTION_TYPES, resource


def it(resource: Resource) -> tuple[str, Resource]:
    return INTERFACES, resource


def sp(resource: Resource) -> tuple[str, Resource]:
    return SHARED_PROPERTIES, resource


def company() -> dict[str, Resource]:
    """A small, valid ontology using every kind of resource and reference."""
    return snapshot(
        sp(shared_property("email")),
        it(interface("Named", prop("name", required=True))),
        it(interface("Contact", prop("email", shared_property="email"), extends=("Named",))),
        ot(
            object_type(
                "Employee",
                prop("name", required=True),
                prop("email", shared_property="email"),
                prop("level", "integer"),
                prop("grade", enum_values=["junior", "senior"]),
                title_property="name",
                interfaces=["Contact"],
            )
        ),
        ot(object_type("Office", prop("city"))),
        lt(link_type("worksIn", "Employee", "Office")),
        at(
            action_type(
                "hire",
                [param("id"), param("name"), object_param("office", "Office")],
                [
                    {
                        "kind": "CREATE_OBJECT",
                        "object_type": "Employee",
                        "values": {"id": "id", "name": "name"},
                    },
                ],
            )
        ),
        at(
            action_type(
                "relocate",
                [
                    object_param("employee", "Employee"),
                    object_param("office", "Office"),
                    param("level", "integer"),
                ],
                [
                    {
                        "kind": "CREATE_LINK",
                        "link_type": "worksIn",
                        "values": {"from": "employee", "to": "office"},
                    },
                    {
                        "kind": "MODIFY_OBJECT",
                        "object_type": "Employee",
                        "object_parameter": "employee",
                        "values": {"level": "level"},
                    },
                ],
            )
        ),
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mangled(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A resource of the company ontology with some fields, at any depth, replaced by junk."""
    snap = company()
    key = draw(st.sampled_from(sorted(snap)))
    resource = copy.deepcopy(snap[key])
    for _ in range(draw(st.integers(1, 3))):
        target: Any = resource
        while isinstance(target, dict | list) and target and draw(st.booleans()):
            child = draw(
                st.sampled_from(sorted(target) if isinstance(target, dict) else range(len(target)))
            )
            if not isinstance(target[child], dict | list) or not target[child]:
                break
            target = target[child]
        if isinstance(target, dict) and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(JSON)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(JSON)
    return key, resource
