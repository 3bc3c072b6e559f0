"""What every screen area shares: template filters, error pages and the HTMX check."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from webapp.engine.outage import queue_down_since, scheduler_silent_since
from webapp.engine.queueing import QueueUnavailable
from webapp.engine.runs import can_kill, queue_position
from webapp.guards import JSON_LIMIT, refuse_nul
from webapp.jobtypes import REGISTRY, JobType, job_type_for, lane_of, type_label
from webapp.once import once_input
from webapp.permissions import can_see
from webapp.rules.clock import format_day, format_duration, format_local, plural, sentence
from webapp.rules.states import RunState
from webapp.storage import StorageUnavailable


def is_htmx() -> bool:
    """Whether this request was made by htmx."""
    return request.headers.get("HX-Request") == "true"


def wants_json() -> bool:
    """API clients get JSON errors; browsers get pages."""
    return _under(request.path, "/api") or (request.accept_mimetypes.best == "application/json")


def _under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` itself or an address below it."""
    return path == prefix or path.startswith(prefix + "/")


def safe_path(target: str | None, fallback: str) -> str:
    """A redirect target only if it is a path on this site ('/runs/3'), else `fallback`: never
    another host ('//evil.example', '/\\evil.example', 'https://…')."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
        and not urlsplit(target).netloc
        and not any(ord(c) < 32 for c in target)
    ):
        return target
    return fallback


def localtime(moment: Any, with_date: bool = True) -> str:
    """Jinja filter: a stored UTC time in the account time zone with its abbreviation."""
    return format_local(moment, current_app.config["TIMEZONE"], with_date=with_date)


def upload_limit_text() -> str:
    """The upload size limit in words."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} bytes"


_SENTINEL = 987654321


def run_url(endpoint: str, run_id: int, **args: str) -> str:
    """url_for(endpoint, run_id=...) for table rows: built once per request and endpoint, then
    only the id changes (a monitor page has 50 rows with several links each). What it buys:
    1.9 µs a link instead of url_for's 8.0 µs, ~0.6 ms a 50-row monitor page (2026-11-30)."""
    cache = g.setdefault("_run_urls", {})
    key = (endpoint, tuple(sorted(args.items())))
    if key not in cache:
        values: dict[str, Any] = {"run_id": _SENTINEL, **args}
        cache[key] = url_for(endpoint, **values).split(str(_SENTINEL))
    head, tail = cache[key]
    return f"{head}{run_id}{tail}"


def state_badge(run: Any) -> Markup:
    """The coloured state label of a run."""
    state = run.state  # enum values and labels: fixed, safe text
    return Markup(f'<span class="badge state-{state.value}">{state.label}</span>')


def queue_place(run: Any, known: tuple[int, Any] | None = None) -> str:
    """'#1 in the data line, waiting for run #12' for a queued run: its place counts only the
    runs waiting ahead of it, not the ones running (imports and exports wait in the data line,
    sends in the email line; another job's run is named only to those who may see it). A run
    already handed to a worker is out of the line: 'waiting for a worker'. `known`: the run's
    (place, blocking run) when a page worked them out for all its rows at once
    (engine.waiting.queue_places); else asked for this run alone."""
    if run.rq_job_id:
        return "waiting for a worker"
    place, blocking = known if known is not None else queue_position(run)
    if blocking is None:
        waits = ""
    elif blocking.job_id == run.job_id:
        waits = f", waiting for run #{blocking.number}"
    elif can_see(current_user, blocking):
        waits = f", waiting for {blocking.job_name} run #{blocking.number}"
    else:
        waits = ", waiting for another user's run"
    return f"#{place} in the {lane_of(run.job_type)} line{waits}"


def job_type_of(run: Any) -> JobType:
    """The job type of a run (or job), for templates: what it can do and how it is worded."""
    return job_type_for(run.job_type)


def draft_link(run: Any) -> tuple[str, str, str] | None:
    """(label, url, why) to edit what a cancelled run was made from, if it can be edited again."""
    return job_type_for(run.job_type).draft_of(run)


def run_links(run: Any) -> list[tuple[str, str, str]]:
    """(sentence, label, url) of the links the job types put on a run's page (JobType.links_for_run)."""
    return [link for job_type in REGISTRY.values() for link in job_type.links_for_run(run)]


def stop_question(run: Any) -> str:
    """The confirmation asked before Stop, saying what was already done."""
    if run.state.is_pending:
        if run.number is None:
            return f"Cancel the planned run of “{run.job_name}”?"
        return f"Cancel run #{run.number} of “{run.job_name}” before it starts?"
    return job_type_for(run.job_type).stop_question(run)


def _queue_down_since() -> Any:
    """For the banner of full pages: since when the job queue is unreachable (None: it answers)."""
    if not current_user.is_authenticated:
        return None
    return queue_down_since()


def _scheduler_silent_since() -> Any:
    """For the banner of full pages: since when the scheduler has not passed (None: it runs)."""
    if not current_user.is_authenticated:
        return None
    return scheduler_silent_since()


# the stable codes of the versioned API's errors, by status
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


def _error(status: int, title: str, message: str):
    if _under(request.path, "/api/v1"):
        return jsonify(error={"code": ERROR_CODES.get(status, "error"), "message": message}), status
    if wants_json():
        return jsonify(error=message, status=status), status
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def _there_by_another_method(exc: MethodNotAllowed) -> bool:
    """Whether a 405's address names something under one of its other methods. Werkzeug answers
    405 as soon as a rule of another method has the address's shape, before any converter is
    tried: an id too large for the database (`<int:…>` refuses it) on an address that also has
    a GET would be a 405 "method not allowed" instead of the 404 it is."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in exc.valid_methods or ():
        try:
            adapter.match(request.path, method=method)
        except HTTPException:
            continue
        return True
    return False


def register_web_helpers(app: Flask) -> None:
    """Filters, globals and error handlers used by every blueprint."""
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["duration"] = format_duration
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["plural"] = plural
    app.jinja_env.filters["sentence"] = sentence
    app.jinja_env.filters["num"] = lambda n: "" if n is None else f"{n:,}"
    app.jinja_env.globals.update(
        type_label=type_label,
        RunState=RunState,
        job_types=REGISTRY,
        upload_limit_text=upload_limit_text,
        queue_place=queue_place,
        can_kill=can_kill,
        stop_question=stop_question,
        draft_link=draft_link,
        run_links=run_links,
        job_type_of=job_type_of,
        run_url=run_url,
        state_badge=state_badge,
        _state_badge=state_badge,
        once_input=once_input,
    )

    app.before_request(refuse_nul)  # a NUL in a form, query or JSON value: a 400, not a 500

    @app.context_processor
    def _account() -> dict[str, Any]:
        return {
            "current_user": current_user,
            "is_htmx": is_htmx(),
            "queue_down_since": _queue_down_since,
            "scheduler_silent_since": _scheduler_silent_since,
        }

    @app.errorhandler(QueueUnavailable)
    def queue_unavailable(exc: QueueUnavailable):
        from webapp.extensions import db

        db.session.rollback()
        return _error(503, "Job queue unreachable", str(exc))

    @app.errorhandler(StorageUnavailable)
    def storage_unavailable(exc: StorageUnavailable):
        from webapp.extensions import db

        app.logger.warning("file storage unavailable: %s", exc)
        db.session.rollback()
        return _error(
            503,
            "File storage unreachable",
            "The file storage did not answer, so the file could not be read or saved. Nothing you "
            "saved was lost; try again in a moment, and tell an admin if it keeps happening.",
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: Exception):
        if request.is_json:  # read whole, so held to a smaller limit than a file (webapp.guards)
            limit = f"{JSON_LIMIT // 1024**2} MB"
            return _error(413, "Body too large", f"A JSON body is at most {limit}. Nothing was saved.")
        return _error(
            413,
            "File too large",
            f"The file is larger than the upload limit of {upload_limit_text()}. "
            "Nothing was saved; split the file or ask an admin to raise the limit.",
        )

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError):
        return _error(
            400, "Form expired", "The form expired or was sent from elsewhere. Reload the page and try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            404: "There is nothing here, or you do not have access to it.",
            403: "You do not have permission to do that.",
        }
        status = exc.code or 500
        if isinstance(exc, MethodNotAllowed) and not _there_by_another_method(exc):
            status = 404
        return _error(status, exc.name, messages.get(status) or exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        from webapp.extensions import db

        db.session.rollback()
        return _error(
            500,
            "Something went wrong",
            "Conveyor hit an unexpected error. Nothing you saved was lost; "
            "try again, and tell an admin if it keeps happening.",
        )
