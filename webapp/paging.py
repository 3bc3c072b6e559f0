"""Pages of a list, as the one pager macro (`pager` in templates/_macros.html) shows them.

Two kinds, each the page's items plus the query arguments of the page before and after it
(None when there is no such page, so the pager leaves its link out):
- KeysetPage: a list newest first by id, paged from an id (`before=` older, `after=` newer)
  with no count: History, audit log, supporters, a group's runs.
- NumberedPage: `page=N` of a counted list: the monitor, groups, outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import Select, SQLColumnExpression

from webapp.request_args import int_arg

T = TypeVar("T")


class Identified(Protocol):
    """A row with an integer id (a model), as a keyset page pages by it."""

    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=Identified)


def _id(item: object) -> int:
    """The id of a keyset page's item: Keyset.page only takes rows with one. (KeysetPage's own
    type variable is not bound to Identified: mypy checks a bound written in an annotation such
    as KeysetPage[Run] without applying Mapped's descriptor, and so refuses every model; see
    python/mypy#20317.)"""
    return cast(Identified, item).id


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    """One page of a list newest first by id."""

    items: list[T]
    has_newer: bool
    has_older: bool

    @property
    def prev_args(self) -> dict[str, Any] | None:
        """The newer page's query arguments, or None on the first page."""
        return {"after": _id(self.items[0])} if self.has_newer and self.items else None

    @property
    def next_args(self) -> dict[str, Any] | None:
        """The older page's query arguments, or None on the last page."""
        return {"before": _id(self.items[-1])} if self.has_older and self.items else None


@dataclass(frozen=True)
class Keyset:
    """Where a keyset page starts, as the request asks: below `before`, above `after`, or at
    the top; `limit` rows are fetched (one more than a page, to tell whether more follow)."""

    before: int | None
    after: int | None
    per_page: int

    @classmethod
    def from_request(cls, per_page: int) -> Keyset:
        """The `before` and `after` query values (a 400 when malformed)."""
        return cls(before=int_arg("before"), after=int_arg("after"), per_page=per_page)

    @property
    def limit(self) -> int:
        """How many rows to fetch: a page and one more."""
        return self.per_page + 1

    def narrow(self, query: Select, id_column: SQLColumnExpression[int]) -> Select:
        """`query` from where the page starts, in the order `page` expects, `limit` rows."""
        if self.after is not None:
            return query.where(id_column > self.after).order_by(id_column).limit(self.limit)
        if self.before is not None:
            query = query.where(id_column < self.before)
        return query.order_by(id_column.desc()).limit(self.limit)

    def page(self, rows: Sequence[R]) -> KeysetPage[R]:
        """The page from `rows` fetched with `limit`: ids descending from `before` or the top,
        or ascending from `after` (then turned round, so a page always reads newest first)."""
        more = len(rows) > self.per_page
        if self.after is not None:
            return KeysetPage(list(reversed(rows[: self.per_page])), has_newer=more, has_older=True)
        return KeysetPage(list(rows[: self.per_page]), has_newer=self.before is not None, has_older=more)


@dataclass(frozen=True)
class NumberedPage(Generic[T]):
    """Page `number` (from 1) of a list of `total` items, `per_page` to a page."""

    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the list fills (at least one)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def prev_args(self) -> dict[str, Any] | None:
        """The previous page's query arguments, or None on the first page."""
        return {"page": self.number - 1} if self.number > 1 else None

    @property
    def next_args(self) -> dict[str, Any] | None:
        """The next page's query arguments, or None on the last page."""
        return {"page": self.number + 1} if self.number * self.per_page < self.total else None


def offset(number: int, per_page: int) -> int:
    """How many items come before page `number`."""
    return (number - 1) * per_page
