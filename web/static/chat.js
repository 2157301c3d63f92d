// The plain chat page: asks /api/answer and shows the answer with its sources.
// Everything from documents or the model is inserted as text, never as HTML.
"use strict";

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const button = document.getElementById("ask");
const result = document.getElementById("result");
const statusLine = document.getElementById("status");
const answerBox = document.getElementById("answer");
const sourcesHeading = document.getElementById("sources-heading");
const sources = document.getElementById("sources");

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderAnswer(data) {
  answerBox.replaceChildren();
  const parts = data.answer.split(/(\[\d+\])/);
  for (const part of parts) {
    const match = /^\[(\d+)\]$/.exec(part);
    if (match) {
      const link = el("a", "cite", part);
      link.href = "#source-" + match[1];
      answerBox.append(link);
    } else {
      answerBox.append(document.createTextNode(part));
    }
  }
  if (data.abstained) answerBox.classList.add("abstained");
  else answerBox.classList.remove("abstained");
  sources.replaceChildren();
  for (const c of data.citations) {
    const item = el("li");
    item.id = "source-" + c.n;
    item.value = c.n;
    const where = c.page !== null ? `${c.document}, page ${c.page}` : c.document;
    item.append(el("strong", null, c.title), el("span", "where", ` (${where})`));
    item.append(el("blockquote", null, c.quote));
    sources.append(item);
  }
  sourcesHeading.hidden = data.citations.length === 0;
  const seconds = data.timings.total_seconds;
  statusLine.textContent = seconds !== undefined ? `Answered in ${seconds.toFixed(1)} s` : "";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  button.disabled = true;
  result.hidden = false;
  statusLine.textContent = "Thinking…";
  answerBox.replaceChildren();
  sources.replaceChildren();
  sourcesHeading.hidden = true;
  try {
    const response = await fetch("/api/answer", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({question}),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    renderAnswer(data);
  } catch (error) {
    statusLine.textContent = "Error: " + error.message;
  } finally {
    button.disabled = false;
  }
});
