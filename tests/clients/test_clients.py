"""Third-party clients, unchanged, against a real Tessera on the tiny
fixtures: each one's common pattern for tools and typed answers. The
fixture's answers are noise, but grammar-bound: calls and typed answers
are valid and complete, which is what the clients check. Parallel calls
are off: a noise model would go on calling until max_tokens.
"""

import json
import os
import pathlib
import sys
from typing import Literal

import pytest
from pydantic import BaseModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "sdk"))
from test_openai_sdk import Server  # noqa: E402


class Verdict(BaseModel):
    answer: Literal["yes", "no"]


def get_weather(city: Literal["Paris"]) -> str:
    """Weather in a city."""
    return "18 C"


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def test_langchain_tools_structured_output_and_both(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.base + "/v1", api_key="x", model="tiny-text",
                     temperature=0, max_tokens=200)
    msg = llm.bind_tools([get_weather], tool_choice="get_weather",
                         parallel_tool_calls=False).invoke("Weather in Paris?")
    assert msg.tool_calls[0]["name"] == "get_weather"
    assert msg.tool_calls[0]["args"] == {"city": "Paris"}
    typed = llm.with_structured_output(Verdict, method="json_schema").invoke("Is it sunny?")
    assert isinstance(typed, Verdict)
    # Tools and a typed answer together (a 400 before): a call, or the model.
    both = llm.bind_tools([get_weather], response_format=Verdict, strict=True,
                          parallel_tool_calls=False).invoke("Sunny?")
    assert both.tool_calls or isinstance(both.additional_kwargs.get("parsed"), Verdict)


def test_litellm_tools_and_response_format(server):
    import litellm

    kw = dict(model="openai/tiny-text", api_base=server.base + "/v1", api_key="x",
              temperature=0, max_tokens=200)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}},
        "required": ["city"], "additionalProperties": False}}}]
    r = litellm.completion(messages=[{"role": "user", "content": "Weather?"}], tools=tools,
                           tool_choice="required", parallel_tool_calls=False, **kw)
    call = r.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    r = litellm.completion(messages=[{"role": "user", "content": "Sunny?"}],
                           response_format=Verdict, **kw)
    Verdict.model_validate_json(r.choices[0].message.content)
    assert r.usage.completion_tokens > 0


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA", "RESPONSES_TOOLS"])
def test_instructor_modes(server, mode):
    import instructor
    from openai import OpenAI

    client = instructor.from_openai(OpenAI(base_url=server.base + "/v1", api_key="x"),
                                    mode=getattr(instructor.Mode, mode))
    limit = {"max_output_tokens": 200} if mode.startswith("RESPONSES") else {"max_tokens": 200}
    v = client.create(model="tiny-text", response_model=Verdict, max_retries=0,
                      temperature=0, parallel_tool_calls=False, **limit,
                      messages=[{"role": "user", "content": "Sunny?"}])
    assert isinstance(v, Verdict)


def test_pydantic_ai_native_output_with_tools(server):
    from pydantic_ai import Agent, NativeOutput, RunContext
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.tools import ToolDefinition

    calls = []

    # A noise model would call forever: the tool is offered until it is
    # called once, then the typed answer is the only way out.
    async def once(ctx: RunContext, tool: ToolDefinition):
        return None if calls else tool

    def weather(city: Literal["Paris"]) -> str:
        """Weather in a city."""
        calls.append(city)
        return "18 C"

    model = OpenAIChatModel("tiny-text", provider=OpenAIProvider(base_url=server.base + "/v1",
                                                                  api_key="x"))
    agent = Agent(model, output_type=NativeOutput(Verdict),
                  model_settings={"temperature": 0, "max_tokens": 200,
                                  "parallel_tool_calls": False})
    agent.tool_plain(prepare=once)(weather)
    result = agent.run_sync("Is it sunny in Paris?")
    assert isinstance(result.output, Verdict)
    # The first request offered the tool and the schema together.
    first = result.all_messages()[1]
    assert first.parts[0].part_kind in ("tool-call", "text")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_openai_agents_tools_with_output_type(server, api):
    from agents import (Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner,
                        function_tool, set_tracing_disabled)
    from agents.model_settings import ModelSettings
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=server.base + "/v1", api_key="x")
    model = (OpenAIChatCompletionsModel(model="tiny-text", openai_client=client) if api == "chat"
             else OpenAIResponsesModel(model="tiny-text", openai_client=client))
    calls = []

    def weather(city: Literal["Paris"]) -> str:
        """Weather in a city."""
        calls.append(city)
        return "18 C"

    # Offered until called once (a noise model would call forever).
    tool = function_tool(weather, is_enabled=lambda ctx, agent: not calls)
    agent = Agent(name="weather", instructions="Answer yes or no.", model=model,
                  tools=[tool], output_type=Verdict,
                  model_settings=ModelSettings(temperature=0, max_tokens=200,
                                                parallel_tool_calls=False))
    result = Runner.run_sync(agent, "Is it sunny in Paris?", max_turns=8)
    assert isinstance(result.final_output, Verdict)


def test_llm_cli_prompt_and_schema(server, tmp_path):
    import subprocess

    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: tessera\n  model_name: tiny-text\n  api_base: {server.base}/v1\n"
        "  api_key_name: none\n  supports_schema: true\n")
    (tmp_path / "keys.json").write_text('{"none": "x"}')
    env = dict(os.environ, LLM_USER_PATH=str(tmp_path))
    llm = pathlib.Path(sys.executable).parent / "llm"
    out = subprocess.run([str(llm), "-m", "tessera", "-o", "max_tokens", "5", "Hello"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    typed = subprocess.run([str(llm), "-m", "tessera", "-o", "max_tokens", "200", "--schema", "sunny bool", "Sunny?"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert typed.returncode == 0, typed.stderr
    assert isinstance(json.loads(typed.stdout)["sunny"], bool)
