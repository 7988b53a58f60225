//! Prompt templates: raw text, DeepSeek-R1-Zero's template, or chat turns for a tokenizer's
//! chat template.
//!
//! R1-Zero was trained from a base model with one fixed instruction (DeepSeek-R1 paper, Table 1):
//! the model is told to reason inside `<think> </think>` and answer inside `<answer> </answer>`,
//! and nothing else about how to reason, so that what it learns comes from RL alone.

use serde::{Deserialize, Serialize};

use crate::sample::{Content, Message, Sample};

/// DeepSeek-R1-Zero's template (DeepSeek-R1 paper, Table 1), with `{prompt}` where the question
/// goes. The generation continues after `Assistant:`.
pub const R1_ZERO_TEMPLATE: &str = "A conversation between User and Assistant. The user asks a \
question, and the Assistant solves it. The assistant first thinks about the reasoning process in \
the mind and then provides the user with the answer. The reasoning process and answer are \
enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> \
reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:";

/// Fills [`R1_ZERO_TEMPLATE`] with `prompt`.
pub fn r1_zero(prompt: &str) -> String {
    // `replace` scans only the template, so a prompt that itself contains `{prompt}` is kept.
    R1_ZERO_TEMPLATE.replace("{prompt}", prompt)
}

/// How a sample's prompt is turned into model input. From TOML: `template = "raw"`,
/// `template = "r1_zero"`, or `template = { chat = { system = "You are ..." } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PromptTemplate {
    /// The prompt text as it is.
    #[default]
    Raw,
    /// The prompt inside [`R1_ZERO_TEMPLATE`].
    R1Zero,
    /// Chat turns, to be rendered by the tokenizer's chat template.
    Chat {
        /// A system turn put first (replacing a system turn the data starts with).
        #[serde(default)]
        system: Option<String>,
    },
}

/// The question of a prompt: its text, or the last user turn of a conversation.
fn question(prompt: &Content) -> Option<&str> {
    match prompt {
        Content::Text(text) => Some(text),
        Content::Messages(turns) => turns
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str()),
    }
}

impl PromptTemplate {
    /// The model input as text for [`Raw`](Self::Raw) and [`R1Zero`](Self::R1Zero); a chat
    /// prompt contributes its last user turn. `None` for [`Chat`](Self::Chat), which is
    /// rendered by a tokenizer from [`messages`](Self::messages), and for a conversation with
    /// no user turn.
    pub fn apply_text(&self, sample: &Sample) -> Option<String> {
        match self {
            Self::Raw => question(&sample.prompt).map(str::to_owned),
            Self::R1Zero => question(&sample.prompt).map(r1_zero),
            Self::Chat { .. } => None,
        }
    }

    /// The prompt as chat turns: a text prompt becomes one user turn (filled into the R1-Zero
    /// template for [`R1Zero`](Self::R1Zero)), and [`Chat`](Self::Chat)'s system prompt is put
    /// first, replacing a system turn the conversation starts with.
    pub fn messages(&self, sample: &Sample) -> Vec<Message> {
        match self {
            Self::Raw => match &sample.prompt {
                Content::Text(text) => vec![Message::user(text.clone())],
                Content::Messages(turns) => turns.clone(),
            },
            Self::R1Zero => match question(&sample.prompt) {
                Some(q) => vec![Message::user(r1_zero(q))],
                None => Vec::new(),
            },
            Self::Chat { system } => {
                let mut turns = match &sample.prompt {
                    Content::Text(text) => vec![Message::user(text.clone())],
                    Content::Messages(turns) => turns.clone(),
                };
                if let Some(system) = system {
                    if turns.first().is_some_and(|m| m.role == "system") {
                        turns.remove(0);
                    }
                    turns.insert(0, Message::system(system.clone()));
                }
                turns
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn sample(prompt: Content) -> Sample {
        Sample {
            id: "t".into(),
            prompt,
            completion: None,
            reasoning: None,
            final_answer: None,
            answers: Vec::new(),
            record: Map::new(),
        }
    }

    #[test]
    fn r1_zero_fills_the_placeholder_once() {
        let text = r1_zero("What is 2+2?");
        assert!(text.starts_with("A conversation between User and Assistant."));
        assert!(text.ends_with("User: What is 2+2?. Assistant:"));
        assert!(!text.contains("{prompt}"));
        assert_eq!(r1_zero("{prompt}").matches("{prompt}").count(), 1);
    }

    #[test]
    fn templates_from_toml() {
        #[derive(Deserialize)]
        struct C {
            template: PromptTemplate,
        }
        let t = |s: &str| toml::from_str::<C>(s).map(|c| c.template);
        assert_eq!(t("template = \"raw\"").ok(), Some(PromptTemplate::Raw));
        assert_eq!(
            t("template = \"r1_zero\"").ok(),
            Some(PromptTemplate::R1Zero)
        );
        assert_eq!(
            t("template = { chat = { system = \"S\" } }").ok(),
            Some(PromptTemplate::Chat {
                system: Some("S".into())
            })
        );
        assert_eq!(
            t("template = { chat = {} }").ok(),
            Some(PromptTemplate::Chat { system: None })
        );
        assert!(t("template = \"r1-zero\"").is_err());
    }

    #[test]
    fn chat_prepends_or_replaces_the_system_turn() {
        let chat = PromptTemplate::Chat {
            system: Some("S".into()),
        };
        let text = sample(Content::Text("q".into()));
        assert_eq!(
            chat.messages(&text),
            vec![Message::system("S"), Message::user("q")]
        );
        assert_eq!(chat.apply_text(&text), None);
        let conv = sample(Content::Messages(vec![
            Message::system("old"),
            Message::user("q"),
        ]));
        assert_eq!(
            chat.messages(&conv),
            vec![Message::system("S"), Message::user("q")]
        );
        assert_eq!(PromptTemplate::Raw.apply_text(&conv).as_deref(), Some("q"));
        assert_eq!(
            PromptTemplate::R1Zero.messages(&text),
            vec![Message::user(r1_zero("q"))]
        );
    }
}
