//! Choosing the next token from one row of logits, with transformers' warpers applied in
//! transformers' order: temperature, top-k, top-p, min-p.

use crate::rng::Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Take the most likely token (ties go to the lowest id, as `torch.argmax`).
    pub greedy: bool,
    /// Logits are divided by this before sampling (must be positive).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens; 0 turns it off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose mass reaches `p`; 1 turns it off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 turns it off.
    pub min_p: f32,
}

impl Default for SamplingParams {
    /// Plain sampling at temperature 1 with no truncation: TRL's and vLLM's defaults.
    fn default() -> Self {
        Self {
            greedy: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            greedy: true,
            ..Self::default()
        }
    }

    /// Checks the ranges of every knob.
    pub fn validate(&self) -> Result<(), String> {
        let temperature_ok = self.temperature > 0.0 && self.temperature.is_finite();
        if !self.greedy && !temperature_ok {
            return Err(format!(
                "temperature must be positive, got {}; use greedy decoding for temperature 0",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        Ok(())
    }

    /// The temperature the reported log-probs use: 1 for greedy decoding.
    pub fn logprob_temperature(&self) -> f32 {
        if self.greedy { 1.0 } else { self.temperature }
    }
}

fn log_sum_exp(values: impl Iterator<Item = f32> + Clone) -> f32 {
    let max = values.clone().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = values.map(|v| ((v - max) as f64).exp()).sum();
    max + sum.ln() as f32
}

/// Descending by value, ascending by id on ties.
fn by_value_desc(z: &[f32]) -> impl Fn(&u32, &u32) -> std::cmp::Ordering + '_ {
    move |a, b| {
        z[*b as usize]
            .total_cmp(&z[*a as usize])
            .then_with(|| a.cmp(b))
    }
}

/// Picks the next token from `logits` and returns it with its log-probability under
/// `softmax(logits / T)` (T = 1 for greedy decoding), the distribution TRL scores completions
/// with; top-k, top-p and min-p truncation do not change the reported value.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut Rng) -> (u32, f32) {
    if params.greedy {
        let mut best = 0usize;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        let lse = log_sum_exp(logits.iter().copied());
        return (best as u32, logits[best] - lse);
    }
    let t = params.temperature;
    let z: Vec<f32> = logits.iter().map(|v| v / t).collect();
    let lse = log_sum_exp(z.iter().copied());
    let vocab = z.len();
    // Candidates, most likely first once truncation needs an order.
    let mut candidates: Vec<u32> = (0..vocab as u32).collect();
    if params.top_k > 0 && params.top_k < vocab {
        let k = params.top_k;
        candidates.select_nth_unstable_by(k - 1, by_value_desc(&z));
        candidates.truncate(k);
    }
    if params.top_p < 1.0 {
        let cand_lse = log_sum_exp(candidates.iter().map(|&i| z[i as usize]));
        // Sort only as many candidates as the nucleus needs, growing the window as required.
        let mut window = 256.min(candidates.len());
        loop {
            if window < candidates.len() {
                candidates.select_nth_unstable_by(window - 1, by_value_desc(&z));
            }
            candidates[..window].sort_unstable_by(by_value_desc(&z));
            // transformers keeps a token while the mass strictly before it is below top_p.
            let mut mass = 0f64;
            let mut keep = None;
            for (n, &i) in candidates[..window].iter().enumerate() {
                if mass >= params.top_p as f64 {
                    keep = Some(n);
                    break;
                }
                mass += ((z[i as usize] - cand_lse) as f64).exp();
            }
            match keep {
                Some(n) => {
                    candidates.truncate(n.max(1));
                    break;
                }
                None if window == candidates.len() => break,
                None => window = (window * 4).min(candidates.len()),
            }
        }
    }
    if params.min_p > 0.0 {
        let top = candidates
            .iter()
            .map(|&i| z[i as usize])
            .fold(f32::NEG_INFINITY, f32::max);
        // p_i >= min_p * p_max  <=>  z_i >= z_max + ln(min_p), whatever the normaliser.
        let threshold = top + params.min_p.ln();
        let before = candidates.clone();
        candidates.retain(|&i| z[i as usize] >= threshold);
        if candidates.is_empty() {
            candidates = before;
            candidates.truncate(1);
        }
    }
    let top = candidates
        .iter()
        .map(|&i| z[i as usize])
        .fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = candidates
        .iter()
        .map(|&i| ((z[i as usize] - top) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.uniform() * total;
    let mut chosen = candidates[candidates.len() - 1];
    for (&i, w) in candidates.iter().zip(&weights) {
        if u < *w {
            chosen = i;
            break;
        }
        u -= w;
    }
    (chosen, z[chosen as usize] - lse)
}

/// The `k` most likely tokens under `softmax(logits / temperature)` with their log-probs, most
/// likely first (ties to the lower id): the alternatives an OpenAI-style `top_logprobs` reports
/// beside the log-prob that [`sample`] returns.
pub fn top_logprobs(logits: &[f32], temperature: f32, k: usize) -> Vec<(u32, f32)> {
    if k == 0 || logits.is_empty() {
        return Vec::new();
    }
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let z: Vec<f32> = logits.iter().map(|v| v / t).collect();
    let lse = log_sum_exp(z.iter().copied());
    let mut ids: Vec<u32> = (0..z.len() as u32).collect();
    let k = k.min(ids.len());
    if k < ids.len() {
        ids.select_nth_unstable_by(k - 1, by_value_desc(&z));
        ids.truncate(k);
    }
    ids.sort_unstable_by(by_value_desc(&z));
    ids.into_iter().map(|i| (i, z[i as usize] - lse)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_first_maximum() {
        let mut rng = Rng::new(0);
        let (id, lp) = sample(&[0.0, 2.0, 2.0, 1.0], &SamplingParams::greedy(), &mut rng);
        assert_eq!(id, 1);
        let lse = (1f32 + 2.0 * 2f32.exp() + 1f32.exp()).ln();
        assert!((lp - (2.0 - lse)).abs() < 1e-6);
    }

    #[test]
    fn top_logprobs_are_sorted_log_softmax() {
        let logits = [1.0f32, 3.0, 2.0, 3.0];
        let top = top_logprobs(&logits, 1.0, 3);
        let ids: Vec<u32> = top.iter().map(|t| t.0).collect();
        assert_eq!(ids, vec![1, 3, 2]);
        let lse = logits.iter().map(|v| v.exp()).sum::<f32>().ln();
        assert!((top[2].1 - (2.0 - lse)).abs() < 1e-6);
        let mut rng = Rng::new(0);
        let (id, lp) = sample(&logits, &SamplingParams::greedy(), &mut rng);
        assert_eq!((id, lp), top[0]);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let mut rng = Rng::new(1);
        let p = SamplingParams {
            top_k: 1,
            ..SamplingParams::default()
        };
        for _ in 0..20 {
            assert_eq!(sample(&[0.5, 0.1, 3.0, 2.9], &p, &mut rng).0, 2);
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probs ~ [0.6, 0.3, 0.1]: with p = 0.5 only the first survives, with 0.7 two do.
        let logits = [0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()];
        let mut rng = Rng::new(2);
        let p = SamplingParams {
            top_p: 0.5,
            ..SamplingParams::default()
        };
        assert!((0..50).all(|_| sample(&logits, &p, &mut rng).0 == 0));
        let p = SamplingParams {
            top_p: 0.7,
            ..SamplingParams::default()
        };
        let seen: Vec<u32> = (0..200).map(|_| sample(&logits, &p, &mut rng).0).collect();
        assert!(seen.contains(&1) && !seen.contains(&2));
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        let logits = [0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()];
        let p = SamplingParams {
            min_p: 0.4, // threshold 0.24: token 2 (0.1) goes
            ..SamplingParams::default()
        };
        let mut rng = Rng::new(3);
        let seen: Vec<u32> = (0..300).map(|_| sample(&logits, &p, &mut rng).0).collect();
        assert!(seen.contains(&1) && !seen.contains(&2));
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, 1.0f32.ln() + 1.0];
        let mut rng = Rng::new(4);
        let n = 20_000;
        let ones = (0..n)
            .filter(|_| sample(&logits, &SamplingParams::default(), &mut rng).0 == 1)
            .count();
        let expected = std::f64::consts::E / (1.0 + std::f64::consts::E);
        assert!((ones as f64 / n as f64 - expected).abs() < 0.015);
    }
}
