//! Behaviour of generation, the KV cache and chunked log-probs beyond what the transformers
//! fixtures pin down: stop strings, seeding, chunking, entropies and gradients.

use std::path::Path;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use r1_model::{
    Batch, FinishReason, GenerationConfig, KvCache, Pretrained, SamplingParams, generate,
    model::read_f32, selective_log_softmax,
};

fn load(name: &str, device: &Device) -> Pretrained {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    Pretrained::load(&dir, Some(DType::F32), device).expect("load fixture")
}

fn prompt() -> Vec<u32> {
    vec![17, 250, 3, 99, 120, 45, 7]
}

#[test]
fn stop_strings_end_the_completion_where_the_text_first_contains_them() {
    let p = load("qwen2-tied", &Device::default());
    let tok = p.tokenizer.as_ref().expect("tokenizer");
    let base = GenerationConfig {
        max_new_tokens: 24,
        sampling: SamplingParams::greedy(),
        ignore_eos: true,
        pad_token_id: p.pad_token_id(),
        ..GenerationConfig::default()
    };
    let full = generate(&p.model, &[prompt()], &base, Some(tok)).expect("generate");
    let ids = &full[0].completion_ids;
    // Pick a stop string from the middle of the greedy text: the decoded text of tokens 5..7.
    let stop = tok.decode(&ids[5..7], false).expect("decode");
    assert!(!stop.is_empty());
    let config = GenerationConfig {
        stop_strings: vec![stop.clone()],
        ..base.clone()
    };
    let out = generate(&p.model, &[prompt()], &config, Some(tok)).expect("generate");
    let got = &out[0];
    assert_eq!(got.finish_reason, FinishReason::Stop);
    assert!(got.completion_ids.len() <= 7);
    assert_eq!(got.completion_ids[..], ids[..got.completion_ids.len()]);
    let text = tok.decode(&got.completion_ids, false).expect("decode");
    assert!(text.contains(&stop));
    let shorter = tok
        .decode(&got.completion_ids[..got.completion_ids.len() - 1], false)
        .expect("decode");
    assert!(
        !shorter.contains(&stop),
        "it should have stopped one token earlier"
    );
    // Without a tokenizer, stop strings cannot be checked: that is an error, not a silent no-op.
    assert!(generate(&p.model, &[prompt()], &config, None).is_err());
}

#[test]
fn sampling_is_seeded_and_rows_draw_their_own_streams() {
    let p = load("qwen2-bias-untied", &Device::default());
    let config = GenerationConfig {
        max_new_tokens: 12,
        sampling: SamplingParams {
            temperature: 1.3,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.02,
            greedy: false,
        },
        ignore_eos: true,
        seed: 11,
        pad_token_id: p.pad_token_id(),
        ..GenerationConfig::default()
    };
    let prompts = vec![prompt(); 4];
    let a = generate(&p.model, &prompts, &config, None).expect("generate");
    let b = generate(&p.model, &prompts, &config, None).expect("generate");
    assert_eq!(a, b);
    assert!(
        a.iter().any(|g| g.completion_ids != a[0].completion_ids),
        "rows differ"
    );
    let other = generate(
        &p.model,
        &prompts,
        &GenerationConfig {
            seed: 12,
            ..config.clone()
        },
        None,
    )
    .expect("generate");
    assert_ne!(a, other);
    // Row 0's stream depends on the seed and its row index only, not on the rest of the batch.
    let alone = generate(&p.model, &prompts[..1], &config, None).expect("generate");
    assert_eq!(alone[0].completion_ids, a[0].completion_ids);
    // Bad knobs are rejected before any work.
    let bad = GenerationConfig {
        sampling: SamplingParams {
            temperature: -1.0,
            ..SamplingParams::default()
        },
        ..config
    };
    assert!(generate(&p.model, &prompts, &bad, None).is_err());
}

#[test]
fn cached_decoding_equals_full_forward() {
    let p = load("qwen3-qknorm-sharded", &Device::default());
    let m = &p.model;
    let seqs = vec![vec![5u32, 9, 200, 31, 8, 77], vec![42u32, 13, 7]];
    let pad = p.pad_token_id();
    let full = Batch::left_padded(&seqs, pad);
    let want = read_f32(m.forward(&full).expect("forward")).expect("read");
    let (b, t, v) = (full.batch, full.seq, m.config().vocab_size);
    // Feed the same padded batch to a cache in pieces: 4 tokens, then one at a time.
    let mut cache = KvCache::new(m.config(), b, t, m.dtype(), &m.device());
    let mut got = vec![0f32; b * t * v];
    let mut offsets = vec![0usize; b];
    let mut start = 0;
    for len in [4usize, 1, 1] {
        let piece = Batch {
            ids: (0..b)
                .flat_map(|r| full.ids[r * t + start..r * t + start + len].to_vec())
                .collect(),
            attention_mask: (0..b)
                .flat_map(|r| full.attention_mask[r * t + start..r * t + start + len].to_vec())
                .collect(),
            batch: b,
            seq: len,
            segments: None,
        };
        let h = m
            .forward_hidden(&piece, &offsets, Some(&mut cache))
            .expect("forward");
        let logits = read_f32(m.logits(h)).expect("read");
        for r in 0..b {
            for j in 0..len {
                let dst = (r * t + start + j) * v;
                got[dst..dst + v]
                    .copy_from_slice(&logits[(r * len + j) * v..(r * len + j + 1) * v]);
            }
            offsets[r] += piece.attention_mask[r * len..(r + 1) * len]
                .iter()
                .filter(|x| **x)
                .count();
        }
        start += len;
    }
    assert_eq!(cache.len(), t);
    for (r, seq) in seqs.iter().enumerate() {
        let real = seq.len();
        let from = (r * t + t - real) * v;
        let to = (r + 1) * t * v;
        let d = got[from..to]
            .iter()
            .zip(&want[from..to])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-4, "row {r}: cached logits differ by {d}");
    }
    // A full cache refuses more tokens instead of writing out of bounds.
    let one = Batch::left_padded(&[vec![1], vec![1]], pad);
    assert!(m.forward_hidden(&one, &offsets, Some(&mut cache)).is_err());
}

#[test]
fn chunked_log_softmax_matches_the_full_one_and_entropies_are_right() {
    let device = Device::default();
    let p = load("qwen2-bias-untied", &device);
    let m = &p.model;
    let seqs = vec![
        vec![3u32, 1, 4, 1, 5, 9, 2, 6],
        vec![2u32, 7, 1, 8, 2, 8, 1, 8],
    ];
    let batch = Batch::left_padded(&seqs, 0);
    let h = m.forward_hidden(&batch, &[0, 0], None).expect("forward");
    let targets: Vec<i64> = seqs.iter().flatten().map(|&x| x as i64 + 1).collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [2, 8]), &device);
    let logits = read_f32(m.logits(h.clone())).expect("read");
    let v = m.config().vocab_size;
    for temperature in [1.0f32, 0.6] {
        let mut reference = None;
        for chunk in [1usize, 3, 5, 1000] {
            let (lp, ent) =
                selective_log_softmax(m, h.clone(), targets.clone(), temperature, chunk, true);
            let lp = read_f32(lp).expect("read");
            let ent = read_f32(ent.expect("entropies")).expect("read");
            // Direct computation on the host for position 0 of row 0 and the last of row 1.
            for (row, pos) in [(0usize, 0usize), (1, 7)] {
                let z: Vec<f64> = logits[(row * 8 + pos) * v..(row * 8 + pos + 1) * v]
                    .iter()
                    .map(|&x| x as f64 / temperature as f64)
                    .collect();
                let max = z.iter().cloned().fold(f64::MIN, f64::max);
                let lse = max + z.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                let target = seqs[row][pos] as usize + 1;
                let want = z[target] - lse;
                let entropy: f64 = z.iter().map(|x| -(x - lse).exp() * (x - lse)).sum();
                assert!((lp[row * 8 + pos] as f64 - want).abs() < 1e-4);
                assert!((ent[row * 8 + pos] as f64 - entropy).abs() < 1e-4);
            }
            match &reference {
                None => reference = Some((lp, ent)),
                Some((l0, e0)) => {
                    assert_eq!(l0.len(), lp.len());
                    for (a, b) in l0.iter().zip(&lp).chain(e0.iter().zip(&ent)) {
                        assert!((a - b).abs() < 1e-5, "chunk {chunk} changes the result");
                    }
                }
            }
        }
    }
}

#[test]
fn log_probs_are_differentiable_under_autodiff() {
    let device = Device::default().autodiff();
    let p = load("qwen2-tied", &device);
    let m = &p.model;
    let batch = Batch::left_padded(&[vec![4u32, 8, 15, 16, 23, 42]], 0);
    let h = m.forward_hidden(&batch, &[0], None).expect("forward");
    let targets = Tensor::<2, Int>::from_data(
        TensorData::new(vec![8i64, 15, 16, 23, 42, 4], [1, 6]),
        &device,
    );
    let (lp, _) = selective_log_softmax(m, h, targets, 1.0, 2, false);
    let grads = lp.sum().backward();
    // The tied head routes its gradient into the embedding; the first layer's q_proj gets one too.
    let emb = m
        .model
        .embed_tokens
        .weight
        .val()
        .grad(&grads)
        .expect("embedding gradient");
    let q = m.model.layers[0]
        .self_attn
        .q_proj
        .weight
        .val()
        .grad(&grads)
        .expect("q_proj gradient");
    for g in [read_f32(emb).expect("read"), read_f32(q).expect("read")] {
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(g.iter().any(|x| *x != 0.0));
    }
}
