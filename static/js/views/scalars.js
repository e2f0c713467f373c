/**
 * The lesson's module-level Python numbers and booleans (State `scalars`), as a small
 * table of name = value; the NumPy lesson's final `max_abs_diff` is shown large, with
 * what it proves.
 */

import { field, h } from "../dom.js";
import { scalar } from "../format.js";

const box = /** @type {HTMLElement} */ (document.querySelector('[data-testid="scalars"]'));
const body = /** @type {HTMLTableSectionElement} */ (box.querySelector("tbody"));
const proof = field(/** @type {HTMLElement} */ (document.querySelector(".vars-panel")), "proof");

/** Under this, hand-written and autograd gradients differ by float64 rounding only. */
const ROUNDING = 1e-8;

/** What `max_abs_diff` proves, by language; `{v}` is its value. */
const PROOF = {
  en: {
    same: "The largest gap between the gradients worked out by hand (hand_grad_w1, hand_grad_w2) and autograd's (w1_t.grad, w2_t.grad) at the final weights is {v}: float64 rounding, so the hand-written backward pass is exactly the chain rule autograd applies.",
    differ: "The largest gap between the gradients worked out by hand and autograd's at the final weights is {v}: more than float64 rounding, so the two disagree somewhere.",
  },
  zh: {
    same: "在最终权重处，手工推导的梯度（hand_grad_w1、hand_grad_w2）与 autograd 的梯度（w1_t.grad、w2_t.grad）之间的最大差值为 {v}：只是 float64 的舍入误差，说明手写的反向传播正是 autograd 所用的链式法则。",
    differ: "在最终权重处，手工推导的梯度与 autograd 的梯度之间的最大差值为 {v}：超出了 float64 的舍入误差，两者在某处不一致。",
  },
};

/**
 * Show the scalars of the current state.
 * @param {Object<string, number|boolean|null>|null|undefined} scalars name → value, now
 * @param {Object<string, number|boolean|null>|null} before the same one step earlier (null: mark nothing)
 * @param {string} lang "en" or "zh"
 */
export function render(scalars, before, lang) {
  const entries = Object.entries(scalars ?? {});
  box.hidden = entries.length === 0;
  body.replaceChildren(
    ...entries.map(([name, value]) => {
      const changed = before !== null && (!(name in before) || before[name] !== value);
      return h(
        "tr",
        { class: changed ? "changed" : null, data: { name } },
        h("th", { scope: "row", text: name }),
        /** The number's value (six significant digits), as Python would print it. */
        h("td", { class: changed ? "hot" : null, title: String(value), text: scalar(value) }),
      );
    }),
  );
  const diff = scalars?.max_abs_diff;
  proof.hidden = typeof diff !== "number";
  if (typeof diff !== "number") return;
  const words = PROOF[lang] ?? PROOF.en;
  const ok = Math.abs(diff) < ROUNDING;
  proof.className = `proof ${ok ? "agree" : "differ"}`;
  proof.lang = lang;
  proof.replaceChildren(
    /** max_abs_diff: the largest |hand-written gradient − autograd's| over w1 and w2. */
    h("p", { class: "proof-value" }, h("code", { text: "max_abs_diff" }), " = ", h("b", { "data-field": "max-abs-diff", text: scalar(diff) })),
    h("p", { class: "proof-text", text: (ok ? words.same : words.differ).replace("{v}", scalar(diff)) }),
  );
}
