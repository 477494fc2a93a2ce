//! What `cargo codegen` writes is up to date (the binaries, the watch
//! router, the template's generated sections, the sample events), and the
//! SAM template's hand-written parts hold what the generator cannot: how
//! the functions are built, their globals and who reads which secret.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn template() -> String {
    std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml")
}

/// (logical id, block) of every `AWS::Serverless::Function`, each block up
/// to the next blank line.
fn function_blocks(template: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let lines: Vec<&str> = template.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if *line == "    Type: AWS::Serverless::Function" {
            let logical = lines[i - 1].trim().trim_end_matches(':').to_owned();
            let block: Vec<&str> = lines[i..].iter().take_while(|l| !l.is_empty()).copied().collect();
            blocks.push((logical, block.join("\n")));
        }
    }
    blocks
}

fn binary_of(block: &str) -> Option<&str> {
    block.lines().find_map(|l| l.trim().strip_prefix("Binary: "))
}

/// CI fails when running `cargo codegen` would change a file.
#[test]
fn what_cargo_codegen_writes_is_up_to_date() {
    let stale = functions::codegen::run(root(), false).expect("cargo codegen reads the tree");
    assert!(
        stale.is_empty(),
        "out of date (run `cargo codegen` and commit what it writes): {stale:?}"
    );
}

/// Every function the tables name has its block in the template: the
/// routes' are generated, the event functions' written by hand.
#[test]
fn every_function_is_deployed_and_nothing_else() {
    let template = template();
    let mut deployed: Vec<String> = function_blocks(&template)
        .iter()
        .map(|(logical, block)| {
            binary_of(block)
                .unwrap_or_else(|| panic!("{logical} names no binary"))
                .to_owned()
        })
        .collect();
    deployed.sort();
    let mut functions = functions::codegen::functions();
    functions.sort();
    assert_eq!(deployed, functions);
    for global in [
        "    Runtime: provided.al2023\n",
        "    Architectures: [arm64]\n",
        "      LogFormat: JSON\n",
    ] {
        assert!(template.contains(global), "Globals: {global}");
    }
}

/// SAM's rust-cargolambda build passes cargo-lambda only the binary's name,
/// so the deployed functions leave the embedded store out through the
/// package's cargo-lambda metadata. This checks the metadata is there;
/// `scripts/lambda-check build` (in `.ci/run`) checks that the bootstraps
/// cargo-lambda builds hold no SQLite.
#[test]
fn functions_are_built_without_the_embedded_store() {
    let manifest = std::fs::read_to_string(root().join("functions/Cargo.toml")).unwrap();
    let section = manifest
        .split("[package.metadata.lambda.build]\n")
        .nth(1)
        .expect("functions/Cargo.toml has no [package.metadata.lambda.build]");
    let section = section.split("\n[").next().unwrap();
    assert!(section.contains("no_default_features = true\n"), "{section}");
    assert!(manifest.contains("default = [\"embedded\"]"));
}

/// Secrets are in Secrets Manager, not in any function's environment (which
/// `lambda:GetFunctionConfiguration` shows), and each role reads only the
/// ones its function uses: the master key every function that builds the
/// application (all but the outbox publisher), the vendor's secret the
/// checks worker alone.
#[test]
fn secrets_are_read_from_secrets_manager_by_the_functions_that_use_them() {
    let template = template();
    assert!(
        !template.contains("KORALA_MASTER_KEY: ") && !template.contains("KORALA_CHECK_PROVIDER_SECRET: "),
        "a secret in a function's environment"
    );
    assert!(template.contains("        KORALA_MASTER_KEY_SECRET: !Ref MasterKeySecret\n"));
    for (logical, block) in function_blocks(&template) {
        let binary = binary_of(&block).unwrap();
        let reads_master_key = block.contains("        - !Ref MasterKeyReadPolicy\n");
        assert_eq!(
            reads_master_key,
            binary != "outbox-publisher",
            "{logical}: the master key's read policy"
        );
        assert_eq!(
            block.contains("Resource: !Ref CheckProviderSecretValue"),
            binary == "checks-worker",
            "{logical}: the vendor secret's read"
        );
    }
}
