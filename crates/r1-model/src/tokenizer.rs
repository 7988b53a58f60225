//! Tokenizers (`tokenizer.json` through the `tokenizers` crate) and chat templates rendered with
//! `minijinja` the way transformers renders them: `trim_blocks`, `lstrip_blocks`, loop controls,
//! Python string methods, `raise_exception`, `strftime_now` and a Python-style `tojson`.

use std::path::{Path, PathBuf};

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value as JinjaValue};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// Files that make up a tokenizer; copied as they are when a model is saved.
const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
];

/// A Hugging Face tokenizer with its special tokens and chat template.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    pad_token: Option<String>,
    unk_token: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    folder: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("folder", &self.folder)
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("has_chat_template", &self.chat_template.is_some())
            .finish()
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// A special token written as a string or as an `AddedToken` object.
fn token_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` and, where present, `tokenizer_config.json`,
    /// `special_tokens_map.json` and `chat_template.jinja` from a folder.
    pub fn from_folder(folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref().to_path_buf();
        let path = folder.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let config = read_json(&folder.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
        let special = read_json(&folder.join("special_tokens_map.json"))?.unwrap_or(Value::Null);
        let pick =
            |key: &str| token_string(config.get(key)).or_else(|| token_string(special.get(key)));
        let template_file = folder.join("chat_template.jinja");
        let chat_template = if template_file.exists() {
            Some(
                std::fs::read_to_string(&template_file)
                    .map_err(|e| ModelError::io(&template_file, e))?,
            )
        } else {
            let from_json = read_json(&folder.join("chat_template.json"))?
                .and_then(|v| v.get("chat_template").cloned());
            match from_json.or_else(|| config.get("chat_template").cloned()) {
                Some(Value::String(s)) => Some(s),
                // A list of named templates: transformers uses the one called "default".
                Some(Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
                _ => None,
            }
        };
        let mut files = Vec::new();
        for name in TOKENIZER_FILES {
            let p = folder.join(name);
            if p.exists() {
                files.push((
                    name.to_string(),
                    std::fs::read(&p).map_err(|e| ModelError::io(&p, e))?,
                ));
            }
        }
        Ok(Self {
            inner,
            chat_template,
            bos_token: pick("bos_token"),
            eos_token: pick("eos_token"),
            pad_token: pick("pad_token"),
            unk_token: pick("unk_token"),
            files,
            folder,
        })
    }

    /// Token ids of `text`; `add_special_tokens` applies the tokenizer's post-processor (the BOS
    /// that Llama-3 prepends, for instance).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.inner
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The eos token's text, as `tokenizer_config.json` names it.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// The id of the eos token named in `tokenizer_config.json`.
    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token.as_deref().and_then(|t| self.token_to_id(t))
    }

    /// The id of the pad token named in `tokenizer_config.json`.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_token.as_deref().and_then(|t| self.token_to_id(t))
    }

    /// The chat template, if the tokenizer has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Renders `messages` (a JSON array of `{"role", "content"}` objects) with the chat
    /// template, as `tokenizer.apply_chat_template(messages, tokenize=False, ...)` does.
    pub fn apply_chat_template(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.apply_chat_template_with(messages, add_generation_prompt, &serde_json::Map::new())
    }

    /// [`Tokenizer::apply_chat_template`] with the extra template variables transformers takes as
    /// keyword arguments (`tools`, `documents`, `enable_thinking`, ...).
    pub fn apply_chat_template_with(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<String> {
        let template = self.chat_template.as_deref().ok_or_else(|| {
            ModelError::ChatTemplate(format!(
                "{}: the tokenizer has no chat template (no chat_template.jinja, and no \
                 `chat_template` in tokenizer_config.json)",
                self.folder.display()
            ))
        })?;
        render_chat_template(
            template,
            messages,
            add_generation_prompt,
            extra,
            &[
                ("bos_token", self.bos_token.as_deref()),
                ("eos_token", self.eos_token.as_deref()),
                ("pad_token", self.pad_token.as_deref()),
                ("unk_token", self.unk_token.as_deref()),
            ],
        )
    }

    /// Writes the tokenizer files this tokenizer was loaded from into `folder`.
    pub fn save(&self, folder: &Path) -> Result<()> {
        for (name, bytes) in &self.files {
            crate::io::write_atomic(&folder.join(name), bytes)?;
        }
        Ok(())
    }
}

/// Renders a chat template with transformers' Jinja settings.
pub fn render_chat_template(
    template: &str,
    messages: &Value,
    add_generation_prompt: bool,
    extra: &serde_json::Map<String, Value>,
    special_tokens: &[(&str, Option<&str>)],
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<JinjaValue, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |format: String| strftime_now(&format));
    env.add_filter("tojson", tojson);
    env.add_template("chat", template)
        .map_err(|e| ModelError::ChatTemplate(format!("cannot parse the template: {e:#}")))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
    let mut ctx = extra.clone();
    ctx.insert("messages".into(), messages.clone());
    ctx.insert(
        "add_generation_prompt".into(),
        Value::Bool(add_generation_prompt),
    );
    for (k, v) in special_tokens {
        if let Some(v) = v {
            ctx.insert((*k).into(), Value::String((*v).into()));
        }
    }
    tmpl.render(JinjaValue::from_serialize(&ctx))
        .map_err(|e| ModelError::ChatTemplate(format!("cannot render the template: {e:#}")))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "` separators
/// without indent, newlines and `indent` spaces with one.
/// Accepts `x | tojson`, `x | tojson(4)` and `x | tojson(indent=4)` (Llama 3.1's template);
/// transformers' other keyword arguments (`separators`, `sort_keys`) are not used by templates
/// in the wild and are refused rather than ignored.
fn tojson(
    value: JinjaValue,
    indent: Option<usize>,
    kwargs: minijinja::value::Kwargs,
) -> std::result::Result<JinjaValue, JinjaError> {
    let indent = match kwargs.get::<Option<usize>>("indent")? {
        Some(i) => Some(i),
        None => indent,
    };
    kwargs.assert_all_used()?;
    let v: Value = serde_json::to_value(&value)
        .map_err(|e| JinjaError::new(ErrorKind::BadSerialization, e.to_string()))?;
    let mut out = String::new();
    python_json(&v, indent, 0, &mut out);
    Ok(JinjaValue::from_safe_string(out))
}

fn python_json(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                python_json(item, indent, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                python_json(item, indent, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        Value::Number(n) if n.is_f64() => {
            // Python writes floats with at least one decimal: 1.0, not 1.
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e16 {
                out.push_str(&format!("{f:.1}"));
            } else {
                out.push_str(&n.to_string());
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `strftime_now(format)` for the few directives chat templates use (`%d %b %Y`, `%Y-%m-%d`).
fn strftime_now(format: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), UTC.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const FULL: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let m = (month - 1) as usize;
    format
        .replace("%Y", &year.to_string())
        .replace("%m", &format!("{month:02}"))
        .replace("%d", &format!("{day:02}"))
        .replace("%B", FULL[m])
        .replace("%b", MONTHS[m])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_matches_python() {
        let v = serde_json::json!({"a": [1, 2.0, "é"], "b": {}});
        let mut s = String::new();
        python_json(&v, None, 0, &mut s);
        assert_eq!(s, r#"{"a": [1, 2.0, "é"], "b": {}}"#);
        let mut s = String::new();
        python_json(&v, Some(2), 0, &mut s);
        assert_eq!(
            s,
            "{\n  \"a\": [\n    1,\n    2.0,\n    \"é\"\n  ],\n  \"b\": {}\n}"
        );
    }

    #[test]
    fn template_uses_python_methods_and_trims_blocks() {
        let t = "{% for m in messages %}{% if m.role == 'user' %}\n<{{ m.content.strip() }}>\n{% endif %}{% endfor %}{% if add_generation_prompt %}{{ bos_token }}{% endif %}";
        let msgs = serde_json::json!([{"role": "user", "content": "  hi "}]);
        let out = render_chat_template(
            t,
            &msgs,
            true,
            &serde_json::Map::new(),
            &[("bos_token", Some("<s>"))],
        )
        .unwrap_or_default();
        assert_eq!(out, "<hi>\n<s>");
    }

    #[test]
    fn tojson_takes_indent_as_keyword() {
        let msgs = serde_json::json!([{"role": "user", "content": "x"}]);
        let t = "{{ messages[0] | tojson(indent=2) }}|{{ messages[0] | tojson }}";
        let out =
            render_chat_template(t, &msgs, false, &serde_json::Map::new(), &[]).unwrap_or_default();
        assert_eq!(
            out,
            "{\n  \"role\": \"user\",\n  \"content\": \"x\"\n}|{\"role\": \"user\", \"content\": \"x\"}"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let msgs = serde_json::json!([]);
        let err = render_chat_template(
            "{{ raise_exception('no system') }}",
            &msgs,
            false,
            &serde_json::Map::new(),
            &[],
        );
        assert!(matches!(err, Err(ModelError::ChatTemplate(m)) if m.contains("no system")));
    }
}
