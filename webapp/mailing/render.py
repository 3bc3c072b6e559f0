"""Campaign templates rendered safely: a sandboxed Jinja with autoescaping for HTML, merge values
passed as data (so a supporter's data can never inject markup or template code), tracked links."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlencode

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

MERGE_FIELDS = ("email", "first_name", "last_name", "address1", "city", "state", "zip", "phone",
                "donation_total")
EXTRA_VARIABLES = ("unsubscribe_url",)
_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)

_html_env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_text_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


class RenderError(ValueError):
    """A template that cannot be rendered, with a message for its author."""


def template_problems(subject: str, html_body: str, text_body: str) -> dict[str, str]:
    """Syntax errors and unknown merge fields per part (empty when all is well)."""
    problems: dict[str, str] = {}
    known = set(MERGE_FIELDS) | set(EXTRA_VARIABLES)
    for part, source, env in (("subject", subject, _text_env), ("html_body", html_body, _html_env),
                              ("text_body", text_body, _text_env)):
        try:
            names = meta.find_undeclared_variables(env.parse(source))
        except TemplateError as exc:
            problems[part] = f"template error: {exc}"
            continue
        unknown = sorted(names - known)
        if unknown:
            problems[part] = (f"unknown merge field {{{{ {unknown[0]} }}}} "
                              f"(available: {', '.join(MERGE_FIELDS)})")
    return problems


@dataclass
class Links:
    """How to build tracking URLs for one recipient (plain string templates: no request needed)."""

    open_url: str
    click_base: str  # the click URL without ?u=&s=
    unsubscribe_url: str
    sign: Any  # callable(url) -> signature


class CompiledCampaign:
    """A campaign's templates compiled once per run."""

    def __init__(self, *, from_address: str, subject: str, html_body: str, text_body: str) -> None:
        problems = template_problems(subject, html_body, text_body)
        if problems:
            part, message = next(iter(problems.items()))
            raise RenderError(f"the template cannot be rendered ({part}: {message})")
        self.from_address = from_address
        self.subject = _text_env.from_string(subject)
        self.html = _html_env.from_string(html_body) if html_body.strip() else None
        self.text = _text_env.from_string(text_body)

    def render(self, data: dict[str, Any], links: Links | None = None,
               message_id_domain: str = "conveyor.local") -> EmailMessage:
        """The message for one recipient (with tracking when `links` is given)."""
        values = {name: "" if data.get(name) is None else data.get(name) for name in MERGE_FIELDS}
        values["unsubscribe_url"] = links.unsubscribe_url if links else "#"
        try:
            subject = " ".join(self.subject.render(values).split())
            text = self.text.render(values)
            body_html = self.html.render(values) if self.html else None
        except TemplateError as exc:
            raise RenderError(f"the template cannot be rendered: {exc}") from None
        if links is not None:
            if "{{ unsubscribe_url }}" not in text and links.unsubscribe_url not in text:
                text += f"\n\n--\nUnsubscribe: {links.unsubscribe_url}\n"
            if body_html is not None:
                body_html = _track_links(body_html, links)
                if links.unsubscribe_url not in body_html:
                    body_html += (f'<p style="font-size:12px;color:#666"><a href="'
                                  f'{escape(links.unsubscribe_url)}">Unsubscribe</a></p>')
                body_html += (f'<img src="{escape(links.open_url)}" width="1" height="1" '
                              'alt="" style="display:none">')
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = values["email"]
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=message_id_domain)
        if links is not None:
            message["List-Unsubscribe"] = f"<{links.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text)
        if body_html is not None:
            message.add_alternative(body_html, subtype="html")
        return message


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
