// The playground: pick images, see the server's plan and price for each
// before sending, then chat with streaming. The conversation lives in this
// page only; nothing is stored on the server beyond what the API keeps.

import { call, json } from "./api.js";
import { caption, draw } from "./plan.js";
import { finish, readStream, showAssistant, showUser } from "./chat.js";

const $ = (id) => document.getElementById(id);
const PREVIEW = "/v1/chat/completions/input_tokens";

const state = {
  models: [],
  history: [],
  attachments: [],
  controller: null,
  priceTimer: 0,
  priceSeq: 0,
  nextId: 1,
};

function model() {
  return state.models.find((m) => m.id === $("model").value) || state.models[0];
}

function showError(e) {
  const p = $("error");
  p.hidden = !e;
  p.textContent = e ? String(e.message || e) : "";
}

async function loadModels() {
  try {
    const v = await json("/v1/models");
    state.models = v.data || [];
    $("model").replaceChildren(
      ...state.models.map((m) => {
        const o = document.createElement("option");
        o.value = m.id;
        o.textContent = m.status && m.status.value ? `${m.id} (${m.status.value})` : m.id;
        return o;
      }),
    );
    describeModel();
  } catch (e) {
    showError(e);
  }
}

function describeModel() {
  const m = model();
  if (!m) return;
  const caps = m.capabilities || {};
  const parts = [];
  if (m.context_length) parts.push(`${m.context_length} tokens of context`);
  parts.push(caps.vision ? "sees images" : "text only");
  if (caps.images && caps.images.geometry) parts.push(caps.images.geometry);
  $("model-info").textContent = parts.join(" · ");
  replanAll();
}

/// The image part as the API takes it, with the chosen options.
function imagePart(att) {
  const image_url = { url: att.url, detail: $("detail").value };
  if ($("tiling").value) image_url.tiling = $("tiling").value;
  const max = parseInt($("max-tokens").value, 10);
  if (max > 0) image_url.max_tokens = max;
  return { type: "image_url", image_url };
}

function draft() {
  const text = $("prompt").value.trim();
  const content = [];
  if (text) content.push({ type: "text", text });
  for (const a of state.attachments) content.push(imagePart(a));
  return content.length ? { role: "user", content } : null;
}

function addImages(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/")) continue;
    const reader = new FileReader();
    reader.onload = () => {
      const img = new Image();
      img.onload = () => {
        const att = { id: state.nextId++, url: reader.result, name: file.name, img, plan: null };
        state.attachments.push(att);
        renderAttachment(att);
        replan(att);
      };
      img.src = reader.result;
    };
    reader.readAsDataURL(file);
  }
}

function renderAttachment(att) {
  const fig = document.createElement("figure");
  fig.className = "attachment";
  fig.id = `att-${att.id}`;
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${att.name}: plan loading`);
  const cap = document.createElement("figcaption");
  cap.className = "plan-price";
  cap.textContent = "pricing…";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${att.name}`);
  remove.onclick = () => {
    state.attachments = state.attachments.filter((a) => a !== att);
    fig.remove();
    schedulePrice();
  };
  fig.append(canvas, cap, remove);
  $("attachments").append(fig);
}

/// Asks the server how it would plan and price one image, and draws it.
async function replan(att) {
  const fig = $(`att-${att.id}`);
  if (!fig) return;
  const seq = (att.seq = (att.seq || 0) + 1);
  const cap = fig.querySelector("figcaption");
  fig.dataset.state = "pricing";
  try {
    const v = await json(PREVIEW, {
      model: model() && model().id,
      messages: [{ role: "user", content: [imagePart(att)] }],
    });
    if (seq !== att.seq) return;
    att.plan = v.images[0];
    const canvas = fig.querySelector("canvas");
    const tiles = draw(canvas, att.img, att.plan);
    cap.textContent = caption(att.plan);
    canvas.setAttribute("aria-label", `${att.name}: ${cap.textContent}`);
    fig.dataset.tiles = String(tiles);
    fig.dataset.tokens = String(att.plan.tokens);
    fig.dataset.detail = att.plan.detail;
    fig.dataset.state = "priced";
    fig.classList.remove("refused");
  } catch (e) {
    if (seq !== att.seq) return;
    att.plan = null;
    cap.textContent = String(e.message || e);
    fig.classList.add("refused");
    delete fig.dataset.tokens;
  }
  schedulePrice();
}

function replanAll() {
  for (const a of state.attachments) replan(a);
  schedulePrice();
}

function schedulePrice() {
  clearTimeout(state.priceTimer);
  state.priceTimer = setTimeout(priceAll, 200);
}

/// The whole prompt's price (history, text, images) and the context left.
async function priceAll() {
  const out = $("prompt-price");
  const next = draft();
  const messages = next ? [...state.history, next] : state.history;
  const seq = ++state.priceSeq;
  if (!messages.length || !model()) {
    out.textContent = "";
    delete out.dataset.tokens;
    return;
  }
  try {
    const v = await json(PREVIEW, { model: model().id, messages });
    if (seq !== state.priceSeq) return;
    const ctx = model().context_length;
    const left = ctx ? ` · ${ctx - v.input_tokens} of ${ctx} left` : "";
    const img = v.image_tokens ? ` (${v.image_tokens} image)` : "";
    out.textContent = `prompt ${v.input_tokens} tokens${img}${left}`;
    out.dataset.tokens = String(v.input_tokens);
  } catch (e) {
    if (seq === state.priceSeq) out.textContent = String(e.message || e);
  }
}

async function send(event) {
  event.preventDefault();
  if (state.controller) return;
  const message = draft();
  if (!message || !model()) return;
  let tools = null;
  try {
    const text = $("tools").value.trim();
    if (text) tools = JSON.parse(text);
  } catch (e) {
    showError(new Error(`Tools are not valid JSON: ${e.message}`));
    return;
  }
  showError(null);
  showUser($("history"), $("prompt").value.trim(), state.attachments);
  $("empty").hidden = true;
  state.history.push(message);
  state.attachments = [];
  $("attachments").replaceChildren();
  $("prompt").value = "";
  const view = showAssistant($("history"));
  const controller = (state.controller = new AbortController());
  setBusy(true);
  const started = performance.now();
  const body = { model: model().id, messages: state.history, stream: true, stream_options: { include_usage: true } };
  const longest = parseInt($("answer-tokens").value, 10);
  if (longest > 0) body.max_tokens = longest;
  const temperature = parseFloat($("temperature").value);
  if (temperature >= 0) body.temperature = temperature;
  if (tools) {
    body.tools = tools;
    body.tool_choice = $("tool-choice").value;
    body.parallel_tool_calls = $("parallel-tools").checked;
  }
  try {
    const resp = await call("/v1/chat/completions", body, controller.signal);
    const out = await readStream(resp, view, started);
    state.history.push(out.message);
    finish(view, out);
  } catch (e) {
    const stopped = e.name === "AbortError";
    state.history.push({ role: "assistant", content: view.text.textContent });
    finish(view, { finish: stopped ? "stopped" : "error" });
    if (!stopped) showError(e);
  } finally {
    state.controller = null;
    setBusy(false);
    schedulePrice();
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  if (busy) $("stop").focus();
  else $("prompt").focus();
}

function newChat() {
  if (state.controller) state.controller.abort();
  state.history = [];
  $("history").replaceChildren();
  $("empty").hidden = false;
  showError(null);
  schedulePrice();
}

function wire() {
  $("composer").addEventListener("submit", send);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("new-chat").addEventListener("click", newChat);
  $("model").addEventListener("change", describeModel);
  // `change` for the selects (some ways of choosing fire only that).
  $("detail").addEventListener("change", replanAll);
  $("tiling").addEventListener("change", replanAll);
  $("max-tokens").addEventListener("input", replanAll);
  $("prompt").addEventListener("input", schedulePrice);
  $("prompt").addEventListener("change", schedulePrice);
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("file").addEventListener("change", (e) => {
    addImages(e.target.files);
    e.target.value = "";
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    addImages(e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => addImages(e.clipboardData.files));
}

// A fault in the page shows where the user looks, not only in a console.
window.addEventListener("error", (e) => showError(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

wire();
loadModels();
