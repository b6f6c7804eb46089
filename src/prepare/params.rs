//! A request's generation parameters, checked and completed: every range
//! error names its field, and every field left out takes the model's
//! default (`general.sampling.*` of the GGUF, else llama-server's).

use super::error::PrepareError;
use super::schema_limits::Tally;
use super::tools::{ToolChoice, ToolSpec};
use crate::engine::SamplingParams;
use crate::engine::sampling::SamplingDefaults;
use crate::openai::{ChatCompletionRequest, ResponseFormat, ToolChoiceMode};
use serde_json::{Value, json};

/// Most stop sequences per request (OpenAI allows 4; llama-server more).
const MAX_STOP: usize = 16;
/// Most `logit_bias` entries (OpenAI documents no limit; each is a map entry).
const MAX_LOGIT_BIAS: usize = 1024;
/// OpenAI's bound on `n`.
pub const MAX_N: u32 = 128;
/// OpenAI's bound on `top_logprobs`.
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// What the model exposes that validation needs.
#[derive(Debug, Clone, Copy)]
pub struct ModelLimits {
    pub defaults: SamplingDefaults,
    pub n_vocab: u32,
    /// Most choices per request: each takes a sequence (`--parallel`).
    pub max_choices: u32,
}

impl ModelLimits {
    pub fn of(info: &crate::engine::ModelInfo) -> Self {
        ModelLimits {
            defaults: info.sampling,
            n_vocab: info.n_vocab,
            max_choices: info.parallel,
        }
    }
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            defaults: SamplingDefaults::default(),
            n_vocab: u32::MAX,
            max_choices: MAX_N,
        }
    }
}

pub struct Plan {
    pub sampling: SamplingParams,
    pub max_tokens: Option<u32>,
    /// Choices to generate (OpenAI's `n`).
    pub n: u32,
    pub stop: Vec<String>,
    /// The schema `response_format` holds the answer to, checked against
    /// the caps; its grammar is made on the text pool (CPU work).
    pub format: Option<Value>,
    /// `Some(n)` when `logprobs` is on: the chosen token's and the `n` most
    /// likely tokens' log-probabilities.
    pub logprobs: Option<u32>,
    /// Tools the model may call (none when absent, empty or `tool_choice: none`).
    pub tools: Option<ToolPlan>,
}

pub struct ToolPlan {
    pub specs: Vec<ToolSpec>,
    pub choice: ToolChoice,
    pub parallel: bool,
    /// The definitions in OpenAI's shape, for the chat template's `tools`.
    pub definitions: Value,
}

/// Checked as f64, as the JSON number came: 2.0000000000000004 is above
/// 2 even though it rounds to 2 as an f32.
fn range(
    param: &'static str,
    v: Option<f64>,
    lo: f64,
    hi: f64,
) -> Result<Option<f32>, PrepareError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(PrepareError::invalid(format!(
            "{param} = {x} is out of range: use a value from {lo} to {hi}"
        ))
        .param(param)),
        _ => Ok(v.map(|x| x as f32)),
    }
}

pub fn validate(req: &ChatCompletionRequest, model: &ModelLimits) -> Result<Plan, PrepareError> {
    if let Some(field) = req.not_implemented.first_requested() {
        return Err(PrepareError::invalid(format!(
            "`{field}` is not supported by this server yet; remove it from the request \
             (a value that asks for nothing, such as [] or 0, is accepted)"
        ))
        .param(field)
        .code("unsupported_parameter"));
    }
    if req.messages.is_empty() {
        return Err(
            PrepareError::invalid("`messages` must contain at least one message").param("messages"),
        );
    }
    let n = req.n.unwrap_or(1);
    if n == 0 || n > MAX_N {
        return Err(
            PrepareError::invalid(format!("n = {n} is out of range: use 1 to {MAX_N}")).param("n"),
        );
    }
    if n > model.max_choices {
        return Err(PrepareError::invalid(format!(
            "n = {n} is more than this server generates at once: each choice takes one of its {} \
             sequences (--parallel); ask for at most {} or start the server with a larger --parallel",
            model.max_choices, model.max_choices
        ))
        .param("n"));
    }
    let d = &model.defaults;
    let temperature = range("temperature", req.temperature, 0.0, 2.0)?.unwrap_or(d.temperature);
    let top_p = match req.top_p {
        None => d.top_p,
        Some(p) if p > 0.0 && p <= 1.0 => (p as f32).max(f32::MIN_POSITIVE),
        // Read as f64: a tiny positive value must not round to a refused 0.
        Some(p) => {
            return Err(PrepareError::invalid(format!(
                "top_p = {p} is out of range: use a value above 0 and at most 1"
            ))
            .param("top_p"));
        }
    };
    let top_k = req.top_k.unwrap_or(d.top_k);
    if top_k < 0 {
        return Err(PrepareError::invalid("top_k must be 0 (off) or positive").param("top_k"));
    }
    let min_p = range("min_p", req.min_p, 0.0, 1.0)?.unwrap_or(d.min_p);
    let presence_penalty = range("presence_penalty", req.presence_penalty, -2.0, 2.0)?;
    let frequency_penalty = range("frequency_penalty", req.frequency_penalty, -2.0, 2.0)?;
    for (param, value) in [
        ("repetition_penalty", req.repetition_penalty),
        ("repeat_penalty", req.repeat_penalty),
    ] {
        if let Some(r) = value
            && !(r > 0.0 && r <= 10.0)
        {
            return Err(PrepareError::invalid(format!(
                "{param} = {r} is out of range: use a value above 0 and at most 10 (1 = off)"
            ))
            .param(param));
        }
    }
    let repetition_penalty = req
        .repetition_penalty
        .or(req.repeat_penalty)
        .map_or(d.repetition_penalty, |r| r as f32);
    let logit_bias = logit_bias(req, model.n_vocab)?;
    for (param, value) in [
        ("max_completion_tokens", req.max_completion_tokens),
        ("max_tokens", req.max_tokens),
    ] {
        if value == Some(0) {
            return Err(PrepareError::invalid(format!("{param} must be at least 1")).param(param));
        }
    }
    let max_tokens = req.max_completion_tokens.or(req.max_tokens);
    let stop = req.stop.clone().map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP {
        return Err(PrepareError::invalid(format!(
            "{} stop sequences given; at most {MAX_STOP} are supported",
            stop.len()
        ))
        .param("stop"));
    }
    let logprobs = logprobs(req)?;
    let mut tally = Tally::default();
    let tools = tools(req, &mut tally)?;
    let seed = match req.seed {
        // Any 64-bit seed maps onto llama.cpp's 32-bit one, reproducibly.
        Some(s) => (s as u64 ^ ((s as u64) >> 32)) as u32,
        None => rand::random::<u32>(),
    };
    let format = response_schema(req, &mut tally)?;
    Ok(Plan {
        format,
        sampling: SamplingParams {
            temperature,
            top_p,
            top_k,
            min_p,
            presence_penalty: presence_penalty.unwrap_or(0.0),
            frequency_penalty: frequency_penalty.unwrap_or(0.0),
            repetition_penalty,
            penalty_last_n: d.penalty_last_n,
            logit_bias,
            ignore_eos: req.ignore_eos.unwrap_or(false),
            seed,
        },
        max_tokens,
        n,
        stop,
        logprobs,
        tools,
    })
}

/// OpenAI's rule for function names.
fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tools(req: &ChatCompletionRequest, tally: &mut Tally) -> Result<Option<ToolPlan>, PrepareError> {
    let list = req.tools.as_deref().unwrap_or_default();
    let choice = match &req.tool_choice {
        None => ToolChoice::Auto,
        Some(crate::openai::ToolChoice::Mode(ToolChoiceMode::None)) => return Ok(None),
        Some(crate::openai::ToolChoice::Mode(ToolChoiceMode::Auto)) => ToolChoice::Auto,
        Some(crate::openai::ToolChoice::Mode(ToolChoiceMode::Required)) => ToolChoice::Required,
        Some(crate::openai::ToolChoice::Named(n)) => ToolChoice::Named(n.function.name.clone()),
    };
    if list.is_empty() {
        if choice != ToolChoice::Auto {
            return Err(PrepareError::invalid(
                "tool_choice asks for a tool call but `tools` is empty; send the functions in `tools`",
            )
            .param("tool_choice"));
        }
        return Ok(None);
    }
    let mut specs: Vec<ToolSpec> = Vec::with_capacity(list.len());
    let mut definitions = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let f = &t.function;
        let param = format!("tools[{i}].function");
        if !valid_name(&f.name) {
            return Err(PrepareError::invalid(format!(
                "tools[{i}].function.name {:?} is not a valid function name: use 1 to 64 letters, digits, `_` or `-`",
                f.name
            ))
            .param(format!("{param}.name")));
        }
        if specs.iter().any(|s| s.name == f.name) {
            return Err(PrepareError::invalid(format!(
                "two tools are named {:?}; function names must be unique",
                f.name
            ))
            .param(format!("{param}.name")));
        }
        let parameters = f
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let is_object = parameters
            .as_object()
            .is_some_and(|o| o.get("type").is_none_or(|t| t == "object"));
        if !is_object {
            return Err(PrepareError::invalid(format!(
                "tools[{i}].function.parameters must be a JSON schema of an object"
            ))
            .param(format!("{param}.parameters")));
        }
        tally
            .add(&parameters)
            .map_err(|e| PrepareError::invalid(e.0).param(format!("{param}.parameters")))?;
        let mut def =
            json!({"type": "function", "function": {"name": f.name, "parameters": parameters}});
        if let Some(d) = &f.description {
            def["function"]["description"] = json!(d);
        }
        definitions.push(def);
        specs.push(ToolSpec {
            name: f.name.clone(),
            parameters,
        });
    }
    if let ToolChoice::Named(n) = &choice
        && !specs.iter().any(|s| &s.name == n)
    {
        return Err(PrepareError::invalid(format!(
            "tool_choice names {n:?}, which is not among `tools`"
        ))
        .param("tool_choice"));
    }
    Ok(Some(ToolPlan {
        specs,
        choice,
        parallel: req.parallel_tool_calls.unwrap_or(true),
        definitions: Value::Array(definitions),
    }))
}

/// The schema a JSON `response_format` asks for (`json_object`: any object).
fn response_schema(
    req: &ChatCompletionRequest,
    tally: &mut Tally,
) -> Result<Option<Value>, PrepareError> {
    let schema = match &req.response_format {
        None | Some(ResponseFormat::Text) => return Ok(None),
        Some(ResponseFormat::JsonObject) => return Ok(Some(json!({"type": "object"}))),
        Some(ResponseFormat::JsonSchema { json_schema }) => json_schema
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"})),
    };
    tally
        .add(&schema)
        .map_err(|e| PrepareError::invalid(e.0).param("response_format.json_schema.schema"))?;
    Ok(Some(schema))
}

/// OpenAI's map of token ids (as strings) to biases from -100 to 100.
fn logit_bias(req: &ChatCompletionRequest, n_vocab: u32) -> Result<Vec<(i32, f32)>, PrepareError> {
    let Some(map) = &req.logit_bias else {
        return Ok(Vec::new());
    };
    if map.len() > MAX_LOGIT_BIAS {
        return Err(PrepareError::invalid(format!(
            "logit_bias has {} entries; at most {MAX_LOGIT_BIAS} are supported",
            map.len()
        ))
        .param("logit_bias"));
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, bias) in map {
        let token = key.parse::<u32>().ok().filter(|t| *t < n_vocab);
        let Some(token) = token else {
            return Err(PrepareError::invalid(format!(
                "logit_bias key {key:?} is not a token id of this model (0 to {})",
                n_vocab.saturating_sub(1)
            ))
            .param("logit_bias"));
        };
        if !(-100.0..=100.0).contains(bias) {
            return Err(PrepareError::invalid(format!(
                "logit_bias[{key:?}] = {bias} is out of range: use a value from -100 to 100"
            ))
            .param("logit_bias"));
        }
        out.push((token as i32, *bias as f32));
    }
    Ok(out)
}

fn logprobs(req: &ChatCompletionRequest) -> Result<Option<u32>, PrepareError> {
    let top = req.top_logprobs.unwrap_or(0);
    if top > MAX_TOP_LOGPROBS {
        return Err(PrepareError::invalid(format!(
            "top_logprobs = {top} is out of range: use a value from 0 to {MAX_TOP_LOGPROBS}"
        ))
        .param("top_logprobs"));
    }
    match req.logprobs {
        Some(true) => Ok(Some(top)),
        _ if req.top_logprobs.is_some_and(|t| t > 0) => Err(PrepareError::invalid(
            "top_logprobs needs logprobs: true; set both or neither",
        )
        .param("top_logprobs")),
        _ => Ok(None),
    }
}
