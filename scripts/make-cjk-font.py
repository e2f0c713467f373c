"""Regenerate static/fonts/noto-sans-sc-subset.woff2, the page's bundled Chinese font.

A machine without CJK fonts (a stock Debian, a slim container) draws Chinese as empty
boxes. The page therefore falls back to a subset of Noto Sans CJK SC (SIL Open Font
License 1.1, static/fonts/OFL.txt) that holds only the characters the page can show:
every CJK character of the lesson texts (app/lessons/texts.py's TEXTS), the node notes
(app/lessons/node_notes.py's NODE_NOTES), the ledger's Chinese rule words (the source
text of app/engine/ledger.py), templates/*.html and static/js/**/*.js, plus printable
ASCII and common CJK punctuation. tests/test_fonts.py fails when a CJK character of
those sources is missing from the subset: run this script again after adding Chinese
text, and commit the new woff2.

The source font is Debian's `fonts-noto-cjk` package (Noto Sans CJK, by Google and
Adobe). Fetch it without installing it, and run this script with the project's venv
(`fonttools` and `brotli` are in the `test` extra):

    apt-get update && apt-get download fonts-noto-cjk
    dpkg-deb -x fonts-noto-cjk_*.deb /tmp/noto-cjk
    .venv/bin/python scripts/make-cjk-font.py \\
        --source /tmp/noto-cjk/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

With the package installed, --source can be left out: the default is its installed
path. A single-font .otf (e.g. upstream's NotoSansCJKsc-Regular.otf) works as well.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "static" / "fonts" / "noto-sans-sc-subset.woff2"
DEFAULT_SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
#: The face of a .ttc collection to take: Simplified Chinese glyph shapes.
FAMILY = "Noto Sans CJK SC"

#: Unicode blocks of CJK text: what the page's @font-face covers with `unicode-range`
#: (static/css/base.css) and what tests/test_fonts.py checks against the subset.
CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # kana
    (0x3100, 0x312F),  # bopomofo
    (0x3200, 0x33FF),  # enclosed CJK letters, compatibility
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms (，：（）！？)
)

#: Punctuation that Chinese text commonly uses, kept even when no source uses it yet.
PUNCTUATION = "，。、；：？！（）《》〈〉【】「」『』〔〕～—…·“”‘’"
ASCII = "".join(chr(c) for c in range(0x20, 0x7F))


def is_cjk(char: str) -> bool:
    """Whether `char` lies in one of CJK_RANGES."""
    code = ord(char)
    return any(first <= code <= last for first, last in CJK_RANGES)


def _strings(value: object) -> list[str]:
    """Every string inside `value` (nested tuples, lists, dicts and named tuples)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(key) + _strings(item)]
    if isinstance(value, tuple | list):
        return [s for item in value for s in _strings(item)]
    return []


def _texts() -> list[str]:
    sys.path.insert(0, str(ROOT))
    try:
        texts = importlib.import_module("app.lessons.texts").TEXTS
        notes = importlib.import_module("app.lessons.node_notes").NODE_NOTES
    finally:
        sys.path.remove(str(ROOT))
    return _strings(texts) + _strings(notes)


def _ledger_words() -> list[str]:
    """The string constants of app/engine/ledger.py (f-strings' literal parts included)."""
    tree = ast.parse((ROOT / "app" / "engine" / "ledger.py").read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def source_texts() -> dict[str, str]:
    """The text of every source of Chinese the page shows, by where it comes from."""
    sources = {
        "app/lessons/texts.py TEXTS and app/lessons/node_notes.py NODE_NOTES": "".join(_texts()),
        "app/engine/ledger.py": "".join(_ledger_words()),
    }
    files = sorted((ROOT / "templates").glob("*.html")) + sorted(
        (ROOT / "static" / "js").rglob("*.js")
    )
    for path in files:
        sources[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return sources


def cjk_characters() -> dict[str, set[str]]:
    """The CJK characters of each source."""
    return {name: {c for c in text if is_cjk(c)} for name, text in source_texts().items()}


def wanted_characters() -> set[str]:
    """Everything the subset must hold: the sources' CJK, ASCII and CJK punctuation."""
    chars = set(ASCII) | set(PUNCTUATION)
    for found in cjk_characters().values():
        chars |= found
    return chars


def unicode_range() -> str:
    """CJK_RANGES as a CSS `unicode-range` value."""
    return ", ".join(f"U+{first:X}-{last:X}" for first, last in CJK_RANGES)


def _open_source(path: Path) -> TTFont:
    """The Simplified Chinese face of `path` (a .ttc collection or a single font)."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return TTFont(path, recalcTimestamp=False)
    for number, font in enumerate(TTCollection(path, lazy=True).fonts):
        if font["name"].getDebugName(1) == FAMILY:
            # The source's own timestamp, so that the same inputs give the same bytes.
            return TTFont(path, fontNumber=number, recalcTimestamp=False)
    raise SystemExit(f"{path} holds no face named {FAMILY!r}")


def build(source: Path, output: Path) -> tuple[int, int]:
    """Write the woff2 subset of `source` to `output`; return its bytes and glyphs."""
    font = _open_source(source)
    options = subset.Options()
    options.flavor = "woff2"
    # Copyright, names, version, licence and its URL: the OFL asks that they travel along.
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 13, 14]
    options.hinting = False  # hints matter little at screen sizes; they double the size
    options.desubroutinize = True  # compresses better under Brotli
    # No OpenType features: `locl` alone would pull in the Japanese, Korean and
    # Traditional shapes of every character (1,030 glyphs instead of 618).
    options.layout_features = []
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={ord(c) for c in wanted_characters()})
    subsetter.subset(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(output), options)
    return output.stat().st_size, len(font.getGlyphOrder())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Noto Sans CJK")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if not args.source.exists():
        raise SystemExit(f"no source font at {args.source}: see this script's docstring")
    size, glyphs = build(args.source, args.output)
    cjk = set().union(*cjk_characters().values())
    print(f"{args.output}: {size} bytes, {glyphs} glyphs, {len(cjk)} CJK characters in sources")
    print(f"unicode-range: {unicode_range()}")


if __name__ == "__main__":
    main()
