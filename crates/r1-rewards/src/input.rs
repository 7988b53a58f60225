//! What a reward sees of one completion.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One completion to score, with its prompt, reference answers and task metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardInput {
    /// The prompt as text.
    #[serde(default)]
    pub prompt: String,
    /// The prompt as chat messages (`[{"role", "content"}]`), when it was a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Value>,
    /// The generated text.
    pub completion: String,
    /// Number of generated tokens (0 when unknown).
    #[serde(default)]
    pub completion_tokens: usize,
    /// Whether generation hit its token budget.
    #[serde(default)]
    pub truncated: bool,
    /// Reference answer(s); the grader accepts a match with any of them.
    #[serde(default)]
    pub answers: Vec<String>,
    /// Free-form task metadata: test cases, target numbers, language, ...
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl RewardInput {
    /// A completion with a single reference answer.
    pub fn new(completion: impl Into<String>, answer: impl Into<String>) -> Self {
        Self {
            completion: completion.into(),
            answers: vec![answer.into()],
            ..Self::default()
        }
    }

    /// Builds an input from one JSON object of `r1 reward`'s input format:
    /// `{"prompt", "completion", "answer" (string, number or list), ...metadata}`; recognised
    /// keys also include `messages`, `completion_tokens` and `truncated`, and every other key
    /// is metadata.
    pub fn from_json(value: Value) -> Result<Self, String> {
        let Value::Object(mut map) = value else {
            return Err("expected a JSON object".into());
        };
        let text = |v: Value, key: &str| -> Result<String, String> {
            match v {
                Value::String(s) => Ok(s),
                Value::Null => Ok(String::new()),
                other => Err(format!("`{key}` must be a string, found {other}")),
            }
        };
        let completion = match map.remove("completion") {
            Some(v) => text(v, "completion")?,
            None => return Err("missing key `completion`".into()),
        };
        let prompt = match map.remove("prompt") {
            None => String::new(),
            Some(Value::Array(msgs)) => {
                let joined = msgs
                    .iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n");
                map.insert("messages".into(), Value::Array(msgs));
                joined
            }
            Some(v) => text(v, "prompt")?,
        };
        let messages = map.remove("messages");
        let answer_value = map.remove("answer").or_else(|| map.remove("answers"));
        let answers = match answer_value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Number(n)) => vec![n.to_string()],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!(
                        "`answer` items must be strings or numbers, found {other}"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "`answer` must be a string, number or list, found {other}"
                ));
            }
        };
        let completion_tokens = match map.remove("completion_tokens") {
            None => 0,
            Some(v) => v.as_u64().ok_or_else(|| {
                format!("`completion_tokens` must be a non-negative integer, found {v}")
            })? as usize,
        };
        let truncated = match map.remove("truncated") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("`truncated` must be true or false, found {v}"))?,
        };
        Ok(Self {
            prompt,
            messages,
            completion,
            completion_tokens,
            truncated,
            answers,
            metadata: map,
        })
    }
}
