/** How numbers, shapes and gradients are written on the page. */

/**
 * A number in at most four significant digits, or "–" for none.
 * @param {number|null|undefined} value
 * @returns {string}
 */
export function num(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  const text = magnitude >= 1e5 || magnitude < 1e-3 ? value.toExponential(2) : String(Number(value.toPrecision(4)));
  return text.replace("-", "−");
}

/**
 * A tensor shape as PyTorch's users write it: "64×1000", or "scalar" for [].
 * @param {number[]|null|undefined} shape
 * @returns {string}
 */
export function shape(shape) {
  if (!shape) return "–";
  return shape.length ? shape.join("×") : "scalar";
}

/**
 * An integer with thin-space thousands separators.
 * @param {number} value
 * @returns {string}
 */
export function int(value) {
  return value.toLocaleString("en").replaceAll(",", "\u202f");
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * A setting typed into the page or the URL as a number, or the text itself when it is
 * not one (the API then names the setting and its rule).
 * @param {string} text
 * @returns {number|string}
 */
export function numberOrText(text) {
  return NUMBER.test(text.trim()) ? Number(text) : text;
}
