/**
 * The output panel: what an edited program printed so far (the server keeps the latest
 * part, State.output). Shown as text only: the program is anybody's.
 */

import { field } from "../dom.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".output-panel"));
const log = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="output"]'));

/** The text on screen, to add only what is new (a log announces what it gains). */
let shown = "";

/**
 * Show `output`, or hide the panel for a lesson's own program (null).
 * @param {string|null} output
 * @param {boolean} edited whether the program is a learner's edit
 * @param {string} lang "en" or "zh"
 */
export function render(output, edited, lang) {
  panel.hidden = !edited;
  const text = edited ? output ?? "" : "";
  if (text.startsWith(shown) && log.textContent === shown) {
    if (text.length > shown.length) log.append(text.slice(shown.length));
  } else {
    log.textContent = text;
  }
  shown = text;
  log.hidden = !text;
  const empty = field(panel, "output-empty");
  empty.hidden = Boolean(text);
  empty.lang = lang;
  empty.textContent = lang === "zh" ? "程序还没有打印任何内容。" : "Nothing printed yet.";
  if (text) log.scrollTop = log.scrollHeight;
}
