//! Secrets a deployment keeps in AWS Secrets Manager rather than in a
//! function's environment, where anyone allowed
//! `lambda:GetFunctionConfiguration` would read them. A function's
//! environment names the secret (its ARN or name); the function reads it
//! once, on its first invocation, with the same AWS configuration as its
//! other clients (so its init still contacts nothing), and keeps it in
//! memory for the life of its execution environment. Each function's role
//! may read only the secrets it uses (`infra/template.yaml`).
//!
//! Locally nothing changes: the master key is a file beside the database
//! and vendor secrets are variables.

use crate::adapters::aws::Aws;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

/// The master key itself, base64 (local runs, tests, the benchmarks).
pub const MASTER_KEY_ENV: &str = "KORALA_MASTER_KEY";
/// The Secrets Manager secret (ARN or name) that holds the master key: how
/// a deployed function is given it.
pub const MASTER_KEY_SECRET_ENV: &str = "KORALA_MASTER_KEY_SECRET";

/// Why a secret could not be read. Each names the secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret `{0}` does not exist (or is scheduled for deletion)")]
    NotFound(String),
    #[error("the secret `{0}` holds no text (a binary secret, or no current version): store the value as a string")]
    NotText(String),
    #[error("the secret `{id}` cannot be read: {reason}")]
    Unreadable { id: String, reason: String },
}

/// The current value of the secret `id`, as text.
pub async fn fetch(aws: &Aws, id: &str) -> Result<String, SecretError> {
    let client = aws.secrets_manager().await;
    let reply = client.get_secret_value().secret_id(id).send().await;
    let value = match reply {
        Ok(value) => value,
        Err(error) => {
            let error = error.into_service_error();
            return Err(match error {
                GetSecretValueError::ResourceNotFoundException(_) => SecretError::NotFound(id.to_owned()),
                other => SecretError::Unreadable {
                    id: id.to_owned(),
                    // The SDK's message and code (access denied, a KMS key
                    // the role may not use, throttling); never the value,
                    // which a failed call does not carry.
                    reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&other).to_string(),
                },
            });
        }
    };
    match value.secret_string() {
        Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
        _ => Err(SecretError::NotText(id.to_owned())),
    }
}
