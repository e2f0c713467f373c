/**
 * The ledger card: what one backward node did, with the actual numbers (DESIGN.md §5.1).
 * What arrived (grad_outputs), the node's rule, what it sent (grad_inputs) and to whom,
 * AccumulateGrad's `.grad` before + incoming = after, the uses of a shared leaf, and one
 * element worked out, so that a learner can check the chain rule by hand.
 */

import { field, h, replace } from "../dom.js";
import { precise, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".ledger-panel"));
const body = field(panel, "ledger");

/** The node notes the server rendered into a <template>: node name → {en, zh}. */
const nodeNotes = new Map();
for (const p of document.getElementById("node-notes")?.content.querySelectorAll("p[data-node]") ?? []) {
  const name = p.dataset.node;
  nodeNotes.set(name, { ...nodeNotes.get(name), [p.lang]: p.textContent });
}

/** The card's own words in both languages of the notes. */
const WORDS = {
  en: {
    event: "current event",
    selected: "selected node",
    lineOf: (n) => `line ${n}`,
    rule: "Rule",
    source: "Its rule is its own backward method:",
    example: "One element worked out",
    arrived: "Arrived: grad_outputs",
    arrivedHint: "the gradient of the loss with respect to this node's output",
    sent: "Sent: grad_inputs",
    sentHint: "one per input (next_functions), passed on to the node that made it",
    none: "None: this input needs no gradient, so nothing is sent",
    accumulate: ".grad: before + incoming = after",
    before: ".grad before",
    beforeNone: ".grad before: None, so the incoming gradient is stored, not added",
    incoming: "incoming",
    after: ".grad after",
    uses: (n) => `${n} uses of the shared leaf, summed into one gradient`,
    use: "from",
    sum: "sum: what AccumulateGrad received",
    topLeft: (s) => `top-left block of ${s}`,
    norm: "norm",
    empty: "Step into loss.backward() event by event, or select a node that backward has run: its ledger shows here, with the gradients it received and sent.",
    noValues: "values not recorded",
    lookup: "Look up",
    element: (title) => `element of ${title} at index`,
  },
  zh: {
    event: "当前事件",
    selected: "选中的节点",
    lineOf: (n) => `第 ${n} 行`,
    rule: "规则",
    source: "它的规则就是它自己的 backward 方法：",
    example: "算出一个元素",
    arrived: "收到：grad_outputs",
    arrivedHint: "损失对本节点输出的梯度",
    sent: "发出：grad_inputs",
    sentHint: "每个输入（next_functions）一个，传给产生该输入的节点",
    none: "None：这个输入不需要梯度，因此不发送",
    accumulate: ".grad：原值 + 收到的 = 新值",
    before: "原 .grad",
    beforeNone: "原 .grad 为 None：收到的梯度直接存入，而非累加",
    incoming: "收到的",
    after: "新 .grad",
    uses: (n) => `共享叶子的 ${n} 处使用，相加成一个梯度`,
    use: "来自",
    sum: "总和：AccumulateGrad 收到的梯度",
    topLeft: (s) => `${s} 的左上角`,
    norm: "范数",
    empty: "在 loss.backward() 中逐个事件单步执行，或选中一个反向传播已运行的节点：它的账本会显示在这里，包括它收到和发出的梯度。",
    noValues: "未记录数值",
    lookup: "查看",
    element: (title) => `${title} 中该下标处的元素`,
  },
};

/**
 * Wire the links from the card to the code panel.
 * @param {{onLine: (line: number) => void}} handlers
 */
export function bind({ onLine, onLookup }) {
  body.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-goto-line]");
    if (button) onLine(Number(button.dataset.gotoLine));
  });
  body.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.lookup");
    if (!form) return;
    event.preventDefault();
    const index = [...form.querySelectorAll("input")].map((input) => Number(input.value));
    const out = form.querySelector("output");
    out.textContent = "…";
    const value = await onLookup(form.dataset.side, Number(form.dataset.k), index);
    /** The looked-up element's actual value, as the engine computed it. */
    out.textContent = value === undefined ? "" : precise(value);
  });
}

/**
 * @typedef {Object} LedgerContext
 * @property {"event"|"selected"} from whether the ledger is the current event's or a selected node's
 * @property {Map<string, Object>} nodes graph node id → node of the Graph JSON, to name senders and receivers
 * @property {string} lang "en" or "zh"
 * @property {(line: number) => string} lineText the text of a line of the lesson's source
 */

/**
 * Show a ledger, or (with null) what the card is for.
 * @param {Object|null} ledger a Ledger of the API
 * @param {LedgerContext} context
 */
export function render(ledger, { from, nodes, lang, lineText }) {
  const words = WORDS[lang] ?? WORDS.en;
  const chip = field(panel, "ledger-from");
  // Another node's ledger starts at its top.
  if (panel.dataset.node !== (ledger?.node_id ?? "")) body.scrollTop = 0;
  panel.dataset.node = ledger?.node_id ?? "";
  panel.classList.toggle("is-empty", !ledger);
  if (!ledger) {
    chip.hidden = true;
    field(panel, "ledger-node").textContent = "";
    body.replaceChildren(h("p", { class: "empty", lang, text: words.empty }));
    return;
  }
  chip.hidden = false;
  chip.textContent = words[from];
  const node = nodes.get(ledger.node_id);
  field(panel, "ledger-node").textContent = short(ledger.name);
  const note = nodeNotes.get(ledger.name);
  const parts = [
    h(
      "p",
      { class: "ledger-title" },
      h("code", { class: "ledger-name", text: short(ledger.name) }),
      node?.label ? h("span", { class: "muted", text: ` · ${node.label}` }) : null,
      node?.line ? lineButton(node.line, words) : null,
    ),
    note ? h("p", { class: "ledger-note", lang: note[lang] ? lang : "en", "data-field": "node-note", text: note[lang] ?? note.en }) : null,
    rule(ledger, lang, words, lineText),
    ledger.example ? example(ledger.example, words) : null,
    section(words.arrived, words.arrivedHint, ledger.grad_outputs.map((g, i) => gradFigure(`grad_outputs[${i}]`, g, words, { lookup: ["outputs", i] }))),
  ];
  if (ledger.contributions?.length) parts.push(contributions(ledger, nodes, words));
  if (ledger.accumulate) parts.push(accumulate(ledger, words));
  if (ledger.grad_inputs.length) {
    const exampleAt = ledger.example && !ledger.accumulate ? ledger.example : null;
    const sent = ledger.grad_inputs.map((g, i) =>
      gradFigure(`grad_inputs[${i}]`, g, words, {
        to: g?.to ? nodes.get(g.to) ?? { id: g.to, name: g.to } : null,
        highlight: exampleAt?.input === i ? exampleAt.index : null,
        lookup: ["inputs", i],
      }),
    );
    parts.push(section(words.sent, words.sentHint, sent, "sent"));
  }
  replace(body, ...parts);
}

/** The rule in the page's language; a custom Function's rule is its own backward source. */
function rule(ledger, lang, words, lineText) {
  const text = ledger.rule?.[lang] ?? ledger.rule?.en ?? "";
  if (!ledger.source_lines) {
    return h("div", { class: "ledger-rule", "data-field": "rule" }, h("h4", { text: words.rule }), h("p", { class: "rule-text", lang, text }));
  }
  const [first, last] = ledger.source_lines;
  const lines = [];
  for (let n = first; n <= last; n += 1) {
    lines.push(
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "source-line", data: { gotoLine: String(n) }, "aria-label": `${words.lineOf(n)}: ${lineText(n).trim()}` },
          /** The line's number in the lesson's source. */
          h("span", { class: "ln", text: String(n) }),
          h("code", { text: lineText(n) }),
        ),
      ),
    );
  }
  return h(
    "div",
    { class: "ledger-rule", "data-field": "rule", data: { sourceFirst: String(first), sourceLast: String(last) } },
    h("h4", { text: words.rule }),
    h("p", { class: "rule-caption", lang, text: text.split("\n")[0] || words.source }),
    h("ol", { class: "ledger-source", "aria-label": words.source }, ...lines),
  );
}

/** The worked example, prominent: the engine's sentence with the actual numbers. */
function example(ex, words) {
  return h(
    "div",
    { class: "ledger-example", "data-field": "example" },
    h("h4", { text: words.example }),
    /** One element of a result, its value computed from the actual values: ex.value. */
    h("p", { class: "example-text", text: ex.text }),
  );
}

/** .grad before + incoming = after, as three grids. */
function accumulate(ledger, words) {
  const { before, after } = ledger.accumulate;
  const incoming = ledger.grad_outputs[0] ?? null;
  const at = ledger.example?.index ?? null;
  return h(
    "div",
    { class: "ledger-section accumulate", "data-field": "accumulate" },
    h("h4", { text: words.accumulate }),
    before ? gradFigure(words.before, before, words) : h("p", { class: "muted", "data-field": "before-none", text: words.beforeNone }),
    before ? h("p", { class: "operator", "aria-hidden": "true", text: "+" }) : null,
    before ? gradFigure(words.incoming, incoming, words) : null,
    before ? h("p", { class: "operator", "aria-hidden": "true", text: "=" }) : null,
    gradFigure(words.after, after, words, { highlight: at }),
  );
}

/** The gradients of the several uses of a shared leaf, and their sum. */
function contributions(ledger, nodes, words) {
  const uses = ledger.contributions.map((c) =>
    gradFigure(`${words.use} ${describe(nodes.get(c.from) ?? { id: c.from, name: c.from })}`, c, words),
  );
  return h(
    "div",
    { class: "ledger-section contributions", "data-field": "contributions" },
    /** How many uses of the leaf the forward pass made: one gradient each. */
    h("h4", { text: words.uses(ledger.contributions.length) }),
    ...uses.flatMap((figure, i) => (i ? [h("p", { class: "operator", "aria-hidden": "true", text: "+" }), figure] : [figure])),
    h("p", { class: "operator", "aria-hidden": "true", text: "=" }),
    gradFigure(words.sum, ledger.grad_outputs[0] ?? null, words),
  );
}

function section(title, hint, figures, name = "arrived") {
  return h("div", { class: `ledger-section ${name}`, "data-field": name }, h("h4", { text: title }, h("span", { class: "hint", text: ` · ${hint}` })), ...figures);
}

/**
 * One gradient: what it is, its full shape and norm, and its top-left values.
 * @param {string} title
 * @param {Object|null} grad a Grad of the API (null: None)
 * @param {Object} words
 * @param {{to?: Object|null, highlight?: number[]|null, lookup?: [string, number]|null}} [options]
 *   to: the receiving node; highlight: the element the worked example computes; lookup:
 *   (side, k) of the gradient, to look any element up beyond the grid
 */
function gradFigure(title, grad, words, { to = null, highlight = null, lookup = null } = {}) {
  if (!grad) {
    return h("figure", { class: "grad is-none" }, h("figcaption", {}, h("code", { text: title }), h("span", { class: "muted", text: ` · ${words.none}` })));
  }
  const caption = h(
    "figcaption",
    {},
    h("code", { text: title }),
    to ? h("span", { class: "to", "data-field": "to", data: { node: to.id } }, " → ", h("b", { text: describe(to) })) : null,
    h("br"),
    /** The gradient's full shape (the grid shows at most its top-left 4×4). */
    h("span", { class: "muted", text: `${shape(grad.shape)} · ` }),
    /** The gradient's L2 norm, over all its elements. */
    h("span", { class: "muted", text: `${words.norm} ${precise(grad.norm)}` }),
  );
  const beyond = lookup && grad.shape.some((n) => n > 4) ? lookupForm(title, grad.shape, lookup, words) : null;
  return h("figure", { class: "grad" }, caption, grid(grad.preview, grad.shape, words, highlight), beyond);
}

/** Index fields for any element of a gradient bigger than its grid, and its value. */
function lookupForm(title, dims, [side, k], words) {
  const label = words.element(title);
  return h(
    "form",
    { class: "lookup", data: { side, k: String(k) }, "aria-label": label },
    h("code", { text: "[" }),
    ...dims.flatMap((n, d) => [
      d ? h("code", { text: ", " }) : null,
      h("input", { type: "number", min: "0", max: String(n - 1), value: "0", required: true, "aria-label": `${label}, ${d}` }),
    ]),
    h("code", { text: "]" }),
    h("button", { type: "submit", class: "btn small", text: words.lookup }),
    h("output", { "aria-live": "polite" }),
  );
}

/**
 * The preview values with their row and column indices.
 * @param {number[][]|null} preview at most 4×4 (a vector: one row)
 * @param {number[]} dims the full shape
 * @param {Object} words
 * @param {number[]|null} highlight an element's index to mark
 */
function grid(preview, dims, words, highlight) {
  if (!preview) return h("p", { class: "muted", text: words.noValues });
  const rows = Array.isArray(preview[0]) ? preview : [preview];
  const vector = dims.length < 2;
  const columns = Math.max(...rows.map((r) => r.length), 0);
  const [hr, hc] = !highlight ? [-1, -1] : highlight.length >= 2 ? [highlight[0], highlight[1]] : [0, highlight[0] ?? 0];
  const clipped = dims.length >= 2 ? dims[0] > rows.length || dims[1] > columns : (dims[0] ?? 1) > columns;
  return h(
    "div",
    { class: "values-wrap" },
    h(
      "table",
      { class: "values", "aria-label": clipped ? words.topLeft(shape(dims)) : shape(dims) },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          vector ? null : h("th", { class: "corner", scope: "col" }),
          /** Column indices of the values below. */
          ...Array.from({ length: columns }, (_, j) => h("th", { scope: "col", text: String(j) })),
          clipped && dims.length ? h("th", { class: "more", scope: "col", text: "…" }) : null,
        ),
      ),
      h(
        "tbody",
        {},
        ...rows.map((values, i) =>
          h(
            "tr",
            {},
            /** Row index of the values to its right. */
            vector ? null : h("th", { scope: "row", text: String(i) }),
            /** One element's actual value, six significant digits; the full value in its title. */
            ...values.map((value, j) =>
              h("td", { class: i === hr && j === hc ? "example" : null, title: value === null ? "not finite" : String(value), data: { index: vector ? `${j}` : `${i},${j}` }, text: precise(value) }),
            ),
          ),
        ),
      ),
    ),
  );
}

function lineButton(line, words) {
  /** The lesson line whose forward op created the node. */
  return h("button", { type: "button", class: "btn small line-link", data: { gotoLine: String(line) }, text: words.lineOf(line) });
}

/** A node as the card names it: its name, and the tensor or expression it stands for. */
function describe(node) {
  const name = short(node.name);
  return node.label && node.label !== node.name ? `${name} (${node.label})` : name;
}

/** A node name without the torch::autograd:: namespace. */
function short(name) {
  return String(name ?? "").replace("torch::autograd::", "");
}
