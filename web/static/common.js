// Helpers shared by the pages. Text from documents or the model only ever goes in through textContent.
"use strict";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const apiKeyInput = document.getElementById("api-key");
apiKeyInput.value = localStorage.getItem("rag-api-key") || "";
apiKeyInput.addEventListener("change", () => localStorage.setItem("rag-api-key", apiKeyInput.value.trim()));

function apiHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  const key = localStorage.getItem("rag-api-key");
  if (key) headers["X-API-Key"] = key;
  return headers;
}

// Document ids are paths: keep their slashes, escape everything else.
function documentUrl(id) {
  return "/api/documents/" + id.split("/").map(encodeURIComponent).join("/");
}

async function errorMessage(response) {
  try {
    const data = await response.json();
    if (data.error) return data.error.message;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}
