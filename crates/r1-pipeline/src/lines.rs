//! Where each key of a TOML file is: `toml`'s span-keeping parser walked once into a map from
//! dotted paths (`base.hidden_size`, `stage.2.learning_rate`, arrays of tables by index) to
//! 1-based line numbers, so that errors found long after parsing still name the line.

use std::collections::HashMap;

use toml::de::{DeTable, DeValue};

/// Dotted key path -> line.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    origin: String,
    lines: HashMap<String, usize>,
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl LineIndex {
    /// Indexes `text` (already known to parse); `origin` is the file name errors start with.
    pub fn new(text: &str, origin: &str) -> Self {
        let mut index = Self {
            origin: origin.to_string(),
            lines: HashMap::new(),
        };
        if let Ok(root) = DeTable::parse(text) {
            index.walk_table(text, "", root.get_ref());
        }
        index
    }

    fn walk_table(&mut self, text: &str, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.lines
                .entry(path.clone())
                .or_insert(line_at(text, key.span().start));
            self.walk_value(text, &path, value.get_ref());
        }
    }

    fn walk_value(&mut self, text: &str, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(t) => self.walk_table(text, path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.{i}");
                    self.lines
                        .entry(p.clone())
                        .or_insert(line_at(text, item.span().start));
                    self.walk_value(text, &p, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The line of `path`, if the file has it.
    pub fn line(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }

    /// `file:line` of `path`, else of the nearest enclosing table that the file has, else the
    /// file alone (a key set with `--set` has no line).
    pub fn locate(&self, path: &str) -> String {
        let mut p = path;
        loop {
            if let Some(line) = self.line(p) {
                return format!("{}:{line}", self.origin);
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return self.origin.clone(),
            }
        }
    }

    /// The file name.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tables_and_arrays_of_tables_have_lines() {
        let text = "seed = 1\n[base]\nhidden_size = 64\n\n[[stage]]\nname = \"a\"\n\n[[stage]]\nname = \"b\"\nlearning_rate = 1e-3\n";
        let idx = LineIndex::new(text, "p.toml");
        assert_eq!(idx.line("seed"), Some(1));
        assert_eq!(idx.line("base.hidden_size"), Some(3));
        assert_eq!(idx.line("stage.0.name"), Some(6));
        assert_eq!(idx.line("stage.1.learning_rate"), Some(10));
        assert_eq!(idx.locate("stage.1.learning_rate"), "p.toml:10");
        assert_eq!(idx.locate("stage.1.nothing"), idx.locate("stage.1"));
        assert_eq!(idx.locate("missing"), "p.toml");
    }
}
