/** The code panel: the lesson's source, the line that runs next and its note. */

import { field } from "../dom.js";
import { int } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".code-panel"));
const list = /** @type {HTMLOListElement} */ (panel.querySelector("ol.code"));
const note = /** @type {HTMLElement} */ (panel.querySelector(".note"));

/** Line number → {en, zh}: the notes the server rendered into a <template>. */
const notes = new Map();
for (const p of document.getElementById("lesson-notes").content.querySelectorAll("p[data-note]")) {
  const line = Number(p.dataset.note);
  notes.set(line, { ...notes.get(line), [p.lang]: p.textContent });
}

/** @type {HTMLElement|null} */
let current = null;

/** Marks other views put on lines, by kind: the lines each kind marks now. */
const marks = new Map();

/**
 * Wire the language toggle of the notes, and hovering a line (linked views).
 * @param {{onLang: (lang: string) => void, onHover?: (line: number|null) => void}} handlers
 */
export function bind({ onLang, onHover = () => {} }) {
  note.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-lang]");
    if (button) onLang(button.dataset.lang);
  });
  let hovered = null;
  list.addEventListener("mouseover", (event) => {
    const item = event.target.closest?.("li[data-line]");
    const line = item ? Number(item.dataset.line) : null;
    if (line !== hovered) onHover((hovered = line));
  });
  list.addEventListener("mouseleave", () => {
    if (hovered !== null) onHover((hovered = null));
  });
}

/**
 * Mark lines for another view: `linked` (the graph node hovered or selected made them),
 * `source` (the custom backward shown in the ledger), `failed` (the line that raised).
 * Each kind replaces its own earlier marks.
 * @param {"linked"|"source"|"failed"} kind
 * @param {number[]} lines 1-based line numbers; empty to clear
 * @param {{reveal?: boolean}} [options] reveal: scroll the first one into view
 */
export function mark(kind, lines, { reveal: show = false } = {}) {
  for (const item of marks.get(kind) ?? []) item.classList.remove(`mark-${kind}`);
  const items = lines.map((n) => list.querySelector(`li[data-line="${n}"]`)).filter(Boolean);
  for (const item of items) item.classList.add(`mark-${kind}`);
  marks.set(kind, items);
  if (show && items.length) reveal(items[0]);
}

/**
 * The text of a line of the lesson's source.
 * @param {number} line
 * @returns {string}
 */
export function lineText(line) {
  return list.querySelector(`li[data-line="${line}"] code`)?.textContent ?? "";
}

/**
 * Mark the line that runs next and show its note.
 * @param {Object} state the API's State
 * @param {{lang: string, iterations: number}} options
 */
export function render(state, { lang, iterations }) {
  const line = state.done ? null : state.line;
  const next = line ? list.querySelector(`li[data-line="${line}"]`) : null;
  const moved = next !== current;
  if (moved) {
    current?.removeAttribute("aria-current");
    next?.setAttribute("aria-current", "step");
    current = next;
  }
  list.dataset.event = state.event?.kind ?? "";

  /** The phase of the program: setup, forward, loss, backward, update, zero_grad or done. */
  const phase = state.done ? "done" : state.phase;
  const chip = field(panel, "phase");
  chip.textContent = phase.replace("_", " ");
  chip.className = `chip phase-chip phase-${phase}`;
  /** The training loop's counter t of the iteration in progress, out of `iterations`. */
  field(panel, "iteration").textContent =
    state.iteration < 0
      ? `before the loop · ${int(iterations)} iterations`
      : `t = ${int(state.iteration)} · iteration ${int(state.iteration + 1)} of ${int(iterations)}`;

  renderNote(line, lang, state.done);
  // After the note: its length changes how much of the code is in sight.
  if (moved && next) reveal(next);
}

/**
 * Show the note of `line` in `lang`, and which language is chosen.
 * @param {number|null} line
 * @param {string} lang "en" or "zh"
 * @param {boolean} done
 */
function renderNote(line, lang, done) {
  for (const button of note.querySelectorAll("button[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  const text = field(note, "note");
  const entry = line ? notes.get(line) : null;
  field(note, "note-line").textContent = line ? `· line ${line}` : "";
  if (entry) {
    text.textContent = entry[lang] ?? entry.en;
    text.lang = entry[lang] ? lang : "en";
    text.classList.remove("muted");
  } else {
    text.lang = lang;
    text.classList.add("muted");
    text.textContent = done
      ? lang === "zh" ? "程序已运行结束。" : "The program has finished."
      : lang === "zh"
        ? "这一行没有注释；带圆点的行有注释。"
        : "No note for this line; lines with a dot in the margin have one.";
  }
}

/** Scroll the code (not the page) so that `item` is comfortably in view. */
function reveal(item) {
  const top = item.offsetTop;
  const bottom = top + item.offsetHeight;
  const margin = list.clientHeight / 4;
  if (top < list.scrollTop + margin / 2 || bottom > list.scrollTop + list.clientHeight - margin / 2) {
    list.scrollTop = Math.max(0, top - margin);
  }
}
