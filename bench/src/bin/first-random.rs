//! How long a fresh process waits for its first random bytes from aws-lc,
//! the crypto under rustls (the AWS SDK's TLS and the webhook client): a cold
//! start's first TLS handshake waits as long. Prints the microseconds and
//! the `AWS_LC_SYS_NO_JITTER_ENTROPY` this build was made with, which decides
//! whether aws-lc first gathers CPU-jitter entropy.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut bytes = [0u8; 32];
    let started = Instant::now();
    provider
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "aws-lc gave no random bytes")?;
    let micros = started.elapsed().as_micros();
    println!(
        "{micros} {}",
        option_env!("AWS_LC_SYS_NO_JITTER_ENTROPY").unwrap_or("unset")
    );
    Ok(())
}
