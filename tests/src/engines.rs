//! The engines some tests run against beside the embedded store, and the one
//! policy for when one is missing: `scripts/test` installs and starts every
//! engine (Tesseract, a system package, it finds on the machine, where
//! `.ci/run` installs it), so there none is ever missing; a test run outside it (a plain
//! `cargo test`, `scripts/test --fast`) skips what needs a missing engine and
//! says so on stderr; and under `CI=true` a missing engine fails the test,
//! so CI can never pass by skipping.

use std::fmt;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// DynamoDB Local (Java), for the DynamoDB adapter and its stream.
    DynamoDbLocal,
    /// moto's server, for SQS, EventBridge and Secrets Manager.
    Moto,
    /// A Python with the PyPI `standardwebhooks` library, for the partner's
    /// receiver that checks our signatures with a partner's tools.
    StandardWebhooks,
    /// Tesseract (Debian's `tesseract-ocr`, with its English and Latin
    /// models, `tesseract-ocr-eng` and `tesseract-ocr-script-latn`), for the OCR
    /// adapter, with ImageMagick and the OCR-B font to render the specimen
    /// documents it reads (see [`crate::specimens::renderer_here`]).
    Tesseract,
}

impl Engine {
    /// The variable `scripts/test` sets once the engine is up.
    pub fn variable(self) -> &'static str {
        match self {
            Self::DynamoDbLocal => "AWS_ENDPOINT_URL_DYNAMODB",
            Self::Moto => "AWS_ENDPOINT_URL_SQS",
            Self::StandardWebhooks => "KORALA_PYTHON",
            Self::Tesseract => "KORALA_TESSERACT",
        }
    }

    /// How to get the engine for a run of `cargo test` by hand.
    fn how(self) -> &'static str {
        match self {
            Self::DynamoDbLocal => "eval \"$(scripts/dynamodb-local start)\"",
            Self::Moto => "eval \"$(scripts/moto start)\"",
            Self::StandardWebhooks => "export KORALA_PYTHON=$(scripts/python-tools)",
            Self::Tesseract => {
                "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-script-latn fonts-ocr-b imagemagick; \
                 export KORALA_TESSERACT=$(command -v tesseract)"
            }
        }
    }

    /// Whether the engine is here for `test`. When it is not: under
    /// `CI=true` this panics; otherwise it says on stderr that `test` is
    /// skipped and returns false, and the test returns at once.
    pub fn here_for(self, test: &str) -> bool {
        if std::env::var_os(self.variable()).is_some() {
            return true;
        }
        absent(
            test,
            &format!(
                "{self} is missing ({} is not set): scripts/test starts it, or `{}` before cargo test",
                self.variable(),
                self.how()
            ),
        )
    }

    /// [`Engine::here_for`] the calling test, named by its thread.
    pub fn here(self) -> bool {
        let thread = std::thread::current();
        self.here_for(thread.name().unwrap_or("a test"))
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DynamoDbLocal => "DynamoDB Local",
            Self::Moto => "moto",
            Self::StandardWebhooks => "standardwebhooks (PyPI)",
            Self::Tesseract => "Tesseract",
        })
    }
}

/// The policy for something `test` needs and this run lacks (`missing` says
/// what and how to get it): under `CI=true` the test fails here; otherwise
/// it is skipped, saying so on stderr, and this returns false.
pub fn absent(test: &str, missing: &str) -> bool {
    if ci() {
        panic!("{test}: {missing}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!`
    // of a passing test, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "skipped {test}: {missing}");
    false
}

/// Whether this run is CI's: `CI` set to anything but `false` or empty, as
/// CI services set it.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Returns from the calling test when one of the engines is not here (see
/// [`Engine::here`]).
#[macro_export]
macro_rules! require {
    ($($engine:ident),+ $(,)?) => {
        if !($($crate::engines::Engine::$engine.here())&&+) {
            return;
        }
    };
}
