// The Vercel AI SDK 6 (`ai` with `@ai-sdk/openai` and
// `@ai-sdk/openai-compatible`), unchanged, against a real Tessera: a
// conversation's second turn through the Responses API (earlier output sent
// back by reference to the stored response), and tools with a typed final
// answer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText, tool, Output, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { z } from "zod";
import { startServer } from "./server.mjs";

let server;
before(async () => (server = await startServer()));
after(() => server?.process.kill());

test("a second turn through the Responses API (item references)", async () => {
  const openai = createOpenAI({ baseURL: server.base + "/v1", apiKey: "x" });
  const model = openai("tiny-text"); // the Responses API, store: true
  const first = await generateText({ model, prompt: "Hello", maxOutputTokens: 4, temperature: 0 });
  assert.ok(first.text.length > 0);
  const messages = [{ role: "user", content: "Hello" }, ...first.response.messages, { role: "user", content: "And then?" }];
  const second = await generateText({ model, messages, maxOutputTokens: 4, temperature: 0 });
  assert.ok(second.usage.inputTokens > first.usage.inputTokens);
  const streamed = streamText({ model, messages, maxOutputTokens: 4, temperature: 0 });
  assert.equal(await streamed.text, second.text);
});

test("tools with a typed final answer (chat, openai-compatible)", async () => {
  const provider = createOpenAICompatible({
    name: "tessera", baseURL: server.base + "/v1", apiKey: "x", supportsStructuredOutputs: true,
  });
  let calls = 0;
  const weather = tool({
    description: "Weather in a city",
    inputSchema: z.object({ city: z.enum(["Paris"]) }),
    execute: async ({ city }) => { calls += 1; return `18 C in ${city}`; },
  });
  const result = await generateText({
    model: provider("tiny-text"),
    tools: { weather },
    toolChoice: "required",
    output: Output.object({ schema: z.object({ answer: z.enum(["yes", "no"]) }) }),
    prompt: "Is it sunny in Paris?",
    temperature: 0,
    maxOutputTokens: 200,
    providerOptions: { tessera: { parallel_tool_calls: false } },
    // A noise model would call forever: after the call, only the answer.
    prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { activeTools: [], toolChoice: "none" } : {}),
    stopWhen: stepCountIs(3),
  });
  assert.equal(calls, 1);
  assert.ok(["yes", "no"].includes(result.output.answer));
});
