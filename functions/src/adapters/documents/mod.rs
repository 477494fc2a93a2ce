//! Document storage ([`DocumentStorage`](korala_domain::ports::DocumentStorage)):
//! S3 on AWS, sealed files on disk served by the local server here.

pub mod local;
pub mod s3;

/// The bucket the S3 adapter keeps documents in.
pub const BUCKET_ENV: &str = "DOCUMENTS_BUCKET";

/// How long a download URL handed to a partner works.
pub const DOWNLOAD_URL_SECONDS: i64 = 300;

/// `attachment; filename="…"` for a file the end user named: only the
/// name's plain characters reach the header (no quotes, no line breaks).
pub fn attachment(file_name: &str) -> String {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{safe}\"")
}
