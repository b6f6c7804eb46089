"""The official Anthropic Python SDK, unchanged, against a real Tessera.

Same servers and fixtures as test_openai_sdk.py (run after `cargo build`).
"""

import base64

import anthropic
import pytest

from test_openai_sdk import Server, png


def image_block(rgb=(200, 20, 20)):
    data = base64.b64encode(png(32, 32, rgb)).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


@pytest.fixture(scope="module")
def server():
    s = Server("--api-key", "sekrit")
    yield s
    s.stop()


def client(server, key="sekrit"):
    return anthropic.Anthropic(base_url=server.base, api_key=key, max_retries=0)


# This SDK version takes no `temperature` argument; the API field still works.
GREEDY = {"temperature": 0}

TOOLS = [{"name": "get_weather", "description": "Weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}},
    "required": ["city"], "additionalProperties": False}}]


def test_create_with_an_image_and_exact_usage(server):
    c = client(server)
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"}, image_block()]}]
    m = c.messages.create(model="tiny-text", max_tokens=6, extra_body=GREEDY,
                          system="Be brief.", messages=messages)
    assert m.type == "message" and m.role == "assistant"
    assert m.stop_reason == "max_tokens"
    assert m.content[0].type == "text" and m.content[0].text
    assert m.usage.output_tokens == 6
    counted = c.messages.count_tokens(model="tiny-text", system="Be brief.", messages=messages)
    assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) == counted.input_tokens


def test_stream_puts_the_same_message_together(server):
    c = client(server)
    kwargs = dict(model="tiny-text", max_tokens=8, extra_body=GREEDY,
                  messages=[{"role": "user", "content": "Tell me a story"}])
    whole = c.messages.create(**kwargs)
    with c.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == whole.content[0].text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 8


def test_tool_use_round_trip_with_a_screenshot_in_the_result(server):
    c = client(server)
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    m = c.messages.create(model="tiny-text", max_tokens=200, extra_body=GREEDY, tools=TOOLS,
                          tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}, messages=ask)
    assert m.stop_reason == "tool_use"
    call = [b for b in m.content if b.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    with c.messages.stream(model="tiny-text", max_tokens=200, extra_body=GREEDY, tools=TOOLS,
                           tool_choice={"type": "any", "disable_parallel_tool_use": True}, messages=ask) as stream:
        final = stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Paris"}]
    follow = ask + [
        {"role": "assistant", "content": [b.model_dump() for b in m.content if b.type == "tool_use"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "18 C"}, image_block()]}]},
    ]
    r = c.messages.create(model="tiny-text", max_tokens=4, tools=TOOLS, messages=follow)
    assert r.type == "message"
    with_image = c.messages.count_tokens(model="tiny-text", tools=TOOLS, messages=follow)
    follow[-1]["content"][0]["content"] = "18 C"
    without = c.messages.count_tokens(model="tiny-text", tools=TOOLS, messages=follow)
    assert with_image.input_tokens > without.input_tokens


def test_errors_are_the_sdks_typed_exceptions(server):
    with pytest.raises(anthropic.AuthenticationError):
        client(server, key="wrong").messages.create(
            model="tiny-text", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError) as e:
        client(server).messages.create(
            model="tiny-text", max_tokens=2,
            messages=[{"role": "user", "content": [{"type": "document", "source": {
                "type": "text", "media_type": "text/plain", "data": "x"}}]}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
