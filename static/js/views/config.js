/** The config form: the lesson's settings, and the API's message next to a bad one. */

import { field, h } from "../dom.js";
import { numberOrText } from "../format.js";

const panel = /** @type {HTMLDetailsElement} */ (document.querySelector(".config-panel"));
const form = /** @type {HTMLFormElement} */ (panel.querySelector("form"));

/**
 * Wire the form.
 * @param {{onApply: (config: Object<string, *>) => void, onDefaults: () => void}} handlers
 */
export function bind({ onApply, onDefaults }) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(read());
  });
  form.querySelector('[data-action="defaults"]').addEventListener("click", onDefaults);
}

/**
 * Offer the devices the server can run lessons on.
 * @param {{id: string, name: string}[]} devices
 */
export function setDevices(devices) {
  const select = form.elements.namedItem("device");
  if (!(select instanceof HTMLSelectElement)) return;
  const chosen = select.value;
  const options = devices.map((d) => h("option", { value: d.id, text: d.name && d.name !== d.id ? `${d.id} · ${d.name}` : d.id }));
  if (!devices.some((d) => d.id === chosen)) options.push(h("option", { value: chosen, text: `${chosen} (not available)` }));
  select.replaceChildren(...options);
  select.value = chosen;
}

/**
 * Show the config the session runs with: in the form and in the one-line summary.
 * @param {Object<string, *>} config
 */
export function render(config) {
  fill(config);
  summarize(config);
}

/**
 * Put values in the form only, leaving the summary on the config the session runs
 * (values being edited, refused ones or the defaults are not what runs).
 * @param {Object<string, *>} values
 */
/** Open the configuration panel. */
export function open() {
  /** @type {HTMLDetailsElement|null} */ (document.querySelector('[data-testid="config"]'))?.setAttribute("open", "");
}

export function fill(values) {
  for (const [name, value] of Object.entries(values)) {
    const input = form.elements.namedItem(name);
    if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = value === true;
    else if (input instanceof HTMLSelectElement) {
      if (![...input.options].some((o) => o.value === String(value))) input.append(h("option", { value: String(value), text: `${value} (not available)` }));
      input.value = String(value);
    } else if (input instanceof HTMLInputElement) input.value = written(value);
  }
}

/**
 * Summarise the config the session runs with, or say that none runs.
 * @param {Object<string, *>|null} config
 */
export function summarize(config) {
  const summary = field(panel, "config-summary");
  if (!config) {
    summary.textContent = "not running";
    return;
  }
  const parts = [`N=${config.N}`, `D_in=${config.D_in}`, `H=${config.H}`, `D_out=${config.D_out}`, `lr=${written(config.learning_rate)}`, `${config.iterations} iterations`, config.device];
  /** A one-line summary of the config the session runs with. */
  summary.textContent = parts.filter((p) => !String(p).includes("undefined")).join(" · ");
}

/** A setting as the form shows it: 1e-6 rather than 0.000001. */
function written(value) {
  if (typeof value === "number" && value !== 0 && Math.abs(value) < 1e-3) return value.toExponential();
  return String(value);
}

/** @returns {Object<string, *>} the form's values, typed; unreadable ones stay strings for the API to name */
export function read() {
  const config = {};
  for (const element of form.elements) {
    if (!(element instanceof HTMLInputElement || element instanceof HTMLSelectElement) || !element.name) continue;
    const kind = element.closest("[data-field-name]")?.classList;
    const text = element.value.trim();
    if (element instanceof HTMLInputElement && element.type === "checkbox") config[element.name] = element.checked;
    else if (kind?.contains("field-integer") || kind?.contains("field-number")) {
      // A fraction for an integer stays a number: the API names the field and its rule.
      config[element.name] = numberOrText(text);
    }
    else config[element.name] = text;
  }
  return config;
}

/**
 * Show the API's sentences next to the fields they name (or above the form), open the
 * form and focus the first bad field.
 * @param {string} message the API's `detail`: the first error's sentence
 * @param {string[]} fields the lesson's settings
 * @param {{field: string, detail: string}[]} [errors] every invalid field, when the API listed them
 */
export function showError(message, fields, errors = []) {
  clearErrors();
  panel.open = true;
  const listed = errors.length ? errors : [{ field: fields.find((f) => message.startsWith(`${f} `) || message.startsWith(`${f}:`)), detail: message }];
  const elsewhere = [];
  let first = null;
  for (const { field: name, detail } of listed) {
    const box = name && fields.includes(name) ? form.querySelector(`[data-field-name="${name}"]`) : null;
    if (!box) {
      elsewhere.push(detail);
      continue;
    }
    const text = box.querySelector(".field-error");
    text.textContent = text.hidden ? detail : `${text.textContent} ${detail}`;
    text.hidden = false;
    box.classList.add("invalid");
    const input = form.elements.namedItem(name);
    input.setAttribute("aria-invalid", "true");
    first ??= input;
  }
  if (elsewhere.length) {
    const text = field(form, "form-error");
    text.textContent = elsewhere.join(" ");
    text.hidden = false;
  }
  first?.focus();
}

/** Remove every error message. */
export function clearErrors() {
  for (const text of form.querySelectorAll(".field-error")) {
    text.hidden = true;
    text.textContent = "";
  }
  for (const box of form.querySelectorAll(".invalid")) box.classList.remove("invalid");
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  field(form, "form-error").hidden = true;
}
