"""Supporters by the API: search by email or name a page at a time, and read one.

Supporters are the account's people data, not a user's: the Supporters page shows every one of
them to every signed-in user, whatever their role, and so does the API to every token."""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import BaseModel, Field, field_validator

from webapp.api.v1.core import fail, iso
from webapp.api.v1.schemas import Closed
from webapp.api.v1.spec import operation
from webapp.extensions import db
from webapp.models.people import Supporter
from webapp.paging import Keyset
from webapp.request_args import MAX_ID
from webapp.supporters.queries import supporters_page

TAG = "Supporters"
MAX_PAGE_SIZE = 200


class SupporterOut(BaseModel):
    """A supporter."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    address1: str | None
    city: str | None
    state: str | None
    zip: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-2")
    phone: str | None
    opted_in: bool
    donation_total: str | None = Field(description="a decimal number, e.g. 125.50")
    created_at: str | None
    updated_at: str | None


class SupporterPage(BaseModel):
    """A page of supporters, newest first, and the addresses of the pages either side (null at
    an end)."""

    supporters: list[SupporterOut]
    next: str | None
    previous: str | None


class SupporterQuery(Closed):
    """What to search for and where a page starts."""

    q: str = Field(default="", max_length=200, description="part of an email or a name, any case")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="supporters a page")
    before: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page after this id")
    after: int | None = Field(default=None, ge=1, le=MAX_ID, description="the page before this id")

    @field_validator("before", "after", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


def supporter_out(supporter: Supporter) -> SupporterOut:
    """A supporter as the API shows it."""
    total = supporter.donation_total
    return SupporterOut(
        id=supporter.id,
        email=supporter.email,
        first_name=supporter.first_name,
        last_name=supporter.last_name,
        address1=supporter.address1,
        city=supporter.city,
        state=supporter.state,
        zip=supporter.zip,
        country=supporter.country,
        phone=supporter.phone,
        opted_in=supporter.opted_in,
        donation_total=None if total is None else f"{total:.2f}",
        created_at=iso(supporter.created_at),
        updated_at=iso(supporter.updated_at),
    )


@operation("GET", "/supporters", tag=TAG, answers={200: SupporterPage}, query=SupporterQuery)
def supporters(query: SupporterQuery):
    """Supporters whose email or name contains `q`, newest first, as the Supporters page
    searches them.

    `limit` a page (at most 200); follow `next` (`before` an id) and `previous` (`after` one)."""
    q = query.q.strip()
    page = supporters_page(q, Keyset(before=query.before, after=query.after, per_page=query.limit))
    kept: dict[str, Any] = {name: value for name, value in (("q", q), ("limit", query.limit)) if value}

    def link(args: dict | None) -> str | None:
        return url_for("api_v1.supporters", **kept, **args) if args else None

    return SupporterPage(
        supporters=[supporter_out(found) for found in page.items],
        next=link(page.next_args),
        previous=link(page.prev_args),
    )


@operation("GET", "/supporters/<int:supporter_id>", tag=TAG, answers={200: SupporterOut}, errors=(404,))
def supporter(supporter_id: int):
    """One supporter, with every field an export can hold."""
    found = db.session.get(Supporter, supporter_id)
    if found is None:
        raise fail(404, "no supporter has this id")
    return supporter_out(found)
