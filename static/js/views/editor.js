/**
 * Edit mode: the code panel's editor (CodeMirror 6), its buttons, and what the server said
 * about the code. The editor is mounted in a shadow root: there CodeMirror styles itself
 * with a constructed stylesheet, where in the document it would add a <style> element that
 * the page's CSP (style-src 'self') refuses (static/vendor/codemirror/README.md).
 */

import { field } from "../dom.js";
import { highlighter } from "../source.js";
import { codemirror } from "../vendor.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".code-panel"));
const box = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="editor"]'));
const host = /** @type {HTMLElement} */ (box.querySelector(".editor-host"));
const editButton = /** @type {HTMLButtonElement} */ (panel.querySelector('button[data-edit="open"]'));
const backButton = /** @type {HTMLButtonElement} */ (panel.querySelector('button[data-edit="back"]'));
const runButton = /** @type {HTMLButtonElement} */ (box.querySelector('button[data-edit="run"]'));
const fileName = `${document.querySelector("main.explorer").dataset.lesson}.py`;

/** The sentences of edit mode, in the languages of the notes. */
const WORDS = {
  en: {
    notice: "This link carries code that someone else wrote. Read it first: it runs only when you press Run my version.",
    hint: "Tab moves on to the buttons. Indent with spaces, or with Ctrl+] and Ctrl+[ (⌘ on a Mac).",
  },
  zh: {
    notice: "这个链接带有别人写的代码。请先读一读：只有按下 Run my version 后它才会运行。",
    hint: "Tab 键移到按钮上。用空格缩进，或用 Ctrl+] 和 Ctrl+[（Mac 上用 ⌘）。",
  },
};

/** @type {Object|null} the CodeMirror module, once loaded */
let cm = null;
/** @type {Object|null} the EditorView */
let view = null;
/** @type {Object|null} the effect that marks (or, with null, unmarks) a line */
let markLine = null;
/** @type {Object|null} the StateField of the marked line */
let errorField = null;
let lang = "en";
let showNotice = false;

/**
 * Wire edit mode's buttons.
 * @param {{onEdit: () => void, onRun: () => void, onCancel: () => void, onBack: () => void}} handlers
 */
export function bind({ onEdit, onRun, onCancel, onBack }) {
  editButton.addEventListener("click", onEdit);
  backButton.addEventListener("click", onBack);
  runButton.addEventListener("click", onRun);
  box.querySelector('button[data-edit="cancel"]').addEventListener("click", onCancel);
}

/**
 * Switch the code panel to the editor, holding `source`.
 * @param {string} source
 * @param {{link?: boolean}} [options] link: the code came with a link, not from the
 *   reader; say so, and put the focus on Run my version rather than in the code
 */
export async function open(source, { link = false } = {}) {
  cm ??= await codemirror();
  view ??= create(cm);
  view.setState(cm.EditorState.create({ doc: source, extensions: extensions(cm) }));
  showNotice = link;
  clearError();
  relabel(lang);
  panel.classList.add("editing");
  box.hidden = false;
  editButton.hidden = true;
  if (link) runButton.focus();
  else view.focus();
}

/** Leave edit mode: the code panel shows the program's listing again. */
export function close() {
  panel.classList.remove("editing");
  box.hidden = true;
  editButton.hidden = false;
}

/** Whether the editor is open. */
export function isOpen() {
  return !box.hidden;
}

/** @returns {string} the code in the editor */
export function text() {
  return view?.state.doc.toString() ?? "";
}

/**
 * Show why the code did not run, as text; a syntax error's line is marked and the
 * cursor put where the error is.
 * @param {string} detail the server's sentence
 * @param {{line?: number|null, column?: number|null}} [where] 1-based
 */
export function showError(detail, { line = null, column = null } = {}) {
  const message = field(box, "edit-error");
  message.textContent = detail;
  message.hidden = false;
  if (!view || !line) return;
  const doc = view.state.doc;
  const target = doc.line(Math.min(Math.max(line, 1), doc.lines));
  const offset = Math.min(Math.max((column ?? 1) - 1, 0), target.length);
  view.dispatch({
    selection: { anchor: target.from + offset },
    effects: [markLine.of(target.number), cm.EditorView.scrollIntoView(target.from + offset, { y: "center" })],
  });
  view.focus();
}

/** Clear the error shown and the marked line. */
export function clearError() {
  const message = field(box, "edit-error");
  message.textContent = "";
  message.hidden = true;
  view?.dispatch({ effects: markLine.of(null) });
}

/**
 * Show or hide "Back to the lesson": the program on screen is a learner's edit.
 * @param {boolean} edited
 */
export function setEdited(edited) {
  backButton.hidden = !edited;
}

/** Put the focus on "Edit code" (after edit mode closes, or the lesson comes back). */
export function focusEdit() {
  editButton.focus();
}

/**
 * Say edit mode's sentences in `language`.
 * @param {string} language "en" or "zh"
 */
export function relabel(language) {
  lang = language;
  const words = WORDS[lang] ?? WORDS.en;
  const notice = field(box, "edit-notice");
  notice.textContent = words.notice;
  notice.lang = lang;
  notice.hidden = !showNotice;
  const hint = field(box, "edit-hint");
  hint.textContent = words.hint;
  hint.lang = lang;
}

/** The EditorView, in a shadow root of `host`. */
function create(lib) {
  markLine = lib.StateEffect.define();
  const mark = lib.Decoration.line({ class: "cm-error-line" });
  errorField = lib.StateField.define({
    create: () => lib.Decoration.none,
    update(marks, transaction) {
      let next = marks.map(transaction.changes);
      for (const effect of transaction.effects) {
        if (!effect.is(markLine)) continue;
        next = effect.value === null ? lib.Decoration.none : lib.Decoration.set([mark.range(transaction.state.doc.line(effect.value).from)]);
      }
      return next;
    },
    provide: (f) => lib.EditorView.decorations.from(f),
  });
  const root = host.attachShadow({ mode: "open" });
  return new lib.EditorView({ parent: root, root });
}

/**
 * What the editor does: Python, line numbers, undo, auto-indent; no binding for Tab, so
 * that Tab moves the focus on (WCAG 2.1.2) as CodeMirror recommends.
 */
function extensions(lib) {
  return [
    lib.lineNumbers(),
    lib.highlightActiveLineGutter(),
    lib.history(),
    lib.drawSelection(),
    lib.indentOnInput(),
    lib.bracketMatching(),
    lib.indentUnit.of("    "),
    lib.EditorState.tabSize.of(4),
    lib.pythonLanguage,
    lib.syntaxHighlighting(highlighter(lib)),
    lib.keymap.of([...lib.defaultKeymap, ...lib.historyKeymap]),
    lib.EditorView.lineWrapping,
    // tabindex: what is editable is focusable anyway; axe counts it as focusable only so.
    lib.EditorView.contentAttributes.of({ "aria-label": `Python source: your version of ${fileName}`, spellcheck: "false", tabindex: "0" }),
    errorField,
    lib.EditorView.domEventHandlers({ beforeinput: replaceSelection }),
    theme(lib),
  ];
}

/**
 * Type over a selection as CodeMirror's own change. Chromium's editing, left to replace a
 * selection that spans coloured lines, keeps their look in style attributes, which the
 * CSP refuses (a console error each time; CodeMirror then redraws the lines anyway).
 * @param {InputEvent} event
 * @param {Object} view the EditorView
 * @returns {boolean} whether the event was handled here
 */
function replaceSelection(event, view) {
  if (event.inputType !== "insertText" || !event.data || view.state.selection.main.empty) return false;
  event.preventDefault();
  view.dispatch(view.state.update(view.state.replaceSelection(event.data), { userEvent: "input.type", scrollIntoView: true }));
  return true;
}

/** @type {Object|null} */
let themeExtension = null;

/**
 * The page's look in the editor: its colours (CSS variables reach into the shadow root,
 * light and dark alike), code font, focus ring and token colours (static/css/code.css).
 * NOTE: "&.cm-editor" outweighs the base theme's light/dark rules ("&light …").
 */
function theme(lib) {
  themeExtension ??= lib.EditorView.theme({
    "&.cm-editor": { flex: "1", minHeight: "0", color: "var(--text)", backgroundColor: "var(--surface)", fontSize: "12.5px" },
    "&.cm-editor.cm-focused": { outline: "2px solid var(--focus)", outlineOffset: "-2px" },
    "&.cm-editor .cm-scroller": { fontFamily: "var(--font-code)", lineHeight: "1.6" },
    "&.cm-editor .cm-content": { caretColor: "var(--text)", padding: "6px 0" },
    "&.cm-editor .cm-cursor, &.cm-editor .cm-dropCursor": { borderLeftColor: "var(--text)", borderLeftWidth: "2px" },
    "&.cm-editor .cm-gutters": { backgroundColor: "var(--surface)", color: "var(--muted)", borderRight: "1px solid var(--border)" },
    "&.cm-editor .cm-activeLineGutter": { backgroundColor: "transparent", color: "var(--text)", fontWeight: "700" },
    "&.cm-editor.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, &.cm-editor .cm-selectionBackground":
      { backgroundColor: "color-mix(in srgb, var(--accent) 26%, transparent)" },
    "&.cm-editor .cm-matchingBracket, &.cm-editor.cm-focused .cm-matchingBracket": { backgroundColor: "transparent", outline: "1px solid var(--muted)" },
    "&.cm-editor .cm-nonmatchingBracket, &.cm-editor.cm-focused .cm-nonmatchingBracket": { backgroundColor: "transparent", outline: "1px dashed var(--danger)" },
    "&.cm-editor .cm-error-line": { boxShadow: "inset 4px 0 0 var(--danger)", textDecoration: "underline wavy var(--danger)", textDecorationSkipInk: "none" },
    ".tok-kw": { color: "var(--tok-kw)", fontWeight: "600" },
    ".tok-str": { color: "var(--tok-str)" },
    ".tok-num": { color: "var(--tok-num)" },
    ".tok-com": { color: "var(--tok-com)", fontStyle: "italic" },
    ".tok-def": { color: "var(--tok-def)", fontWeight: "600" },
    ".tok-const": { color: "var(--tok-const)" },
  });
  return themeExtension;
}
