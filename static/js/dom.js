/** Small DOM helpers for the views: build elements without innerHTML. */

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Create an HTML element.
 * @param {string} tag
 * @param {Object<string, *>} [props] attributes; `class`, `text` and `data` are special
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/**
 * Create an SVG element.
 * @param {string} tag
 * @param {Object<string, *>} [props]
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {SVGElement}
 */
export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(element, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.setAttribute("class", value);
    else if (key === "text") element.textContent = value;
    else if (key === "data") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/**
 * Replace the children of `element`, skipping the absent ones (null, undefined, false),
 * which replaceChildren itself would write out as text.
 * @param {Element} element
 * @param {...(Node|string|null|undefined|false)} children
 */
export function replace(element, ...children) {
  element.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

/**
 * The element of `root` marked `data-field="name"`.
 * @param {ParentNode} root
 * @param {string} name
 * @returns {HTMLElement}
 */
export function field(root, name) {
  const element = root.querySelector(`[data-field="${name}"]`);
  if (!element) throw new Error(`missing [data-field="${name}"]`);
  return element;
}
