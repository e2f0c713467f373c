"""What a program prints, and its values and messages told in bounded text."""

from __future__ import annotations

from typing import Any

__all__ = ["Output", "bounded_text"]

# The longest error message or printed value kept (an edit may raise a huge one).
_MESSAGE_LIMIT = 4000


class Output:
    """What a program printed: its last ``limit`` characters, and how many came before."""

    def __init__(self, limit: int = 16_384) -> None:
        self.limit = limit
        self._text = ""
        self.dropped = 0

    def print(
        self, *values: object, sep: str | None = " ", end: str | None = "\n", **_: Any
    ) -> None:
        """`print` for the program: to this output, whatever ``file`` it names."""
        self.write((" " if sep is None else sep).join(map(bounded_text, values)))
        self.write("\n" if end is None else end)

    def write(self, text: str) -> None:
        text = str(text)[-self.limit :]
        self._text += text
        over = len(self._text) - self.limit
        if over > 0:
            self.dropped += over
            self._text = self._text[over:]

    @property
    def text(self) -> str:
        if not self.dropped:
            return self._text
        return f"[{self.dropped} earlier characters not kept]\n{self._text}"


def bounded_text(value: object) -> str:
    """``str(value)``, bounded; a value whose ``__str__`` fails is shown by its type."""
    try:
        return str(value)[:_MESSAGE_LIMIT]
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
