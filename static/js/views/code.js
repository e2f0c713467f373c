/**
 * The code panel: the program's source (the lesson's, or a learner's edit of it), the line
 * that runs next and its note.
 */

import { field, h, replace } from "../dom.js";
import { int } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".code-panel"));
const list = /** @type {HTMLOListElement} */ (panel.querySelector("ol.code"));
const note = /** @type {HTMLElement} */ (panel.querySelector(".note"));
const heading = field(panel, "code-name");
const legend = field(panel, "edit-legend");

/** Line number → {en, zh}: the notes the server rendered into a <template>. */
const lessonNotes = new Map();
for (const p of document.getElementById("lesson-notes").content.querySelectorAll("p[data-note]")) {
  const line = Number(p.dataset.note);
  lessonNotes.set(line, { ...lessonNotes.get(line), [p.lang]: p.textContent });
}

/** The lesson's own listing as the server rendered it, to come back to after an edit. */
const lesson = {
  items: [...list.children],
  lines: [...list.querySelectorAll("li[data-line] > code")].map((line) => line.textContent),
  name: heading.textContent,
  label: list.getAttribute("aria-label"),
};

/** The notes of the program on screen, by its line numbers. */
let notes = lessonNotes;
/** The lines of the program on screen that are not the lesson's (none for the lesson). */
let changed = new Set();

/** The panel's own words about an edited program, in the languages of the notes. */
const WORDS = {
  en: {
    legend: "Your version: the lines you changed are marked in the margin; notes stay on the lines that match the lesson's.",
    changed: "You changed this line, so it has no note.",
  },
  zh: {
    legend: "你的版本：改动过的行在边栏中标出；注释只保留在与课程相同的行上。",
    changed: "这一行被你改动过，所以没有注释。",
  },
};

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

/** @returns {string[]} the lines of the lesson's own source */
export function lessonLines() {
  return lesson.lines;
}

/**
 * @typedef {Object} Program a learner's edit of the lesson, as the listing shows it
 * @property {Array<Array<[string, string]>>} colours per line, its [text, class] runs
 * @property {Map<number, number>} kept its lines that are the lesson's: line → lesson line
 * @property {string[]} phases the phase of each line
 */

/**
 * List `program` in place of the lesson's source, or the lesson's again (null): the lines
 * it changed are marked (in the margin, and "changed" for screen readers), and only the
 * lines it kept have the lesson's notes.
 * @param {Program|null} program
 */
export function setProgram(program) {
  for (const [kind, items] of marks) for (const item of items) item.classList.remove(`mark-${kind}`);
  marks.clear();
  current?.removeAttribute("aria-current");
  current = null;
  if (!program) {
    notes = lessonNotes;
    changed = new Set();
    replace(list, ...lesson.items);
    heading.textContent = lesson.name;
    list.setAttribute("aria-label", lesson.label);
    list.classList.remove("edited");
    legend.hidden = true;
    return;
  }
  notes = new Map();
  for (const [line, old] of program.kept) if (lessonNotes.has(old)) notes.set(line, lessonNotes.get(old));
  changed = new Set(program.colours.map((_, i) => i + 1).filter((line) => !program.kept.has(line)));
  const items = program.colours.map((runs, i) => {
    const line = i + 1;
    const css = [`phase-${program.phases[i] ?? "setup"}`, notes.has(line) && "has-note", changed.has(line) && "changed"];
    return h(
      "li",
      { data: { line: String(line) }, class: css.filter(Boolean).join(" ") },
      h("span", { class: "ln", "aria-hidden": "true", text: String(line) }),
      changed.has(line) ? h("span", { class: "sr-only", text: "changed: " }) : null,
      h("code", {}, ...runs.map(([text, style]) => (style ? h("span", { class: style, text }) : text))),
    );
  });
  replace(list, ...items);
  heading.textContent = `${lesson.name} · your version`;
  list.setAttribute("aria-label", `Source of your version of ${lesson.name}`);
  list.classList.add("edited");
  legend.hidden = false;
}

/**
 * The text of a line of the program's source.
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

  legend.textContent = (WORDS[lang] ?? WORDS.en).legend;
  legend.lang = lang;
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
    if (done) text.textContent = lang === "zh" ? "程序已运行结束。" : "The program has finished.";
    else if (changed.has(line)) text.textContent = (WORDS[lang] ?? WORDS.en).changed;
    else {
      text.textContent =
        lang === "zh" ? "这一行没有注释；带圆点的行有注释。" : "No note for this line; lines with a dot in the margin have one.";
    }
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
