"""The bundled CJK font (static/fonts/) holds every character the page can show in Chinese.

A machine without CJK fonts draws any character the subset lacks as an empty box:
after adding Chinese text, run scripts/make-cjk-font.py again (its docstring says how).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from fontTools.ttLib import TTFont  # reading a woff2 also needs brotli (the test extra)

ROOT = Path(__file__).resolve().parent.parent
BASE_CSS = ROOT / "static" / "css" / "base.css"


def _load_script() -> ModuleType:
    path = ROOT / "scripts" / "make-cjk-font.py"
    spec = importlib.util.spec_from_file_location("make_cjk_font", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


@pytest.fixture(scope="module")
def cmap() -> set[int]:
    font = TTFont(script.OUTPUT)
    return set(font.getBestCmap())


def _font_face() -> str:
    faces = re.findall(r"@font-face\s*\{[^}]*\}", BASE_CSS.read_text(encoding="utf-8"))
    assert len(faces) == 1, "base.css should declare the one bundled font"
    return faces[0]


def test_the_sources_hold_chinese() -> None:
    found = script.cjk_characters()
    assert "链" in found["app/lessons/texts.py TEXTS and app/lessons/node_notes.py NODE_NOTES"]
    assert "按" in found["app/engine/ledger.py"]  # 按行求和: a rule word of the ledger
    assert found["templates/explorer.html"] >= set("中文")
    assert any(name.startswith("static/js/") and chars for name, chars in found.items())


def test_every_cjk_character_of_the_page_is_in_the_subset(cmap: set[int]) -> None:
    missing = {
        name: "".join(sorted(c for c in chars if ord(c) not in cmap))
        for name, chars in script.cjk_characters().items()
    }
    missing = {name: chars for name, chars in missing.items() if chars}
    assert not missing, (
        f"characters missing from {script.OUTPUT.name}: {missing}; "
        "run scripts/make-cjk-font.py (see its docstring)"
    )


def test_the_subset_holds_ascii_and_chinese_punctuation(cmap: set[int]) -> None:
    missing = [c for c in script.ASCII + script.PUNCTUATION if ord(c) not in cmap]
    assert not missing


def test_the_subset_stays_small(cmap: set[int]) -> None:
    # Only the glyphs the page needs: a few hundred characters, not the 65 535 of the face.
    assert len(cmap) < 2000
    assert script.OUTPUT.stat().st_size < 250_000


def test_the_page_declares_the_font_with_its_licence_beside_it() -> None:
    face = _font_face()
    assert f'url("/static/fonts/{script.OUTPUT.name}") format("woff2")' in face
    ranges = re.search(r"unicode-range:\s*([^;]+);", face)
    assert ranges is not None and ranges.group(1).strip() == script.unicode_range()
    family = re.search(r'font-family:\s*"([^"]+)"', face)
    assert family is not None
    for stack in ("--font-ui", "--font-code"):
        declared = re.search(rf"{stack}:\s*([^;]+);", BASE_CSS.read_text(encoding="utf-8"))
        assert declared is not None and f'"{family.group(1)}"' in declared.group(1)
    licence = (script.OUTPUT.parent / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence


def test_the_subset_keeps_the_fonts_copyright_and_licence_names() -> None:
    names = TTFont(script.OUTPUT)["name"]
    assert "Adobe" in str(names.getDebugName(0))
    assert "Open Font License" in str(names.getDebugName(13))
