"""The official OpenAI Python SDK, unchanged, against a real Tessera.

Run after `cargo build` (uses target/debug/tessera):
    python3 -m pytest tests/sdk
Starts servers on free ports with the generated tiny fixtures; no network.
"""

import base64
import json
import os
import pathlib
import re
import struct
import subprocess
import threading
import zlib

import openai
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BIN = pathlib.Path(os.environ.get("TESSERA_BIN", TARGET / "debug" / "tessera"))
FIXTURES = ROOT / "target" / "sdk-fixtures"


def png(w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def data_url(w=32, h=32, rgb=(200, 20, 20)):
    return "data:image/png;base64," + base64.b64encode(png(w, h, rgb)).decode()


class Server:
    """A tessera process; ready once its start-up summary says "model ready"."""

    def __init__(self, *extra, text="tiny-text.gguf", mmproj="tiny-mmproj-mlp.gguf"):
        subprocess.run([str(BIN), "fixtures", str(FIXTURES), "--audio"], check=True,
                       capture_output=True)
        env = dict(os.environ, TESSERA_LOG="info", NO_COLOR="1")
        model = ["--model", str(FIXTURES / "tiny-embed.gguf")] if "--embeddings" in extra else [
            "--model", str(FIXTURES / text), "--mmproj", str(FIXTURES / mmproj)]
        self.proc = subprocess.Popen(
            [str(BIN), *model, "--port", "0", "-t", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.base = None
        self.lines = []
        ready = threading.Event()

        def read():
            loaded = False
            # Keeps draining the log so the server never blocks on a full pipe.
            for line in self.proc.stdout:
                self.lines.append(line)
                found = re.search(r"listening on (http://[0-9.:\[\]]+)", line)
                if found:
                    self.base = found.group(1)
                if "model ready" in line:
                    loaded = True
                # Both, in whichever order they are logged.
                if loaded and self.base:
                    ready.set()
            ready.set()  # the process ended

        self.drain = threading.Thread(target=read, daemon=True)
        self.drain.start()
        if not ready.wait(timeout=120) or self.proc.poll() is not None or not self.base:
            self.proc.kill()
            raise AssertionError("server did not start:\n" + "".join(self.lines[-20:]))

    def client(self, key="unused", **kw):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, **kw)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.drain.join(timeout=30)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def test_create_with_an_image(server):
    r = server.client().chat.completions.create(
        model="tiny-text",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": data_url()}},
        ]}],
        max_tokens=8,
        temperature=0,
    )
    assert r.object == "chat.completion"
    assert isinstance(r.choices[0].message.content, str) and r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 8
    assert r.usage.prompt_tokens_details.cached_tokens is not None
    # 32x32 fits one 40 px tile: one 25-token thumbnail.
    assert getattr(r.usage.prompt_tokens_details, "image_tokens", None) == 25
    assert r.usage.prompt_tokens > 25


def test_image_budgets_through_extra_body(server):
    """Budgets and policies ride in `extra_body`, per request and per image."""
    client = server.client()

    def image_tokens(image_url, **extra):
        r = client.chat.completions.create(
            model="tiny-text",
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": image_url},
            ]}],
            max_tokens=1, temperature=0, **extra)
        return r.usage.prompt_tokens_details.image_tokens

    url = data_url(100, 60)
    # The fixture's LLaVA-style projector sees one padded square: 25 tokens.
    assert image_tokens({"url": url}) == 25
    # `fit` tiles chosen for the request: 3 x 2 tiles plus a thumbnail.
    assert image_tokens({"url": url}, extra_body={"mm_processor_kwargs": {"tiling": "fit"}}) == 7 * 25
    # ... and capped per image (a dict part carries the extension field).
    assert image_tokens({"url": url, "max_tokens": 100},
                        extra_body={"mm_processor_kwargs": {"tiling": "fit"}}) <= 100
    with pytest.raises(openai.BadRequestError) as e:
        image_tokens({"url": url, "max_tokens": 10})
    assert e.value.code == "image_budget_too_small"
    assert "cannot cost less than 25" in e.value.message


def test_video_through_a_content_part_and_extra_body(server, tmp_path):
    """A video rides as a `video_url` dict part; its sampling in `extra_body`."""
    import shutil
    if shutil.which("ffmpeg") is None:
        assert not os.environ.get("TESSERA_REQUIRE_FFMPEG"), "no ffmpeg: apt-get install ffmpeg"
        pytest.skip("no ffmpeg")
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=10:duration=3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    url = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    client = server.client()

    def ask(**extra):
        return client.chat.completions.create(
            model="tiny-text",
            messages=[{"role": "user", "content": [
                {"type": "text", "text": "What happens?"},
                {"type": "video_url", "video_url": {"url": url}},
            ]}],
            max_tokens=2, temperature=0, **extra)

    r = ask()
    details = r.usage.prompt_tokens_details
    video = r.usage.model_extra["videos"][0]
    # 3 s at the default 2 fps: 6 frames, each one 25-token square.
    assert video["frames"] == 6 and video["piece_tokens"] == 25
    assert getattr(details, "video_tokens", None) == 150
    assert details.image_tokens == 0
    slow = ask(extra_body={"mm_processor_kwargs": {"fps": 1.0}})
    assert slow.usage.prompt_tokens_details.video_tokens == 75
    assert slow.usage.prompt_tokens < r.usage.prompt_tokens - 75 + 1
    assert slow.usage.model_extra["videos"][0]["frames"] == 3
    resp = client.responses.create(model="tiny-text", max_output_tokens=1, input=[{
        "role": "user", "content": [
            {"type": "input_text", "text": "What happens?"},
            {"type": "input_video", "video_url": url}]}])
    assert resp.usage.input_tokens_details.model_extra["video_tokens"] == 150


def wav_bytes(seconds=1.0, rate=16000, hz=440.0):
    """A mono 16-bit WAV tone, written by the standard library."""
    import io, math, struct, wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(16000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(n)))
    return buf.getvalue()


def test_audio_in_chat_responses_and_transcriptions():
    """input_audio parts, Responses' input_audio, and the transcription
    and translation routes through the SDK's own multipart calls."""
    s = Server(text="audio-qwen2-audio-text.gguf", mmproj="audio-qwen2-audio-mmproj.gguf")
    try:
        client = s.client()
        wav = wav_bytes()
        data = base64.b64encode(wav).decode()
        part = {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
        r = client.chat.completions.create(model="m", max_tokens=2, messages=[
            {"role": "user", "content": [part, {"type": "text", "text": "What is it?"}]}])
        # Qwen2-Audio: one 30 s window of 750 tokens, plus its wrapper text.
        audio_tokens = r.usage.prompt_tokens_details.audio_tokens
        assert audio_tokens > 750
        clip = r.usage.model_extra["audio"][0]
        assert clip["windows"] == 1 and clip["samples"] == 16000
        assert clip["tokens"] == audio_tokens
        resp = client.responses.create(model="m", max_output_tokens=2, input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}, part]}])
        assert resp.usage.input_tokens_details.model_extra["audio_tokens"] == audio_tokens
        short = {"max_tokens": 3}
        t = client.audio.transcriptions.create(model="m", file=("a.wav", wav),
                                               extra_body=short)
        assert isinstance(t.text, str)
        assert t.usage.input_token_details.audio_tokens == audio_tokens
        assert t.usage.output_tokens == 3
        srt = client.audio.transcriptions.create(model="m", file=("a.wav", wav),
                                                 response_format="srt", extra_body=short)
        assert srt.startswith("1\n00:00:00,000 --> 00:00:01,000\n")
        v = client.audio.translations.create(model="m", file=("a.wav", wav),
                                             response_format="verbose_json", extra_body=short)
        assert v.duration == 1.0 and v.segments[0].end == 1.0
        events = list(client.audio.transcriptions.create(
            model="m", file=("a.wav", wav), stream=True, extra_body=short))
        assert events[-1].type == "transcript.text.done"
        assert "".join(e.delta for e in events[:-1]) .strip() == events[-1].text
        assert events[-1].usage.output_tokens == 3
        try:
            client.audio.transcriptions.create(model="m", file=("a.wav", b"not audio"))
            raise AssertionError("not audio was accepted")
        except openai.BadRequestError as e:
            assert e.code == "invalid_audio" and e.param == "file"
    finally:
        s.stop()


def test_streaming_with_usage(server):
    stream = server.client().chat.completions.create(
        model="tiny-text",
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(rgb=(0, 0, 255))}},
            {"type": "text", "text": "Describe it."},
        ]}],
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


def test_logprobs_and_sampling_controls(server):
    client = server.client()
    kw = dict(model="tiny-text", max_tokens=6, temperature=0,
              messages=[{"role": "user", "content": "Say something."}])
    r = client.chat.completions.create(logprobs=True, top_logprobs=2,
                                       presence_penalty=0.5, frequency_penalty=0.5,
                                       logit_bias={"1": -100}, **kw)
    lp = r.choices[0].logprobs.content
    assert len(lp) == r.usage.completion_tokens == 6
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in lp)
    assert "".join(bytes(t.bytes).decode("utf-8", "replace") for t in lp) == r.choices[0].message.content
    stream = client.chat.completions.create(logprobs=True, top_logprobs=2, stream=True,
                                            presence_penalty=0.5, frequency_penalty=0.5,
                                            logit_bias={"1": -100}, **kw)
    streamed = [t.token for c in stream if c.choices and c.choices[0].logprobs
                for t in c.choices[0].logprobs.content]
    assert streamed == [t.token for t in lp]


def test_several_choices(server):
    client = server.client()
    kw = dict(model="tiny-text", max_tokens=5, temperature=1.2, seed=3, n=2,
              messages=[{"role": "user", "content": [
                  {"type": "text", "text": "What is in this image?"},
                  {"type": "image_url", "image_url": {"url": data_url()}},
              ]}])
    r = client.chat.completions.create(**kw)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens == 10
    one = client.chat.completions.create(**dict(kw, n=1))
    assert r.usage.prompt_tokens == one.usage.prompt_tokens
    texts = {0: "", 1: ""}
    for c in client.chat.completions.create(stream=True, **kw):
        for ch in c.choices:
            texts[ch.index] += ch.delta.content or ""
    assert texts == {c.index: c.message.content for c in r.choices}


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "enum": ["Paris", "Oslo"]}},
        "required": ["city"], "additionalProperties": False}}}]


def test_tool_call_round_trip_with_an_image(server):
    client = server.client()
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What's the weather where this was taken?"},
        {"type": "image_url", "image_url": {"url": data_url()}},
    ]}]
    r = client.chat.completions.create(model="tiny-text", messages=messages, tools=TOOLS,
                                       tool_choice="required", temperature=0, max_tokens=100)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Oslo")

    # Streamed, the SDK's delta types put the same call together.
    stream = client.chat.completions.create(model="tiny-text", messages=messages, tools=TOOLS,
                                            tool_choice="required", temperature=0, parallel_tool_calls=False,
                                            max_tokens=100, stream=True)
    name, args, finish = "", "", None
    for c in stream:
        for tc in c.choices[0].delta.tool_calls or []:
            assert tc.index == 0
            name += tc.function.name or ""
            args += tc.function.arguments or ""
        finish = c.choices[0].finish_reason or finish
    assert (name, json.loads(args)) == ("get_weather", json.loads(call.function.arguments))
    assert finish == "tool_calls"

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'})
    final = client.chat.completions.create(model="tiny-text", messages=messages, tools=TOOLS,
                                           temperature=0, max_tokens=5)
    assert final.choices[0].message.content is not None
    assert final.usage.prompt_tokens > r.usage.prompt_tokens


def test_tools_with_a_typed_final_answer(server):
    """The agent pattern: tools plus a pydantic response_format, through `parse`."""
    from typing import Literal

    import pydantic

    # Closed choices: the random-weight fixture would fill a free string to the limit.
    class Verdict(pydantic.BaseModel):
        verdict: Literal["sunny", "rainy"]

    class GetWeather(pydantic.BaseModel):
        city: Literal["Paris", "Oslo"]

    client = server.client()
    # The round-trip test's prompt: on it the greedy fixture writes its calls
    # without filling the limit with the whitespace JSON allows.
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What's the weather where this was taken?"},
        {"type": "image_url", "image_url": {"url": data_url()}},
    ]}]
    strict_tools = [openai.pydantic_function_tool(GetWeather, name="get_weather")]
    forced = client.chat.completions.parse(model="tiny-text", messages=messages, tools=strict_tools,
                                           tool_choice="required", response_format=Verdict,
                                           temperature=0, max_tokens=200)
    assert forced.choices[0].finish_reason == "tool_calls"
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"
    free = client.chat.completions.parse(model="tiny-text", messages=messages, tools=strict_tools,
                                         response_format=Verdict, temperature=0, max_tokens=200)
    message = free.choices[0].message
    if message.tool_calls:
        assert message.tool_calls[0].function.parsed_arguments is not None
    else:
        assert isinstance(message.parsed, Verdict)


def test_responses_create_and_stream(server):
    client = server.client()
    r = client.responses.create(
        model="tiny-text",
        instructions="Be brief.",
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this image?"},
            {"type": "input_image", "image_url": data_url(), "detail": "low"},
        ]}],
        max_output_tokens=6,
        temperature=0,
    )
    assert r.object == "response" and r.status == "incomplete"
    assert r.output_text
    assert r.usage.output_tokens == 6
    assert r.usage.input_tokens > 25

    # The stream helper puts a completed response together from the events.
    tools = [{"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}},
        "required": ["city"], "additionalProperties": False}}]
    with client.responses.stream(model="tiny-text", input="Weather in Paris?", tools=tools,
                                 tool_choice="required", temperature=0, parallel_tool_calls=False,
                                 max_output_tokens=200) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    call = [o for o in final.output if o.type == "function_call"][0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}

    # Text streams through the low-level iterator, ending incomplete at the limit.
    events = list(client.responses.create(model="tiny-text", input="Hello", max_output_tokens=5,
                                          temperature=0, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].type == "response.incomplete"
    assert text == events[-1].response.output[0].content[0].text



def test_legacy_completions(server):
    client = server.client()
    c = client.completions.create(model="tiny-text", prompt="Once upon a time", max_tokens=5,
                                  temperature=0, logprobs=2)
    assert c.object == "text_completion" and c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 5
    assert "".join(c.choices[0].logprobs.tokens) == c.choices[0].text
    chunks = list(client.completions.create(model="tiny-text", prompt="Once upon a time",
                                            max_tokens=5, temperature=0, stream=True))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == c.choices[0].text
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny-text", prompt="x", suffix="y")


def test_embeddings_create():
    s = Server("--embeddings")
    try:
        client = openai.OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0)
        # The SDK asks for base64 and decodes it; lists come back in order.
        r = client.embeddings.create(model="tiny-embed", input=["hello world", "the sky"])
        assert [d.index for d in r.data] == [0, 1]
        v = r.data[0].embedding
        assert abs(sum(x * x for x in v) - 1.0) < 1e-4
        assert r.usage.prompt_tokens == r.usage.total_tokens > 0
        again = client.embeddings.create(model="tiny-embed", input="hello world",
                                          encoding_format="float")
        assert again.data[0].embedding == v
        short = client.embeddings.create(model="tiny-embed", input="hello world", dimensions=8)
        assert len(short.data[0].embedding) == 8
    finally:
        s.stop()


def test_stored_responses_continue_list_and_delete(server):
    client = server.client()
    first = client.responses.create(
        model="tiny-text", max_output_tokens=4, temperature=0,
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this image?"},
            {"type": "input_image", "image_url": data_url(), "detail": "low"}]}])
    assert first.store is True
    second = client.responses.create(model="tiny-text", previous_response_id=first.id,
                                     input="And then?", max_output_tokens=4, temperature=0)
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = list(client.responses.input_items.list(second.id, order="asc"))
    assert [i.type for i in items] == ["message", "message", "message"]
    assert items[1].id == first.output[0].id
    # An earlier answer by reference, as the AI SDK sends it.
    by_ref = client.responses.create(
        model="tiny-text", max_output_tokens=2,
        input=[{"type": "item_reference", "id": first.output[0].id},
               {"role": "user", "content": "ok"}])
    assert by_ref.status in ("completed", "incomplete")
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="tiny-text", input="x", previous_response_id=first.id)


def test_models_list(server):
    models = server.client().models.list()
    ids = [m.id for m in models.data]
    assert ids == ["tiny-text"]


def test_bad_request_is_a_typed_error(server):
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(
            model="tiny-text",
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}],
        )
    assert e.value.status_code == 400
    assert "base64" in e.value.message


def test_wrong_key_is_an_authentication_error():
    s = Server("--api-key", "right")
    try:
        assert s.client("right").models.list().data
        with pytest.raises(openai.AuthenticationError):
            s.client("wrong").models.list()
    finally:
        s.stop()


def test_full_queue_is_a_rate_limit_error():
    s = Server("--parallel", "1", "--max-queue", "1", "--ctx-size", "65536")
    try:
        client = s.client()
        # A holds the only sequence; B and C arrive while it runs: one waits
        # in the queue, the other is refused.
        long = client.chat.completions.create(
            model="tiny-text", messages=[{"role": "user", "content": "go on"}],
            max_tokens=60000, temperature=0, stream=True)
        next(iter(long))
        outcomes = []
        first = threading.Event()

        def ask():
            try:
                client.chat.completions.create(
                    model="tiny-text", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
                outcomes.append("ok")
            except openai.RateLimitError:
                outcomes.append("429")
            first.set()

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        # The refused one answers while A still runs; then hang up on A.
        first.wait()
        assert outcomes == ["429"]
        long.close()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["429", "ok"]
    finally:
        s.stop()


def test_parse_structured_output_with_an_image(server):
    from typing import Literal

    from pydantic import BaseModel, Field

    class Answer(BaseModel):
        colour: Literal["red", "green", "blue"]
        count: int = Field(ge=0, le=9)

    r = server.client().chat.completions.parse(
        model="tiny-text",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Which colour is this, and how many shapes?"},
            {"type": "image_url", "image_url": {"url": data_url(64, 32, (250, 0, 0))}},
        ]}],
        response_format=Answer,
        max_tokens=120,
        temperature=0,
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Answer)
    assert 0 <= parsed.count <= 9


def test_json_logs_one_line_per_request_without_prompt_text():
    import json

    for log_prompts in (False, True):
        s = Server("--log-format", "json", "--tiling", "fit", *(["--log-prompts"] if log_prompts else []))
        try:
            s.client().chat.completions.create(
                model="tiny-text",
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": "zebra-unique-prompt"},
                    {"type": "image_url", "image_url": {"url": data_url(80, 40)}},
                ]}],
                max_tokens=4,
                extra_headers={"x-request-id": "sdk-log-1"},
            )
        finally:
            s.stop()
        records = [json.loads(l) for l in s.lines if l.startswith("{")]
        done = [r for r in records if r["fields"].get("message") == "request finished"]
        assert len(done) == 1, records
        span = done[0]["span"]
        assert span["id"] == "sdk-log-1"
        assert span["images"] == 1 and span["tiles"] == 2
        assert span["completion_tokens"] == 4 and span["finish_reason"] == "length"
        assert span["prompt_tokens"] > 0 and "ttft_ms" in span
        assert ("zebra-unique-prompt" in "".join(s.lines)) == log_prompts


def test_router_lists_models_and_switches_between_them(tmp_path):
    """Several models behind one endpoint: the SDK lists them and picks one per call."""
    subprocess.run([str(BIN), "fixtures", str(FIXTURES)], check=True, capture_output=True)
    config = tmp_path / "models.toml"
    config.write_text(
        f'[[models]]\nid = "text"\nmodel = "{FIXTURES / "tiny-text.gguf"}"\n'
        f'mmproj = "{FIXTURES / "tiny-mmproj-mlp.gguf"}"\n\n'
        f'[[models]]\nid = "stopper"\naliases = ["other"]\nmodel = "{FIXTURES / "tiny-text-stopper.gguf"}"\n'
    )
    env = dict(os.environ, TESSERA_LOG="info", NO_COLOR="1")
    proc = subprocess.Popen(
        [str(BIN), "--models-config", str(config), "--port", "0", "-t", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    base = None
    lines = []
    found = threading.Event()

    def read():
        nonlocal base
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"router listening on (http://[0-9.:]+)", line)
            if m and base is None:
                base = m.group(1)
                found.set()
        found.set()

    drain = threading.Thread(target=read, daemon=True)
    drain.start()
    try:
        assert found.wait(timeout=60) and base, "".join(lines[-20:])
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        listed = client.models.list().data
        assert [m.id for m in listed] == ["text", "stopper"]
        assert all(m.model_extra["status"]["value"] == "unloaded" for m in listed)
        for model in ("text", "other", "text"):
            r = client.chat.completions.create(
                model=model, max_tokens=3,
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": "hi"},
                    *([{"type": "image_url", "image_url": {"url": data_url()}}] if model == "text" else []),
                ]}],
            )
            assert r.usage.completion_tokens <= 3
        stream = client.chat.completions.create(
            model="stopper", max_tokens=3, stream=True,
            messages=[{"role": "user", "content": "hi"}])
        assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in stream)
        states = {m.id: m.model_extra["status"]["value"] for m in client.models.list().data}
        assert states == {"text": "loaded", "stopper": "loaded"}
        with pytest.raises(openai.NotFoundError) as err:
            client.chat.completions.create(model="nope", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
        assert err.value.code == "model_not_found"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        drain.join(timeout=30)
