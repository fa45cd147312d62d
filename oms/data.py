"""The use cases of objects and links: reads, filtered lists, and writes as commits.

A second use-case class beside :class:`oms.service.OntologyService`, committing through it:
objects and links share the schema's commits, branch rules and events transaction. Every
write is checked whole by :func:`oms.objects.check_data` against the branch head it is
committed onto.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common import errors, pages
from common.auth import Principal
from common.canonical import canonical_json, nested_deeper
from common.errors import FieldViolation, quoted
from common.outbox import OutboxEvent
from oms.actions import (
    ActionEdit,
    check_parameters,
    edits_of,
    failed_criteria,
    plan_edits,
)
from oms.checks import MAX_NESTING, outsized, too_deep
from oms.model import (
    ACTION_TYPES,
    LINK_TYPES,
    OBJECT_TYPES,
    Overlay,
    Resource,
    by_name,
    resource_key,
)
from oms.objects import (
    Condition,
    check_data,
    check_object,
    link_key,
    links_of_object,
    matches,
    object_key,
    parse_filter,
    parse_order,
    pk_text,
    sort_value,
)
from oms.service import Force, OntologyService, clamp_page_size
from oms.store import BranchRecord, CommitRecord, Snapshot
from oms.tree import resource_etag


@dataclass(frozen=True)
class StoredObject:
    """An object as read or written; ``commit`` is the commit a write made (empty on read)."""

    object_type: str
    primary_key: str
    values: Resource
    etag: str
    commit: str = ""


@dataclass(frozen=True)
class ActionResult:
    """What an action did (or, with ``validate_only``, would do): its edits and its commit."""

    commit: str
    edits: list[ActionEdit]


@dataclass(frozen=True)
class StoredLink:
    """A link as written, with the commit that wrote it."""

    link_type: str
    from_pk: str
    to_pk: str
    commit: str = ""


class ObjectService:
    """Objects and links on branches; callers pass the verified principal."""

    def __init__(self, ontology: OntologyService) -> None:
        self.ontology = ontology
        self.store = ontology.store

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def _definition(snapshot: Snapshot, collection: str, api_name: str) -> Resource:
        definition = snapshot.get(resource_key(collection, api_name))
        if definition is None:
            kind = "object type" if collection == OBJECT_TYPES else "link type"
            raise errors.NotFound(
                f"{kind} {quoted(api_name)} not found",
                reason="RESOURCE_NOT_FOUND",
                metadata={"resource": resource_key(collection, api_name)},
            )
        return definition

    @staticmethod
    def _object(snapshot: Snapshot, object_type: str, pk: str) -> StoredObject:
        key = object_key(object_type, pk)
        etag = snapshot.etag(key)
        if etag is None:
            raise errors.NotFound(
                f"{object_type} {quoted(pk)} not found",
                reason="OBJECT_NOT_FOUND",
                metadata={"object": key, "commit": snapshot.commit.id},
            )
        return StoredObject(object_type, pk, snapshot[key], etag)

    def get(self, branch: str, object_type: str, pk: str, revision: str = "") -> StoredObject:
        snapshot = self.ontology.snapshot_at(branch, revision)
        self._definition(snapshot, OBJECT_TYPES, object_type)
        return self._object(snapshot, object_type, pk)

    def _page_snapshot(
        self, branch: str, revision: str, page_token: str, query: Any
    ) -> tuple[Snapshot, dict[str, Any]]:
        """The snapshot a page reads: the token's commit, else the branch or revision."""
        if page_token:
            state = pages.decode(page_token, query=query)
            return self.store.snapshot(self.store.commit(str(state.get("commit"))).id), state
        return self.ontology.snapshot_at(branch, revision), {}

    def list_objects(
        self,
        branch: str,
        object_type: str,
        *,
        revision: str,
        filter_text: str,
        order_by: str,
        page_size: int,
        page_token: str,
    ) -> pages.Page[StoredObject]:
        """A page of one type's objects, filtered, in ``order_by`` order (else by primary key).

        In key order a page reads objects from where the last one stopped until it is full
        (only its own without a filter); with ``order_by`` every object of the type is read
        once per page (blobs cached).
        """
        size = clamp_page_size(page_size)
        query = {"objects": object_type, "filter": filter_text, "order_by": order_by}
        snapshot, state = self._page_snapshot(branch, revision, page_token, query)
        definition = self._definition(snapshot, OBJECT_TYPES, object_type)
        conditions, violations = parse_filter(filter_text, definition)
        order, order_violations = parse_order(order_by, definition)
        if violations or order_violations:
            raise errors.invalid([*violations, *order_violations])
        pks = snapshot.object_keys(object_type)
        props = by_name(definition.get("properties"))
        if not order:
            after = str(state.get("after", ""))
            start = bisect_right(pks, after) if after else 0
            if not conditions:
                chosen = pks[start : start + size + 1]
            else:
                chosen = self._scan(snapshot, object_type, pks[start:], props, conditions, size + 1)
            return self._page(snapshot, object_type, chosen, size, query, lambda pk: {"after": pk})
        kept = [
            (pk, value)
            for pk, value in snapshot.objects(object_type, pks)
            if matches(props, value, conditions)
        ]
        for name, descending in reversed(order):

            def value_of(item: tuple[str, Resource], name: str = name) -> tuple[bool, Any]:
                value = item[1].get(name)
                return (
                    value is not None,
                    sort_value(props[name], value) if value is not None else 0,
                )

            kept.sort(key=value_of, reverse=descending)
        offset = int(state.get("offset", 0))
        chosen = [pk for pk, _ in kept[offset : offset + size + 1]]
        following = {pk: offset + n for n, pk in enumerate(chosen, 1)}
        return self._page(
            snapshot, object_type, chosen, size, query, lambda pk: {"offset": following[pk]}
        )

    @staticmethod
    def _scan(
        snapshot: Snapshot,
        object_type: str,
        pks: Sequence[str],
        props: Mapping[str, dict[str, Any]],
        conditions: Sequence[Condition],
        wanted: int,
    ) -> list[str]:
        """The first ``wanted`` of ``pks`` whose objects match."""
        found: list[str] = []
        for pk, value in snapshot.objects(object_type, pks):
            if matches(props, value, conditions):
                found.append(pk)
                if len(found) == wanted:
                    break
        return found

    def _page(
        self,
        snapshot: Snapshot,
        object_type: str,
        chosen: Sequence[str],
        size: int,
        query: Any,
        position: Any,
    ) -> pages.Page[StoredObject]:
        page = pages.cut(
            list(chosen),
            size,
            lambda last: pages.encode(
                {"commit": snapshot.commit.id, **position(last)}, query=query
            ),
        )
        snapshot.prefetch(object_key(object_type, pk) for pk in page.items)
        return page.with_items([self._object(snapshot, object_type, pk) for pk in page.items])

    def linked_objects(
        self,
        branch: str,
        object_type: str,
        pk: str,
        link_type: str,
        *,
        revision: str,
        page_size: int,
        page_token: str,
    ) -> pages.Page[StoredObject]:
        """The objects linked to one object through ``link_type``, in primary key order.

        The object's type picks the end: from a ``from`` object to its ``to`` objects, and
        back (a link type from a type to itself follows its links forward).
        """
        size = clamp_page_size(page_size)
        query = {"linked": [object_type, pk, link_type]}
        snapshot, state = self._page_snapshot(branch, revision, page_token, query)
        definition = self._definition(snapshot, LINK_TYPES, link_type)
        self._object(snapshot, object_type, pk)
        if definition["from_object_type"] == object_type:
            reverse, other = False, str(definition["to_object_type"])
        elif definition["to_object_type"] == object_type:
            reverse, other = True, str(definition["from_object_type"])
        else:
            raise errors.invalid(
                [
                    FieldViolation(
                        "link_type",
                        f"{link_type} links {definition['from_object_type']} to "
                        f"{definition['to_object_type']}, not {object_type}",
                        "INVALID_VALUE",
                    )
                ]
            )
        after = str(state.get("after", ""))
        pks = [p for p in snapshot.linked(link_type, pk, reverse=reverse) if p > after]
        return self._page(snapshot, other, pks[: size + 1], size, query, lambda p: {"after": p})

    # -- writing ---------------------------------------------------------------------------

    def _write(
        self,
        principal: Principal,
        head: BranchRecord,
        snapshot: Snapshot,
        changes: Mapping[str, Resource | None],
        where: Mapping[str, str],
        message: str,
    ) -> CommitRecord:
        """Check data changes whole against the head they were read from, then commit them."""
        violations = check_data(Overlay(snapshot, changes), changes, snapshot, where=where)
        if violations:
            raise errors.invalid(violations)
        return self.ontology.commit_onto(
            principal, head, snapshot, changes, message, Force(), where=where
        )

    def _head(self, branch: str) -> tuple[BranchRecord, Snapshot]:
        head = self.store.branch(branch)
        return head, self.store.snapshot(head.head)

    def create(
        self,
        principal: Principal,
        branch: str,
        object_type: str,
        values: Mapping[str, Any],
        message: str,
    ) -> StoredObject:
        head, snapshot = self._head(branch)
        definition = self._definition(snapshot, OBJECT_TYPES, object_type)
        violations, stored = check_object(definition, values, path="object.properties")
        pk_value = stored.get(str(definition["primary_key"]))
        if not isinstance(pk_value, str | int):
            raise errors.invalid(violations)  # no key to check the rest under
        pk = pk_text(pk_value)
        key = object_key(object_type, pk)
        if key in snapshot:
            raise errors.AlreadyExists(
                f"{object_type} {quoted(pk)} already exists on branch {quoted(branch)}",
                reason="OBJECT_EXISTS",
                metadata={"object": key, "branch": branch},
            )
        commit = self._write(
            principal, head, snapshot, {key: stored}, {key: "object"}, message or f"Create {key}"
        )
        return StoredObject(object_type, pk, stored, resource_etag(stored), commit.id)

    def update(
        self,
        principal: Principal,
        branch: str,
        object_type: str,
        pk: str,
        values: Mapping[str, Any],
        *,
        mask: Sequence[str],
        etag: str,
        message: str,
    ) -> StoredObject:
        """Replace the properties in ``mask`` with those of ``values``; the primary key stays.

        Mask paths are ``properties.<name>`` or ``<name>``; an empty mask replaces them all.
        """
        head, snapshot = self._head(branch)
        definition = self._definition(snapshot, OBJECT_TYPES, object_type)
        current = self._object(snapshot, object_type, pk)
        key = object_key(object_type, pk)
        _check_etag(key, etag, current.etag)
        pk_name = str(definition["primary_key"])
        if mask:
            merged = dict(current.values)
            for path in mask:
                name = path.removeprefix("properties.")
                if name in values:
                    merged[name] = values[name]
                else:
                    merged.pop(name, None)
        else:
            merged = {pk_name: current.values[pk_name], **values}
        _, stored = check_object(definition, merged, path="object.properties")
        commit = self._write(
            principal, head, snapshot, {key: stored}, {key: "object"}, message or f"Update {key}"
        )
        return StoredObject(object_type, pk, stored, resource_etag(stored), commit.id)

    def delete(
        self,
        principal: Principal,
        branch: str,
        object_type: str,
        pk: str,
        *,
        etag: str,
        delete_links: bool,
        message: str,
    ) -> CommitRecord:
        """Delete an object; refused while it is linked unless ``delete_links`` (one commit)."""
        head, snapshot = self._head(branch)
        self._definition(snapshot, OBJECT_TYPES, object_type)
        current = self._object(snapshot, object_type, pk)
        key = object_key(object_type, pk)
        _check_etag(key, etag, current.etag)
        links = links_of_object(snapshot, object_type, pk, snapshot)
        if links and not delete_links:
            raise errors.FailedPrecondition(
                f"{object_type} {quoted(pk)} still has {len(links)} link(s); "
                "delete them first or set delete_links",
                reason="OBJECT_LINKED",
                metadata={"object": key},
                violations=[
                    FieldViolation("delete_links", f"{k} exists", "OBJECT_LINKED") for k in links
                ],
            )
        changes: dict[str, Resource | None] = {k: None for k in links}
        changes[key] = None
        return self._write(principal, head, snapshot, changes, {}, message or f"Delete {key}")

    def create_link(
        self,
        principal: Principal,
        branch: str,
        link_type: str,
        from_pk: str,
        to_pk: str,
        message: str,
    ) -> StoredLink:
        head, snapshot = self._head(branch)
        self._definition(snapshot, LINK_TYPES, link_type)
        key = link_key(link_type, from_pk, to_pk)
        if key in snapshot:
            raise errors.AlreadyExists(
                f"{key} already exists on branch {quoted(branch)}",
                reason="LINK_EXISTS",
                metadata={"link": key, "branch": branch},
            )
        link = {"from": from_pk, "to": to_pk}
        commit = self._write(
            principal, head, snapshot, {key: link}, {key: "link"}, message or f"Create {key}"
        )
        return StoredLink(link_type, from_pk, to_pk, commit.id)

    # -- actions ---------------------------------------------------------------------------

    def execute_action(
        self,
        principal: Principal,
        branch: str,
        action_type: str,
        parameters: Mapping[str, Any],
        *,
        validate_only: bool,
    ) -> ActionResult:
        """Check the permission, parameters and submission criteria, then apply every rule.

        The rules' edits land in one commit named for the action (nothing with
        ``validate_only``). A refusal of a real run is recorded as ``oms.action.failed`` in a
        transaction of its own; a run records ``oms.action.executed`` in its commit's.
        """
        head, snapshot = self._head(branch)
        subject = f"branches/{branch}/{resource_key(ACTION_TYPES, action_type)}"
        data = {"branch": branch, "action_type": action_type, "parameters": dict(parameters)}
        try:
            if nested_deeper(data["parameters"], canonical_json(parameters), MAX_NESTING):
                raise errors.invalid([too_deep("parameters")])
            action = self._definition(snapshot, ACTION_TYPES, action_type)
            edits, changes = self._plan(principal, action, parameters, snapshot)
            if validate_only:
                return ActionResult("", edits)

            def executed(commit: CommitRecord) -> list[OutboxEvent]:
                return [
                    OutboxEvent(
                        type="oms.action.executed",
                        subject=subject,
                        actor=principal.username,
                        data={**data, "commit": commit.id, "edits": _summary(edits)},
                    )
                ]

            commit = self.ontology.commit_onto(
                principal, head, snapshot, changes, f"Action {action_type}", Force(), executed
            )
        except errors.MeshError as refusal:
            if not validate_only:
                failed = {"reason": refusal.reason, "message": refusal.message}
                self.store.record_events(
                    [
                        OutboxEvent(
                            type="oms.action.failed",
                            subject=subject,
                            actor=principal.username,
                            data={**data, **failed},
                        )
                    ]
                )
            raise
        return ActionResult(commit.id, edits)

    @staticmethod
    def _plan(
        principal: Principal, action: Resource, given: Mapping[str, Any], snapshot: Snapshot
    ) -> tuple[list[ActionEdit], dict[str, Resource | None]]:
        """The edits of an action, or the typed refusal of the first check that fails."""
        permission = str(action.get("permission"))
        if not principal.has(permission):
            raise errors.PermissionDenied(
                f"running {action['api_name']} needs {permission}",
                reason="ACTION_PERMISSION_DENIED",
                metadata={"permission": permission, "action_type": str(action["api_name"])},
            )
        params, violations = check_parameters(action, given, snapshot)
        if violations:
            raise errors.invalid(violations)
        failed = failed_criteria(action, params, snapshot, principal)
        if failed:
            raise errors.FailedPrecondition(
                f"{len(failed)} submission criteria of {action['api_name']} failed: "
                + "; ".join(v.description for v in failed),
                reason="SUBMISSION_CRITERIA_FAILED",
                violations=failed,
            )
        changes, broken = plan_edits(action, params, snapshot, snapshot)
        texts = {k: canonical_json(v) for k, v in changes.items() if v is not None}
        if broken := broken + outsized(changes, texts, {}):
            raise errors.FailedPrecondition(
                f"the edits of {action['api_name']} would break the data",
                reason="ACTION_EDITS_INVALID",
                violations=broken,
            )
        return edits_of(changes, snapshot), changes

    def delete_link(
        self,
        principal: Principal,
        branch: str,
        link_type: str,
        from_pk: str,
        to_pk: str,
        message: str,
    ) -> CommitRecord:
        head, snapshot = self._head(branch)
        self._definition(snapshot, LINK_TYPES, link_type)
        key = link_key(link_type, from_pk, to_pk)
        if key not in snapshot:
            raise errors.NotFound(
                f"{key} not found", reason="LINK_NOT_FOUND", metadata={"link": key}
            )
        return self._write(principal, head, snapshot, {key: None}, {}, message or f"Delete {key}")


def _check_etag(key: str, given: str, current: str) -> None:
    if given and given != current:
        raise errors.Aborted(
            f"{key} changed since it was read (etag {quoted(given)} is stale)",
            reason="ETAG_MISMATCH",
            metadata={"object": key, "etag": current},
        )


def _summary(edits: Sequence[ActionEdit]) -> dict[str, Any]:
    counts = {
        kind: sum(e.change == kind for e in edits) for kind in ("ADDED", "MODIFIED", "DELETED")
    }
    return {
        "created": counts["ADDED"],
        "modified": counts["MODIFIED"],
        "deleted": counts["DELETED"],
        "keys": [e.key for e in edits[:100]],
    }
