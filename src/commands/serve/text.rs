//! Turning a sequence's tokens into the text an OpenAI-style response carries: stop strings cut
//! (and never half-streamed), incomplete UTF-8 held back, and DeepSeek-R1's `<think>…</think>`
//! split off as `reasoning_content` (as DeepSeek's API and vLLM's `deepseek_r1` parser return it).

/// The visible text of a completion, up to (and without) the first stop string. While the
/// sequence runs (`done` false), text that could still turn into a stop string or a multi-byte
/// character is held back, so that streamed deltas never need taking back.
pub fn visible(decoded: &str, stops: &[String], done: bool) -> String {
    let mut text = decoded;
    if let Some(cut) = stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        return text[..cut].to_string();
    }
    if !done {
        text = text.trim_end_matches('\u{FFFD}');
        let mut hold = 0;
        for s in stops {
            for (i, _) in s.char_indices().skip(1) {
                if text.ends_with(&s[..i]) {
                    hold = hold.max(i);
                }
            }
        }
        text = &text[..text.len() - hold];
    }
    text.to_string()
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Splits `text` into `(reasoning, content)`. `thinking` says the prompt already opened a
/// `<think>` block (R1's template ends with one), so the completion starts in the reasoning.
/// While the sequence runs, a tag that may still be arriving is held back.
pub fn split_reasoning(text: &str, thinking: bool, done: bool) -> (String, String) {
    let body = if thinking {
        text
    } else {
        let lead = text.trim_start();
        match lead.strip_prefix(OPEN) {
            Some(rest) => rest,
            None if !done && OPEN.starts_with(lead) => return (String::new(), String::new()),
            None => return (String::new(), text.to_string()),
        }
    };
    match body.find(CLOSE) {
        Some(i) => {
            let content = body[i + CLOSE.len()..].trim_start_matches('\n');
            (body[..i].to_string(), content.to_string())
        }
        None => {
            let mut r = body;
            if !done {
                for (i, _) in CLOSE.char_indices().skip(1) {
                    if r.ends_with(&CLOSE[..i]) {
                        r = &r[..r.len() - i];
                        break;
                    }
                }
            }
            (r.to_string(), String::new())
        }
    }
}

/// The part of `now` after the `sent` bytes already streamed (empty if nothing new).
pub fn delta(now: &str, sent: usize) -> &str {
    now.get(sent..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_cut_and_partial_stops_are_held() {
        let stops = vec!["END".to_string()];
        assert_eq!(visible("abc END more", &stops, false), "abc ");
        assert_eq!(visible("abc EN", &stops, false), "abc ");
        assert_eq!(visible("abc EN", &stops, true), "abc EN");
        assert_eq!(visible("abc\u{FFFD}", &[], false), "abc");
    }

    #[test]
    fn reasoning_is_split_and_grows_monotonically() {
        let full = "<think>\nadd 2 and 2</think>\n\nThe answer is 4.";
        assert_eq!(
            split_reasoning(full, false, true),
            ("\nadd 2 and 2".to_string(), "The answer is 4.".to_string())
        );
        // Every prefix's split extends the previous one's.
        let (mut r0, mut c0) = (String::new(), String::new());
        for end in 0..=full.len() {
            let (r, c) = split_reasoning(&full[..end], false, false);
            assert!(
                r.starts_with(&r0) && c.starts_with(&c0),
                "at {end}: {r:?} {c:?}"
            );
            (r0, c0) = (r, c);
        }
        assert_eq!(
            split_reasoning("plain answer", false, true),
            (String::new(), "plain answer".to_string())
        );
        assert_eq!(
            split_reasoning("step</think>4", true, true),
            ("step".to_string(), "4".to_string())
        );
    }
}
