// The conversation as the page shows it: user turns with their images, and
// assistant turns filled from the stream (reasoning folded, tool calls as
// such, usage and time to first token at the end).

import { events } from "./api.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/// Appends the user's turn: its text and its images inline.
export function showUser(history, text, images) {
  const li = el("li", "turn user");
  li.append(el("span", "who", "You"));
  if (text) li.append(el("p", "text", text));
  for (const img of images) {
    const i = el("img", "sent");
    i.src = img.url;
    i.alt = img.name || "image";
    li.append(i);
  }
  history.append(li);
  li.scrollIntoView({ block: "end" });
}

/// An empty assistant turn, filled as the answer streams in.
export function showAssistant(history) {
  const li = el("li", "turn assistant");
  li.setAttribute("aria-busy", "true");
  li.append(el("span", "who", "Model"));
  const reasoning = el("details", "reasoning");
  reasoning.hidden = true;
  reasoning.append(el("summary", null, "Reasoning"), el("div", "thinking"));
  const text = el("p", "text answer");
  const tools = el("div", "tools");
  const meta = el("p", "meta muted");
  li.append(reasoning, text, tools, meta);
  history.append(li);
  return { li, reasoning, text, tools, meta };
}

/// Reads a chat completion stream into `view`; returns the assistant
/// message for the history and what the footer says.
export async function readStream(resp, view, started) {
  let content = "";
  let thinking = "";
  let ttft = null;
  let usage = null;
  let finish = null;
  const calls = [];
  for await (const chunk of events(resp)) {
    if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices && chunk.choices[0];
    if (!choice) continue;
    const d = choice.delta || {};
    const piece = d.content || d.reasoning_content || d.tool_calls;
    if (piece && ttft === null) ttft = performance.now() - started;
    if (d.reasoning_content) {
      thinking += d.reasoning_content;
      view.reasoning.hidden = false;
      view.reasoning.querySelector(".thinking").textContent = thinking;
    }
    if (d.content) {
      content += d.content;
      view.text.textContent = content;
    }
    for (const t of d.tool_calls || []) addCall(calls, t);
    if (d.tool_calls) showCalls(view.tools, calls);
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  const message = { role: "assistant", content };
  if (calls.length) message.tool_calls = calls;
  return { message, usage, ttft, finish };
}

function addCall(calls, t) {
  const i = t.index || 0;
  calls[i] = calls[i] || { id: t.id, type: "function", function: { name: "", arguments: "" } };
  if (t.id) calls[i].id = t.id;
  if (t.function && t.function.name) calls[i].function.name += t.function.name;
  if (t.function && t.function.arguments) calls[i].function.arguments += t.function.arguments;
}

function showCalls(box, calls) {
  box.replaceChildren(
    ...calls.map((c) => el("pre", "call", `tool call: ${c.function.name}(${c.function.arguments})`)),
  );
}

/// The footer: usage, time to first token, and how the answer ended.
export function finish(view, out) {
  view.li.removeAttribute("aria-busy");
  const parts = [];
  if (out.usage) {
    const u = out.usage;
    const img = u.prompt_tokens_details && u.prompt_tokens_details.image_tokens;
    parts.push(`prompt ${u.prompt_tokens}${img ? ` (${img} image)` : ""} · completion ${u.completion_tokens}`);
  }
  if (out.ttft !== null && out.ttft !== undefined) parts.push(`first token ${Math.round(out.ttft)} ms`);
  if (out.finish) parts.push(`ended: ${out.finish}`);
  view.meta.textContent = parts.join(" · ");
  view.li.dataset.finish = out.finish || "";
}
