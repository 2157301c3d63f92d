// The chat: streams answers from /api/answer/stream, keeps the conversation for follow-ups,
// marks unsupported sentences and opens cited passages in their context.
"use strict";

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const askButton = document.getElementById("ask");
const conversation = document.getElementById("conversation");
const viewer = document.getElementById("viewer");
let history = [];

document.getElementById("new-conversation").addEventListener("click", () => {
  history = [];
  conversation.replaceChildren();
  input.value = "";
  input.focus();
});

document.getElementById("viewer-close").addEventListener("click", () => viewer.close());

// Open a passage (citation or nearest passage) highlighted within the text around it.
async function showPassage(item) {
  const title = document.getElementById("viewer-title");
  const where = document.getElementById("viewer-where");
  const text = document.getElementById("viewer-text");
  title.textContent = item.title || item.document;
  where.textContent = item.page !== null && item.page !== undefined
    ? `${item.document}, page ${item.page}` : item.document;
  text.replaceChildren(el("span", "status", "Loading…"));
  if (!viewer.open) viewer.showModal();
  const url = `${documentUrl(item.document)}/context?start=${item.start}&end=${item.end}&window=600`;
  try {
    const response = await fetch(url, {headers: apiHeaders()});
    if (!response.ok) throw new Error(await errorMessage(response));
    const ctx = await response.json();
    const mark = el("mark", null, ctx.passage);
    text.replaceChildren(
      document.createTextNode((ctx.context_start > 0 ? "…" : "") + ctx.before),
      mark,
      document.createTextNode(ctx.after + (ctx.context_end < ctx.length ? "…" : "")),
    );
    mark.scrollIntoView({block: "center"});
  } catch (error) {
    text.replaceChildren(el("span", "error", "Could not load the passage: " + error.message));
  }
}

function citeButton(n, citation) {
  const button = el("button", "cite", `[${n}]`);
  button.type = "button";
  if (citation) {
    button.setAttribute("aria-label", `Source ${n}: ${citation.title}`);
    button.addEventListener("click", () => showPassage(citation));
  } else {
    button.disabled = true;
    button.title = "This number matches no passage given to the model";
  }
  return button;
}

// A citation marker, as rag/text.py's CITATION reads it: [1], [1, 2] or [1; 3] (change both together).
const CITATION = /\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]/g;

function citedNumbers(text) {
  return [...text.matchAll(CITATION)].flatMap((m) => m[1].split(/[,;]/).map(Number));
}

// Text with citation markers turned into buttons, one per cited number, that open the cited passage.
function appendWithCitations(parent, text, byNumber) {
  let last = 0;
  for (const match of text.matchAll(CITATION)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    for (const n of citedNumbers(match[0])) parent.append(citeButton(n, byNumber.get(n)));
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function renderAnswer(turn, data) {
  const byNumber = new Map(data.citations.map((c) => [c.n, c]));
  const box = turn.answer;
  box.replaceChildren();
  box.classList.toggle("abstained", data.abstained);
  if (data.abstained) box.append(el("strong", "abstain-label", "Not in the documents: "));
  if (Array.isArray(data.sentences) && data.sentences.length) {
    data.sentences.forEach((sentence, i) => {
      const span = el("span", "sentence");
      appendWithCitations(span, sentence.text, byNumber);
      const shown = new Set(citedNumbers(sentence.text));
      for (const n of sentence.citations || []) if (!shown.has(n)) span.append(citeButton(n, byNumber.get(n)));
      if (sentence.attributed) {
        span.classList.add("attributed");
        span.title = "The support checker added a citation: the model left this sentence uncited, or cited a passage that does not support it";
      }
      if (sentence.supported === false) {
        span.classList.add("unsupported");
        const issues = sentence.issues || [];
        span.title = issues.length
          ? `Not supported: ${issues.join("; ")}`
          : "Not supported by the passages it cites";
        span.append(el("span", "flag", " ⚠ unsupported"));
      } else if (sentence.supported === true) {
        span.classList.add("supported");
      }
      box.append(span);
      if (i < data.sentences.length - 1) box.append(document.createTextNode(" "));
    });
  } else {
    appendWithCitations(box, data.answer, byNumber);
  }
  turn.sources.replaceChildren();
  const listed = data.abstained && !data.citations.length ? (data.passages || []).slice(0, 3) : data.citations;
  if (listed.length) {
    turn.sourcesHeading.textContent = data.abstained && !data.citations.length ? "Nearest passages" : "Sources";
    turn.sourcesHeading.hidden = false;
  }
  listed.forEach((item, i) => {
    const li = el("li");
    if (item.n !== undefined) li.value = item.n;
    const where = item.page !== null && item.page !== undefined ? `${item.document}, page ${item.page}` : item.document;
    const open = el("button", "link", item.title || item.document);
    open.type = "button";
    open.addEventListener("click", () => showPassage(item));
    li.append(open, el("span", "where", ` (${where})`), el("blockquote", null, item.quote ?? item.text));
    turn.sources.append(li);
    if (i === 0 && item.n === undefined) li.classList.add("nearest");
  });
  const seconds = data.timings && data.timings.total_seconds;
  turn.status.textContent = seconds !== undefined ? `Answered in ${seconds.toFixed(1)} s` : "";
}

function newTurn(question) {
  const article = el("article", "turn");
  const turn = {
    article,
    answer: el("div", "answer"),
    status: el("p", "status", "Searching the documents…"),
    sourcesHeading: el("h3", null, "Sources"),
    sources: el("ol", "sources"),
  };
  turn.sourcesHeading.hidden = true;
  article.append(el("p", "question", question), turn.answer, turn.status, turn.sourcesHeading, turn.sources);
  conversation.append(article);
  return turn;
}

// Read Server-Sent Events from a fetch response (EventSource cannot POST).
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield {event, data: data.join("\n")};
    }
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  askButton.disabled = true;
  input.value = "";
  const turn = newTurn(question);
  let streamed = "";
  let final = null;
  try {
    const response = await fetch("/api/answer/stream", {
      method: "POST",
      headers: apiHeaders({"Content-Type": "application/json"}),
      body: JSON.stringify({question, history}),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const message of readEvents(response)) {
      const data = JSON.parse(message.data);
      if (message.event === "token") {
        if (!streamed) turn.status.textContent = "Writing…";
        streamed += data.text;
        turn.answer.textContent = streamed;
      } else if (message.event === "answer") {
        final = data;
        renderAnswer(turn, data);
      } else if (message.event === "error") {
        throw new Error(data.error.message);
      }
    }
    if (!final) throw new Error("the answer stream ended early");
    history.push({role: "user", content: question}, {role: "assistant", content: final.answer});
  } catch (error) {
    turn.status.textContent = "Error: " + error.message;
    turn.status.classList.add("error");
  } finally {
    askButton.disabled = false;
    input.focus();
  }
});
