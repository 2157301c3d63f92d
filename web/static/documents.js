// The documents page: list, upload with progress and per-file results, delete.
"use strict";

const table = document.querySelector("#documents tbody");
const listStatus = document.getElementById("documents-status");
const uploadForm = document.getElementById("upload-form");
const fileInput = document.getElementById("files");
const uploadButton = document.getElementById("upload");
const progress = document.getElementById("upload-progress");
const uploadStatus = document.getElementById("upload-status");
const fileResults = document.getElementById("upload-files");
const collectionInput = document.getElementById("collection");

// The collection this page shows and uploads to; the chat's Options use the same choice.
collectionInput.value = localStorage.getItem("rag-option-collection") || "";
collectionInput.addEventListener("change", () => {
  localStorage.setItem("rag-option-collection", collectionInput.value.trim());
  loadDocuments();
});

function inCollection(url) {
  const name = collectionInput.value.trim();
  return name ? `${url}${url.includes("?") ? "&" : "?"}collection=${encodeURIComponent(name)}` : url;
}

async function loadCollections() {
  try {
    const response = await fetch("/api/collections", {headers: apiHeaders()});
    if (!response.ok) return;
    const names = document.getElementById("collection-names");
    names.replaceChildren(...(await response.json()).map((c) => new Option(`${c.documents} documents`, c.name)));
  } catch (_) { /* a server without collections */ }
}

async function loadDocuments() {
  try {
    const response = await fetch(inCollection("/api/documents"), {headers: apiHeaders()});
    if (!response.ok) throw new Error(await errorMessage(response));
    const documents = await response.json();
    table.replaceChildren();
    for (const doc of documents) {
      const row = el("tr");
      const remove = el("button", "secondary", "Delete");
      remove.type = "button";
      remove.setAttribute("aria-label", `Delete ${doc.title}`);
      remove.addEventListener("click", () => removeDocument(doc));
      const actions = el("td");
      actions.append(remove);
      row.append(el("td", null, doc.title), el("td", "where", doc.id), el("td", null, doc.chunks), actions);
      table.append(row);
    }
    listStatus.textContent = `${documents.length} documents`;
  } catch (error) {
    listStatus.textContent = "Could not list the documents: " + error.message;
  }
}

async function removeDocument(doc) {
  if (!confirm(`Remove "${doc.title}" from the index?`)) return;
  const response = await fetch(inCollection(documentUrl(doc.id)), {method: "DELETE", headers: apiHeaders()});
  listStatus.textContent = response.ok ? `Removed ${doc.title}` : "Could not remove: " + await errorMessage(response);
  await loadDocuments();
}

function showFiles(files) {
  fileResults.replaceChildren();
  for (const file of files) {
    const item = el("li", "file-" + file.status);
    item.append(el("strong", null, file.name), el("span", null, `: ${file.status}`));
    if (file.error) item.append(el("span", "error", ` (${file.error})`));
    fileResults.append(item);
  }
}

async function followJob(job) {
  while (job.status === "queued" || job.status === "running") {
    uploadStatus.textContent = job.files_total
      ? `Indexing: ${job.files_done} of ${job.files_total} files, ${job.chunks_embedded} of ${job.chunks_total} chunks embedded…`
      : "Indexing…";
    showFiles(job.files);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const response = await fetch(inCollection(`/api/jobs/${encodeURIComponent(job.id)}`), {headers: apiHeaders()});
    if (!response.ok) throw new Error(await errorMessage(response));
    job = await response.json();
  }
  showFiles(job.files);
  const failed = job.files.filter((f) => f.status === "failed" || f.status === "rejected").length;
  uploadStatus.textContent = job.status === "failed" ? "Indexing failed: " + job.error
    : failed ? `Done, ${failed} of ${job.files.length} files not indexed.` : "Done.";
}

uploadForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!fileInput.files.length) return;
  const body = new FormData();
  for (const file of fileInput.files) body.append("files", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", inCollection("/api/documents"));
  for (const [name, value] of Object.entries(apiHeaders())) request.setRequestHeader(name, value);
  request.responseType = "json";
  uploadButton.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  uploadStatus.textContent = "Uploading…";
  fileResults.replaceChildren();
  request.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total;
  });
  request.addEventListener("loadend", async () => {
    progress.value = 100;
    try {
      const data = request.response;
      if (request.status !== 202) {
        throw new Error(data && data.error ? data.error.message : `upload failed (${request.status})`);
      }
      await followJob(data);
      uploadForm.reset();
    } catch (error) {
      uploadStatus.textContent = "Error: " + error.message;
    } finally {
      uploadButton.disabled = false;
      progress.hidden = true;
      await loadDocuments();
      await loadCollections();
    }
  });
  request.send(body);
});

loadCollections();
loadDocuments();
