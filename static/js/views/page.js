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

const header = /** @type {HTMLElement} */ (document.querySelector(".site-header"));
const controls = /** @type {HTMLElement} */ (document.querySelector(".controls"));

/**
 * Keep the panels to the window below the header and the sticky controls (--chrome), and
 * keep the focused element out from under the sticky controls.
 */
export function bindLayout() {
  const measure = () => {
    const chrome = header.offsetHeight + controls.offsetHeight;
    document.documentElement.style.setProperty("--chrome", `${chrome}px`);
    document.documentElement.style.setProperty("--sticky", `${controls.offsetHeight}px`);
  };
  new ResizeObserver(measure).observe(controls);
  new ResizeObserver(measure).observe(header);
  measure();
  // WCAG 2.4.11: a focused element is never hidden by the sticky bar. Tabbing scrolls it
  // into view, possibly right under the bar: scroll the page a little further.
  document.addEventListener("focusin", (event) => {
    const target = /** @type {Element} */ (event.target);
    if (!(target instanceof Element) || controls.contains(target) || target.closest(".popover")) return;
    // After the browser's own scroll into view, and again once the drawing's glide to a
    // focused node (a transition of ≤ 250 ms) and any other has ended.
    const check = () => {
      if (document.activeElement !== target) return;
      const bar = controls.getBoundingClientRect();
      if (getComputedStyle(controls).position !== "sticky" || bar.top > 1) return;
      const box = seen(target);
      if (box && box.top < bar.bottom && box.bottom > bar.top) scrollBy({ top: box.top - bar.bottom - 8, behavior: "instant" });
    };
    requestAnimationFrame(() => {
      check();
      // getAnimations() brings the styles up to date: a glide just asked for is listed.
      const moving = document.getAnimations().filter((a) => a.playState === "running" && a.effect?.getTiming().iterations !== Infinity);
      if (moving.length) Promise.all(moving.map((a) => a.finished.catch(() => null))).then(check);
    });
  });
}

/**
 * The part of `element` its clipping boxes let show (a graph node panned half out of the
 * drawing shows its inner half), or null when none of it shows.
 * @param {Element} element
 */
function seen(element) {
  let { top, bottom, left, right } = element.getBoundingClientRect();
  for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (style.overflowX === "visible" && style.overflowY === "visible") continue;
    const area = box.getBoundingClientRect();
    top = Math.max(top, area.top);
    bottom = Math.min(bottom, area.bottom);
    left = Math.max(left, area.left);
    right = Math.min(right, area.right);
  }
  return bottom > top && right > left ? { top, bottom, left, right } : null;
}
