//! `BENCHMARKS.md`: the machine it ran on, which targets were met, then
//! each section's method and figures.

use std::process::Command;
use std::time::Duration;

use crate::{Result, Section, Target};

/// The first line of what `program args…` prints, if it runs.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then_some(())?;
    String::from_utf8(out.stdout).ok()?.lines().next().map(str::to_owned)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn memory_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0 / 1024.0)
}

/// The machine and the code, read when the run starts (the tree may
/// change while it runs).
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let unknown = || "unknown".to_owned();
    let commit = output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(unknown);
    let dirty = output("git", &["status", "--porcelain"]).is_some_and(|l| !l.is_empty());
    [
        format!("- CPU: {} ({cores} cores available)", cpu_model()),
        format!(
            "- Memory: {}",
            memory_gib().map_or_else(unknown, |g| format!("{g:.0} GiB"))
        ),
        format!(
            "- OS: {} ({})",
            output("uname", &["-sr"]).unwrap_or_else(unknown),
            std::env::consts::ARCH
        ),
        format!("- Rust: {}", output("rustc", &["--version"]).unwrap_or_else(unknown)),
        format!(
            "- DynamoDB Local: {}",
            std::env::var("KORALA_DYNAMODB_LOCAL_VERSION").unwrap_or_else(|_| unknown())
        ),
        format!(
            "- Commit: {commit}{}",
            if dirty { " (with uncommitted changes)" } else { "" }
        ),
    ]
    .join("\n")
}

fn verdicts(sections: &[Section]) -> String {
    let targets: Vec<&Target> = sections.iter().flat_map(|s| &s.targets).collect();
    let missed: Vec<&&Target> = targets.iter().filter(|t| !t.met()).collect();
    let mut out = format!("{} of {} targets met.\n", targets.len() - missed.len(), targets.len());
    if !missed.is_empty() {
        out.push_str("\nMissed (measured / limit):\n\n");
        for t in missed {
            out.push_str(&format!("- {}: {:.2} / {:.2}\n", t.what, t.measured, t.limit));
        }
    }
    out
}

/// The whole document.
pub fn document(sections: &[Section], took: Duration, command: &str, machine: &str) -> Result<String> {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let mut doc = format!(
        "# Benchmarks\n\n\
         Written by `{}` on {now} in {:.0} s; do not edit by hand, run it again.\n\
         Every target is a ratio of two figures measured in the same run, so a slower or busier machine moves \
         both sides.\n\n## Machine\n\n{}\n\n## Targets\n\n{}",
        command,
        took.as_secs_f64(),
        machine,
        verdicts(sections),
    );
    for section in sections {
        doc.push_str(&format!("\n## {}\n\n{}\n", section.title, section.body.trim_end()));
    }
    Ok(doc)
}
