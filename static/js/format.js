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
  return text.replaceAll("-", "−");
}

/**
 * A number in six significant digits, enough to check a sum or a product by hand;
 * "–" for none. Integers stay whole.
 * @param {number|null|undefined} value
 * @returns {string}
 */
export function precise(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return num(value);
  if (value === 0) return "0";
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value).replaceAll("-", "−");
  const magnitude = Math.abs(value);
  const text = magnitude >= 1e6 || magnitude < 1e-4 ? value.toExponential(5).replace(/\.?0+e/, "e") : String(Number(value.toPrecision(6)));
  return text.replaceAll("-", "−");
}

/**
 * A Python number or boolean of the lesson as Python prints it (True, False, None).
 * @param {number|boolean|null} value null: not finite, or an integer too large for JSON
 * @returns {string}
 */
export function scalar(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  return precise(value);
}

/**
 * An element's index as Python writes it: [0, 1].
 * @param {number[]} index
 * @returns {string}
 */
export function index(index) {
  return `[${index.join(", ")}]`;
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
