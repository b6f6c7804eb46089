//! `POST /v1/audio/transcriptions` and `/v1/audio/translations`: OpenAI's
//! multipart forms, answered by the served audio model. The clip becomes
//! an `input_audio` part of one user turn beside an instruction (the
//! language and `prompt` as context), rendered through the model's own
//! template and run as any chat request: the same limits, price and usage.

use super::chat;
use super::error::ApiError;
use super::state::SharedState;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// Which of the two routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    Transcribe,
    Translate,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Translate => "translate",
        }
    }
}

/// The form's fields, once read.
pub(super) struct Form {
    file: Vec<u8>,
    filename: String,
    language: Option<String>,
    prompt: Option<String>,
    pub(super) format: Format,
    temperature: f64,
    pub(super) stream: bool,
    max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

fn bad(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid(message).param(param)
}

/// Reads the multipart form; unknown fields are ignored, as OpenAI's
/// optional ones (`timestamp_granularities[]`, `include[]`, ...) are here.
async fn read_form(mut m: Multipart) -> Result<Form, ApiError> {
    let mut f = Form {
        file: Vec::new(),
        filename: String::new(),
        language: None,
        prompt: None,
        format: Format::Json,
        temperature: 0.0,
        stream: false,
        max_tokens: None,
    };
    let mut has_file = false;
    let broken = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            e.status(),
            "invalid_request_error",
            format!("the form could not be read: {}", e.body_text()),
        )
    };
    while let Some(field) = m.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            f.filename = field.file_name().unwrap_or_default().to_string();
            f.file = field.bytes().await.map_err(broken)?.to_vec();
            has_file = true;
            continue;
        }
        let text = field.text().await.map_err(broken)?;
        let text = text.trim().to_string();
        match name.as_str() {
            "language" if !text.is_empty() => f.language = Some(text),
            "prompt" if !text.is_empty() => f.prompt = Some(text),
            "response_format" => f.format = format(&text)?,
            "temperature" => {
                f.temperature = text
                    .parse::<f64>()
                    .ok()
                    .filter(|t| (0.0..=2.0).contains(t))
                    .ok_or_else(|| {
                        bad("temperature must be a number from 0 to 2", "temperature")
                    })?;
            }
            "stream" => f.stream = text == "true" || text == "1",
            "max_tokens" => {
                let n = text.parse::<u32>().ok().filter(|n| *n > 0);
                f.max_tokens =
                    Some(n.ok_or_else(|| {
                        bad("max_tokens must be a positive integer", "max_tokens")
                    })?);
            }
            _ => {}
        }
    }
    if !has_file || f.file.is_empty() {
        return Err(bad("the form needs a `file` holding the audio", "file"));
    }
    if f.stream && !matches!(f.format, Format::Json | Format::Text) {
        return Err(bad(
            "stream=true is for response_format json or text",
            "response_format",
        ));
    }
    Ok(f)
}

fn format(s: &str) -> Result<Format, ApiError> {
    Ok(match s {
        "" | "json" => Format::Json,
        "text" => Format::Text,
        "verbose_json" => Format::VerboseJson,
        "srt" => Format::Srt,
        "vtt" => Format::Vtt,
        other => {
            return Err(bad(
                format!(
                    "response_format {other:?} is not one of json, text, verbose_json, srt, vtt"
                ),
                "response_format",
            ));
        }
    })
}

/// The chat request a form becomes.
pub(super) fn to_chat(form: &Form, task: Task) -> Value {
    let mut instruction = match task {
        Task::Transcribe => "Transcribe the speech in this audio exactly, word for word. \
                             Answer with the transcript only."
            .to_string(),
        Task::Translate => "Translate the speech in this audio into English. \
                            Answer with the translation only."
            .to_string(),
    };
    if let (Some(lang), Task::Transcribe) = (&form.language, task) {
        instruction.push_str(&format!(" The speech is in {lang}."));
    }
    if let Some(p) = &form.prompt {
        instruction.push_str(&format!(" Earlier text, for context and spelling: {p}"));
    }
    let ext = form
        .filename
        .rsplit_once('.')
        .map(|(_, e)| e)
        .unwrap_or("wav");
    let data = base64::engine::general_purpose::STANDARD.encode(&form.file);
    let mut chat = json!({
        "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": data, "format": ext}},
            {"type": "text", "text": instruction},
        ]}],
        "temperature": form.temperature,
        "stream": form.stream,
        "stream_options": {"include_usage": true},
    });
    if let Some(n) = form.max_tokens {
        chat["max_completion_tokens"] = json!(n);
    }
    chat
}

#[utoipa::path(post, path = "/v1/audio/transcriptions", tag = "audio",
    request_body(content = String, content_type = "multipart/form-data",
        description = "OpenAI's form: file, model, language, prompt, response_format (json, text, verbose_json, srt, vtt), temperature, stream; extension: max_tokens"),
    responses(
        (status = 200, description = "The transcript in the asked format (SSE when stream=true)"),
        (status = 400, description = "Invalid form or audio", body = crate::openai::ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = crate::openai::ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = crate::openai::ErrorEnvelope),
        (status = 503, description = "Model loading, failed, or engine stopped", body = crate::openai::ErrorEnvelope),
    ))]
pub async fn transcriptions(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    run(state, headers, form.map_err(not_a_form)?, Task::Transcribe).await
}

#[utoipa::path(post, path = "/v1/audio/translations", tag = "audio",
    request_body(content = String, content_type = "multipart/form-data",
        description = "OpenAI's form: file, model, prompt, response_format (json, text, verbose_json, srt, vtt), temperature; extension: max_tokens, stream"),
    responses(
        (status = 200, description = "The English translation in the asked format"),
        (status = 400, description = "Invalid form or audio", body = crate::openai::ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = crate::openai::ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = crate::openai::ErrorEnvelope),
        (status = 503, description = "Model loading, failed, or engine stopped", body = crate::openai::ErrorEnvelope),
    ))]
pub async fn translations(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    run(state, headers, form.map_err(not_a_form)?, Task::Translate).await
}

/// A body that is no multipart form, in OpenAI's envelope rather than
/// axum's plain text.
fn not_a_form(e: MultipartRejection) -> ApiError {
    ApiError::new(
        e.status(),
        "invalid_request_error",
        format!(
            "send the audio as a multipart/form-data form with a `file` field: {}",
            e.body_text()
        ),
    )
}

async fn run(
    state: SharedState,
    headers: axum::http::HeaderMap,
    form: Multipart,
    task: Task,
) -> Result<Response, ApiError> {
    let request_id = super::log::request_id(&headers);
    let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
    let form = read_form(form).await?;
    let chat_req = serde_json::from_value(to_chat(&form, task))
        .map_err(|e| ApiError::invalid(format!("invalid form: {e}")))?;
    let id = format!("trsc_{}", uuid::Uuid::new_v4().simple());
    let (mut meta, usage, rx) = chat::start_one(&state, &request_id, chat_req, deadline, id)
        .await
        .map_err(at_file)?;
    if form.stream {
        return Ok(super::transcriptions_stream::stream(meta, usage, rx));
    }
    let answer = super::choices::answer(&mut meta, usage, rx).await?;
    let text = answer.content.trim().to_string();
    let seconds = meta.media.audio.first().map_or(0.0, |a| a.duration);
    Ok(respond(&form, task, &text, seconds, &answer.usage))
}

/// The clip's errors name the form's `file`, not the chat part it became.
fn at_file(mut e: ApiError) -> ApiError {
    if e.param
        .as_deref()
        .is_some_and(|p| p.contains("input_audio"))
    {
        e.message = e
            .message
            .replace("messages[0].content[0].input_audio", "file");
        e.param = Some("file".into());
    }
    e
}

fn respond(
    form: &Form,
    task: Task,
    text: &str,
    seconds: f64,
    u: &crate::openai::Usage,
) -> Response {
    let plain = |body: String| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    };
    match form.format {
        Format::Json => {
            axum::Json(json!({"text": text, "usage": super::transcriptions_stream::token_usage(u)}))
                .into_response()
        }
        Format::Text => plain(format!("{text}\n")),
        Format::VerboseJson => axum::Json(json!({
            "task": task.name(),
            "language": form.language.as_deref().filter(|_| task == Task::Transcribe).unwrap_or(
                if task == Task::Translate { "english" } else { "unknown" }),
            "duration": seconds,
            "text": text,
            "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text,
                "tokens": [], "temperature": form.temperature, "avg_logprob": 0.0,
                "compression_ratio": 0.0, "no_speech_prob": 0.0}],
            "usage": {"type": "duration", "seconds": seconds.ceil() as u64},
        }))
        .into_response(),
        Format::Srt => plain(format!(
            "1\n00:00:00,000 --> {}\n{text}\n\n",
            stamp(seconds, ',')
        )),
        Format::Vtt => plain(format!(
            "WEBVTT\n\n00:00:00.000 --> {}\n{text}\n\n",
            stamp(seconds, '.')
        )),
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
fn stamp(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}{sep}{:03}", ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_srt_and_vtt_times() {
        assert_eq!(stamp(0.0, ','), "00:00:00,000");
        assert_eq!(stamp(8.4705, ','), "00:00:08,471");
        assert_eq!(stamp(3725.5, '.'), "01:02:05.500");
    }

    #[test]
    fn response_formats_are_read_and_checked() {
        assert_eq!(format("").unwrap(), Format::Json);
        assert_eq!(format("verbose_json").unwrap(), Format::VerboseJson);
        assert!(format("xml").is_err());
    }
}
