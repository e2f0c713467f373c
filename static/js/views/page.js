/** The page as a whole: the lesson it shows, its busy flag and passing messages. */

import { h } from "../dom.js";

const main = /** @type {HTMLElement} */ (document.querySelector("main.explorer"));
let toast = null;
let toastTimer = 0;

/**
 * @typedef {Object} LessonMeta
 * @property {string} id the lesson's id
 * @property {string[]} fields the settings it takes, in display order
 * @property {Object<string, *>} defaults its default config
 */

/** @returns {LessonMeta} what the server rendered into the page about its lesson */
export function meta() {
  return {
    id: main.dataset.lesson,
    fields: JSON.parse(main.dataset.fields),
    defaults: JSON.parse(main.dataset.defaults),
  };
}

/** Mark the page busy while a request is on its way (assistive tech and tests wait on it). */
export function setBusy(busy) {
  main.setAttribute("aria-busy", busy ? "true" : "false");
}

/**
 * Show a short message at the bottom of the page for a few seconds.
 * @param {string} message
 */
export function notify(message) {
  if (!toast) {
    toast = h("div", { class: "toast", role: "status" });
    document.body.append(toast);
  }
  toast.textContent = message;
  toast.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.classList.remove("shown"), 6000);
}
