//! `korala-bench`: runs the benchmark suite and writes `BENCHMARKS.md`.
//! `scripts/bench` builds what it needs and starts DynamoDB Local first;
//! run that, not this, unless you know what it needs.
//!
//! `korala-bench --help` lists the options; scripts/bench passes its own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use korala_bench::{Result, Section, cold_start, isolation, operations, report, scale, throughput};

/// Runs the benchmark suite and writes BENCHMARKS.md.
#[derive(Debug, Parser)]
struct Args {
    /// Fewer rounds and smaller tables: noisier figures, in minutes.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Only these sections.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Option<Vec<Part>>,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The table sizes of the scale section, in sessions.
    #[arg(long, value_delimiter = ',')]
    scale_sizes: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Operations,
    ColdStart,
    Scale,
    Throughput,
    Rules,
}

impl Args {
    fn wants(&self, part: Part) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&part))
    }

    /// The command the report names: scripts/bench's own arguments, not
    /// the binary directory it passes.
    fn command(&self) -> String {
        let mut words = vec!["scripts/bench".to_owned()];
        if self.quick {
            words.push("--quick".to_owned());
        }
        if let Some(only) = &self.only {
            let names: Vec<String> = only
                .iter()
                .filter_map(|p| p.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            words.push(format!("--only {}", names.join(",")));
        }
        if let Some(sizes) = &self.scale_sizes {
            let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
            words.push(format!("--scale-sizes {}", sizes.join(",")));
        }
        words.join(" ")
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // The handlers log as on Lambda (JSON), into a sink: formatting the
    // lines is part of what a request costs.
    let config = functions::runtime::telemetry::Config {
        format: functions::runtime::telemetry::Format::Json,
        filter: "info".to_owned(),
        lambda: true,
    };
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber =
            tracing_subscriber::registry().with(functions::runtime::telemetry::layer(&config, std::io::sink));
        tracing::subscriber::set_global_default(subscriber)?;
    }
    let started = Instant::now();
    let machine = report::machine();
    let mut sections: Vec<Section> = Vec::new();
    if args.wants(Part::Operations) {
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
    if args.wants(Part::ColdStart) {
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
    if args.wants(Part::Scale) {
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
    if args.wants(Part::Throughput) {
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
    if args.wants(Part::Rules) {
        let options = isolation::Options {
            server: args.bin_dir.join("local-server"),
            duration: Duration::from_secs(if args.quick { 5 } else { 20 }),
            interval: Duration::from_millis(10),
            hostile_interval: Duration::from_millis(25),
        };
        eprintln!("== one organisation's worst rules beside another's requests");
        let section = isolation::run(&options).await?;
        eprintln!("{}", section.body);
        sections.push(section);
    }
    let document = report::document(&sections, started.elapsed(), &args.command(), &machine)?;
    std::fs::write(&args.out, document)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
