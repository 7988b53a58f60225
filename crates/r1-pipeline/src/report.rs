//! `report.md` and its plots: a table of the stages (status, wall time, artifacts), a table of
//! every evaluation, and for each training stage an SVG of its curves over steps drawn with
//! `plotters` (GRPO: reward, accuracy, KL, completion length, learning rate; SFT: loss, token
//! accuracy, learning rate), plus pass@1 and format across the stages. Rewritten after every
//! stage, so a run in progress has a report too.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::error::{PipelineError, Result};
use crate::run::{RunState, Status, seconds_between};

/// One curve: a metric's `(step, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric's name in `metrics.jsonl`.
    pub name: String,
    /// `(step, value)`.
    pub points: Vec<(f64, f64)>,
}

/// Reads the `(step, value)` points of `keys` from a `metrics.jsonl`; lines without the key
/// (evaluation lines, say) are left out, as are non-finite values.
pub fn read_series(path: &Path, keys: &[&str]) -> Vec<Series> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rows: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    keys.iter()
        .map(|k| Series {
            name: (*k).to_string(),
            points: rows
                .iter()
                .filter_map(|r| {
                    let step = r.get("step")?.as_f64()?;
                    let v = r.get(*k)?.as_f64()?;
                    v.is_finite().then_some((step, v))
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::io(path, format!("plot: {e}"))
}

/// Draws one panel per series into an SVG file.
pub fn plot_panels(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    if series.is_empty() {
        return Ok(());
    }
    let cols = series.len().min(3);
    let rows = series.len().div_ceil(cols);
    let size = (340 * cols as u32, 240 * rows as u32 + 30);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root
        .titled(title, ("sans-serif", 18))
        .map_err(|e| plot_error(path, e))?;
    let panels = root.split_evenly((rows, cols));
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (s, area)) in series.iter().zip(panels.iter()).enumerate() {
        let (x0, x1) = s
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (y0, y1) = s
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        let pad = ((y1 - y0) * 0.08).max(1e-6 * y1.abs().max(1e-6));
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(&s.name, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| plot_error(path, e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(|e| plot_error(path, e))?;
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))?;
    Ok(())
}

/// Curves a stage's report plots, by kind.
pub fn stage_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "grpo" => &[
            "reward",
            "rewards/accuracy/mean",
            "rewards/format/mean",
            "kl",
            "completions/mean_length",
            "learning_rate",
        ],
        "pretrain" | "sft" | "distill" => &[
            "loss",
            "mean_token_accuracy",
            "eval_loss",
            "grad_norm",
            "learning_rate",
        ],
        _ => &[],
    }
}

fn fmt_secs(s: f64) -> String {
    r1_grpo::optim::format_duration(s)
}

/// Writes `RUN/report.md` and `RUN/plots/*.svg` from `run.json`'s state and the stages'
/// metrics.
pub fn write_report(run: &Path, state: &RunState) -> Result<()> {
    let plots = run.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| PipelineError::io(&plots, e))?;
    let name = state
        .config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("run");
    let mut md = String::new();
    let _ = writeln!(md, "# Run `{name}`\n");
    let done = state
        .stages
        .iter()
        .filter(|s| s.status == Status::Done)
        .count();
    let total: f64 = state
        .stages
        .iter()
        .filter_map(|s| seconds_between(s.started.as_deref()?, s.finished.as_deref()?))
        .sum();
    // Stages that ran side by side overlap: the span from the first start to the last finish
    // is the run's wall time (a resumed run's span includes the time it was down).
    let first = state
        .stages
        .iter()
        .filter_map(|s| s.started.as_deref())
        .min();
    let last = state
        .stages
        .iter()
        .filter_map(|s| s.finished.as_deref())
        .max();
    let span = match (first, last) {
        (Some(a), Some(b)) => seconds_between(a, b)
            .map(|t| format!(", {} from the first start to the last finish", fmt_secs(t)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let _ = writeln!(
        md,
        "{done} of {} stages done, {} of stage time{span}. Seed {}.\n",
        state.stages.len(),
        fmt_secs(total),
        state
            .config
            .get("seed")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    );
    let _ = writeln!(md, "## Stages\n");
    let _ = writeln!(md, "| stage | kind | status | wall time | artifacts |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for s in &state.stages {
        let wall = match (&s.started, &s.finished) {
            (Some(a), Some(b)) => seconds_between(a, b).map(fmt_secs).unwrap_or_default(),
            _ => String::new(),
        };
        let arts: Vec<String> = s
            .artifacts
            .iter()
            .map(|(k, v)| format!("{k}: `{}`", v.as_str().unwrap_or_default()))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {:?} | {wall} | {} |",
            s.name,
            s.kind,
            s.status,
            arts.join(", ")
        );
    }
    if !state.evals.is_empty() {
        let _ = writeln!(md, "\n## Evaluations\n");
        let _ = writeln!(
            md,
            "| stage | benchmark | n | k | pass@1 | cons@k | pass@k | format |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for e in &state.evals {
            if seen.contains(&(e.stage.as_str(), e.benchmark.as_str())) {
                continue;
            }
            seen.push((&e.stage, &e.benchmark));
            let v = |m: &str| {
                state
                    .eval(&e.stage, &e.benchmark, m)
                    .map(|x| format!("{:.1}%", 100.0 * x))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                e.stage,
                e.benchmark,
                e.n,
                e.k,
                v("pass@1"),
                v("cons@k"),
                v("pass@k"),
                v("format")
            );
        }
        // pass@1 and format across stages, one series per benchmark.
        let mut benches: Vec<&str> = state.evals.iter().map(|e| e.benchmark.as_str()).collect();
        benches.dedup();
        benches.sort_unstable();
        benches.dedup();
        let order: Vec<&str> = state.stages.iter().map(|s| s.name.as_str()).collect();
        let mut series = Vec::new();
        for b in &benches {
            for metric in ["pass@1", "format"] {
                let points: Vec<(f64, f64)> = order
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| state.eval(s, b, metric).map(|v| (i as f64, v)))
                    .collect();
                if !points.is_empty() {
                    series.push(Series {
                        name: format!("{b} {metric} by stage index"),
                        points,
                    });
                }
            }
        }
        if !series.is_empty() {
            let path = plots.join("evals.svg");
            plot_panels(&path, "held-out evaluation after each stage", &series)?;
            let _ = writeln!(
                md,
                "\nStage indices: {}.\n",
                order
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("{i} = {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let _ = writeln!(md, "![evaluations](plots/evals.svg)");
        }
    }
    let _ = writeln!(md, "\n## Training curves\n");
    for s in &state.stages {
        let metrics = run.join(&s.name).join("metrics.jsonl");
        if !metrics.exists() {
            continue;
        }
        let series = read_series(&metrics, stage_keys(&s.kind));
        if series.is_empty() {
            continue;
        }
        let file = format!("{}.svg", s.name);
        plot_panels(
            &plots.join(&file),
            &format!("{} ({})", s.name, s.kind),
            &series,
        )?;
        let last: Vec<String> = series
            .iter()
            .filter_map(|x| x.points.last().map(|p| format!("{} {:.4}", x.name, p.1)))
            .collect();
        let _ = writeln!(md, "### {} ({})\n", s.name, s.kind);
        let _ = writeln!(md, "Last values: {}.\n", last.join(", "));
        let _ = writeln!(md, "![{}](plots/{file})\n", s.name);
    }
    let path = run.join("report.md");
    r1_model::io::write_atomic(&path, md.as_bytes()).map_err(|e| PipelineError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_skip_lines_without_the_key_and_plots_are_svg() {
        let dir = std::env::temp_dir().join(format!("r1-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let m = dir.join("metrics.jsonl");
        std::fs::write(
            &m,
            "{\"step\":1,\"loss\":2.0}\n{\"step\":1,\"eval_loss\":3.0}\n{\"step\":2,\"loss\":1.5}\n",
        )
        .expect("write");
        let s = read_series(&m, &["loss", "eval_loss", "kl"]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].points, vec![(1.0, 2.0), (2.0, 1.5)]);
        let svg = dir.join("p.svg");
        plot_panels(&svg, "t", &s).expect("plot");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(
            text.starts_with("<svg") && text.contains("polyline"),
            "{}",
            &text[..80]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
