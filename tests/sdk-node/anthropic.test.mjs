// The official Anthropic TypeScript SDK (@anthropic-ai/sdk), unchanged,
// against a real Tessera on the generated tiny fixtures (run after
// `cargo build`; uses target/debug/tessera or TESSERA_BIN).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { deflateSync, crc32 } from "node:zlib";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";

const root = path.resolve(import.meta.dirname, "../..");
const bin = process.env.TESSERA_BIN ?? path.join(root, "target/debug/tessera");
const fixtures = path.join(root, "target/sdk-fixtures");

function png(w, h, [r, g, b]) {
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3).map((_, i) => [r, g, b][i % 3])]);
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])) >>> 0);
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(Array(h).fill(row)))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const image = {
  type: "image",
  source: { type: "base64", media_type: "image/png", data: png(32, 32, [200, 20, 20]).toString("base64") },
};

let server;
let client;

before(async () => {
  execFileSync(bin, ["fixtures", fixtures]);
  server = spawn(bin, [
    "--model", path.join(fixtures, "tiny-text.gguf"),
    "--mmproj", path.join(fixtures, "tiny-mmproj-mlp.gguf"),
    "--port", "0", "-t", "2", "--api-key", "sekrit",
  ], { env: { ...process.env, TESSERA_LOG: "info", NO_COLOR: "1" } });
  const base = await new Promise((resolve, reject) => {
    let log = "";
    let url;
    server.stdout.on("data", (d) => {
      log += d;
      url ??= log.match(/listening on (http:\/\/[0-9.:]+)/)?.[1];
      if (url && log.includes("model ready")) resolve(url);
    });
    server.stderr.on("data", (d) => (log += d));
    server.on("exit", () => reject(new Error("server did not start:\n" + log)));
  });
  client = new Anthropic({ baseURL: base, apiKey: "sekrit", maxRetries: 0 });
});

after(() => server?.kill());

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
