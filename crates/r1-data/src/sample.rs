//! One training or evaluation example, in a form every stage (SFT, RL, evaluation) can use.

use r1_rewards::RewardInput;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One turn of a conversation, as in TRL's conversational datasets and chat templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, or another role a chat template knows.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl Message {
    /// A turn with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A `system` turn.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A `user` turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An `assistant` turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A prompt or a completion: plain text (TRL's "standard" format) or chat turns
/// ("conversational"). Serialises as a JSON string or a list of `{role, content}` objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Chat turns.
    Messages(Vec<Message>),
}

impl Content {
    /// The text, when this is plain text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Messages(_) => None,
        }
    }

    /// The turns, when this is a conversation.
    pub fn as_messages(&self) -> Option<&[Message]> {
        match self {
            Self::Text(_) => None,
            Self::Messages(messages) => Some(messages),
        }
    }

    /// The text, or the turns' contents joined by newlines (how `r1 reward` flattens a
    /// conversational prompt).
    pub fn to_plain_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Messages(messages) => messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One example: a prompt, an optional target completion (split into reasoning and final
/// answer where the format allows), reference answers for grading, and the source record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Stable id: the record's `id` or `unique_id` field (stringified) when it has one, else
    /// `<file stem>:<n>` with the 1-based line of a JSONL file or the 0-based row index of a
    /// Parquet file.
    pub id: String,
    /// The prompt.
    pub prompt: Content,
    /// The target completion for SFT, when the record has one.
    pub completion: Option<Content>,
    /// The target's reasoning part: R1 traces' `reasoning_content`, the text inside
    /// `<think>…</think>`, or GSM8K's solution before `####`.
    pub reasoning: Option<String>,
    /// The target's final-answer part: the text after `</think>`, R1 traces' `content`, or
    /// GSM8K's number after `####`.
    pub final_answer: Option<String>,
    /// Reference answers for grading; a grader accepts a match with any of them.
    pub answers: Vec<String>,
    /// The input record's fields, untouched (for provenance and outputs).
    pub record: Map<String, Value>,
}

impl Sample {
    /// The prompt as text, when it is text rather than chat turns.
    pub fn prompt_text(&self) -> Option<&str> {
        self.prompt.as_text()
    }

    /// What a reward sees of `completion` generated for this sample: the prompt (chat turns
    /// flattened to text, and kept as `messages`), the reference answers, and the record as
    /// metadata (so task fields such as Countdown's `target` and `nums` reach the reward).
    pub fn to_reward_input(&self, completion: &str) -> RewardInput {
        let messages = self.prompt.as_messages().map(|turns| {
            Value::Array(
                turns
                    .iter()
                    .map(|m| {
                        let mut obj = Map::new();
                        obj.insert("role".into(), Value::String(m.role.clone()));
                        obj.insert("content".into(), Value::String(m.content.clone()));
                        Value::Object(obj)
                    })
                    .collect(),
            )
        });
        RewardInput {
            prompt: self.prompt.to_plain_text(),
            messages,
            completion: completion.to_owned(),
            completion_tokens: 0,
            truncated: false,
            answers: self.answers.clone(),
            metadata: self.record.clone(),
        }
    }
}

/// Splits a completion at `</think>` into its reasoning (after an opening `<think>` if there is
/// one; templates that end the prompt with `<think>` leave it out of the completion) and the
/// final answer after the closing tag, both trimmed. `None` without a `</think>`.
pub fn split_think(text: &str) -> Option<(String, String)> {
    let close = text.find("</think>")?;
    let before = &text[..close];
    let reasoning = match before.find("<think>") {
        Some(open) => &before[open + "<think>".len()..],
        None => before,
    };
    let answer = &text[close + "</think>".len()..];
    Some((reasoning.trim().to_owned(), answer.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_think_with_and_without_opening_tag() {
        assert_eq!(
            split_think("<think>\nstep\n</think>\n\n42"),
            Some(("step".into(), "42".into()))
        );
        assert_eq!(
            split_think("step</think>42"),
            Some(("step".into(), "42".into()))
        );
        assert_eq!(split_think("no tags"), None);
    }

    #[test]
    fn reward_input_flattens_chat_prompts() {
        let sample = Sample {
            id: "x".into(),
            prompt: Content::Messages(vec![Message::system("be brief"), Message::user("1+1?")]),
            completion: None,
            reasoning: None,
            final_answer: None,
            answers: vec!["2".into()],
            record: Map::new(),
        };
        let input = sample.to_reward_input("2");
        assert_eq!(input.prompt, "be brief\n1+1?");
        assert_eq!(input.answers, vec!["2".to_string()]);
        assert!(input.messages.is_some());
        assert_eq!(sample.prompt_text(), None);
    }
}
