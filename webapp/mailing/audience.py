"""Audience rules: who a campaign is for, and who of them must not be emailed (suppressed)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select

from webapp.extensions import db
from webapp.models.campaigns import Campaign, Recipient, RecipientStatus, Suppression
from webapp.models.people import FIELDS_BY_NAME, Supporter

OPERATORS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "at_least": "is at least",
    "at_most": "is at most",
}


class AudienceError(ValueError):
    """An audience rule that cannot be applied, with the reason."""


def _condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    if field not in FIELDS_BY_NAME:
        raise AudienceError(f"unknown field {field!r}")
    if op not in OPERATORS:
        raise AudienceError(f"unknown comparison {op!r}")
    column = getattr(Supporter, field)
    kind = FIELDS_BY_NAME[field].kind
    text = "" if value is None else str(value).strip()
    if kind == "bool":
        if op not in ("equals", "not_equals") or text.lower() not in ("yes", "no"):
            raise AudienceError(f"{field} can only equal yes or no")
        wanted = text.lower() == "yes"
        return column.is_(wanted) if op == "equals" else column.is_not(wanted)
    if kind == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise AudienceError(f"'{text}' is not a number for {field}") from None
        compare = {
            "equals": column == number,
            "not_equals": column != number,
            "at_least": column >= number,
            "at_most": column <= number,
        }
        if op not in compare:
            raise AudienceError(f"{field} cannot be compared with {OPERATORS[op]!r}")
        return compare[op]
    if field == "email":
        text = text.lower()
    compare = {
        "equals": column == text,
        "not_equals": column != text,
        "contains": column.contains(text, autoescape=True),
        "at_least": column >= text,
        "at_most": column <= text,
    }
    return compare[op]


def rule_conditions(rule: dict[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for a saved filter's rule ({"conditions": [{field, op, value}, ...]})."""
    conditions = rule.get("conditions") if isinstance(rule, dict) else None
    if not isinstance(conditions, list) or not conditions:
        raise AudienceError("the saved filter has no conditions")
    return [_condition(c.get("field"), c.get("op"), c.get("value")) for c in conditions]


def describe_rule(rule: dict[str, Any]) -> str:
    """'state equals MA and donation_total is at least 50'."""
    parts = []
    for c in rule.get("conditions", []):
        label = FIELDS_BY_NAME[c["field"]].label if c.get("field") in FIELDS_BY_NAME else c.get("field")
        parts.append(f"{label} {OPERATORS.get(c.get('op'), c.get('op'))} {c.get('value')}")
    return " and ".join(parts)


def audience(
    campaign: Campaign,
    *,
    not_sent_by: list[int] | None = None,
) -> tuple[list[ColumnElement[bool]], ColumnElement[bool]]:
    """(conditions selecting the audience, condition marking who of them is suppressed);
    `not_sent_by`: leave out whoever those runs of the campaign already sent it to."""
    on_list = exists(select(Suppression.id).where(Suppression.email == Supporter.email))
    reached = []
    if not_sent_by:
        reached = [
            ~exists(
                select(Recipient.id).where(
                    Recipient.run_id.in_(not_sent_by),
                    Recipient.supporter_id == Supporter.id,
                    Recipient.status == RecipientStatus.SENT,
                )
            )
        ]
    if campaign.audience == "opted_in":
        return [Supporter.opted_in.is_(True), *reached], on_list
    if campaign.audience == "filter":
        if campaign.saved_filter is None:
            raise AudienceError("the campaign's saved filter no longer exists")
        return [*rule_conditions(campaign.saved_filter.rule), *reached], or_(
            not_(Supporter.opted_in.is_(True)), on_list
        )
    raise AudienceError(f"unknown audience {campaign.audience!r}")


def audience_sizes(
    campaign: Campaign,
    *,
    not_sent_by: list[int] | None = None,
) -> tuple[int, int]:
    """(people matching the audience, how many of them are suppressed)."""
    conditions, suppressed = audience(campaign, not_sent_by=not_sent_by)
    where = and_(*conditions) if conditions else ~false()
    total = db.session.execute(select(func.count()).select_from(Supporter).where(where)).scalar()
    blocked = db.session.execute(
        select(func.count()).select_from(Supporter).where(where, suppressed)
    ).scalar()
    return total or 0, blocked or 0
