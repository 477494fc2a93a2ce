//! `korala-bench`: runs the benchmark suite and writes `BENCHMARKS.md`.
//! `scripts/bench` builds what it needs and starts DynamoDB Local first;
//! run that, not this, unless you know what it needs.
//!
//! korala-bench [--quick] [--out BENCHMARKS.md] [--bin-dir target/release]
//!              [--only operations,cold-start,scale,throughput]
//!              [--scale-sizes 10000,30000,100000]

use std::time::Instant;

use std::path::PathBuf;
use std::time::Duration;

use korala_bench::{Result, Section, cold_start, operations, report, scale, throughput};

struct Args {
    quick: bool,
    out: String,
    only: Option<Vec<String>>,
    /// Where the release binaries are.
    bin_dir: PathBuf,
    /// The table sizes of the scale section, when not the default.
    scale_sizes: Option<Vec<usize>>,
    /// The arguments, as the report names the command.
    command: String,
}

fn args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        out: "BENCHMARKS.md".to_owned(),
        only: None,
        bin_dir: PathBuf::from("target/release"),
        scale_sizes: None,
        command: String::new(),
    };
    let given: Vec<String> = std::env::args().skip(1).collect();
    // What the report names as its command: scripts/bench's own arguments,
    // not the binary directory it passes.
    let mut shown = Vec::new();
    let mut words = given.iter();
    while let Some(word) = words.next() {
        if word == "--bin-dir" {
            words.next();
        } else {
            shown.push(word.as_str());
        }
    }
    args.command = shown.join(" ");
    let mut it = given.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--out" => args.out = it.next().ok_or("--out needs a path")?,
            "--scale-sizes" => {
                let list = it.next().ok_or("--scale-sizes needs a list")?;
                let sizes = list
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<Vec<usize>, _>>()?;
                args.scale_sizes = Some(sizes);
            }
            "--bin-dir" => args.bin_dir = it.next().ok_or("--bin-dir needs a path")?.into(),
            "--only" => {
                let list = it.next().ok_or("--only needs a list")?;
                args.only = Some(list.split(',').map(str::to_owned).collect());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    // The handlers log as on Lambda (JSON), into a sink: formatting the
    // lines is part of what a request costs.
    let config = functions::telemetry::Config {
        format: functions::telemetry::Format::Json,
        filter: "info".to_owned(),
        lambda: true,
    };
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(functions::telemetry::layer(&config, std::io::sink));
        tracing::subscriber::set_global_default(subscriber)?;
    }
    let wanted = |name: &str| args.only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    let started = Instant::now();
    let mut sections: Vec<Section> = Vec::new();
    if wanted("operations") {
        let mut options = operations::Options::default();
        if args.quick {
            options.iterations = 30;
            options.warmup = 5;
        }
        eprintln!("== per-operation cost and overhead ({} rounds)", options.iterations);
        let section = operations::run(&options).await?;
        eprintln!("{}", section.body);
        sections.push(section);
    }
    if wanted("cold-start") {
        let options = cold_start::ColdStartOptions {
            bin_dir: args.bin_dir.clone(),
            runs: if args.quick { 5 } else { 15 },
            ..cold_start::ColdStartOptions::default()
        };
        eprintln!("== cold start ({} runs)", options.runs);
        let section = cold_start::run(&options).await?;
        eprintln!("{}", section.body);
        sections.push(section);
    }
    if wanted("scale") {
        let mut options = scale::Options::default();
        if args.quick {
            options.sizes = vec![1_000, 3_000];
            options.repeats = 5;
            options.due = 50;
        }
        if let Some(sizes) = &args.scale_sizes {
            options.sizes.clone_from(sizes);
        }
        eprintln!("== scale ({:?} sessions)", options.sizes);
        let section = scale::run(&options).await?;
        eprintln!("{}", section.body);
        sections.push(section);
    }
    if wanted("throughput") {
        let options = throughput::Options {
            server: args.bin_dir.join("local-server"),
            duration: Duration::from_secs(if args.quick { 3 } else { 10 }),
            connections: 32,
            threads: 2,
        };
        eprintln!("== local server throughput");
        let section = throughput::run(&options).await?;
        eprintln!("{}", section.body);
        sections.push(section);
    }
    let document = report::document(&sections, started.elapsed(), &args.command)?;
    std::fs::write(&args.out, document)?;
    eprintln!("wrote {}", args.out);
    Ok(())
}
