"""The HTML pages: the lesson list at `/` and the explorer at `/lessons/{lesson}`.

The pages are shells rendered with Jinja2 from `templates/`; the explorer's
ES modules under `static/js/` then drive it through the REST API alone.
"""

from __future__ import annotations

import io
import keyword
import tokenize
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from app.lessons.registry import CONFIG_FIELDS, LESSONS, Lesson, get_lesson

__all__ = ["highlighted_lines", "mount_static", "router"]

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)

#: The hint under each input of the config form (labelled with the setting's own name,
#: as the lesson's code and the API's messages call it).
FIELD_HINTS: dict[str, str] = {
    "N": "batch size: rows of x and y",
    "D_in": "input features",
    "H": "hidden units",
    "D_out": "output features",
    "learning_rate": "step size of each update",
    "iterations": "passes of the training loop",
    "device": "where the tensors live",
    "seed": "random seed of the data and weights",
    "zero_grad": "clear .grad after each update",
    "momentum": "SGD momentum",
}


def mount_static(app: FastAPI) -> None:
    """Serve `static/` (stylesheets, ES modules, vendored libraries) at `/static`."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Any:
    # NOTE: no inline script or style anywhere: the app-wide CSP of app.api.middleware
    # (script-src 'self'; style-src 'self') applies to these pages unchanged.
    return templates.TemplateResponse(request, template, context, status_code=status)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Any:
    """List the lessons in tutorial order."""
    return _page(request, "home.html", {"lessons": list(LESSONS.values())})


@router.get("/lessons/{lesson}", response_class=HTMLResponse)
def explorer(request: Request, lesson: str) -> Any:
    """The explorer of one lesson; an HTML 404 page for an unknown lesson."""
    try:
        found = get_lesson(lesson)
    except KeyError:
        missing = {"lesson_id": lesson, "lessons": list(LESSONS.values())}
        return _page(request, "not_found.html", missing, status=404)
    ids = list(LESSONS)
    position = ids.index(found.id)
    context: dict[str, Any] = {
        "lesson": found,
        "lines": highlighted_lines(found.id),
        "fields": _form_fields(found),
        "previous": LESSONS[ids[position - 1]] if position > 0 else None,
        "next": LESSONS[ids[position + 1]] if position + 1 < len(ids) else None,
        "number": position + 1,
        "total": len(ids),
    }
    return _page(request, "explorer.html", context)


def _form_fields(lesson: Lesson) -> list[dict[str, Any]]:
    """The config form's inputs: one per setting the lesson takes, in display order."""
    fields = []
    for name in CONFIG_FIELDS:
        if name not in lesson.fields:
            continue
        default = lesson.defaults[name]
        if isinstance(default, bool):
            kind = "checkbox"
        elif name == "device":
            kind = "select"
        elif isinstance(default, int):
            kind = "integer"
        else:
            kind = "number"
        fields.append({"name": name, "hint": FIELD_HINTS[name], "kind": kind, "default": default})
    return fields


# Syntax colouring of the lesson source, by Python's own tokenizer.
_BUILTINS = frozenset({"range", "print", "float", "int", "len", "abs", "max", "min", "super"})
_CONSTANTS = frozenset({"True", "False", "None", "self", "ctx"})


@cache
def highlighted_lines(lesson_id: str) -> tuple[Markup, ...]:
    """Return each line of the lesson's source as escaped HTML with token classes."""
    lines = get_lesson(lesson_id).source.splitlines()
    classes = [[""] * len(line) for line in lines]

    def paint(start: tuple[int, int], end: tuple[int, int], css: str) -> None:
        for row in range(start[0], end[0] + 1):
            line = classes[row - 1]
            first = start[1] if row == start[0] else 0
            last = end[1] if row == end[0] else len(line)
            for col in range(first, min(last, len(line))):
                line[col] = css

    previous = ""
    source = "\n".join(lines) + "\n"
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        css = ""
        if token.type == tokenize.COMMENT:
            css = "tok-tag" if token.string.lstrip("# ").startswith("[") else "tok-com"
        elif token.type == tokenize.STRING or token.type in _FSTRING_TOKENS:
            css = "tok-str"
        elif token.type == tokenize.NUMBER:
            css = "tok-num"
        elif token.type == tokenize.NAME:
            if previous in ("def", "class"):
                css = "tok-def"
            elif token.string in _CONSTANTS:
                css = "tok-const"
            elif keyword.iskeyword(token.string):
                css = "tok-kw"
            elif token.string in _BUILTINS:
                css = "tok-bi"
        elif token.type == tokenize.OP and token.string == "@":
            css = "tok-kw"
        if css:
            paint(token.start, token.end, css)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = token.string
    return tuple(_spans(line, css) for line, css in zip(lines, classes, strict=True))


_FSTRING_TOKENS = {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


def _spans(line: str, classes: list[str]) -> Markup:
    """Group runs of characters with the same class into <span>s."""
    parts: list[str] = []
    start = 0
    for col in range(1, len(line) + 1):
        if col == len(line) or classes[col] != classes[start]:
            text = escape(line[start:col])
            css = classes[start]
            parts.append(f'<span class="{css}">{text}</span>' if css else str(text))
            start = col
    return Markup("".join(parts))
