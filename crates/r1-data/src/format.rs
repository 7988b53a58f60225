//! Record formats: which fields of a JSON record hold the prompt, the target and the answers.
//!
//! The formats follow TRL's dataset formats (<https://huggingface.co/docs/trl/dataset_formats>)
//! plus the layouts of GSM8K, MATH, AIME and DeepSeek-R1 traces:
//!
//! | format | fields | prompt | completion | reasoning / final answer | answers |
//! |---|---|---|---|---|---|
//! | `prompt_completion` | `prompt`, `completion`? (text or turns), `answer`? | `prompt` | `completion` | split at `</think>` | `answer` |
//! | `prompt_messages` | `prompt`, `completion`? (turns) | `prompt` | `completion` | from the first assistant turn | `answer` |
//! | `messages` | `messages` (turns) | turns before the first `assistant` turn | that turn and all after | from the first assistant turn | `answer` |
//! | `gsm8k` | `question`, `answer` (`...#### 72`) | `question` | `answer` | before / after the last `####` | after `####`, `,` removed |
//! | `math` | `problem`, `solution`?, `answer`? | `problem` | `solution` | split at `</think>` | `answer` |
//! | `aime` | `problem`, `answer` (string or number), `solution`? | `problem` | `solution` | split at `</think>` | `answer` |
//! | `r1_trace` | `reasoning_content`, `content`, a prompt (`prompt`, `problem`, `question` or `messages`), `answer`? | the prompt | `<think>\n{reasoning}\n</think>\n\n{content}` | `reasoning_content` / `content` | `answer` |
//! | `text` | `text` | empty | `text` (every token trained on) | | `answer` |
//!
//! Fields marked `?` may be missing (or null); a `prompt`-only record is a prompt-only dataset
//! (for RL and sampling) with no completion. [`ColumnMap`] renames source columns, and
//! [`Format::Auto`] picks the format from the keys of a file's first record, in this order:
//! `messages`; `prompt` + `completion`; `reasoning_content` + `content`; `problem` (MATH or
//! AIME); `question` + `answer` (GSM8K); `prompt` alone; `text` (language modelling: every
//! token is trained on). `problem` comes before GSM8K because
//! AIME files also carry a `question` copy of the problem.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sample::{Content, Message, Sample, split_think};

/// How records are laid out; see the [module docs](self) for the fields of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Picks the format from the keys of the first record (see the module docs).
    #[default]
    Auto,
    /// TRL's prompt-completion (or prompt-only) format; `prompt` and `completion` may be text
    /// or turns.
    PromptCompletion,
    /// TRL's conversational language-modelling format: one `messages` list per record.
    Messages,
    /// TRL's conversational prompt-completion format: `prompt` and `completion` are turns.
    PromptMessages,
    /// GSM8K: `question`, and `answer` with the worked solution ending in `#### <number>`.
    Gsm8k,
    /// MATH and MATH-500: `problem`, `solution`, `answer`.
    Math,
    /// AIME: `problem` and a required `answer` (string or number).
    Aime,
    /// DeepSeek-R1 traces: `reasoning_content`, `content` and a prompt field.
    R1Trace,
    /// TRL's language-modelling format: one `text` per record, trained on every token (an
    /// empty prompt and the text as the completion).
    Text,
}

/// Renames source columns onto the names the formats read; unset entries use the format's own
/// names. From TOML: `[data.columns] prompt = "instruction"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnMap {
    /// The prompt column (default `prompt`; `question` for GSM8K; `problem` for MATH and
    /// AIME; the first of `prompt`, `problem`, `question`, `messages` for R1 traces).
    pub prompt: Option<String>,
    /// The completion column (default `completion`); for R1 traces, the final-answer column
    /// (default `content`).
    pub completion: Option<String>,
    /// The conversation column (default `messages`).
    pub messages: Option<String>,
    /// The reference-answer column (default `answer`; GSM8K's worked answer).
    pub answer: Option<String>,
    /// The worked-solution column of MATH and AIME (default `solution`).
    pub solution: Option<String>,
    /// The reasoning column of R1 traces (default `reasoning_content`).
    pub reasoning: Option<String>,
    /// The id column (default `id`, then `unique_id`).
    pub id: Option<String>,
}

/// A record's fields seen through a [`ColumnMap`]; null values count as missing.
struct View<'a> {
    record: &'a Map<String, Value>,
    columns: &'a ColumnMap,
}

impl<'a> View<'a> {
    /// The source column name for a canonical key.
    fn name(&self, key: &'a str) -> &'a str {
        let mapped = match key {
            "prompt" => &self.columns.prompt,
            "completion" => &self.columns.completion,
            "messages" => &self.columns.messages,
            "answer" => &self.columns.answer,
            "solution" => &self.columns.solution,
            "reasoning_content" => &self.columns.reasoning,
            _ => &None,
        };
        mapped.as_deref().unwrap_or(key)
    }

    /// The value under a canonical key, when present and not null.
    fn get(&self, key: &'a str) -> Option<(&'a str, &'a Value)> {
        let name = self.name(key);
        match self.record.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some((name, value)),
        }
    }

    fn has(&self, key: &'a str) -> bool {
        self.get(key).is_some()
    }

    /// A required field, named by its source column in errors.
    fn require(&self, key: &'a str) -> Result<(&'a str, &'a Value), String> {
        let name = self.name(key);
        match self.record.get(name) {
            None => Err(format!("missing field `{name}`")),
            Some(value) => Ok((name, value)),
        }
    }
}

/// JSON's name for a value's type, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn string(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "field `{name}` must be a string, found {}",
            kind(other)
        )),
    }
}

/// A scalar answer (AIME's answers are often JSON numbers).
fn scalar(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!(
            "field `{name}` must be a string or number, found {}",
            kind(other)
        )),
    }
}

fn turns(name: &str, value: &Value) -> Result<Vec<Message>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "field `{name}` must be a list of {{role, content}} messages, found {}",
            kind(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(obj) = item else {
                return Err(format!(
                    "field `{name}`[{i}] must be a {{role, content}} object, found {}",
                    kind(item)
                ));
            };
            let role = match obj.get("role") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "field `{name}`[{i}].role must be a string, found {}",
                        kind(other)
                    ));
                }
                None => return Err(format!("field `{name}`[{i}] has no `role`")),
            };
            let content = match obj.get("content") {
                Some(Value::String(s)) => s.clone(),
                // Tool-calling assistant turns carry `content: null`.
                Some(Value::Null) | None => String::new(),
                Some(other) => {
                    return Err(format!(
                        "field `{name}`[{i}].content must be a string, found {}",
                        kind(other)
                    ));
                }
            };
            Ok(Message { role, content })
        })
        .collect()
}

/// Text or turns.
fn content(name: &str, value: &Value) -> Result<Content, String> {
    match value {
        Value::String(s) => Ok(Content::Text(s.clone())),
        Value::Array(_) => Ok(Content::Messages(turns(name, value)?)),
        other => Err(format!(
            "field `{name}` must be a string or a list of messages, found {}",
            kind(other)
        )),
    }
}

/// `answer` as a list: a scalar, a list of scalars, or nothing.
fn answer_list(view: &View<'_>) -> Result<Vec<String>, String> {
    let Some((name, value)) = view.get("answer") else {
        return Ok(Vec::new());
    };
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                scalar(name, item).map_err(|_| {
                    format!(
                        "field `{name}` items must be strings or numbers, found {}",
                        kind(item)
                    )
                })
            })
            .collect(),
        other => Ok(vec![scalar(name, other)?]),
    }
}

/// Reasoning and final answer of a completion: split at `</think>` for text, from the first
/// assistant turn for turns.
fn think_parts(completion: Option<&Content>) -> (Option<String>, Option<String>) {
    let text = match completion {
        Some(Content::Text(text)) => Some(text.as_str()),
        Some(Content::Messages(turns)) => turns
            .iter()
            .find(|m| m.role == "assistant")
            .map(|m| m.content.as_str()),
        None => None,
    };
    match text.and_then(split_think) {
        Some((reasoning, answer)) => (Some(reasoning), Some(answer)),
        None => (None, None),
    }
}

/// Splits a conversation before its first assistant turn.
fn split_conversation(mut messages: Vec<Message>) -> (Vec<Message>, Option<Vec<Message>>) {
    match messages.iter().position(|m| m.role == "assistant") {
        Some(first) => {
            let completion = messages.split_off(first);
            (messages, Some(completion))
        }
        None => (messages, None),
    }
}

/// The parts of a sample other than its id and record.
struct Parts {
    prompt: Content,
    completion: Option<Content>,
    reasoning: Option<String>,
    final_answer: Option<String>,
    answers: Vec<String>,
}

impl Parts {
    /// Prompt and completion, with reasoning and final answer taken from the completion.
    fn new(prompt: Content, completion: Option<Content>, answers: Vec<String>) -> Self {
        let (reasoning, final_answer) = think_parts(completion.as_ref());
        Self {
            prompt,
            completion,
            reasoning,
            final_answer,
            answers,
        }
    }
}

impl Format {
    /// Picks the format of a record from its keys (after `columns`), in the order given in the
    /// module docs; `None` when no format matches.
    pub fn detect(record: &Map<String, Value>, columns: &ColumnMap) -> Option<Self> {
        let view = View { record, columns };
        if view.has("messages") {
            Some(Self::Messages)
        } else if view.has("prompt") && view.has("completion") {
            match view.get("prompt") {
                Some((_, Value::Array(_))) => Some(Self::PromptMessages),
                _ => Some(Self::PromptCompletion),
            }
        } else if view.has("reasoning_content") && view.has("content") {
            Some(Self::R1Trace)
        } else if view.has("problem") {
            Some(Self::Math)
        } else if view.has("question") && view.has("answer") {
            Some(Self::Gsm8k)
        } else if view.has("prompt") {
            Some(Self::PromptCompletion)
        } else if view.has("text") {
            Some(Self::Text)
        } else {
            None
        }
    }

    /// The error for a record that no format matches, naming its keys.
    pub(crate) fn no_match(record: &Map<String, Value>) -> String {
        let keys = record
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| format!("`{k}`"))
            .collect::<Vec<_>>();
        let keys = if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        };
        format!(
            "no known format matches this record's keys ({keys}); expected `messages`, \
             `prompt` (+ `completion`), `reasoning_content` + `content`, `problem`, \
             `question` + `answer`, or `text`: set `format` or map the columns with `columns`"
        )
    }

    fn parts(self, view: &View<'_>) -> Result<Parts, String> {
        match self {
            Self::Auto => match Self::detect(view.record, view.columns) {
                Some(format) => format.parts(view),
                None => Err(Self::no_match(view.record)),
            },
            Self::PromptCompletion => {
                let (name, prompt) = view.require("prompt")?;
                let prompt = content(name, prompt)?;
                let completion = match view.get("completion") {
                    Some((name, value)) => Some(content(name, value)?),
                    None => None,
                };
                Ok(Parts::new(prompt, completion, answer_list(view)?))
            }
            Self::PromptMessages => {
                let (name, prompt) = view.require("prompt")?;
                let prompt = Content::Messages(turns(name, prompt)?);
                let completion = match view.get("completion") {
                    Some((name, value)) => Some(Content::Messages(turns(name, value)?)),
                    None => None,
                };
                Ok(Parts::new(prompt, completion, answer_list(view)?))
            }
            Self::Messages => {
                let (name, messages) = view.require("messages")?;
                let (prompt, completion) = split_conversation(turns(name, messages)?);
                Ok(Parts::new(
                    Content::Messages(prompt),
                    completion.map(Content::Messages),
                    answer_list(view)?,
                ))
            }
            Self::Gsm8k => {
                let prompt_key = if view.columns.prompt.is_some() {
                    "prompt"
                } else {
                    "question"
                };
                let (name, question) = view.require(prompt_key)?;
                let question = string(name, question)?;
                let (name, answer) = view.require("answer")?;
                let answer = scalar(name, answer)?;
                Ok(gsm8k(question, answer))
            }
            Self::Math | Self::Aime => {
                let prompt_key = if view.columns.prompt.is_some() {
                    "prompt"
                } else {
                    "problem"
                };
                let (name, problem) = view.require(prompt_key)?;
                let problem = string(name, problem)?;
                let solution = match view.get("solution") {
                    Some((name, value)) => Some(Content::Text(string(name, value)?)),
                    None => None,
                };
                let answers = match (view.get("answer"), self) {
                    (Some((name, value)), _) => vec![scalar(name, value)?],
                    (None, Self::Aime) => {
                        return Err(format!(
                            "missing field `{}` (AIME records need an answer)",
                            view.name("answer")
                        ));
                    }
                    (None, _) => Vec::new(),
                };
                Ok(Parts::new(Content::Text(problem), solution, answers))
            }
            Self::Text => {
                let (name, text) = view.require("text")?;
                let text = string(name, text)?;
                Ok(Parts::new(
                    Content::Text(String::new()),
                    Some(Content::Text(text)),
                    answer_list(view)?,
                ))
            }
            Self::R1Trace => {
                let (name, reasoning) = view.require("reasoning_content")?;
                let reasoning = string(name, reasoning)?.trim().to_owned();
                let content_name = view.columns.completion.as_deref().unwrap_or("content");
                let answer = match view.record.get(content_name) {
                    Some(value) => string(content_name, value)?.trim().to_owned(),
                    None => return Err(format!("missing field `{content_name}`")),
                };
                let prompt = r1_prompt(view)?;
                Ok(Parts {
                    prompt,
                    completion: Some(Content::Text(format!(
                        "<think>\n{reasoning}\n</think>\n\n{answer}"
                    ))),
                    reasoning: Some(reasoning),
                    final_answer: Some(answer),
                    answers: answer_list(view)?,
                })
            }
        }
    }
}

/// The prompt of an R1 trace: the mapped prompt column, else the first of `prompt`, `problem`,
/// `question`, or the turns of `messages` before the first assistant turn.
fn r1_prompt(view: &View<'_>) -> Result<Content, String> {
    if let Some(name) = &view.columns.prompt {
        let value = view
            .record
            .get(name)
            .ok_or_else(|| format!("missing field `{name}`"))?;
        return content(name, value);
    }
    for key in ["prompt", "problem", "question"] {
        if let Some(value) = view.record.get(key).filter(|v| !v.is_null()) {
            return content(key, value);
        }
    }
    if let Some((name, value)) = view.get("messages") {
        let (prompt, _) = split_conversation(turns(name, value)?);
        return Ok(Content::Messages(prompt));
    }
    Err("an R1 trace needs a prompt: none of `prompt`, `problem`, `question`, `messages`".into())
}

/// GSM8K's `answer`: the worked solution, then `#### <number>`. Without `####` the whole
/// answer is taken as the final answer, with no worked completion.
fn gsm8k(question: String, answer: String) -> Parts {
    match answer.rfind("####") {
        Some(at) => {
            let reasoning = answer[..at].trim().to_owned();
            let final_answer = answer[at + "####".len()..].trim().replace(',', "");
            Parts {
                prompt: Content::Text(question),
                completion: Some(Content::Text(answer)),
                reasoning: Some(reasoning),
                final_answer: Some(final_answer.clone()),
                answers: vec![final_answer],
            }
        }
        None => {
            let final_answer = answer.trim().replace(',', "");
            Parts {
                prompt: Content::Text(question),
                completion: None,
                reasoning: None,
                final_answer: Some(final_answer.clone()),
                answers: vec![final_answer],
            }
        }
    }
}

/// The record's id: the mapped `id` column, else `id`, else `unique_id`; strings as they are,
/// other values as JSON text.
fn record_id(record: &Map<String, Value>, columns: &ColumnMap) -> Option<String> {
    let value = match &columns.id {
        Some(name) => record.get(name),
        None => record.get("id").or_else(|| record.get("unique_id")),
    };
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Sample {
    /// Builds a sample from one record. `fallback_id` is used when the record has no id field
    /// (readers pass `<file stem>:<line>`). The error is the message without a location; the
    /// readers add the file and line or row.
    pub fn from_record(
        record: Map<String, Value>,
        format: Format,
        columns: &ColumnMap,
        fallback_id: impl FnOnce() -> String,
    ) -> Result<Self, String> {
        let parts = format.parts(&View {
            record: &record,
            columns,
        })?;
        let id = record_id(&record, columns).unwrap_or_else(fallback_id);
        Ok(Self {
            id,
            prompt: parts.prompt,
            completion: parts.completion,
            reasoning: parts.reasoning,
            final_answer: parts.final_answer,
            answers: parts.answers,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn sample(v: Value, format: Format) -> Result<Sample, String> {
        Sample::from_record(obj(v), format, &ColumnMap::default(), || "f:1".into())
    }

    #[test]
    fn detects_each_format() {
        let c = ColumnMap::default();
        let d = |v: Value| Format::detect(&obj(v), &c);
        assert_eq!(d(json!({"messages": []})), Some(Format::Messages));
        assert_eq!(
            d(json!({"prompt": "a", "completion": "b"})),
            Some(Format::PromptCompletion)
        );
        assert_eq!(
            d(json!({"prompt": [], "completion": []})),
            Some(Format::PromptMessages)
        );
        assert_eq!(
            d(json!({"problem": "p", "reasoning_content": "r", "content": "c"})),
            Some(Format::R1Trace)
        );
        assert_eq!(
            d(json!({"problem": "p", "question": "p", "answer": 3})),
            Some(Format::Math)
        );
        assert_eq!(
            d(json!({"question": "q", "answer": "a"})),
            Some(Format::Gsm8k)
        );
        assert_eq!(d(json!({"prompt": "q"})), Some(Format::PromptCompletion));
        assert_eq!(d(json!({"text": "q"})), Some(Format::Text));
        assert_eq!(d(json!({"body": "q"})), None);
    }

    #[test]
    fn gsm8k_splits_at_last_marker() {
        let s = sample(
            json!({"question": "q", "answer": "a #### b\nso 1,000\n#### 1,234"}),
            Format::Auto,
        )
        .expect("valid");
        assert_eq!(s.answers, vec!["1234"]);
        assert_eq!(s.final_answer.as_deref(), Some("1234"));
        assert_eq!(s.reasoning.as_deref(), Some("a #### b\nso 1,000"));
        assert_eq!(s.id, "f:1");
    }

    #[test]
    fn messages_split_before_first_assistant_turn() {
        let s = sample(
            json!({"messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "<think>r</think>a"},
                {"role": "user", "content": "u2"}
            ]}),
            Format::Auto,
        )
        .expect("valid");
        assert_eq!(
            s.prompt,
            Content::Messages(vec![Message::system("s"), Message::user("u")])
        );
        let Some(Content::Messages(c)) = &s.completion else {
            panic!("conversation completion")
        };
        assert_eq!(c.len(), 2);
        assert_eq!(s.reasoning.as_deref(), Some("r"));
        assert_eq!(s.final_answer.as_deref(), Some("a"));

        let s = sample(
            json!({"messages": [{"role": "user", "content": "u"}]}),
            Format::Messages,
        )
        .expect("valid");
        assert_eq!(s.completion, None);
    }

    #[test]
    fn r1_trace_builds_think_completion() {
        let s = sample(
            json!({"problem": "p", "reasoning_content": "\nhmm\n", "content": "42", "answer": 42}),
            Format::Auto,
        )
        .expect("valid");
        assert_eq!(
            s.completion,
            Some(Content::Text("<think>\nhmm\n</think>\n\n42".into()))
        );
        assert_eq!(s.answers, vec!["42"]);
        assert_eq!(s.prompt, Content::Text("p".into()));
    }

    #[test]
    fn math_without_answer_keeps_answers_empty_and_aime_needs_one() {
        let s = sample(
            json!({"problem": "p", "solution": "\\boxed{1}"}),
            Format::Auto,
        )
        .expect("valid");
        assert!(s.answers.is_empty());
        let e = sample(json!({"problem": "p"}), Format::Aime).expect_err("needs answer");
        assert!(e.contains("`answer`"), "{e}");
        let s = sample(
            json!({"id": 60, "problem": "p", "answer": 204}),
            Format::Aime,
        )
        .expect("valid");
        assert_eq!((s.id.as_str(), s.answers[0].as_str()), ("60", "204"));
    }

    #[test]
    fn column_map_renames() {
        let columns: ColumnMap =
            toml::from_str("prompt = \"instruction\"\ncompletion = \"output\"").expect("toml");
        let s = Sample::from_record(
            obj(json!({"instruction": "i", "output": "o"})),
            Format::Auto,
            &columns,
            || "x".into(),
        )
        .expect("valid");
        assert_eq!(s.prompt, Content::Text("i".into()));
        assert_eq!(s.completion, Some(Content::Text("o".into())));
        assert!(toml::from_str::<ColumnMap>("promt = \"x\"").is_err());
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = sample(json!({"question": "q", "answer": [1]}), Format::Gsm8k).expect_err("bad");
        assert_eq!(e, "field `answer` must be a string or number, found array");
        let e = sample(json!({"body": "q"}), Format::Auto).expect_err("bad");
        assert!(e.contains("`body`"), "{e}");
        let s = sample(json!({"text": "all of it"}), Format::Auto).expect("text");
        assert_eq!(s.completion, Some(Content::Text("all of it".into())));
    }
}
