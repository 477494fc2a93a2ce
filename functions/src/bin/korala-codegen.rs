//! `cargo codegen`: writes what the route table and the event functions
//! imply (their binaries, the `cargo lambda watch` router, the SAM
//! template's generated sections, sample event stubs); with `--check`, only
//! lists what is out of date and fails if anything is.

use std::path::Path;
use std::process::ExitCode;

use functions::codegen;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: cargo codegen [--check]");
            return ExitCode::from(2);
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match codegen::run(&root, !check) {
        Ok(changed) if changed.is_empty() => ExitCode::SUCCESS,
        Ok(changed) => {
            for path in &changed {
                println!("{} {}", if check { "out of date:" } else { "wrote" }, path.display());
            }
            if check {
                eprintln!("run `cargo codegen` and commit what it writes");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("cargo codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
