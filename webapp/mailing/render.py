"""Campaign templates rendered safely: a sandboxed Jinja with autoescaping for HTML, merge values
passed as data (so a supporter's data can never inject markup or template code), tracked links.

Rendering is bounded, so no template can hold a web process or a worker: numbers, text and lists
a template builds, loop turns and calls, the output of a message and its render time all have a
limit (the MAX_* constants), and include/extends/import are refused when a template is compiled.
A template over a bound fails with a RenderError that says which, in words for its author.
"""

from __future__ import annotations

import binascii
import html
import math
import re
import string
import time
import uuid
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, ValuesView
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.header import Header
from email.utils import formatdate, make_msgid, parseaddr
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.lexer import TOKEN_DATA, Token, TokenStream
from jinja2.runtime import LoopContext, Namespace
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer
from markupsafe import escape

from webapp.mailing.transport import Outgoing

MERGE_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "address1",
    "city",
    "state",
    "zip",
    "phone",
    "donation_total",
)
EXTRA_VARIABLES = ("unsubscribe_url",)
SAMPLE_SUPPORTER = {
    "email": "sample@example.org",
    "first_name": "Alex",
    "last_name": "Sample",
    "address1": "1 Main Street",
    "city": "Springfield",
    "state": "IL",
    "zip": "62701",
    "phone": "555-0100",
    "donation_total": "125.00",
}
MAX_OUTPUT = 1_000_000  # characters in one message, and in any text or list a template builds
MAX_SOURCE = MAX_OUTPUT  # characters in the template of one part
MAX_TOKENS = 5_000  # names, values and operators inside tags (each takes ~0.1 ms to compile)
MAX_STEPS = 100_000  # loop turns, calls and filters while one message renders
MAX_SECONDS = 2.0  # time to render one message
MAX_NUMBER_BITS = 4_096  # about 1,200 digits
_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")
_MB = f"{MAX_OUTPUT / 1_000_000:g} MB"
_PADS = f"it pads text beyond {_MB}"
_REPEATS = f"it repeats text beyond {_MB}"
_BUILDS = f"it builds text or lists beyond {_MB}"
_NUMBER = "it computes a number that is too large"


class RenderError(ValueError):
    """A template that cannot be rendered, with a message for its author; `part` is the template
    at fault (subject, html_body or text_body) and `reason` the message without it."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"the template cannot be rendered ({part}: {reason})")
        self.part, self.reason = part, reason


class LimitError(SecurityError):
    """A template went past one of the render bounds (the message says which)."""


# --------------------------------------------------------------------------- budget and sizes


@dataclass(slots=True)
class _Budget:
    steps: int
    deadline: float


_budget: ContextVar[_Budget | None] = ContextVar("campaign_render_budget", default=None)


@contextmanager
def _budgeted() -> Iterator[None]:
    """A fresh budget of steps and time for the message rendered inside."""
    token = _budget.set(_Budget(MAX_STEPS, time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _budget.reset(token)


def _step() -> None:
    """Count one loop turn, call or filter against the budget of the message being rendered."""
    budget = _budget.get()
    if budget is None:  # the compiler folding a constant: leave the work to the render
        raise LimitError("template code runs only while a message renders")
    budget.steps -= 1
    if budget.steps < 0:
        raise LimitError(f"it loops or calls more than {MAX_STEPS:,} times")
    if time.monotonic() > budget.deadline:
        raise LimitError(f"it takes longer than {MAX_SECONDS:g} seconds to render")


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """The items of `iterable`, each one a step."""
    for item in iterable:
        _step()
        yield item


def _text_size(value: Any) -> int:
    """About how many characters str(value) takes; counting stops once past MAX_OUTPUT."""
    size, pending = 0, [value]
    while pending and size <= MAX_OUTPUT:
        item = pending.pop()
        if isinstance(item, str | bytes):
            size += len(item) + 2
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 1
        elif isinstance(item, Namespace):  # its repr shows its attributes
            pending.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, dict | list | tuple | set | frozenset | ItemsView | KeysView | ValuesView):
            size += 2 + 4 * len(item)
            if size <= MAX_OUTPUT:
                pending.extend(item.items() if isinstance(item, dict) else item)
        else:
            size += 8
    return size


def _checked(value: Any) -> Any:
    """`value` itself, unless printing it would take more than MAX_OUTPUT characters."""
    if type(value) is str:
        if len(value) > MAX_OUTPUT:
            raise LimitError(_BUILDS)
    elif _text_size(value) > MAX_OUTPUT:
        raise LimitError(_BUILDS)
    return value


_PRINTABLE = (str, int, float, Decimal, date, list, tuple, dict, type(None))  # (bool is an int)


def _printed(value: Any) -> Any:
    """What `{{ … }}` prints: a value (text, a number, a date, a list of them), never one of the
    template's own objects, which went out as "<TemplateReference None>" to every recipient
    (`{{ self }}`, `{{ range }}`, `{{ dict }}`, `{{ cycler }}` pass the merge-field check: they
    may be used, not printed)."""
    if not isinstance(value, _PRINTABLE) or isinstance(value, type):
        shown = getattr(type(value), "__name__", "object") if not isinstance(value, type) else value.__name__
        raise SecurityError(f"{{{{ … }}}} prints a value, and this is the template's own {shown}")
    return _checked(value)


def _bounded_join(pieces: Iterable[str]) -> str:
    """Rendered pieces joined, stopping as soon as they pass MAX_OUTPUT characters (so a huge
    output is never built)."""
    kept, size = [], 0
    for piece in pieces:
        size += len(piece)
        if size > MAX_OUTPUT:
            raise LimitError(f"its output passes {_MB}")
        kept.append(piece)
    return "".join(kept)


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 10 else MAX_OUTPUT + 1


def _check_fields(template: str, fields: int, widths: int, values: Iterable[Any]) -> None:
    """Refuse a format whose widths, or values repeated in its fields, pass MAX_OUTPUT."""
    if widths > MAX_OUTPUT:
        raise LimitError(_PADS)
    largest = max((_text_size(value) for value in values), default=0)
    if len(template) + widths + fields * largest > MAX_OUTPUT:
        raise LimitError(_REPEATS)


def _check_printf(template: str, values: Any) -> None:
    """The bounds for `template % values`."""
    fields = widths = 0
    for width, precision, kind in _PRINTF.findall(template):
        if "*" in (width, precision):
            raise LimitError("it takes a format width from its values")
        if kind != "%":
            fields += 1
            widths += _number(width or "0") + _number(precision or "0")
    if isinstance(values, dict):
        values = tuple(values.values())
    elif not isinstance(values, tuple):
        values = (values,)
    _check_fields(template, fields, widths, values)


def _check_format(template: str, values: Iterable[Any]) -> None:
    """The bounds for `template.format(...)`."""
    fields = widths = 0
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None:
            if "{" in (spec or ""):
                raise LimitError("it takes a format width from its values")
            fields += 1
            widths += sum(_number(digits) for digits in re.findall(r"\d+", spec or ""))
    _check_fields(template, fields, widths, values)


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_OUTPUT:
        raise LimitError(_PADS)


def _check_join(separator: Any, items: Any) -> list[Any] | str:
    """`items` as a list (or the string itself), refused if joining them passes MAX_OUTPUT."""
    items = items if isinstance(items, str) else list(items)
    if _text_size(items) + len(str(separator)) * max(len(items) - 1, 0) > MAX_OUTPUT:
        raise LimitError(_REPEATS)
    return items


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    text, old, new = (value if isinstance(value, bytes) else str(value) for value in (text, old, new))
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_OUTPUT:
        raise LimitError(_REPEATS)


def _check_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_NUMBER_BITS
    ):
        raise LimitError(_NUMBER)


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise LimitError(_NUMBER)
        return
    times, repeated = (left, right) if isinstance(left, int) else (right, left)
    if isinstance(times, int) and times > 1:
        if isinstance(repeated, str | bytes):
            size = len(repeated)
        elif isinstance(repeated, list | tuple):
            size = _text_size(repeated)
        else:
            return
        if size * times > MAX_OUTPUT:
            raise LimitError(_REPEATS)


# --------------------------------------------------------------------------- guarded callables


def _arg(args: tuple, kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _guard_method(obj: Any, args: tuple, kwargs: dict[str, Any]) -> tuple:
    """Refuse the str/bytes/int methods that could build something huge; the arguments to call
    them with (an iterable given to join is read once, here)."""
    if isinstance(obj, LoopContext) and args:  # a recursive loop walking its children
        return (_counted(args[0]), *args[1:])
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(owner, int) and name == "to_bytes":
        _check_width(_arg(args, kwargs, 0, "length", 1))
    if not isinstance(owner, str | bytes):
        return args
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0])
    elif name == "expandtabs":
        tabs = owner.count(b"\t") if isinstance(owner, bytes) else owner.count("\t")
        _check_width(len(owner) + tabs * _arg(args, kwargs, 0, "tabsize", 8))
    elif name == "join" and args:
        return (_check_join(owner, args[0]),)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], _arg(args, kwargs, 2, "count", -1))
    elif name == "translate" and args:
        table = args[0]
        values = (
            table.values() if isinstance(table, dict) else table if isinstance(table, list | tuple) else ()
        )
        longest = max((len(v) for v in values if isinstance(v, str | bytes)), default=1)
        if len(owner) * longest > MAX_OUTPUT:
            raise LimitError(_REPEATS)
    return args


def _guard_center(value: Any, width: Any = 80) -> Any:
    _check_width(width)
    return value


def _guard_indent(s: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = str(s)
    _check_width(len(text) + (text.count("\n") + 1) * pad)
    return s


def _guard_wordwrap(
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    text, joint = str(s), len(wrapstring or "\n")
    lines = len(text.split()) + len(text) // max(int(width), 1) + text.count("\n") + 1
    if len(text) + lines * joint > MAX_OUTPUT:
        raise LimitError(_REPEATS)
    return s


def _guard_tojson(value: Any, indent: Any = None) -> Any:
    if (len(indent) if isinstance(indent, str) else indent or 0) > 100:
        raise LimitError(_PADS)
    return value


def _guard_batch(value: Any, linecount: Any, fill_with: Any = None) -> Any:
    if isinstance(linecount, int) and linecount > MAX_STEPS:
        raise LimitError(f"it makes batches of more than {MAX_STEPS:,} items")
    return value


def _guard_round(value: Any, precision: Any = 0, *args: Any, **kwargs: Any) -> Any:
    if isinstance(precision, int) and abs(precision) > 1_000:
        raise LimitError(_NUMBER)
    return value


def _guard_format(value: Any, *args: Any, **kwargs: Any) -> Any:
    _check_printf(str(value), kwargs or args)
    return value


def _guard_join(value: Any, d: Any = "", attribute: Any = None) -> Any:
    return _check_join(d, value)


def _guard_replace(s: Any, old: Any, new: Any, count: Any = None) -> Any:
    _check_replace(s, old, new, -1 if count is None else count)
    return s


# Jinja filters that could build something huge from small inputs: each guard takes the filter's
# own arguments (after any context) and returns the value to filter.
_FILTER_GUARDS: dict[str, Callable[..., Any]] = {
    "batch": _guard_batch,
    "center": _guard_center,
    "format": _guard_format,
    "indent": _guard_indent,
    "join": _guard_join,
    "replace": _guard_replace,
    "round": _guard_round,
    "tojson": _guard_tojson,
    "wordwrap": _guard_wordwrap,
}


def _bounded_filter(func: Callable[..., Any], guard: Callable[..., Any] | None) -> Callable[..., Any]:
    """`func` as a step, with its inputs and result held to the size bounds."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # the context it is given first

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        for value in (*args[skip:], *kwargs.values()):
            _checked(value)
        if guard is not None and len(args) > skip:
            args = (*args[:skip], guard(*args[skip:], **kwargs), *args[skip + 1 :])
        result = func(*args, **kwargs)
        return _counted(result) if isinstance(result, Iterator) else _checked(result)

    return bounded


def _range(*args: int) -> range:
    """range(), up to MAX_STEPS numbers."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = MAX_STEPS + 1
    if size > MAX_STEPS:
        raise LimitError(f"it counts to more than {MAX_STEPS:,}")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's lipsum(), up to 10,000 words."""
    if n * max > 10_000:
        raise LimitError("it asks for more than 10,000 words of lorem ipsum")
    return generate_lorem_ipsum(n, html, min, max)


# --------------------------------------------------------------------------- the environment


@pass_context
def _counted_filter(context: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    """What a for loop walks, each item a step (added to every loop by _Bounds)."""
    return _counted(iterable)


@pass_context
def _checked_filter(context: Any, value: Any) -> Any:
    """A built list, tuple, dict or ~ concatenation, held to MAX_OUTPUT (added by _Bounds)."""
    return _checked(value)


def _few_tokens(stream: TokenStream) -> Iterator[Token]:
    """The tokens of a template, refused past MAX_TOKENS (plain text does not count): what
    keeps compiling a template short."""
    count = 0
    for token in stream:
        count += token.type != TOKEN_DATA
        if count > MAX_TOKENS:
            raise TemplateSyntaxError(
                f"the template has more than {MAX_TOKENS:,} names, values and operators in its tags",
                token.lineno,
            )
        yield token


def _filtered(node: nodes.Expr, name: str) -> nodes.Filter:
    # pass_context filters: the optimizer never folds them into constants at compile time
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Bounds(NodeTransformer):
    """Refuses include, extends and import; wraps loops and built values in the checks above."""

    def _refuse(self, node: nodes.Node) -> None:
        raise TemplateSyntaxError(
            "include, extends and import are not available in campaign templates", node.lineno
        )

    visit_Include = visit_Extends = visit_Import = visit_FromImport = _refuse

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        # jinja2 types For.iter as any Node; the parser always makes it an expression
        node.iter = _filtered(cast(nodes.Expr, node.iter), "_counted")
        return node

    def _size_checked(self, node: nodes.Expr) -> nodes.Expr:
        self.generic_visit(node)
        if isinstance(node, nodes.Tuple) and node.ctx != "load":
            return node
        if isinstance(node, nodes.Concat):  # each value is checked before str() makes it text
            node.nodes = [_filtered(child, "_checked") for child in node.nodes]
        return _filtered(node, "_checked")

    visit_List = visit_Tuple = visit_Dict = visit_Concat = _size_checked


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, rendering within the MAX_* bounds. Compile-time constant folding
    cannot run away either: intercepted operators are never folded, and the filters refuse to
    run outside a render."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_bounded_join)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, finalize=_printed)
        self.globals.update(range=_range, lipsum=_lipsum)
        self.filters = {
            name: _bounded_filter(func, _FILTER_GUARDS.get(name)) for name, func in self.filters.items()
        }
        self.filters.update(_counted=_counted_filter, _checked=_checked_filter)

    def _tokenize(
        self, source: str, name: str | None, filename: str | None = None, state: str | None = None
    ) -> TokenStream:
        if len(source) > MAX_SOURCE:
            raise TemplateSyntaxError(
                f"the template is longer than {MAX_SOURCE:,} characters", 1, name, filename
            )
        stream = super()._tokenize(source, name, filename, state)
        return TokenStream(_few_tokens(stream), name, filename)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Bounds().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`left operator right`, refused when it would compute a huge number or text."""
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _checked(self.binop_table[operator](left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A call from the template, as a step, with its arguments and result size-checked."""
        _step()
        for value in (*args, *kwargs.values()):
            _checked(value)
        args = _guard_method(obj, args, kwargs)
        return _checked(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map, refused when widths or repeated fields pass MAX_OUTPUT."""
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        @wraps(formatter)
        def bounded(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if is_map and args and isinstance(args[0], dict):
                values += args[0].values()
            _check_format(template, values)
            return _checked(formatter(*args, **kwargs))

        return bounded


_html_env = _BoundedEnvironment(autoescape=True)
_text_env = _BoundedEnvironment(autoescape=False)


def _reason(exc: BaseException) -> str:
    """Why a template failed, in words for its author."""
    if isinstance(exc, RecursionError):
        return "it nests or calls itself too deeply"
    if isinstance(exc, MemoryError):
        return "it needs too much memory"
    return str(exc) or type(exc).__name__


def template_problems(subject: str, html_body: str, text_body: str) -> dict[str, str]:
    """Syntax errors, refused tags and unknown merge fields per part (empty when all is well)."""
    problems: dict[str, str] = {}
    known = set(MERGE_FIELDS) | set(EXTRA_VARIABLES)
    for part, source, env in (
        ("subject", subject, _text_env),
        ("html_body", html_body, _html_env),
        ("text_body", text_body, _text_env),
    ):
        try:
            names = meta.find_undeclared_variables(env.parse(source))
        except Exception as exc:  # the parser's recursion on deep nesting as much as a syntax error
            problems[part] = f"template error: {_reason(exc)}"
            continue
        unknown = sorted(names - known)
        if unknown:
            problems[part] = (
                f"unknown merge field {{{{ {unknown[0]} }}}} (available: {', '.join(MERGE_FIELDS)})"
            )
    return problems


def render_problems(subject: str, html_body: str, text_body: str) -> dict[str, str]:
    """template_problems, then a trial render for SAMPLE_SUPPORTER within the bounds: what a form
    checks before a campaign is saved (empty when all is well)."""
    problems = template_problems(subject, html_body, text_body)
    if problems:
        return problems
    try:
        CompiledCampaign(
            from_address=SAMPLE_SUPPORTER["email"], subject=subject, html_body=html_body, text_body=text_body
        ).render(SAMPLE_SUPPORTER)
    except RenderError as exc:
        return {exc.part: f"the template cannot be rendered: {exc.reason}"}
    return {}


@dataclass
class Links:
    """How to build tracking URLs for one recipient (plain string templates: no request needed)."""

    open_url: str
    click_base: str  # the click URL without ?u=&s=
    unsubscribe_url: str
    sign: Any  # callable(url) -> signature


def _header(name: str, value: str) -> str:
    """One header line; CR/LF can never get in, non-ASCII is RFC 2047 encoded."""
    value = " ".join(value.split())
    if not value.isascii():
        value = Header(value, "utf-8").encode(linesep="\r\n")
    return f"{name}: {value}\r\n"


def _qp_part(content_type: str, body: str) -> bytes:
    encoded = binascii.b2a_qp(body.replace("\r\n", "\n").encode("utf-8"), istext=True)
    encoded = encoded.replace(b"\n", b"\r\n")
    return (
        f"Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + encoded


def build_message(
    *,
    from_address: str,
    to: str,
    subject: str,
    text: str,
    html_body: str | None,
    headers: dict[str, str] | None = None,
    domain: str = "conveyor.local",
) -> bytes:
    """A MIME message (text, or text + HTML alternative) as CRLF bytes, built directly: fast
    enough for tens of thousands of recipients, safe against header injection."""
    head = [
        _header("From", from_address),
        _header("To", to),
        _header("Subject", subject),
        _header("Date", formatdate(localtime=False)),
        _header("Message-ID", make_msgid(domain=domain)),
        "MIME-Version: 1.0\r\n",
    ]
    head += [_header(name, value) for name, value in (headers or {}).items()]
    if html_body is None:
        return "".join(head).encode() + _qp_part("text/plain", text) + b"\r\n"
    boundary = f"=_conveyor_{uuid.uuid4().hex}"
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
    sep = f"--{boundary}\r\n".encode()
    return b"".join(
        [
            "".join(head).encode(),
            sep,
            _qp_part("text/plain", text),
            b"\r\n",
            sep,
            _qp_part("text/html", html_body),
            b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
    )


def _compile(env: _BoundedEnvironment, part: str, source: str) -> Template:
    """One part's template compiled; RenderError if Python refuses the code (deep nesting)."""
    try:
        return env.from_string(source)
    except Exception as exc:
        raise RenderError(part, f"template error: {_reason(exc)}") from None


def _render(template: Template, part: str, values: dict[str, Any]) -> str:
    """One part rendered (within the budget of the message); RenderError if it cannot be."""
    try:
        return template.render(values)
    except Exception as exc:  # whatever the template's own code raised is for its author to fix
        raise RenderError(part, _reason(exc)) from None


class CompiledCampaign:
    """A campaign's templates compiled once per run."""

    def __init__(self, *, from_address: str, subject: str, html_body: str, text_body: str) -> None:
        problems = template_problems(subject, html_body, text_body)
        if problems:
            raise RenderError(*next(iter(problems.items())))
        self.from_address = from_address
        self.sender = parseaddr(from_address)[1] or from_address
        self.subject = _compile(_text_env, "subject", subject)
        self.html = _compile(_html_env, "html_body", html_body) if html_body.strip() else None
        self.text = _compile(_text_env, "text_body", text_body)

    def render(
        self, data: dict[str, Any], links: Links | None = None, message_id_domain: str = "conveyor.local"
    ) -> Outgoing:
        """The message for one recipient (with tracking when `links` is given)."""
        values = {name: "" if data.get(name) is None else data.get(name) for name in MERGE_FIELDS}
        values["unsubscribe_url"] = links.unsubscribe_url if links else "#"
        with _budgeted():
            subject = " ".join(_render(self.subject, "subject", values).split())
            text = _render(self.text, "text_body", values)
            body_html = _render(self.html, "html_body", values) if self.html else None
        if len(subject) + len(text) + len(body_html or "") > MAX_OUTPUT:
            raise RenderError("html_body" if body_html else "text_body", f"the message passes {_MB}")
        if links is not None:
            if "{{ unsubscribe_url }}" not in text and links.unsubscribe_url not in text:
                text += f"\n\n--\nUnsubscribe: {links.unsubscribe_url}\n"
            if body_html is not None:
                body_html = _track_links(body_html, links)
                if links.unsubscribe_url not in body_html:
                    body_html += (
                        f'<p style="font-size:12px;color:#666"><a href="'
                        f'{escape(links.unsubscribe_url)}">Unsubscribe</a></p>'
                    )
                body_html += (
                    f'<img src="{escape(links.open_url)}" width="1" height="1" alt="" style="display:none">'
                )
        headers = {}
        if links is not None:
            headers = {
                "List-Unsubscribe": f"<{links.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        recipient = str(values["email"])
        data_bytes = build_message(
            from_address=self.from_address,
            to=recipient,
            subject=subject,
            text=text,
            html_body=body_html,
            headers=headers,
            domain=message_id_domain,
        )
        return Outgoing(sender=self.sender, recipient=recipient, data=data_bytes)


def _track_links(body: str, links: Links) -> str:
    """Route every http(s) link through the signed click redirect."""

    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(1))
        if url == links.unsubscribe_url:
            return match.group(0)
        tracked = f"{links.click_base}?{_query(url, links.sign(url))}"
        return f'href="{escape(tracked)}"'

    return _HREF.sub(replace, body)


def _query(url: str, signature: str) -> str:
    return urlencode({"u": url, "s": signature})
