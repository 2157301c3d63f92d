// Markdown of answers and passages, rendered safely: `marked` turns it into HTML, raw HTML in the text is
// shown as text (never interpreted), and DOMPurify sanitises the result into a DOM fragment. That
// fragment is the chat's one HTML sink; everything else only ever sets textContent.
"use strict";

const MARKDOWN_TAGS = [
  "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4",
  "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "hr", "input",
];

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

marked.use({
  gfm: true,
  breaks: false,
  renderer: {
    html(token) { return escapeHtml(token.raw ?? token.text ?? ""); },  // raw HTML is shown as text
    image(token) { return escapeHtml(token.raw ?? ""); },  // no request leaves this machine for an image
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  if (node.tagName === "INPUT") node.setAttribute("disabled", "");  // task-list boxes only
});

// HTML made by `marked` as a sanitised DocumentFragment: the only place text becomes HTML.
function sanitizedFragment(html) {
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS: MARKDOWN_TAGS,
    ALLOWED_ATTR: ["href", "title", "align", "type", "checked", "disabled", "start"],
    ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
    RETURN_DOM_FRAGMENT: true,
  });
}

function markdownFragment(text) {
  return sanitizedFragment(marked.parse(text || "", {async: false}));
}

// One sentence's inline Markdown (emphasis, code, links), without paragraphs around it.
function inlineMarkdownFragment(text) {
  return sanitizedFragment(marked.parseInline(text || "", {async: false}));
}

// Whether text holds block Markdown (headings, lists, quotes, tables, code fences, paragraphs).
function hasMarkdownBlocks(text) {
  return /(^|\n)\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\||```|~~~)|\n\s*\n/.test(text || "");
}

// Render Markdown into `box`; code blocks get a Copy button, tables a scrolling wrapper.
function renderMarkdown(box, text) {
  box.replaceChildren(markdownFragment(text));
  for (const pre of box.querySelectorAll("pre")) {
    const wrap = el("div", "code-block");
    pre.replaceWith(wrap);
    const copy = el("button", "copy secondary small", "Copy code");
    copy.type = "button";
    copy.addEventListener("click", () => copyText(pre.textContent, copy, "Copy code"));
    wrap.append(copy, pre);
  }
  for (const table of box.querySelectorAll("table")) {
    const wrap = el("div", "table-wrap");
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return box;
}

async function copyText(text, button, label) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (_) {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = label; }, 1500);
}

// Replace the citation markers of the text nodes under `root` (not in code) with nodes from `make(match)`.
function replaceInText(root, pattern, make) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement.closest("code, pre, button") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const text = node.nodeValue;
    const parts = [];
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
      parts.push(...make(match));
      last = match.index + match[0].length;
    }
    if (!parts.length) continue;
    if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
    node.replaceWith(...parts);
  }
}
