//! Loads a Hugging Face checkpoint folder and saves it again with r1:
//! `cargo run -p r1-model --example resave -- SRC DST [f32|bf16|f16]`.
//!
//! `tests/fixtures/check_saved.py` uses it to prove that transformers loads what r1 writes.

use burn::tensor::Device;
use r1_model::{Pretrained, parse_dtype};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst, rest @ ..] = args.as_slice() else {
        return Err("usage: resave SRC DST [f32|bf16|f16]".into());
    };
    let dtype = rest.first().map(|d| parse_dtype(d)).transpose()?;
    let device = Device::default().without_autodiff();
    let p = Pretrained::load(src, None, &device)?;
    p.save(dst, dtype)?;
    eprintln!("saved {dst}");
    Ok(())
}
