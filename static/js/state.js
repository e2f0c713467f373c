/**
 * The view state that round-trips through the URL, as TensorFlow Playground's state.ts:
 * `/lessons/<lesson>?<config fields that differ from the defaults>&cursor=<n>`.
 * A reload, back/forward or a shared link rebuilds the same view from it.
 */

import { numberOrText } from "./format.js";

/**
 * @typedef {Object} ViewState
 * @property {Object<string, *>} config settings that differ from the lesson's defaults
 * @property {number} cursor events executed so far (0 = nothing run yet)
 */

/**
 * Read a value of the URL as the type of the field's default; anything unreadable
 * stays a string, so that the API names the field and its rule.
 * @param {string} text
 * @param {*} fallback the field's default
 */
function typed(text, fallback) {
  if (typeof fallback === "number") return numberOrText(text);
  if (typeof fallback === "boolean") {
    if (text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
  }
  return text;
}

/**
 * The view state in `search` (a URL's query string).
 * @param {string} search
 * @param {string[]} fields the lesson's settings
 * @param {Object<string, *>} defaults
 * @returns {ViewState}
 */
export function deserialize(search, fields, defaults) {
  const params = new URLSearchParams(search);
  /** @type {Object<string, *>} */
  const config = {};
  for (const name of fields) {
    if (params.has(name)) config[name] = typed(params.get(name), defaults[name]);
  }
  const cursorText = params.get("cursor") ?? "0";
  const cursor = /^\d+$/.test(cursorText) ? Number(cursorText) : 0;
  return { config, cursor };
}

/**
 * The query string of a view state (with its "?"; empty for the defaults at cursor 0).
 * @param {ViewState} view
 * @param {string[]} fields
 * @param {Object<string, *>} defaults
 * @returns {string}
 */
export function serialize(view, fields, defaults) {
  const params = new URLSearchParams();
  for (const name of fields) {
    if (name in view.config && view.config[name] !== defaults[name]) {
      params.set(name, String(view.config[name]));
    }
  }
  if (view.cursor > 0) params.set("cursor", String(view.cursor));
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * Only the settings of `config` that differ from the defaults.
 * @param {Object<string, *>} config
 * @param {Object<string, *>} defaults
 */
export function overrides(config, defaults) {
  return Object.fromEntries(Object.entries(config).filter(([name, value]) => value !== defaults[name]));
}

/**
 * Whether two configs resolve to the same settings.
 * @param {Object<string, *>} a
 * @param {Object<string, *>} b
 * @param {Object<string, *>} defaults
 */
export function sameConfig(a, b, defaults) {
  const left = { ...defaults, ...a };
  const right = { ...defaults, ...b };
  return Object.keys({ ...left, ...right }).every((name) => left[name] === right[name]);
}

/**
 * Record a view state in the browser's history: a new entry (`push`) or the current one.
 * @param {ViewState} view
 * @param {{fields: string[], defaults: Object<string, *>, push: boolean}} options
 */
export function record(view, { fields, defaults, push }) {
  const url = `${location.pathname}${serialize(view, fields, defaults)}${location.hash}`;
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/**
 * The view state of the current URL.
 * @param {string[]} fields
 * @param {Object<string, *>} defaults
 * @returns {ViewState}
 */
export function current(fields, defaults) {
  return deserialize(location.search, fields, defaults);
}
