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

/**
 * Wire the language toggle of the notes.
 * @param {{onLang: (lang: string) => void}} handlers
 */
export function bind({ onLang }) {
  note.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-lang]");
    if (button) onLang(button.dataset.lang);
  });
}

/**
 * Mark the line that runs next and show its note.
 * @param {Object} state the API's State
 * @param {{lang: string, iterations: number}} options
 */
export function render(state, { lang, iterations }) {
  const line = state.done ? null : state.line;
  const next = line ? list.querySelector(`li[data-line="${line}"]`) : null;
  if (next !== current) {
    current?.removeAttribute("aria-current");
    next?.setAttribute("aria-current", "step");
    current = next;
    if (next) reveal(next);
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
