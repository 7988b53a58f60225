//! The HTTP side of `r1 serve`: request parsing with OpenAI's error shape, prompt rendering,
//! and responses (whole or streamed as server-sent events).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use r1::model::{FinishReason, SamplingParams, SeqParams, TokenEvent, Tokenizer, row_seed};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::engine::{Command, Submission, Update};
use super::text::{delta, split_reasoning, visible};

/// What every handler shares.
#[derive(Debug)]
pub struct State {
    pub name: String,
    pub tokenizer: RwLock<Arc<Tokenizer>>,
    pub folder: RwLock<PathBuf>,
    pub commands: Mutex<std::sync::mpsc::Sender<Command>>,
    pub queued: Arc<AtomicUsize>,
    pub max_queue: usize,
    pub max_model_len: usize,
    pub max_body_bytes: usize,
    pub api_key: Option<String>,
    pub reasoning: bool,
    pub eos_token_ids: Vec<u32>,
    pub next_id: AtomicUsize,
    pub created: u64,
}

type Shared = Arc<State>;

/// Bodies up to this size are read to the end before a 413, larger ones cut off.
const DRAIN_BYTES: usize = 64 << 20;

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
    fn param(mut self, p: &str) -> Self {
        self.param = Some(p.to_string());
        self
    }
    fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }
    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The routes.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/load_weights", post(load_weights))
        .route("/health", get(|| async { "ok" }))
        .fallback(|req: Request| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("no route {} {}", req.method(), req.uri().path()),
            )
            .code("not_found")
        })
        .with_state(state)
}

fn authorize(state: &State, headers: &HeaderMap) -> ApiResult<()> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if g == key => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided",
        )
        .code("invalid_api_key")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Missing API key: send `Authorization: Bearer <key>`",
        )
        .code("invalid_api_key")),
    }
}

/// Reads and parses a JSON object body, answering 413 over the size limit.
async fn json_body(
    state: &State,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Map<String, Value>> {
    authorize(state, headers)?;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is over {} bytes", state.max_body_bytes),
        )
        .code("request_too_large")
    };
    // The whole body is read (up to a hard bound) even when it is too large, so that a client
    // still sending gets the 413 instead of a broken pipe.
    let bytes: Bytes = axum::body::to_bytes(body, state.max_body_bytes.max(DRAIN_BYTES))
        .await
        .map_err(|_| too_big())?;
    if bytes.len() > state.max_body_bytes {
        return Err(too_big());
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad("the body must be a JSON object")),
    }
}

// ---- typed field access with OpenAI-style errors naming the parameter ----

fn type_error(key: &str, want: &str) -> ApiError {
    ApiError::bad(format!("`{key}` must be {want}")).param(key)
}

fn opt_f32(m: &Map<String, Value>, key: &str) -> ApiResult<Option<f32>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().map(|v| v as f32)),
        Some(_) => Err(type_error(key, "a number")),
    }
}

fn opt_usize(m: &Map<String, Value>, key: &str) -> ApiResult<Option<usize>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|v| Some(v as usize))
            .ok_or_else(|| type_error(key, "a non-negative integer")),
        Some(_) => Err(type_error(key, "an integer")),
    }
}

fn opt_i64(m: &Map<String, Value>, key: &str) -> ApiResult<Option<i64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(key, "an integer")),
        Some(_) => Err(type_error(key, "an integer")),
    }
}

fn opt_bool(m: &Map<String, Value>, key: &str) -> ApiResult<Option<bool>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(key, "a boolean")),
    }
}

fn stop_list(m: &Map<String, Value>) -> ApiResult<Vec<String>> {
    match m.get("stop") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| type_error("stop", "a string or a list of strings"))
            })
            .collect(),
        Some(_) => Err(type_error("stop", "a string or a list of strings")),
    }
}

/// Settings shared by both endpoints.
struct Common {
    n: usize,
    max_tokens: Option<usize>,
    sampling: SamplingParams,
    seed: Option<u64>,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
}

fn common(state: &State, m: &Map<String, Value>) -> ApiResult<Common> {
    match m.get("model") {
        Some(Value::String(name)) if *name == state.name => {}
        Some(Value::String(name)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "The model `{name}` does not exist (this server serves `{}`)",
                    state.name
                ),
            )
            .param("model")
            .code("model_not_found"));
        }
        Some(_) => return Err(type_error("model", "a string")),
        None => return Err(ApiError::bad("`model` is required").param("model")),
    }
    let n = opt_usize(m, "n")?.unwrap_or(1);
    if n == 0 || n > 128 {
        return Err(ApiError::bad("`n` must be between 1 and 128").param("n"));
    }
    let max_tokens = match opt_usize(m, "max_completion_tokens")? {
        Some(v) => Some(v),
        None => opt_usize(m, "max_tokens")?,
    };
    if max_tokens == Some(0) {
        return Err(ApiError::bad("`max_tokens` must be at least 1").param("max_tokens"));
    }
    let temperature = opt_f32(m, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad("`temperature` must be in [0, 2]").param("temperature"));
    }
    let top_p = opt_f32(m, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad("`top_p` must be in (0, 1]").param("top_p"));
    }
    let top_k = opt_i64(m, "top_k")?.unwrap_or(0).max(0) as usize;
    let min_p = opt_f32(m, "min_p")?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_p) {
        return Err(ApiError::bad("`min_p` must be in [0, 1]").param("min_p"));
    }
    let greedy = temperature == 0.0;
    let sampling = SamplingParams {
        greedy,
        temperature: if greedy { 1.0 } else { temperature },
        top_k,
        top_p,
        min_p,
    };
    let seed = opt_i64(m, "seed")?.map(|s| s as u64);
    let stop = stop_list(m)?;
    let stream = opt_bool(m, "stream")?.unwrap_or(false);
    let include_usage = match m.get("stream_options") {
        Some(Value::Object(o)) => opt_bool(o, "include_usage")?.unwrap_or(false),
        None | Some(Value::Null) => false,
        Some(_) => return Err(type_error("stream_options", "an object")),
    };
    Ok(Common {
        n,
        max_tokens,
        sampling,
        seed,
        stop,
        stream,
        include_usage,
    })
}

/// The text of a message's `content`: a string, or a list of `{"type": "text", "text"}` parts.
fn content_text(v: &Value, at: &str) -> ApiResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => out.push_str(t),
                    _ => {
                        return Err(ApiError::bad(format!(
                            "{at}: only text content parts are supported"
                        ))
                        .param("messages"));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(type_error("messages", "a list of {role, content} objects")),
    }
}

fn chat_messages(m: &Map<String, Value>) -> ApiResult<Value> {
    let Some(Value::Array(list)) = m.get("messages") else {
        return Err(match m.get("messages") {
            None => ApiError::bad("`messages` is required").param("messages"),
            Some(_) => type_error("messages", "a list of {role, content} objects"),
        });
    };
    if list.is_empty() {
        return Err(ApiError::bad("`messages` must not be empty").param("messages"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, msg) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Some(obj) = msg.as_object() else {
            return Err(type_error("messages", "a list of {role, content} objects"));
        };
        let Some(role) = obj.get("role").and_then(Value::as_str) else {
            return Err(ApiError::bad(format!("{at}: `role` must be a string")).param("messages"));
        };
        let content = content_text(obj.get("content").unwrap_or(&Value::Null), &at)?;
        let mut clean = obj.clone();
        clean.insert("role".into(), json!(role));
        clean.insert("content".into(), json!(content));
        out.push(Value::Object(clean));
    }
    Ok(Value::Array(out))
}

/// Seconds since the Unix epoch (OpenAI's `created`).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fresh_seed(state: &State) -> u64 {
    let n = state.next_id.fetch_add(1, Ordering::SeqCst) as u64;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A request's sequences (`n` per prompt), submitted to the engine; updates of all of them
/// arrive on one channel.
struct Running {
    /// Prompt tokens over every prompt.
    prompt_tokens: usize,
    rx: mpsc::UnboundedReceiver<Update>,
    /// Sequence id of each choice: prompt `p`'s choice `j` is entry `p * n + j`.
    ids: Vec<u64>,
}

fn submit(
    state: &State,
    prompts: &[Vec<u32>],
    c: &Common,
    top_logprobs: usize,
    prompt_param: &str,
) -> ApiResult<Running> {
    let mut subs = Vec::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut ids = Vec::with_capacity(prompts.len() * c.n);
    let base_seed = c.seed.unwrap_or_else(|| fresh_seed(state));
    for (p_index, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            return Err(ApiError::bad("the prompt is empty").param(prompt_param));
        }
        let room = state.max_model_len.saturating_sub(prompt.len());
        let max_new = c.max_tokens.unwrap_or(room);
        if max_new == 0 || prompt.len() + max_new > state.max_model_len {
            return Err(ApiError::bad(format!(
                "This model's maximum context length is {} tokens. However, you requested {} \
                 tokens ({} in the prompt, {} for the completion). Please reduce the length of \
                 the prompt or max_tokens.",
                state.max_model_len,
                prompt.len() + max_new.max(1),
                prompt.len(),
                max_new
            ))
            .param(prompt_param)
            .code("context_length_exceeded"));
        }
        for j in 0..c.n {
            let id = state.next_id.fetch_add(1, Ordering::SeqCst) as u64;
            ids.push(id);
            subs.push(Submission {
                id,
                params: SeqParams {
                    prompt_ids: prompt.clone(),
                    max_new_tokens: max_new,
                    sampling: c.sampling.clone(),
                    seed: row_seed(base_seed.wrapping_add(p_index as u64), j),
                    eos_token_ids: state.eos_token_ids.clone(),
                    stop_strings: c.stop.clone(),
                    ignore_eos: false,
                    top_logprobs,
                },
                reply: tx.clone(),
            });
        }
    }
    let n = subs.len();
    let before = state.queued.fetch_add(n, Ordering::SeqCst);
    if before + n > state.max_queue {
        state.queued.fetch_sub(n, Ordering::SeqCst);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "the queue is full ({} sequences wait for a batch slot): retry later",
                before
            ),
        )
        .code("rate_limit_exceeded"));
    }
    let sent = state
        .commands
        .lock()
        .map_err(|_| ApiError::internal("the engine lock is poisoned"))?
        .send(Command::Submit(subs));
    if sent.is_err() {
        state.queued.fetch_sub(n, Ordering::SeqCst);
        return Err(ApiError::internal("the engine has stopped"));
    }
    Ok(Running {
        prompt_tokens: prompts.iter().map(Vec::len).sum(),
        rx,
        ids,
    })
}

/// Tokens of one choice so far.
#[derive(Default)]
struct Choice {
    ids: Vec<u32>,
    events: Vec<TokenEvent>,
    finish: Option<FinishReason>,
    /// Bytes of reasoning and content already streamed.
    sent_reasoning: usize,
    sent_content: usize,
    started: bool,
}

impl Choice {
    fn text(&self, tok: &Tokenizer, stops: &[String]) -> ApiResult<String> {
        let decoded = tok
            .decode(&self.ids, true)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(visible(&decoded, stops, self.finish.is_some()))
    }
}

fn token_text(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// Waits for every choice of `r` to finish.
async fn collect(r: &mut Running) -> ApiResult<Vec<Choice>> {
    let mut choices: Vec<Choice> = (0..r.ids.len()).map(|_| Choice::default()).collect();
    while choices.iter().any(|c| c.finish.is_none()) {
        match r.rx.recv().await {
            Some(Update::Token(e)) => {
                let Some(j) = r.ids.iter().position(|&id| id == e.id) else {
                    continue;
                };
                let c = &mut choices[j];
                c.ids.push(e.token);
                c.finish = e.finish;
                c.events.push(e);
            }
            Some(Update::Error(msg)) => {
                return Err(ApiError::bad(msg));
            }
            None => return Err(ApiError::internal("the engine dropped the request")),
        }
    }
    Ok(choices)
}

/// The fields every response object and chunk of a request carries.
struct Envelope {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
}

impl Envelope {
    fn wrap(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut v = json!({
            "id": self.id, "object": self.object, "created": self.created,
            "model": self.model, "choices": choices,
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        v
    }
}

/// Streams `r` as server-sent events: after each token, `choice(j, choice, event, text)` turns
/// choice `j` (its visible text so far in `text`) into the chunk's choice object, or `None` when
/// there is nothing to send. The stream ends with a usage chunk when asked, then `[DONE]`. A
/// client that goes away drops the receiver, and with it `r`, which cancels the sequences.
fn stream_sse<F>(
    mut r: Running,
    tok: Arc<Tokenizer>,
    stops: Vec<String>,
    include_usage: bool,
    envelope: Envelope,
    mut choice: F,
) -> Response
where
    F: FnMut(usize, &mut Choice, &TokenEvent, String) -> Option<Value> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Result<Event, Infallible>>();
    tokio::spawn(async move {
        let send = |v: Value| tx.send(Ok(Event::default().data(v.to_string()))).is_ok();
        let mut choices: Vec<Choice> = (0..r.ids.len()).map(|_| Choice::default()).collect();
        let mut completion_tokens = 0;
        while choices.iter().any(|c| c.finish.is_none()) {
            let e = match r.rx.recv().await {
                Some(Update::Token(e)) => e,
                Some(Update::Error(msg)) => {
                    send(json!({"error": {
                        "message": msg, "type": "server_error", "param": null, "code": null,
                    }}));
                    return;
                }
                None => return,
            };
            let Some(j) = r.ids.iter().position(|&i| i == e.id) else {
                continue;
            };
            completion_tokens += 1;
            let ch = &mut choices[j];
            ch.ids.push(e.token);
            ch.finish = e.finish;
            let Ok(text) = ch.text(&tok, &stops) else {
                return;
            };
            if let Some(c) = choice(j, ch, &e, text)
                && !send(envelope.wrap(json!([c]), None))
            {
                return;
            }
        }
        if include_usage {
            send(envelope.wrap(json!([]), Some(usage(r.prompt_tokens, completion_tokens))));
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]")));
    });
    Sse::new(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)).into_response()
}

fn chat_logprobs(tok: &Tokenizer, events: &[TokenEvent]) -> Value {
    let entry = |id: u32, lp: f32| {
        let t = token_text(tok, id);
        json!({"token": t, "logprob": lp, "bytes": t.as_bytes()})
    };
    let content: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = entry(e.token, e.logprob);
            let top: Vec<Value> = e.top_logprobs.iter().map(|&(i, l)| entry(i, l)).collect();
            v["top_logprobs"] = Value::Array(top);
            v
        })
        .collect();
    json!({"content": content})
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

async fn models(AxState(state): AxState<Shared>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let root = state
        .folder
        .read()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    Ok(axum::Json(json!({"object": "list", "data": [{
        "id": state.name,
        "object": "model",
        "created": state.created,
        "owned_by": "r1",
        "root": root,
        "max_model_len": state.max_model_len,
    }]}))
    .into_response())
}

async fn chat(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let m = json_body(&state, &headers, body).await?;
    let c = common(&state, &m)?;
    let messages = chat_messages(&m)?;
    let logprobs = opt_bool(&m, "logprobs")?.unwrap_or(false);
    let top = opt_usize(&m, "top_logprobs")?.unwrap_or(0);
    if top > 20 {
        return Err(ApiError::bad("`top_logprobs` must be at most 20").param("top_logprobs"));
    }
    if top > 0 && !logprobs {
        return Err(ApiError::bad("`top_logprobs` needs `logprobs: true`").param("top_logprobs"));
    }
    let reasoning = state.reasoning && opt_bool(&m, "include_reasoning")?.unwrap_or(true);
    let mut extra = Map::new();
    if let Some(Value::Object(kw)) = m.get("chat_template_kwargs") {
        extra.extend(kw.clone());
    }
    let tok = state
        .tokenizer
        .read()
        .map_err(|_| ApiError::internal("tokenizer lock poisoned"))?
        .clone();
    let rendered = tok
        .apply_chat_template_with(&messages, true, &extra)
        .map_err(|e| ApiError::bad(e.to_string()).param("messages"))?;
    let thinking = rendered.trim_end().ends_with("<think>");
    let prompt = tok
        .encode(&rendered, false)
        .map_err(|e| ApiError::bad(e.to_string()).param("messages"))?;
    let mut r = submit(&state, &[prompt], &c, top, "messages")?;
    let envelope = Envelope {
        id: format!("chatcmpl-{}", r.ids[0]),
        object: "chat.completion",
        created: now(),
        model: state.name.clone(),
    };
    if c.stream {
        let tok_for_chunks = tok.clone();
        let envelope = Envelope {
            object: "chat.completion.chunk",
            ..envelope
        };
        return Ok(stream_sse(
            r,
            tok,
            c.stop.clone(),
            c.include_usage,
            envelope,
            move |j, ch, e, text| {
                let lp = logprobs.then(|| chat_logprobs(&tok_for_chunks, std::slice::from_ref(e)));
                let (rs, cs) = if reasoning {
                    split_reasoning(&text, thinking, ch.finish.is_some())
                } else {
                    (String::new(), text)
                };
                let mut d = Map::new();
                if !ch.started {
                    d.insert("role".into(), json!("assistant"));
                    d.insert("content".into(), json!(""));
                    ch.started = true;
                }
                let dr = delta(&rs, ch.sent_reasoning);
                if !dr.is_empty() {
                    d.insert("reasoning_content".into(), json!(dr));
                    ch.sent_reasoning = rs.len();
                }
                let dc = delta(&cs, ch.sent_content);
                if !dc.is_empty() {
                    d.insert("content".into(), json!(dc));
                    ch.sent_content = cs.len();
                }
                let finish = ch.finish.map(FinishReason::as_str);
                if d.is_empty() && finish.is_none() && lp.is_none() {
                    return None;
                }
                Some(json!({
                    "index": j, "delta": Value::Object(d), "logprobs": lp, "finish_reason": finish,
                }))
            },
        ));
    }
    let choices = collect(&mut r).await?;
    let mut out = Vec::with_capacity(choices.len());
    let mut completion_tokens = 0;
    for (j, ch) in choices.iter().enumerate() {
        completion_tokens += ch.ids.len();
        let text = ch.text(&tok, &c.stop)?;
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        if reasoning {
            let (rs, cs) = split_reasoning(&text, thinking, true);
            message.insert("content".into(), json!(cs));
            message.insert(
                "reasoning_content".into(),
                if rs.is_empty() && !thinking {
                    Value::Null
                } else {
                    json!(rs)
                },
            );
        } else {
            message.insert("content".into(), json!(text));
        }
        out.push(json!({
            "index": j,
            "message": Value::Object(message),
            "logprobs": if logprobs { chat_logprobs(&tok, &ch.events) } else { Value::Null },
            "finish_reason": ch.finish.map(FinishReason::as_str),
        }));
    }
    let body = envelope.wrap(
        Value::Array(out),
        Some(usage(r.prompt_tokens, completion_tokens)),
    );
    Ok(axum::Json(body).into_response())
}

/// `prompt` of `/v1/completions`: a string, a list of strings, a list of ids or a list of lists.
fn completion_prompts(tok: &Tokenizer, m: &Map<String, Value>) -> ApiResult<Vec<Vec<u32>>> {
    let wrong = || {
        type_error(
            "prompt",
            "a string, a list of strings or a list of token ids",
        )
    };
    let encode = |s: &str| {
        tok.encode(s, true)
            .map_err(|e| ApiError::bad(e.to_string()).param("prompt"))
    };
    let ids = |a: &[Value]| -> ApiResult<Vec<u32>> {
        a.iter()
            .map(|v| v.as_u64().map(|i| i as u32).ok_or_else(wrong))
            .collect()
    };
    match m.get("prompt") {
        None => Err(ApiError::bad("`prompt` is required").param("prompt")),
        Some(Value::String(s)) => Ok(vec![encode(s)?]),
        Some(Value::Array(a)) if a.is_empty() => {
            Err(ApiError::bad("`prompt` is empty").param("prompt"))
        }
        Some(Value::Array(a)) => match &a[0] {
            Value::String(_) => a
                .iter()
                .map(|v| v.as_str().ok_or_else(wrong).and_then(encode))
                .collect(),
            Value::Number(_) => Ok(vec![ids(a)?]),
            Value::Array(_) => a
                .iter()
                .map(|v| v.as_array().ok_or_else(wrong).and_then(|x| ids(x)))
                .collect(),
            _ => Err(wrong()),
        },
        Some(_) => Err(wrong()),
    }
}

fn completion_logprobs(tok: &Tokenizer, events: &[TokenEvent]) -> Value {
    let mut offset = 0;
    let mut tokens = Vec::new();
    let mut lps = Vec::new();
    let mut tops = Vec::new();
    let mut offsets = Vec::new();
    for e in events {
        let t = token_text(tok, e.token);
        offsets.push(offset);
        offset += t.len();
        tokens.push(t);
        lps.push(e.logprob);
        let mut top = Map::new();
        for &(i, l) in &e.top_logprobs {
            top.insert(token_text(tok, i), json!(l));
        }
        tops.push(Value::Object(top));
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

async fn completions(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let m = json_body(&state, &headers, body).await?;
    let c = common(&state, &m)?;
    if opt_bool(&m, "echo")?.unwrap_or(false) {
        return Err(ApiError::bad("`echo` is not supported").param("echo"));
    }
    let top = opt_usize(&m, "logprobs")?;
    if top.is_some_and(|k| k > 20) {
        return Err(ApiError::bad("`logprobs` must be at most 20").param("logprobs"));
    }
    let tok = state
        .tokenizer
        .read()
        .map_err(|_| ApiError::internal("tokenizer lock poisoned"))?
        .clone();
    let prompts = completion_prompts(&tok, &m)?;
    let mut r = submit(&state, &prompts, &c, top.unwrap_or(0), "prompt")?;
    let envelope = Envelope {
        id: format!("cmpl-{}", r.ids[0]),
        object: "text_completion",
        created: now(),
        model: state.name.clone(),
    };
    if c.stream {
        let tok_for_chunks = tok.clone();
        return Ok(stream_sse(
            r,
            tok,
            c.stop.clone(),
            c.include_usage,
            envelope,
            move |j, ch, e, text| {
                let lp = top.map(|_| completion_logprobs(&tok_for_chunks, std::slice::from_ref(e)));
                let d = delta(&text, ch.sent_content).to_string();
                ch.sent_content = text.len();
                let finish = ch.finish.map(FinishReason::as_str);
                if d.is_empty() && finish.is_none() && lp.is_none() {
                    return None;
                }
                Some(json!({"index": j, "text": d, "logprobs": lp, "finish_reason": finish}))
            },
        ));
    }
    let choices = collect(&mut r).await?;
    let mut out = Vec::with_capacity(choices.len());
    let mut completion_tokens = 0;
    for (j, ch) in choices.iter().enumerate() {
        completion_tokens += ch.ids.len();
        out.push(json!({
            "index": j,
            "text": ch.text(&tok, &c.stop)?,
            "logprobs": if top.is_some() { completion_logprobs(&tok, &ch.events) } else { Value::Null },
            "finish_reason": ch.finish.map(FinishReason::as_str),
        }));
    }
    let body = envelope.wrap(
        Value::Array(out),
        Some(usage(r.prompt_tokens, completion_tokens)),
    );
    Ok(axum::Json(body).into_response())
}

async fn load_weights(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let m = json_body(&state, &headers, body).await?;
    let path = match m.get("path").or_else(|| m.get("model_path")) {
        Some(Value::String(p)) => PathBuf::from(p),
        Some(_) => return Err(type_error("path", "a string")),
        None => return Err(ApiError::bad("`path` is required").param("path")),
    };
    let (tx, rx) = oneshot::channel();
    state
        .commands
        .lock()
        .map_err(|_| ApiError::internal("the engine lock is poisoned"))?
        .send(Command::LoadWeights { path, reply: tx })
        .map_err(|_| ApiError::internal("the engine has stopped"))?;
    let loaded = rx
        .await
        .map_err(|_| ApiError::internal("the engine has stopped"))?
        .map_err(|e| ApiError::bad(e).param("path"))?;
    if let Ok(mut t) = state.tokenizer.write() {
        *t = loaded.tokenizer;
    }
    if let Ok(mut f) = state.folder.write() {
        *f = loaded.folder.clone();
    }
    Ok(axum::Json(json!({
        "success": true,
        "message": format!("loaded {}", loaded.folder.display()),
    }))
    .into_response())
}
