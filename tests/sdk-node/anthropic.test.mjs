// The official Anthropic TypeScript SDK (@anthropic-ai/sdk), unchanged,
// against a real Tessera on the generated tiny fixtures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { png, startServer } from "./server.mjs";

const image = {
  type: "image",
  source: { type: "base64", media_type: "image/png", data: png(32, 32, [200, 20, 20]).toString("base64") },
};

let server;
let client;

before(async () => {
  server = await startServer("--api-key", "sekrit");
  client = new Anthropic({ baseURL: server.base, apiKey: "sekrit", maxRetries: 0 });
});

after(() => server?.process.kill());

test("create with an image, exact usage", async () => {
  const messages = [{ role: "user", content: [{ type: "text", text: "What is this?" }, image] }];
  const m = await client.messages.create({ model: "tiny-text", max_tokens: 6, temperature: 0, messages });
  assert.equal(m.type, "message");
  assert.equal(m.stop_reason, "max_tokens");
  assert.equal(m.usage.output_tokens, 6);
  const counted = await client.messages.countTokens({ model: "tiny-text", messages });
  assert.equal(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0), counted.input_tokens);
});

test("stream puts the same message together", async () => {
  const body = { model: "tiny-text", max_tokens: 8, temperature: 0, messages: [{ role: "user", content: "Hello" }] };
  const whole = await client.messages.create(body);
  let text = "";
  const stream = client.messages.stream(body).on("text", (t) => (text += t));
  const final = await stream.finalMessage();
  assert.equal(text, final.content[0].text);
  assert.equal(text, whole.content[0].text);
  assert.equal(final.usage.output_tokens, 8);
});

test("a forced tool call, then a tool result with an image", async () => {
  const tools = [{
    name: "get_weather",
    input_schema: { type: "object", properties: { city: { type: "string", enum: ["Paris"] } }, required: ["city"], additionalProperties: false },
  }];
  const ask = [{ role: "user", content: "Weather in Paris?" }];
  const m = await client.messages.create({
    model: "tiny-text", max_tokens: 200, temperature: 0, tools, messages: ask,
    tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
  });
  assert.equal(m.stop_reason, "tool_use");
  const call = m.content.find((b) => b.type === "tool_use");
  assert.deepEqual(call.input, { city: "Paris" });
  const r = await client.messages.create({
    model: "tiny-text", max_tokens: 4, tools, messages: [...ask,
      { role: "assistant", content: [call] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: [{ type: "text", text: "18 C" }, image] }] }],
  });
  assert.equal(r.type, "message");
});

test("errors are the SDK's typed errors", async () => {
  const bad = new Anthropic({ baseURL: client.baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(
    bad.messages.create({ model: "tiny-text", max_tokens: 2, messages: [{ role: "user", content: "hi" }] }),
    Anthropic.AuthenticationError,
  );
  await assert.rejects(
    client.messages.create({ model: "tiny-text", messages: [{ role: "user", content: "hi" }] }),
    Anthropic.BadRequestError,
  );
});
