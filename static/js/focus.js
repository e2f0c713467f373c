/**
 * Keeping the keyboard focus across repaints. A view that rebuilds its rows, a graph whose
 * SVG is replaced, a panel that closes: each would drop the focus on <body>, and a keyboard
 * user would start again from the top of the page. `remember()` notes what has the focus
 * in terms that survive a rebuild (a node id, a variable's name, a grid cell), and the
 * function it returns puts the focus back on the same thing, or on the nearest place that
 * is still there.
 */

/**
 * @param {Element|null} [fallback] where the focus goes when its element is gone for good
 * @returns {() => void} call it after the repaint
 */
export function remember(fallback = null) {
  const element = document.activeElement;
  if (!element || element === document.body || element === document.documentElement) return () => {};
  const keys = [];
  if (element.id) keys.push(`[id="${CSS.escape(element.id)}"]`);
  const node = element.closest("g.node[id]");
  if (node) keys.push(`[data-testid="graph"] g.node[id="${CSS.escape(node.id)}"]`);
  const row = element.closest("tr[data-name]");
  if (row) keys.push(`tr[data-name="${CSS.escape(row.dataset.name)}"] button`);
  if (element instanceof HTMLElement && element.dataset.cell) keys.push(`button[data-cell="${CSS.escape(element.dataset.cell)}"]`);
  const region = element.closest("[data-testid], .panel");
  return () => {
    const now = document.activeElement;
    if (now && now !== document.body && now.isConnected && visible(now)) return;
    for (const key of keys) {
      const found = document.querySelector(key);
      if (found instanceof HTMLElement || found instanceof SVGElement) {
        if (visible(found)) {
          found.focus({ preventScroll: false });
          return;
        }
      }
    }
    const place = [fallback, region].find((e) => e && e.isConnected && visible(e));
    if (place instanceof HTMLElement) {
      if (!place.hasAttribute("tabindex") && !place.matches("a, button, input, select, textarea")) place.tabIndex = -1;
      place.focus();
    }
  };
}

/** Whether `element` takes up room on the page (not hidden, not in a closed panel). */
function visible(element) {
  return element.getClientRects().length > 0 && !element.closest("[hidden], [inert]");
}
