// The source viewer: a cited passage in its document. PDFs show their pages (pdf.js, vendored) with the
// cited span highlighted; other formats show the document's text with the span marked. Both offer the
// original file for download.
"use strict";

const viewer = document.getElementById("viewer");
const viewerTitle = document.getElementById("viewer-title");
const viewerWhere = document.getElementById("viewer-where");
const viewerText = document.getElementById("viewer-text");
const viewerPages = document.getElementById("viewer-pages");
const viewerDownload = document.getElementById("viewer-download");
const PDF_PAGES_SHOWN = 3;
let pdfjs = null;

document.getElementById("viewer-close").addEventListener("click", () => viewer.close());

function fileUrl(item) {
  const query = item.collection ? `?collection=${encodeURIComponent(item.collection)}` : "";
  return `${documentUrl(item.document)}/file${query}`;
}

// Downloads go through fetch so the API key travels with them; the link still works without a key.
viewerDownload.addEventListener("click", async (event) => {
  if (!localStorage.getItem("rag-api-key")) return;
  event.preventDefault();
  await downloadFile(viewerDownload.href, viewerDownload.dataset.filename);
});

async function downloadFile(url, filename) {
  const response = await fetch(url, {headers: apiHeaders()});
  if (!response.ok) throw new Error(await errorMessage(response));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function pageLabel(item) {
  const first = item.page_start ?? item.page;
  const last = item.page_end ?? item.page;
  if (first === null || first === undefined) return "";
  if (last !== first) {
    return item.page !== null && item.page !== undefined && item.page !== first
      ? `pages ${first}–${last} (quote on page ${item.page})`
      : `pages ${first}–${last}`;
  }
  return `page ${first}`;
}

// Open a passage (citation or nearest passage) in its document.
async function showSource(item) {
  viewerTitle.textContent = item.title || item.document;
  const pages = pageLabel(item);
  viewerWhere.textContent = pages ? `${item.document}, ${pages}` : item.document;
  viewerDownload.href = fileUrl(item);
  viewerDownload.dataset.filename = item.document.split("/").pop();
  viewerDownload.setAttribute("download", viewerDownload.dataset.filename);
  viewerPages.replaceChildren();
  viewerPages.hidden = true;
  viewerText.hidden = false;
  viewerText.replaceChildren(el("span", "status", "Loading…"));
  if (!viewer.open) viewer.showModal();
  if (/\.pdf$/i.test(item.document) && pages) {
    try {
      await showPdf(item);
      return;
    } catch (error) {
      viewerPages.hidden = true;
      viewerText.hidden = false;
      await showText(item, el("p", "status", `The PDF could not be shown (${error.message}); its text:`));
      return;
    }
  }
  await showText(item);
}

async function showText(item, note) {
  const url = `${documentUrl(item.document)}/context?start=${item.start}&end=${item.end}&window=1500`
    + (item.collection ? `&collection=${encodeURIComponent(item.collection)}` : "");
  try {
    const response = await fetch(url, {headers: apiHeaders()});
    if (!response.ok) throw new Error(await errorMessage(response));
    const ctx = await response.json();
    const mark = el("mark", null, ctx.passage);
    viewerText.replaceChildren(
      ...(note ? [note] : []),
      document.createTextNode((ctx.context_start > 0 ? "…" : "") + ctx.before),
      mark,
      document.createTextNode(ctx.after + (ctx.context_end < ctx.length ? "…" : "")),
    );
    mark.scrollIntoView({block: "center"});
  } catch (error) {
    viewerText.replaceChildren(el("span", "error", "Could not load the passage: " + error.message));
  }
}

async function loadPdfjs() {
  if (!pdfjs) {
    pdfjs = await import("/static/vendor/pdf.min.mjs");
    pdfjs.GlobalWorkerOptions.workerSrc = "/static/vendor/pdf.worker.min.mjs";
  }
  return pdfjs;
}

// Letters and digits only, lower-cased, with the offset in `text` of each kept character.
function normalized(text) {
  const chars = [];
  const offsets = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (/[\p{L}\p{N}]/u.test(c)) {
      chars.push(c.toLowerCase());
      offsets.push(i);
    }
  }
  return {text: chars.join(""), offsets};
}

// Where the quote lies in a page's text (normalised offsets), or null: its start on the page where it
// begins, its end on the page where it ends, all of a page in between.
function quoteRange(page, quote) {
  const probe = Math.min(40, quote.length);
  if (!probe) return null;
  const head = page.indexOf(quote.slice(0, probe));
  if (head >= 0) return [head, Math.min(page.length, head + quote.length)];
  const tail = page.indexOf(quote.slice(quote.length - probe));
  if (tail >= 0) return [Math.max(0, tail + probe - quote.length), tail + probe];
  return null;
}

async function showPdf(item) {
  const lib = await loadPdfjs();
  const response = await fetch(fileUrl(item), {headers: apiHeaders()});
  if (!response.ok) throw new Error(await errorMessage(response));
  const pdf = await lib.getDocument({data: new Uint8Array(await response.arrayBuffer()), isEvalSupported: false}).promise;
  const first = item.page_start ?? item.page;
  const last = Math.min(item.page_end ?? item.page, first + PDF_PAGES_SHOWN - 1, pdf.numPages);
  const quote = normalized(item.quote ?? item.text ?? "").text;
  viewerText.hidden = true;
  viewerPages.hidden = false;
  let target = null;
  for (let number = first; number <= last; number++) {
    const {figure, marked} = await renderPdfPage(lib, pdf, number, quote);
    viewerPages.append(figure);
    if (marked && (!target || number === item.page)) target = marked;
  }
  (target || viewerPages.firstChild).scrollIntoView({block: "center"});
}

async function renderPdfPage(lib, pdf, number, quote) {
  const page = await pdf.getPage(number);
  const width = Math.max(300, viewerPages.clientWidth - 8);
  const viewport = page.getViewport({scale: width / page.getViewport({scale: 1}).width});
  const figure = el("figure", "pdf-page");
  const label = el("figcaption", "where", `Page ${number}`);
  const sheet = el("div", "pdf-sheet");
  sheet.style.width = `${viewport.width}px`;
  sheet.style.height = `${viewport.height}px`;
  sheet.style.setProperty("--total-scale-factor", String(viewport.scale));
  const canvas = document.createElement("canvas");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `Page ${number} of ${viewerTitle.textContent}`);
  const layer = el("div", "textLayer");
  sheet.append(canvas, layer);
  figure.append(label, sheet);
  await page.render({
    canvas, canvasContext: canvas.getContext("2d"), viewport, transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : null,
  }).promise;
  const textLayer = new lib.TextLayer({textContentSource: await page.getTextContent(), container: layer, viewport});
  await textLayer.render();
  return {figure, marked: highlightQuote(textLayer, quote)};
}

// Mark the text-layer pieces of the page that hold the quote; returns the first marked piece.
function highlightQuote(textLayer, quote) {
  const strings = textLayer.textContentItemsStr;
  const divs = textLayer.textDivs;
  const starts = [];
  let joined = "";
  for (const str of strings) {
    starts.push(joined.length);
    joined += normalized(str).text;
  }
  const range = quoteRange(joined, quote);
  if (!range) return null;
  let firstMarked = null;
  strings.forEach((str, i) => {
    const start = starts[i];
    const end = i + 1 < starts.length ? starts[i + 1] : joined.length;
    if (end > range[0] && start < range[1] && divs[i]) {
      divs[i].classList.add("cited");
      firstMarked = firstMarked || divs[i];
    }
  });
  return firstMarked;
}
