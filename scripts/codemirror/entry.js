// What the explorer's editor (static/js/views/editor.js) takes from CodeMirror 6: bundled
// into one ES module, static/vendor/codemirror/codemirror.js, by scripts/vendor-codemirror.sh.
// Python support is the language alone (pythonLanguage): python() would add its
// autocompletion, which the page does not offer. highlightTree colours the code panel's
// listing of an edited program with the same parser and classes as the editor.
export { EditorSelection, EditorState, StateEffect, StateField } from "@codemirror/state";
export {
  Decoration,
  EditorView,
  drawSelection,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
export { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
export { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
export { pythonLanguage } from "@codemirror/lang-python";
export { highlightTree, tagHighlighter, tags } from "@lezer/highlight";
