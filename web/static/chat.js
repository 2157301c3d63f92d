// The chat: stored conversations in a sidebar, answers streamed from /api/answer/stream with their steps
// and a Stop button, Markdown rendered safely (markdown.js), unsupported sentences marked, and cited
// passages opened in their document (viewer.js).
"use strict";

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const askButton = document.getElementById("ask");
const stopButton = document.getElementById("stop");
const conversation = document.getElementById("conversation");
const conversationList = document.getElementById("conversation-list");
const conversationTitle = document.getElementById("conversation-title");
const conversationActions = document.getElementById("conversation-actions");
const renameForm = document.getElementById("rename-form");
const renameInput = document.getElementById("rename-title");
const options = {
  k: document.getElementById("option-k"),
  retrieval_mode: document.getElementById("option-retrieval"),
  grounding_mode: document.getElementById("option-grounding"),
  collection: document.getElementById("option-collection"),
};
let conversationId = null;
let running = null;  // the AbortController of the answer being written

const STEPS = {
  sending: () => "Sending the question",
  queued: (s) => `Waiting for the model: ${s.ahead} ${s.ahead === 1 ? "answer" : "answers"} ahead`,
  rewriting: () => "Reading the conversation to understand the follow-up",
  searching: () => "Searching the documents",
  reading: (s) => `Reading ${s.passages} ${s.passages === 1 ? "passage" : "passages"}`,
  writing: () => "Writing the answer",
  checking: () => "Checking each sentence against its sources",
};

// Options

for (const [name, control] of Object.entries(options)) {
  control.value = localStorage.getItem(`rag-option-${name}`) || "";
  control.addEventListener("change", () => localStorage.setItem(`rag-option-${name}`, control.value));
}

function chosenOptions() {
  const chosen = {};
  const k = Number.parseInt(options.k.value, 10);
  if (k >= 1 && k <= 50) chosen.k = k;
  for (const name of ["retrieval_mode", "grounding_mode", "collection"]) {
    if (options[name].value) chosen[name] = options[name].value;
  }
  return chosen;
}

async function loadCollections() {
  try {
    const response = await fetch("/api/collections", {headers: apiHeaders()});
    if (!response.ok) return;
    const collections = await response.json();
    if (!Array.isArray(collections) || (collections.length < 2 && !options.collection.value)) return;
    const saved = localStorage.getItem("rag-option-collection") || "";
    for (const c of collections) {
      if (!c.default) options.collection.append(new Option(c.name, c.name));
    }
    options.collection.value = collections.some((c) => c.name === saved && !c.default) ? saved : "";
    document.getElementById("option-collection-row").hidden = false;
  } catch (_) { /* a server without collections */ }
}

// Conversations

function setConversation(id, title) {
  conversationId = id;
  conversationTitle.textContent = title || "New conversation";
  conversationActions.hidden = !id;
  renameForm.hidden = true;
  const url = new URL(window.location.href);
  if (id) {
    url.searchParams.set("c", id);
    localStorage.setItem("rag-conversation", id);
  } else {
    url.searchParams.delete("c");
    localStorage.removeItem("rag-conversation");
  }
  window.history.replaceState(null, "", url);
  for (const button of conversationList.querySelectorAll("button")) {
    if (button.dataset.id === id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function loadConversations() {
  const status = document.getElementById("conversation-list-status");
  try {
    const response = await fetch("/api/conversations", {headers: apiHeaders()});
    if (!response.ok) throw new Error(await errorMessage(response));
    const listed = await response.json();
    conversationList.replaceChildren(...listed.map((c) => {
      const li = el("li");
      const open = el("button", "conversation-link", c.title);
      open.type = "button";
      open.dataset.id = c.id;
      if (c.id === conversationId) open.setAttribute("aria-current", "true");
      open.addEventListener("click", () => openConversation(c.id));
      li.append(open, el("span", "when", new Date(c.updated * 1000).toLocaleString()));
      return li;
    }));
    status.textContent = listed.length ? "" : "None yet: ask a question to start one.";
  } catch (error) {
    status.textContent = "Could not list the conversations: " + error.message;
  }
}

async function openConversation(id) {
  if (running) return;
  try {
    const response = await fetch(`/api/conversations/${encodeURIComponent(id)}`, {headers: apiHeaders()});
    if (response.status === 404) {  // deleted meanwhile, e.g. from another tab
      setConversation(null);
      return;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    const stored = await response.json();
    conversation.replaceChildren();
    setConversation(stored.id, stored.title);
    for (let i = 0; i < stored.messages.length; i += 2) {
      const question = stored.messages[i];
      const reply = stored.messages[i + 1];
      const turn = newTurn(question.content);
      turn.stepsBox.hidden = true;
      if (reply && reply.answer) {
        renderAnswer(turn, reply.answer);
      } else if (reply) {
        renderMarkdown(turn.answer, reply.content);
        turn.status.textContent = "Stopped before the answer was finished";
      }
    }
  } catch (error) {
    setConversation(null);
    conversation.replaceChildren(el("p", "error", "Could not open the conversation: " + error.message));
  }
}

document.getElementById("new-conversation").addEventListener("click", () => {
  if (running) running.abort();
  conversation.replaceChildren();
  setConversation(null);
  input.value = "";
  input.focus();
});

document.getElementById("rename-conversation").addEventListener("click", () => {
  renameForm.hidden = false;
  renameInput.value = conversationTitle.textContent;
  renameInput.focus();
  renameInput.select();
});

document.getElementById("rename-cancel").addEventListener("click", () => { renameForm.hidden = true; });

renameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch(`/api/conversations/${encodeURIComponent(conversationId)}`, {
    method: "PATCH",
    headers: apiHeaders({"Content-Type": "application/json"}),
    body: JSON.stringify({title: renameInput.value}),
  });
  if (response.ok) {
    setConversation(conversationId, (await response.json()).title);
    await loadConversations();
  } else {
    conversationTitle.textContent += ` (rename failed: ${await errorMessage(response)})`;
    renameForm.hidden = true;
  }
});

document.getElementById("delete-conversation").addEventListener("click", async () => {
  if (!window.confirm(`Delete the conversation “${conversationTitle.textContent}”?`)) return;
  const response = await fetch(`/api/conversations/${encodeURIComponent(conversationId)}`, {
    method: "DELETE",
    headers: apiHeaders(),
  });
  if (response.ok || response.status === 404) {
    conversation.replaceChildren();
    setConversation(null);
    await loadConversations();
  }
});

for (const [id, format, suffix] of [["export-markdown", "markdown", "md"], ["export-json", "json", "json"]]) {
  document.getElementById(id).addEventListener("click", () => {
    const url = `/api/conversations/${encodeURIComponent(conversationId)}/export?format=${format}`;
    downloadFile(url, `${conversationTitle.textContent}.${suffix}`);
  });
}

// Answers

function citeButton(n, citation) {
  const button = el("button", "cite", `[${n}]`);
  button.type = "button";
  if (citation) {
    button.setAttribute("aria-label", `Source ${n}: ${citation.title}`);
    button.addEventListener("click", () => showSource(citation));
  } else {
    button.disabled = true;
    button.title = "This number matches no passage given to the model";
  }
  return button;
}

// A citation marker, as rag/text.py's CITATION reads it: [1], [1, 2] or [1; 3] (change both together).
const CITATION = /\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]/g;

const SPACED_CITATION = new RegExp(`\\s*${CITATION.source}`, "g");

function citedNumbers(text) {
  return [...text.matchAll(CITATION)].flatMap((m) => m[1].split(/[,;]/).map(Number));
}

// Citation markers under `root` turned into buttons, one per cited number, that open the cited passage.
function linkCitations(root, byNumber) {
  replaceInText(root, CITATION, (match) => citedNumbers(match[0]).map((n) => citeButton(n, byNumber.get(n))));
}

function markSentence(span, sentence) {
  if (sentence.attributed) {
    span.classList.add("attributed");
    span.title = "The support checker added a citation: the model left this sentence uncited, or cited a passage that does not support it";
  }
  if (sentence.supported === false) {
    span.classList.add("unsupported");
    const issues = sentence.issues || [];
    span.title = issues.length ? `Not supported: ${issues.join("; ")}` : "Not supported by the passages it cites";
    span.append(el("span", "flag", " ⚠ unsupported"));
  } else if (sentence.supported === true) {
    span.classList.add("supported");
  }
}

// The answer's text: sentence by sentence (inline Markdown, support marks) when it is prose, else as
// Markdown blocks whose paragraphs or items holding an unsupported sentence are marked.
function renderAnswerText(box, data, byNumber) {
  const sentences = Array.isArray(data.sentences) ? data.sentences : [];
  if (sentences.length && !hasMarkdownBlocks(data.answer)) {
    const paragraph = el("p");
    sentences.forEach((sentence, i) => {
      const span = el("span", "sentence");
      span.append(inlineMarkdownFragment(sentence.text));
      linkCitations(span, byNumber);
      const shown = new Set(citedNumbers(sentence.text));
      for (const n of sentence.citations || []) if (!shown.has(n)) span.append(citeButton(n, byNumber.get(n)));
      markSentence(span, sentence);
      paragraph.append(span);
      if (i < sentences.length - 1) paragraph.append(document.createTextNode(" "));
    });
    box.append(paragraph);
    return;
  }
  const body = renderMarkdown(el("div", "markdown"), data.answer);
  for (const sentence of sentences.filter((s) => s.supported === false)) flagInBlocks(body, sentence);
  linkCitations(body, byNumber);
  box.append(body);
}

// An unsupported sentence of a Markdown answer: a flag where its text ends in the rendered blocks (its
// last line, as the Markdown around it is gone); the whole block is marked when that cannot be found.
function flagInBlocks(body, sentence) {
  const lastLine = sentence.text.split("\n").filter((line) => line.trim()).pop() || "";
  const plain = lastLine.replace(SPACED_CITATION, "").replace(/[*_`#>|]|^\s*([-+]|\d+[.)])\s/g, "").replace(/\s+/g, " ").trim()
    .replace(/[.!?;:,]+$/, "");  // the answer's citation may stand before the full stop
  if (!plain) return;
  const head = plain.slice(0, 30);
  const tail = plain.slice(-15);
  for (const block of body.querySelectorAll("p, li, td, th")) {
    const text = block.textContent.replace(/\s/g, " ");
    const start = text.indexOf(head);
    if (start < 0) continue;
    const end = text.indexOf(tail, start);
    const flag = el("span", "flag", " ⚠ unsupported");
    const issues = sentence.issues || [];
    flag.title = issues.length ? `Not supported: ${issues.join("; ")}` : "Not supported by the passages it cites";
    if (end < 0 || !insertAt(block, end + tail.length, flag)) markSentence(block, sentence);
    return;
  }
}

// Insert `node` at a character offset of `block`'s text; false when the offset lies in no text node.
function insertAt(block, offset, node) {
  const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
  let seen = 0;
  while (walker.nextNode()) {
    const text = walker.currentNode;
    if (offset < seen + text.length) {
      text.splitText(offset - seen).before(node);
      return true;
    }
    if (offset === seen + text.length) {  // at the end of a text: after the emphasis or link it closes
      let end = text;
      while (end.parentNode !== block && !end.nextSibling) end = end.parentNode;
      end.after(node);
      return true;
    }
    seen += text.length;
  }
  return false;
}

function renderAnswer(turn, data, collection) {
  for (const item of [...data.citations, ...(data.passages || [])]) if (collection) item.collection = collection;
  const byNumber = new Map(data.citations.map((c) => [c.n, c]));
  const box = turn.answer;
  box.replaceChildren();
  box.classList.toggle("abstained", data.abstained);
  if (data.abstained) box.append(el("strong", "abstain-label", "Not in the documents: "));
  renderAnswerText(box, data, byNumber);
  turn.sources.replaceChildren();
  const headingOf = new Map((data.passages || []).map((p) => [`${p.document}:${p.start}`, p.heading]));
  const nearest = data.abstained && !data.citations.length;
  const listed = nearest ? (data.passages || []).slice(0, 3) : data.citations;
  if (listed.length) {
    turn.sourcesHeading.textContent = nearest ? "Nearest passages" : "Sources";
    turn.sourcesHeading.hidden = false;
  }
  listed.forEach((item, i) => {
    const li = el("li");
    if (item.n !== undefined) li.value = item.n;
    const pages = pageLabel(item);
    const open = el("button", "link", item.title || item.document);
    open.type = "button";
    open.addEventListener("click", () => showSource(item));
    const passage = renderMarkdown(el("div", "passage"), item.quote ?? item.text);
    li.append(open, el("span", "where", ` (${pages ? `${item.document}, ${pages}` : item.document})`));
    const heading = item.heading ?? headingOf.get(`${item.document}:${item.start}`);
    if (heading) li.append(el("span", "heading-path", heading));  // context, shown apart from the text
    li.append(passage);
    turn.sources.append(li);
    if (i === 0 && item.n === undefined) li.classList.add("nearest");
  });
  turn.copy.hidden = false;
  turn.copy.onclick = () => copyText(data.answer, turn.copy, "Copy answer");
  const seconds = data.timings && data.timings.total_seconds;
  turn.status.textContent = seconds !== undefined ? `Answered in ${seconds.toFixed(1)} s` : "";
  renderAssessment(turn, data);
}

// How far to trust the answer: its calibrated confidence beside the status line, and below the answer
// a note when it was recovered from a false refusal and its limitations (older stored answers lack them).
function renderAssessment(turn, data) {
  const confidence = data.confidence;
  if (typeof confidence === "number" && Number.isFinite(confidence)) {
    const label = el("span", "confidence", `Confidence ${Math.round(confidence * 100)} %`);
    label.title = "The calibrated probability that this answer is right and supported by the passages it cites";
    if (turn.status.textContent) turn.status.append(document.createTextNode(" · "));
    turn.status.append(label);
  }
  if (data.recovered) {
    turn.answer.append(el("p", "answer-note recovered", "Recovered from a refusal: answered from the passage"));
  }
  const limitations = Array.isArray(data.limitations) ? data.limitations.filter((x) => x) : [];
  if (limitations.length) {
    turn.answer.append(el("p", "answer-note limitations", `Limitations: ${limitations.join("; ")}`));
  }
}

function newTurn(question) {
  const article = el("article", "turn");
  const turn = {
    article,
    answer: el("div", "answer"),
    stepsBox: el("details", "steps-box"),
    steps: el("ol", "steps"),
    elapsed: el("span", "elapsed", "0.0 s"),
    status: el("p", "status"),
    copy: el("button", "secondary small copy-answer", "Copy answer"),
    sourcesHeading: el("h3", null, "Sources"),
    sources: el("ol", "sources"),
  };
  turn.copy.type = "button";
  turn.copy.hidden = true;
  turn.elapsed.setAttribute("aria-hidden", "true");  // ticks ten times a second: not for screen readers
  turn.sourcesHeading.hidden = true;
  const summary = el("summary", null, "Steps ");
  summary.append(turn.elapsed);
  turn.stepsBox.open = true;
  turn.stepsBox.append(summary, turn.steps);
  const footer = el("div", "turn-footer");
  footer.append(turn.status, turn.copy);
  article.append(el("p", "question", question), turn.stepsBox, turn.answer, footer, turn.sourcesHeading, turn.sources);
  conversation.append(article);
  return turn;
}

// The step that began: the one before it is done; a repeated step (queue position) is updated in place.
function showStep(turn, status) {
  const label = (STEPS[status.step] || (() => status.step))(status);
  const current = turn.steps.lastElementChild;
  if (current && current.dataset.step === status.step) {
    current.querySelector(".label").textContent = label;
    return;
  }
  if (current) current.classList.replace("running", "done");
  const li = el("li", "running");
  li.dataset.step = status.step;
  li.append(el("span", "label", label));
  turn.steps.append(li);
}

function finishSteps(turn, outcome) {
  const current = turn.steps.lastElementChild;
  if (current) current.classList.replace("running", outcome);
  turn.stepsBox.open = false;
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

async function startConversation(question) {
  const response = await fetch("/api/conversations", {
    method: "POST",
    headers: apiHeaders({"Content-Type": "application/json"}),
    body: JSON.stringify({title: question}),
  });
  if (!response.ok) throw new Error(await errorMessage(response));
  const created = await response.json();
  setConversation(created.id, created.title);
}

async function askQuestion(question) {
  const turn = newTurn(question);
  const started = performance.now();
  const timer = setInterval(() => {
    turn.elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  const controller = new AbortController();
  running = controller;
  turn.article.setAttribute("aria-busy", "true");  // screen readers read the turn once it is complete
  askButton.hidden = true;
  stopButton.hidden = false;
  showStep(turn, {step: "sending"});
  let streamed = "";
  let final = null;
  let painting = false;
  const chosen = chosenOptions();
  try {
    if (!conversationId) {
      await startConversation(question);
      loadConversations();
    }
    const response = await fetch("/api/answer/stream", {
      method: "POST",
      headers: apiHeaders({"Content-Type": "application/json"}),
      body: JSON.stringify({question, conversation_id: conversationId, ...chosen}),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const message of readEvents(response)) {
      const data = JSON.parse(message.data);
      if (message.event === "status") {
        showStep(turn, data);
      } else if (message.event === "token") {
        streamed += data.text;
        if (!painting) {  // repaint at most once a frame
          painting = true;
          requestAnimationFrame(() => { painting = false; if (!final) renderMarkdown(turn.answer, streamed); });
        }
      } else if (message.event === "answer") {
        final = data;
        finishSteps(turn, "done");
        renderAnswer(turn, data, chosen.collection);
      } else if (message.event === "error") {
        throw new Error(data.error.message);
      }
    }
    if (!final) throw new Error("the answer stream ended early");
  } catch (error) {
    if (controller.signal.aborted) {
      finishSteps(turn, "stopped");
      renderMarkdown(turn.answer, streamed);
      turn.status.textContent = `Stopped after ${((performance.now() - started) / 1000).toFixed(1)} s`;
    } else {
      finishSteps(turn, "failed");
      turn.status.textContent = "Error: " + error.message;
      turn.status.classList.add("error");
    }
  } finally {
    clearInterval(timer);
    turn.article.removeAttribute("aria-busy");
    turn.elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    running = null;
    askButton.hidden = false;
    stopButton.hidden = true;
    input.focus();
    loadConversations();
  }
}

stopButton.addEventListener("click", () => { if (running) running.abort(); });

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question || running) return;
  input.value = "";
  askQuestion(question);
});

// Enter sends; Shift+Enter (or Enter while composing an accented letter) adds a line.
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

loadCollections();
loadConversations();
{
  const wanted = new URL(window.location.href).searchParams.get("c") || localStorage.getItem("rag-conversation");
  if (wanted) openConversation(wanted);
}
