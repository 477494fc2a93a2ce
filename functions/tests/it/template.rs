//! The SAM template deploys every function binary, and each the same way:
//! built by cargo-lambda, with its own policies, a log group with retention
//! and a sample event. (Routes, the table and the messaging topology are
//! held to the code by the unit tests beside them.)

use std::collections::BTreeSet;
use std::path::Path;

/// Binaries that are not Lambda functions.
const LOCAL_ONLY: &[&str] = &["local-server", "korala-admin"];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn template() -> String {
    std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml")
}

/// The functions `src/bin/` builds for Lambda.
fn function_binaries() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions/src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .filter(|name| !LOCAL_ONLY.contains(&name.as_str()))
        .collect()
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

#[test]
fn every_function_binary_is_deployed_and_nothing_else() {
    let template = template();
    let deployed: BTreeSet<String> = function_blocks(&template)
        .iter()
        .map(|(logical, block)| {
            binary_of(block)
                .unwrap_or_else(|| panic!("{logical} names no binary"))
                .to_owned()
        })
        .collect();
    assert_eq!(deployed, function_binaries());
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

#[test]
fn every_function_is_built_secured_logged_and_has_a_sample_event() {
    let template = template();
    let blocks = function_blocks(&template);
    assert!(blocks.len() >= 30, "the template's functions were not found");
    for (logical, block) in &blocks {
        let binary = binary_of(block).unwrap();
        assert!(
            block.contains("BuildMethod: rust-cargolambda"),
            "{logical}: not built by cargo-lambda"
        );
        assert!(block.contains("      Policies:\n"), "{logical}: no policies of its own");
        assert!(
            !block.contains("Action: '*'") && !block.contains(":*\n"),
            "{logical}: a wildcard action"
        );
        let log_group = format!("      LogGroupName: !Sub /aws/lambda/${{{logical}}}\n      RetentionInDays: ");
        assert!(template.contains(&log_group), "{logical}: no log group with retention");
        assert!(
            root().join(format!("events/{binary}.json")).exists(),
            "{binary}: no sample event in events/"
        );
    }
    for global in [
        "    Runtime: provided.al2023\n",
        "    Architectures: [arm64]\n",
        "      LogFormat: JSON\n",
    ] {
        assert!(template.contains(global), "Globals: {global}");
    }
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
