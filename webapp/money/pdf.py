"""The receipt PDF: text (not an image) in the shipped DejaVu font, so accented names render the
same on every machine, from fpdf2.

Speed: most of a small receipt's time is fpdf2 reading the TrueType font (its character map and
widths, on every add_font) and subsetting it as the document is written (fontTools decoding all
of DejaVu's 6,000 glyphs and its layout tables). A Renderer trims each font once to the scripts
names are written in (Latin, Greek, Cyrillic, punctuation, currency signs; no layout tables),
reads it once, and gives every new document a copy that shares those read-only tables with its
own glyph subset (fpdf2 subsets a font in place as it writes, so the object is not shared). A
receipt with a character outside the trimmed fonts is rendered with the full ones."""

from __future__ import annotations

import copy
import functools
import io
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from fontTools import subset, ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"
FONT_FILES = {"": FONTS / "DejaVuSans.ttf", "B": FONTS / "DejaVuSans-Bold.ttf"}
# what the trimmed fonts keep: Basic Latin to Latin Extended-B, IPA letters and spacing marks,
# combining accents, Greek, Cyrillic, Latin Extended Additional, punctuation, currency signs,
# letterlike symbols, number forms
TRIMMED_RANGES = [
    (0x20, 0x36F),
    (0x370, 0x52F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2100, 0x218F),
]

DEFAULT_WORDING = (
    "Official receipt for income tax purposes. No goods or services were provided in exchange "
    "for this gift, other than intangible religious benefits, if any. Please keep this receipt "
    "for your tax records."
)


@dataclass(frozen=True)
class Gift:
    """One gift a receipt covers: its date, amount and the eligible (tax-deductible) part."""

    received_on: date
    amount: Decimal
    eligible: Decimal


@dataclass(frozen=True)
class Letterhead:
    """What every receipt prints about the organisation (the receipt template)."""

    organisation_name: str
    address: str = ""
    charity_number: str = ""
    wording: str = DEFAULT_WORDING
    signatory: str = ""
    signature: bytes | None = None  # PNG or JPEG


@dataclass(frozen=True)
class ReceiptText:
    """One receipt as printed."""

    number: int
    kind: str  # "single" or "annual"
    issued_on: date
    donor_name: str
    donor_address: str
    amount: Decimal  # the eligible total
    currency: str
    gifts: list[Gift] = field(default_factory=list)
    tax_year: int | None = None
    replaces_number: int | None = None
    voided: str | None = None  # "Voided: <reason>" printed on a copy of a voided receipt


def money(value: Decimal, currency: str) -> str:
    """An amount as a receipt prints it: 1,234.50 EUR."""
    return f"{value:,.2f} {currency}"


class Renderer:
    """Renders receipts; reads the fonts once for all the receipts it renders (one per worker)."""

    def __init__(self) -> None:
        # (trimmed?) -> style -> (font file bytes, the font as read once)
        self._sets: dict[bool, dict[str, tuple[bytes, TTFFont]]] = {}
        self._trimmed_chars: set[int] = set()

    def _font_set(self, trimmed: bool) -> dict[str, tuple[bytes, TTFFont]]:
        """The regular and bold fonts, trimmed or full, read on first use."""
        if trimmed not in self._sets:
            reader = FPDF()
            fonts = {}
            for style, path in FONT_FILES.items():
                data = _trim(path) if trimmed else path.read_bytes()
                key = f"{FAMILY.lower()}{style}"
                font = TTFFont(reader, io.BytesIO(data), key, style)  # type: ignore[arg-type]
                reader.fonts[key] = font
                fonts[style] = (data, font)
            self._sets[trimmed] = fonts
            if trimmed:
                self._trimmed_chars = set(fonts[""][1].cmap)
        return self._sets[trimmed]

    def _document(self, text: str) -> FPDF:
        """A new A4 document with DejaVu fonts that have every character of `text`."""
        pdf = FPDF(format="A4", unit="mm")
        pdf.set_margins(20, 20, 20)
        pdf.set_auto_page_break(True, margin=20)
        pdf.set_creator("Conveyor")
        fonts = self._font_set(True)
        if not all(ord(char) in self._trimmed_chars for char in text if char not in "\n\r\t"):
            fonts = self._font_set(False)
        for data, font in fonts.values():
            pdf.fonts[font.fontkey] = _copy_font(font, data, len(pdf.fonts) + 1)
        return pdf

    def render(self, receipt: ReceiptText, head: Letterhead) -> bytes:
        """The receipt as PDF bytes."""
        pdf = self._document(_printed_text(receipt, head))
        pdf.set_title(f"Receipt {receipt.number}")
        pdf.set_author(head.organisation_name)
        pdf.add_page()
        width = pdf.epw
        pdf.set_font(FAMILY, "B", 16)
        pdf.multi_cell(width, 8, head.organisation_name or "Organisation", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FAMILY, "", 10)
        if head.address:
            pdf.multi_cell(width, 5, head.address, new_x="LMARGIN", new_y="NEXT")
        if head.charity_number:
            pdf.cell(
                width, 5, f"Charity registration number: {head.charity_number}", new_x="LMARGIN", new_y="NEXT"
            )
        pdf.ln(6)
        title = "Annual tax receipt" if receipt.kind == "annual" else "Tax receipt"
        if receipt.kind == "annual" and receipt.tax_year:
            title += f" for {receipt.tax_year}"
        pdf.set_font(FAMILY, "B", 14)
        pdf.cell(width, 8, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FAMILY, "", 10)
        self._pairs(
            pdf,
            [
                ("Receipt number", str(receipt.number)),
                ("Date issued", receipt.issued_on.isoformat()),
            ],
        )
        if receipt.replaces_number:
            pdf.set_font(FAMILY, "B", 10)
            pdf.cell(width, 6, f"Replaces receipt {receipt.replaces_number}", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FAMILY, "", 10)
        if receipt.voided:
            pdf.set_font(FAMILY, "B", 10)
            pdf.multi_cell(width, 6, receipt.voided, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(FAMILY, "", 10)
        pdf.ln(4)
        pdf.set_font(FAMILY, "B", 10)
        pdf.cell(width, 5, "Received from", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FAMILY, "", 10)
        pdf.multi_cell(width, 5, receipt.donor_name or "—", new_x="LMARGIN", new_y="NEXT")
        if receipt.donor_address:
            pdf.multi_cell(width, 5, receipt.donor_address, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        self._gifts(pdf, receipt)
        pdf.ln(2)
        pdf.set_font(FAMILY, "B", 11)
        eligible = f"Eligible amount for tax purposes: {money(receipt.amount, receipt.currency)}"
        pdf.cell(width, 7, eligible, new_x="LMARGIN", new_y="NEXT")
        pdf.cell(width, 6, f"Currency: {receipt.currency}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font(FAMILY, "", 9)
        if head.wording:
            pdf.multi_cell(width, 4.5, head.wording, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        if head.signature:
            pdf.image(io.BytesIO(head.signature), h=15)
        if head.signatory:
            pdf.set_font(FAMILY, "", 10)
            pdf.cell(width, 5, head.signatory, new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())

    def _pairs(self, pdf: FPDF, pairs: list[tuple[str, str]]) -> None:
        for label, value in pairs:
            pdf.cell(40, 6, f"{label}:")
            pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")

    def _gifts(self, pdf: FPDF, receipt: ReceiptText) -> None:
        """The gifts covered: a table of date, amount and eligible amount."""
        pdf.set_font(FAMILY, "B", 10)
        columns = (50, 50, 50)
        for label, width in zip(("Gift date", "Amount", "Eligible amount"), columns, strict=True):
            pdf.cell(width, 6, label, border="B")
        pdf.ln()
        pdf.set_font(FAMILY, "", 10)
        for gift in receipt.gifts:
            pdf.cell(columns[0], 6, gift.received_on.isoformat())
            pdf.cell(columns[1], 6, money(gift.amount, receipt.currency))
            pdf.cell(columns[2], 6, money(gift.eligible, receipt.currency), new_x="LMARGIN", new_y="NEXT")


@functools.cache
def _printable() -> frozenset[int]:
    """The characters both receipt fonts (regular and bold, in full) have."""
    maps = [set(ttLib.TTFont(str(path), lazy=True).getBestCmap()) for path in FONT_FILES.values()]
    return frozenset(set.intersection(*maps))


def unprintable(text: str) -> str:
    """The characters of `text` (each once, in order) the receipt fonts lack: a PDF leaves them
    out (fpdf2 drops a missing glyph without a word), so a Chinese donor's name prints as
    nothing. Spaces and control characters are not counted."""
    printable = _printable()
    return "".join(
        dict.fromkeys(
            char
            for char in text
            if ord(char) not in printable and not char.isspace() and unicodedata.category(char)[0] != "C"
        )
    )


def _printed_text(receipt: ReceiptText, head: Letterhead) -> str:
    """The free text a receipt prints (what its fonts must have)."""
    parts = (head.organisation_name, head.address, head.charity_number, head.wording, head.signatory)
    return "".join(
        (*parts, receipt.donor_name, receipt.donor_address, receipt.currency, receipt.voided or "")
    )


def _trim(path: Path) -> bytes:
    """A font cut down to TRIMMED_RANGES, without layout tables (fpdf2 uses none without text
    shaping), as font file bytes."""
    font = ttLib.TTFont(str(path), recalcTimestamp=False)
    options = subset.Options(notdef_outline=True, recommended_glyphs=True)
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[code for first, last in TRIMMED_RANGES for code in range(first, last + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _copy_font(font: TTFFont, data: bytes, index: int) -> TTFFont:
    """A font for one document: the read-only tables (character map, widths, descriptor) shared,
    its own font file object and glyph subset."""
    fresh = copy.copy(font)
    fresh.i = index
    fresh.ttfont = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True)
    fresh.desc = copy.copy(font.desc)  # (writing a document sets its name and file on it)
    fresh.subset = SubsetMap(fresh)
    fresh.missing_glyphs = []
    fresh.biggest_size_pt = 0
    return fresh


_renderer: Renderer | None = None


def renderer() -> Renderer:
    """This process's renderer (its fonts read once)."""
    global _renderer
    if _renderer is None:
        _renderer = Renderer()
    return _renderer


def render_receipt(receipt: ReceiptText, head: Letterhead) -> bytes:
    """One receipt as PDF bytes."""
    return renderer().render(receipt, head)


def sample_receipt(**changes: Any) -> ReceiptText:
    """A receipt to show and to measure with (tests, the benchmark)."""
    values: dict[str, Any] = {
        "number": 1042,
        "kind": "single",
        "issued_on": date(2026, 1, 15),
        "donor_name": "Zoë Müller-Ñúñez",
        "donor_address": "12 Rue de l'Église\n75004 Paris\nFR",
        "amount": Decimal("150.00"),
        "currency": "EUR",
        "gifts": [Gift(date(2025, 12, 3), Decimal("150.00"), Decimal("150.00"))],
    }
    values.update(changes)
    return ReceiptText(**values)
