/** The stepping buttons, their keyboard shortcuts, the status line and the run progress. */

import { field } from "../dom.js";
import { int } from "../format.js";

const root = /** @type {HTMLElement} */ (document.querySelector(".controls"));
const statusBox = /** @type {HTMLElement} */ (root.querySelector('[data-testid="status"]'));
const progressBox = /** @type {HTMLElement} */ (root.querySelector('[data-testid="progress"]'));
const help = /** @type {HTMLElement} */ (document.getElementById("help"));
const toggle = /** @type {HTMLInputElement} */ (help.querySelector('[data-field="shortcuts"]'));

/** Arrow keys scroll what has the focus when it scrolls, rather than step the program. */
const ARROWS = new Set(["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"]);

/** Whether the single-key shortcuts are on (WCAG 2.1.4: they can be switched off). */
let enabled = localStorage.getItem("agx.shortcuts") !== "off";

/** Keys of the shortcuts (KeyboardEvent.key) and the action each one triggers. */
const SHORTCUTS = {
  ArrowRight: "step",
  ArrowDown: "line",
  ArrowLeft: "back",
  p: "phase",
  n: "iteration",
  e: "end",
  r: "reset",
};

/**
 * Wire the buttons and shortcuts.
 * @param {{onAction: (name: string) => void, onCancel: () => void}} handlers
 */
export function bind({ onAction, onCancel }) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.getAttribute("aria-disabled") === "true") return;
    if (button.dataset.action === "cancel") onCancel();
    else onAction(button.dataset.action);
  });
  setShortcuts(enabled);
  toggle.addEventListener("change", () => {
    setShortcuts(toggle.checked);
    localStorage.setItem("agx.shortcuts", toggle.checked ? "on" : "off");
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    // composedPath: a key typed in the code editor comes from inside its shadow root.
    const origin = event.composedPath()[0];
    if (origin.closest?.("input, select, textarea, [contenteditable]")) return;
    if (event.key === "Escape" && !progressBox.hidden) {
      onCancel();
      return;
    }
    if (!enabled) return;
    if (ARROWS.has(event.key) && scrolls(event.target)) return;
    if (event.key === "?") {
      help.togglePopover();
      event.preventDefault();
      return;
    }
    const action = SHORTCUTS[event.key] ?? SHORTCUTS[event.key.toLowerCase?.()];
    if (!action || (event.shiftKey && event.key.length > 1)) return;
    event.preventDefault();
    onAction(action);
  });
}

/**
 * Switch the single-key shortcuts on or off: the buttons stop announcing them and their
 * key hints go.
 * @param {boolean} on
 */
function setShortcuts(on) {
  enabled = on;
  toggle.checked = on;
  document.body.classList.toggle("no-shortcuts", !on);
  for (const button of document.querySelectorAll("[aria-keyshortcuts], [data-keyshortcuts]")) {
    if (on && button.dataset.keyshortcuts) button.setAttribute("aria-keyshortcuts", button.dataset.keyshortcuts);
    else if (!on) {
      button.dataset.keyshortcuts = button.getAttribute("aria-keyshortcuts") ?? button.dataset.keyshortcuts;
      button.removeAttribute("aria-keyshortcuts");
    }
  }
}

/**
 * Whether `element` or a box around it scrolls (the code, a table, a panel): there the
 * arrow keys scroll.
 * @param {EventTarget|null} element
 */
function scrolls(element) {
  for (let box = element instanceof Element ? element : null; box && box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    const x = /(auto|scroll)/.test(style.overflowX) && box.scrollWidth > box.clientWidth;
    const y = /(auto|scroll)/.test(style.overflowY) && box.scrollHeight > box.clientHeight;
    if (x || y) return true;
  }
  return false;
}

/**
 * Show where the run is.
 * @param {Object} state the API's State
 * @param {Object<string, Object>|null} [before] the variables one move earlier (null: a
 *   jump, nothing to compare)
 */
export function render(state, before = null) {
  /** Events executed so far: the session's cursor. */
  field(statusBox, "cursor").textContent = int(state.cursor);
  /** What the last event was: a line about to run, a forward op, a backward node or the end. */
  field(statusBox, "event").textContent = describe(state);
  /** For screen readers, in the same announcement: the variables the move changed. */
  field(statusBox, "changes").textContent = changes(state.variables, before);
  statusBox.dataset.cursor = String(state.cursor);
  statusBox.dataset.done = String(state.done);
}

/**
 * The variables a move changed, in words: "changed: w1 (version, .grad), y_pred (new)".
 * @param {Object<string, Object>} now name → TensorSummary
 * @param {Object<string, Object>|null} before
 */
function changes(now, before) {
  if (!before) return "";
  const same = (a, b) => (!a && !b) || (a && b && a.norm === b.norm && a.mean === b.mean && a.min === b.min && a.max === b.max);
  const words = [];
  for (const [name, t] of Object.entries(now)) {
    const old = before[name];
    if (!old) {
      words.push(`${name} (new)`);
      continue;
    }
    const what = [
      old.version !== t.version && "version",
      !same(old.stats, t.stats) && "values",
      !same(old.grad?.stats, t.grad?.stats) && ".grad",
      old.grad_fn !== t.grad_fn && "grad_fn",
    ].filter(Boolean);
    if (what.length) words.push(`${name} (${what.join(", ")})`);
  }
  const gone = Object.keys(before).filter((name) => !(name in now));
  if (gone.length) words.push(`${gone.join(", ")} out of scope`);
  if (!words.length) return "";
  const shown = words.length > 5 ? [...words.slice(0, 5), `${words.length - 5} more`] : words;
  return `; changed: ${shown.join("; ")}`;
}

/**
 * Say why nothing runs yet (no session: its config was refused).
 * @param {string} text
 */
export function idle(text) {
  field(statusBox, "event").textContent = text;
  field(statusBox, "changes").textContent = "";
  statusBox.dataset.cursor = "";
}

/**
 * One phrase for the current event.
 * @param {Object} state
 */
function describe(state) {
  const event = state.event ?? {};
  switch (event.kind) {
    case "line":
      return `line ${event.line} runs next`;
    case "op":
      return `forward op ${event.name ?? ""} on line ${event.line}`;
    case "node":
      return `backward node ${(event.name ?? "").replace("torch::autograd::", "")}`;
    case "end":
      return state.error ? `ended with ${state.error.type}` : "program finished";
    default:
      return state.cursor === 0 ? "not started" : "";
  }
}

/** Lock the stepping buttons (except Cancel) during a run to the end, or unlock them. */
export function setRunning(running) {
  for (const button of root.querySelectorAll(".buttons button")) {
    button.setAttribute("aria-disabled", running ? "true" : "false");
  }
  progressBox.hidden = !running;
  if (running) progressBox.querySelector("button").focus();
}

/**
 * Show the progress of a run to the end.
 * @param {number} done iterations finished
 * @param {number} total iterations of the run
 */
export function progress(done, total) {
  const bar = progressBox.querySelector("progress");
  /** Iterations finished so far out of the configured `iterations`. */
  bar.max = Math.max(total, 1);
  bar.value = Math.min(done, total);
  field(progressBox, "progress").textContent = `iteration ${int(Math.min(done, total))} of ${int(total)}`;
}

/**
 * Put the keyboard focus back on the stepping buttons after a run (or a new program).
 * @param {{always?: boolean}} [options] always: wherever the focus is
 */
export function focusStep({ always = false } = {}) {
  if (always || document.activeElement === document.body || progressBox.contains(document.activeElement)) {
    root.querySelector('button[data-action="step"]').focus();
  }
}
