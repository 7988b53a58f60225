//! Turning samples into training sequences exactly as TRL 1.16's `SFTTrainer` does.
//!
//! - Text prompt + completion: `prompt + completion + eos_token` is tokenized as one string
//!   (the eos text is appended unless the completion already ends with it), the prompt alone
//!   too; the completion starts where the two token lists stop agreeing (TRL's
//!   `common_prefix_length`). With `completion_only_loss` (on by default) only the completion's
//!   tokens are labels.
//! - Conversations: rendered with the tokenizer's chat template and tokenized without special
//!   tokens (transformers' `apply_chat_template(tokenize=True)`); only assistant turns are
//!   labels. Each assistant turn's tokens are found by rendering the conversation up to it
//!   with the generation prompt, and up to its end.
//! - `max_length` truncates (`keep_start` or `keep_end`) unless packing, which truncates or
//!   splits while packing; examples left with no label are dropped, as TRL drops them.

use r1_data::{Content, Message, Sample};
use r1_model::Tokenizer;
use serde_json::Value;

use crate::config::SftConfig;
use crate::error::{DistillError, Result};

/// One tokenized training sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Token ids.
    pub ids: Vec<u32>,
    /// `labels[i]`: token `i` is a target of the loss (predicted from position `i - 1`).
    pub labels: Vec<bool>,
}

impl Example {
    /// Label tokens that the loss sees (the first token is never predicted).
    pub fn label_count(&self) -> usize {
        self.labels.iter().skip(1).filter(|&&l| l).count()
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn messages_json(messages: &[Message]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect(),
    )
}

/// How text prompts are wrapped before tokenization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptStyle {
    /// As is (TRL's behaviour for text data).
    Raw,
    /// DeepSeek-R1-Zero's template (paper, Table 1).
    R1Zero,
    /// The tokenizer's chat template around one user turn (and the system prompt).
    Chat,
}

/// Builds [`Example`]s from samples with one tokenizer and config.
#[derive(Debug)]
pub struct SftTokenizer<'a> {
    tokenizer: &'a Tokenizer,
    style: PromptStyle,
    system_prompt: Option<String>,
    completion_only_loss: Option<bool>,
}

impl<'a> SftTokenizer<'a> {
    /// A tokenizer for `config`'s prompt template, system prompt and loss masking.
    pub fn new(tokenizer: &'a Tokenizer, config: &SftConfig) -> Self {
        let style = match config.prompt_template.as_str() {
            "r1_zero" => PromptStyle::R1Zero,
            "chat" => PromptStyle::Chat,
            _ => PromptStyle::Raw,
        };
        Self {
            tokenizer,
            style,
            system_prompt: config.system_prompt.clone(),
            completion_only_loss: config.completion_only_loss,
        }
    }

    fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<Vec<u32>> {
        let text = self
            .tokenizer
            .apply_chat_template(&messages_json(messages), add_generation_prompt)?;
        Ok(self.tokenizer.encode(&text, false)?)
    }

    fn with_system(&self, mut messages: Vec<Message>) -> Vec<Message> {
        if let Some(system) = &self.system_prompt
            && messages.first().is_none_or(|m| m.role != "system")
        {
            messages.insert(
                0,
                Message {
                    role: "system".into(),
                    content: system.clone(),
                },
            );
        }
        messages
    }

    /// The prompt's token ids as generation would see them (for sampling and evaluation).
    pub fn prompt_ids(&self, sample: &Sample) -> Result<Vec<u32>> {
        match &sample.prompt {
            Content::Text(text) => match self.style {
                PromptStyle::Raw => Ok(self.tokenizer.encode(text, true)?),
                PromptStyle::R1Zero => Ok(self
                    .tokenizer
                    .encode(&r1_data::template::r1_zero(text), true)?),
                PromptStyle::Chat => self.render(
                    &self.with_system(vec![Message {
                        role: "user".into(),
                        content: text.clone(),
                    }]),
                    true,
                ),
            },
            Content::Messages(m) => self.render(&self.with_system(m.clone()), true),
        }
    }

    /// The training sequence of `sample`; an error names the sample when it has no target.
    pub fn example(&self, sample: &Sample) -> Result<Example> {
        let completion = sample.completion.as_ref().ok_or_else(|| {
            DistillError::Data(format!(
                "sample `{}` has no target completion to train on",
                sample.id
            ))
        })?;
        match (&sample.prompt, completion) {
            (Content::Text(prompt), Content::Text(completion))
                if self.style != PromptStyle::Chat =>
            {
                let prompt = match self.style {
                    PromptStyle::R1Zero => r1_data::template::r1_zero(prompt),
                    _ => prompt.clone(),
                };
                let mut full = format!("{prompt}{completion}");
                if let Some(eos) = self.tokenizer.eos_token()
                    && !completion.ends_with(eos)
                {
                    full.push_str(eos);
                }
                let prompt_ids = self.tokenizer.encode(&prompt, true)?;
                let ids = self.tokenizer.encode(&full, true)?;
                let start = common_prefix(&prompt_ids, &ids);
                let only = self.completion_only_loss.unwrap_or(true);
                let labels = (0..ids.len()).map(|i| !only || i >= start).collect();
                Ok(Example { ids, labels })
            }
            (prompt, completion) => {
                let prompt = match prompt {
                    Content::Text(t) => vec![Message {
                        role: "user".into(),
                        content: t.clone(),
                    }],
                    Content::Messages(m) => m.clone(),
                };
                let completion = match completion {
                    Content::Text(t) => vec![Message {
                        role: "assistant".into(),
                        content: t.clone(),
                    }],
                    Content::Messages(m) => m.clone(),
                };
                let prompt = self.with_system(prompt);
                let all: Vec<Message> = prompt.iter().chain(&completion).cloned().collect();
                let ids = self.render(&all, false)?;
                let only = self.completion_only_loss.unwrap_or(true);
                let mut labels = vec![!only; ids.len()];
                if only {
                    for k in prompt.len()..all.len() {
                        if all[k].role != "assistant" {
                            continue;
                        }
                        let start = common_prefix(&self.render(&all[..k], true)?, &ids);
                        let end = common_prefix(&self.render(&all[..=k], false)?, &ids);
                        for l in labels.iter_mut().take(end).skip(start) {
                            *l = true;
                        }
                    }
                }
                Ok(Example { ids, labels })
            }
        }
    }
}

/// Truncates to `max_length` tokens keeping the start or the end.
pub fn truncate(example: &mut Example, max_length: usize, keep_end: bool) {
    let n = example.ids.len();
    if n <= max_length {
        return;
    }
    if keep_end {
        example.ids.drain(..n - max_length);
        example.labels.drain(..n - max_length);
    } else {
        example.ids.truncate(max_length);
        example.labels.truncate(max_length);
    }
}

/// TRL's `bfd` packing: sequences sorted by length (longest first, ties in data order), each
/// put in the open row with the least room that fits it (rows with equal room first-come,
/// first-served), or a new row. Returns, per row, the indices of its sequences in order.
/// `lengths` must already be at most `capacity`.
pub fn best_fit_decreasing(lengths: &[usize], capacity: usize) -> Vec<Vec<usize>> {
    use std::collections::{BTreeMap, VecDeque};
    let mut order: Vec<usize> = (0..lengths.len()).filter(|&i| lengths[i] > 0).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut rows: Vec<(Vec<usize>, usize)> = Vec::new(); // (members, used)
    let mut by_space: BTreeMap<usize, VecDeque<usize>> = BTreeMap::new();
    for i in order {
        let len = lengths[i];
        let slot = by_space
            .range(len..capacity)
            .find(|(_, q)| !q.is_empty())
            .map(|(&space, _)| space);
        let row = match slot {
            Some(space) => {
                let q = by_space.get_mut(&space);
                let r = q.and_then(VecDeque::pop_front);
                match r {
                    Some(r) => r,
                    None => continue,
                }
            }
            None => {
                rows.push((Vec::new(), 0));
                rows.len() - 1
            }
        };
        rows[row].0.push(i);
        rows[row].1 += len;
        let space = capacity - rows[row].1;
        by_space.entry(space).or_default().push_back(row);
    }
    rows.into_iter().map(|(m, _)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfd_matches_trl_order() {
        // TRL's test_data_utils: lengths [3, 4, 2, 1] into 4 -> bins [4], [3, 1], [2].
        let bins = best_fit_decreasing(&[3, 4, 2, 1], 4);
        assert_eq!(bins, vec![vec![1], vec![0, 3], vec![2]]);
        // Best fit picks the row with the least room that fits.
        let bins = best_fit_decreasing(&[5, 3, 2, 2], 7);
        assert_eq!(bins, vec![vec![0, 2], vec![1, 3]]);
        assert!(best_fit_decreasing(&[0, 0], 4).is_empty());
    }

    #[test]
    fn truncation_keeps_the_chosen_end() {
        let mut e = Example {
            ids: vec![1, 2, 3, 4],
            labels: vec![false, false, true, true],
        };
        let mut f = e.clone();
        truncate(&mut e, 3, false);
        truncate(&mut f, 3, true);
        assert_eq!((e.ids, f.ids), (vec![1, 2, 3], vec![2, 3, 4]));
    }
}
