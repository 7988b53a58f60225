//! The `r1` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// Train reasoning language models the DeepSeek-R1 way.
#[derive(Parser, Debug)]
#[command(name = "r1", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sample completions from a Hugging Face checkpoint folder.
    Generate(commands::generate::GenerateArgs),
    /// Per-token log-probs of a continuation given a prompt.
    Logprobs(commands::logprobs::LogprobsArgs),
    /// Score completions (JSONL) with a reward set (TOML).
    Reward(commands::reward::RewardArgs),
    /// Supervised fine-tuning (TRL's SFTTrainer): cold start, SFT on curated data.
    Sft(commands::sft::SftArgs),
    /// Rejection sampling: sample, score, filter for readability, keep the best per prompt.
    Sample(commands::sample::SampleArgs),
    /// Distil a student on a teacher's traces, optionally with logit distillation.
    Distill(commands::sft::DistillArgs),
    /// GRPO (TRL's GRPOTrainer): reinforcement learning with rule-based rewards.
    Grpo(commands::grpo::GrpoArgs),
    /// Evaluate: pass@1 over k samples, cons@k, pass@k, format rate.
    Eval(commands::eval::EvalArgs),
    /// Serve a checkpoint over OpenAI's API (chat and text completions, streaming, continuous
    /// batching).
    Serve(commands::serve::ServeArgs),
    /// Run R1's multi-stage pipeline from a TOML file (default: the built-in tiny run).
    Train(commands::train::TrainArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version go to stdout as clap writes them.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line on stderr, like every other error of r1.
            let text = e.to_string();
            let msg = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("Usage:")
                        && !l.starts_with("For more information")
                })
                .collect::<Vec<_>>()
                .join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            eprintln!("error: {msg} (see `r1 --help`)");
            return ExitCode::from(2);
        }
    };
    // `r1 train` also logs into its run directory, which it names first.
    if !matches!(cli.command, Command::Train(_)) {
        commands::init_tracing(None);
    }
    let result = match cli.command {
        Command::Generate(args) => commands::generate::run(args),
        Command::Logprobs(args) => commands::logprobs::run(args),
        Command::Reward(args) => commands::reward::run(args),
        Command::Sft(args) => commands::sft::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Distill(args) => commands::sft::run_distill(args),
        Command::Grpo(args) => commands::grpo::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Serve(args) => commands::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
