"""The compatibility rules as a document people read: ``docs/compatibility-rules.md``.

Generated from :data:`oms.compat.RULES` by ``make generate`` (a test fails when it is stale),
so the published catalogue and the rules the code applies cannot drift apart.
"""

from __future__ import annotations

from dataclasses import replace

from oms.compat import RULES, Rule, breaking_modes

HEADER = """\
# Compatibility rules

Generated from `oms/compat.py` by `make generate`; do not edit. What the modes mean, and how
to use the catalogue, is in [compatibility.md](compatibility.md). The same catalogue is served
by `ListCompatibilityRules` (`GET /api/v1/compatibility/rules`).

| rule id | the change | breaks in | otherwise | why | how to make it safely |
|---|---|---|---|---|---|
"""


def _modes(rule: Rule) -> list[str]:
    return [mode.value for mode in breaking_modes(rule)]


def _breaks(rule: Rule) -> str:
    """The modes the rule breaks, those it breaks only by removal protection named apart."""
    modes = _modes(rule)
    registry = _modes(replace(rule, backward=rule.backward and not rule.removal))
    text = ", ".join(registry) if registry else "none"
    protected = [m for m in modes if m not in registry]
    return f"{text}; by removal protection {', '.join(protected)}" if protected else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The catalogue as a Markdown table, one row per rule, by rule id."""
    rows = [
        f"| `{rule.rule_id}` | {_cell(rule.summary)} | {_breaks(rule)} | {rule.severity.value} "
        f"| {_cell(rule.why)} | {_cell(rule.fix)} |"
        for rule in sorted(RULES.values(), key=lambda rule: rule.rule_id)
    ]
    return HEADER + "\n".join(rows) + "\n"
