//! Tesseract 5 (Debian's `tesseract-ocr` with `tesseract-ocr-eng`), run as
//! a subprocess: `tesseract stdin stdout`, the image on its standard input
//! and the text on its standard output.
//!
//! A subprocess rather than a binding to libtesseract: nothing to link into
//! every function's binary (only the one that reads documents needs the
//! engine, from a layer or its image), and an engine that crashes or hangs
//! on a hostile image takes down its own process, which the timeout kills,
//! not the function.
//!
//! What goes in is checked first. Tesseract takes standard input that is not
//! an image it recognises for a list of file names and reads those files, so
//! only the image formats it knows by their first bytes are passed on, and
//! only up to [`MAX_IMAGE_BYTES`]. What comes out is bounded: at most
//! [`MAX_TEXT_BYTES`] of text (a page holds a few kilobytes) and the first
//! [`MAX_STDERR_BYTES`] of its complaints, which go into the error.
//!
//! # Models
//!
//! Zones are read with Tesseract's Latin script model ([`ZONE_MODEL`],
//! Debian's `tesseract-ocr-script-latn`), text with English ([`TEXT_MODEL`]).
//! The English model cannot read OCR-B's filler: on the specimen passports
//! (tests/src/specimens.rs) it read `<` between two names as `K`, `X`, `KX`
//! or `S`, and put `K` before the issuing state, so of twenty pages (ten
//! holders, each also with a wrong check digit) it read six names right, and
//! no identity card of four; the Latin model read eighteen pages and nine
//! cards of ten exactly. It costs more: 0.66 s for a passport page instead
//! of 0.28 s, and 280 MB of memory instead of 47 (its model is 89 MB, in
//! floating point), which a function that reads documents can afford. Where
//! the Latin model is missing, a zone's reading fails as
//! [`OcrError::Unavailable`]; [`Tesseract::check`] says so at start.
//!
//! # Preprocessing
//!
//! None: the image is passed as it is, for both purposes. Cropping a
//! passport page to its bottom quarter before reading the zone was measured
//! on the ten holders' pages: Tesseract read nine zones the same as from the
//! whole page and one worse (`ANNA<MARIA` as `ANNA<SMARIA`), saving 0.25 s.
//! With `--psm 6` the page's other text comes out as noise in the zone's
//! alphabet, which `mrz::find` passes over, so the adapter needs no image
//! library.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use korala_domain::ports::{Ocr, OcrError, OcrPurpose};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Names the engine's binary when it is not `tesseract` on `PATH`.
pub const VARIABLE: &str = "KORALA_TESSERACT";

/// The model zones are read with: Tesseract's Latin script model
/// (Debian's `tesseract-ocr-script-latn`; see the module's documentation).
pub const ZONE_MODEL: &str = "Latin";

/// The model text is read with: English (`tesseract-ocr-eng`).
pub const TEXT_MODEL: &str = "eng";

/// The binary looked for on `PATH`.
const PROGRAM: &str = "tesseract";

/// A page takes Tesseract well under a second on one core; twenty leave room
/// for a large photo on a slow instance and still end a hung engine well
/// inside a function's timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest image read: a phone's photo of a document is a few MB.
pub const MAX_IMAGE_BYTES: usize = 32 << 20;

/// The most text kept: a dense page is a few KB, so more is not a document.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// The most of Tesseract's standard error kept for an error message.
pub const MAX_STDERR_BYTES: usize = 4 << 10;

/// The characters of a machine-readable zone: with only these allowed,
/// Tesseract cannot read the zone's `0` as `O` or its `<` as `«`.
const MRZ_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<";

/// Tesseract's complaints about the image itself, as opposed to about its
/// installation (a missing language, a crash): Leptonica's image readers
/// (`pixReadMem…`), libpng's and libjpeg's, and Tesseract's own.
const UNREADABLE: [&str; 4] = ["pixRead", "cannot be read", "libpng error", "JPEG"];

/// The Tesseract CLI at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tesseract {
    program: PathBuf,
    timeout: Duration,
    zone_model: String,
    text_model: String,
}

impl Tesseract {
    /// The engine of this environment: the binary [`VARIABLE`] names (a path,
    /// or a name looked up on `PATH`), else `tesseract` on `PATH`; `None`
    /// when there is no such executable, so the service can say at start
    /// that it has no OCR engine.
    pub fn detect() -> Option<Tesseract> {
        detect_in(std::env::var_os(VARIABLE), std::env::var_os("PATH"))
    }

    /// The binary at `program`, unchecked: a missing one makes every read
    /// [`OcrError::Unavailable`].
    pub fn at(program: impl Into<PathBuf>) -> Tesseract {
        Tesseract {
            program: program.into(),
            timeout: DEFAULT_TIMEOUT,
            zone_model: ZONE_MODEL.into(),
            text_model: TEXT_MODEL.into(),
        }
    }

    /// Reads zones with the model `zone` and text with `text` (Tesseract's
    /// `-l`, as `eng` or `eng+fra`).
    pub fn with_models(mut self, zone: &str, text: &str) -> Tesseract {
        self.zone_model = zone.into();
        self.text_model = text.into();
        self
    }

    /// Kills a reading that takes longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Tesseract {
        self.timeout = timeout;
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the engine runs and has both models: an
    /// [`OcrError::Unavailable`] that names what is missing otherwise, for
    /// the service to say at start.
    pub async fn check(&self) -> Result<(), OcrError> {
        let listed = Command::new(&self.program)
            .arg("--list-langs")
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let listed = tokio::time::timeout(self.timeout, listed)
            .await
            .map_err(|_| OcrError::Unavailable("tesseract --list-langs did not answer".into()))?
            .map_err(|e| OcrError::Unavailable(format!("{} cannot be started: {e}", self.program.display())))?;
        if !listed.status.success() {
            return Err(OcrError::Unavailable(format!(
                "tesseract --list-langs failed ({}): {}",
                listed.status,
                plain(&listed.stderr)
            )));
        }
        // The first line is a heading ("List of available languages in
        // …"), then one model a line.
        let listed = String::from_utf8_lossy(&listed.stdout);
        let installed: Vec<&str> = listed.lines().skip(1).map(str::trim).collect();
        let missing: Vec<&str> = [&self.zone_model, &self.text_model]
            .into_iter()
            .flat_map(|model| model.split('+'))
            .filter(|model| !installed.contains(model))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(OcrError::Unavailable(format!(
                "tesseract has no model {} (Debian: tesseract-ocr-eng, tesseract-ocr-script-latn)",
                missing.join(", ")
            )))
        }
    }

    /// What Tesseract is told for each purpose.
    fn arguments(&self, purpose: OcrPurpose) -> Vec<String> {
        let model = match purpose {
            OcrPurpose::MachineReadableZone => &self.zone_model,
            OcrPurpose::Text => &self.text_model,
        };
        let mut arguments: Vec<String> = vec!["stdin".into(), "stdout".into(), "-l".into(), model.clone()];
        match purpose {
            // A zone is a uniform block of fixed-pitch lines: one block
            // (psm 6) keeps each line whole where page segmentation (psm 3)
            // may split a line at a run of fillers. The page's other text
            // comes out as noise in the zone's alphabet, which mrz::find
            // passes over.
            OcrPurpose::MachineReadableZone => {
                arguments.extend(["--psm".into(), "6".into(), "-c".into()]);
                arguments.push(format!("tessedit_char_whitelist={MRZ_ALPHABET}"));
            }
            // A letter's blocks (the sender, the address, the table of
            // charges) are found by full page segmentation.
            OcrPurpose::Text => arguments.extend(["--psm".into(), "3".into()]),
        }
        arguments
    }
}

#[async_trait]
impl Ocr for Tesseract {
    fn engine(&self) -> &'static str {
        "tesseract"
    }

    async fn read(&self, image: &[u8], purpose: OcrPurpose) -> Result<String, OcrError> {
        admit(image)?;
        let mut child = Command::new(&self.program)
            .args(self.arguments(purpose))
            // Tesseract's OpenMP threads spin waiting for work: on two cores
            // they made a passport page take 4.1 s instead of 0.66 s.
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Should this future be dropped (the request gone), the engine
            // goes with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| OcrError::Unavailable(format!("{} cannot be started: {e}", self.program.display())))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(OcrError::Unavailable("tesseract's pipes were not opened".into()));
        };
        // Feeding the image, draining both outputs and waiting go on
        // together: Tesseract writes only once it has read everything, but a
        // failing one may write (and block on a full pipe) before that.
        let run = async {
            let feed = async {
                // A failed write is Tesseract gone before reading the whole
                // image (it refused it): its status and stderr say why.
                let _ = stdin.write_all(image).await;
                let _ = stdin.shutdown().await;
                drop(stdin);
            };
            let (_, text, complaints, status) = tokio::join!(
                feed,
                bounded(stdout, MAX_TEXT_BYTES),
                bounded(stderr, MAX_STDERR_BYTES),
                child.wait()
            );
            (text, complaints, status)
        };
        let Ok((text, complaints, status)) = tokio::time::timeout(self.timeout, run).await else {
            // kill() also waits, so no zombie is left behind.
            let _ = child.kill().await;
            return Err(OcrError::Unavailable(format!(
                "tesseract took longer than {} ms and was killed",
                self.timeout.as_millis()
            )));
        };
        let unavailable = |e: std::io::Error| OcrError::Unavailable(format!("tesseract's output cannot be read: {e}"));
        let status = status.map_err(unavailable)?;
        let (text, overflow) = text.map_err(unavailable)?;
        let complaints = complaints.map(|(bytes, _)| plain(&bytes)).unwrap_or_default();
        if !status.success() {
            return Err(failure(status, &complaints));
        }
        if overflow {
            return Err(OcrError::Unreadable(format!(
                "more than {MAX_TEXT_BYTES} bytes of text: not a document"
            )));
        }
        // Tesseract writes UTF-8; a stray byte should not lose the page.
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// The engine at `named` (a path, or a name on `path`) if given, else
/// `tesseract` on `path`.
fn detect_in(named: Option<OsString>, path: Option<OsString>) -> Option<Tesseract> {
    let named = named.filter(|named| !named.is_empty()).map(PathBuf::from);
    let name = match named {
        // A path is taken as it is: one that is not there is no engine, not
        // a reason to look for another one.
        Some(named) if named.components().count() > 1 => return executable(&named).then(|| Tesseract::at(named)),
        Some(named) => named,
        None => PathBuf::from(PROGRAM),
    };
    std::env::split_paths(&path?)
        .map(|dir| dir.join(&name))
        .find(|candidate| executable(candidate))
        .map(Tesseract::at)
}

fn executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Refuses what Tesseract must not be given (see the module's documentation).
fn admit(image: &[u8]) -> Result<(), OcrError> {
    if image.is_empty() {
        return Err(OcrError::Unreadable("the image is empty".into()));
    }
    if image.len() > MAX_IMAGE_BYTES {
        return Err(OcrError::Unreadable(format!(
            "the image has {} bytes, more than the {MAX_IMAGE_BYTES} read",
            image.len()
        )));
    }
    if image_format(image).is_none() {
        return Err(OcrError::Unreadable(
            "not a PNG, JPEG, TIFF, BMP, GIF or WebP image".into(),
        ));
    }
    Ok(())
}

/// The image format, by the first bytes Leptonica (Tesseract's image
/// library) recognises it by.
fn image_format(image: &[u8]) -> Option<&'static str> {
    match image {
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => Some("PNG"),
        [0xff, 0xd8, 0xff, ..] => Some("JPEG"),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some("TIFF"),
        [b'B', b'M', ..] => Some("BMP"),
        [b'G', b'I', b'F', b'8', ..] => Some("GIF"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("WebP"),
        _ => None,
    }
}

/// A failed run: the image's fault, or the engine's.
fn failure(status: ExitStatus, complaints: &str) -> OcrError {
    if status.code().is_some() && UNREADABLE.iter().any(|marker| complaints.contains(marker)) {
        OcrError::Unreadable(complaints.to_owned())
    } else {
        OcrError::Unavailable(format!("tesseract failed ({status}): {complaints}"))
    }
}

/// Standard error as one line: its lines joined by `; `.
fn plain(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads a pipe to its end, keeping at most `limit` bytes; the rest is read
/// and dropped, so the engine never blocks on a full pipe, and reported.
async fn bounded(mut pipe: impl AsyncRead + Unpin, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut chunk = vec![0; 16 << 10];
    loop {
        let read = pipe.read(&mut chunk).await?;
        if read == 0 {
            return Ok((kept, overflow));
        }
        let room = limit.saturating_sub(kept.len());
        overflow |= read > room;
        kept.extend_from_slice(chunk.get(..read.min(room)).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// The first bytes of a PNG: enough to pass [`admit`], which is all a
    /// fake engine needs.
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// A stand-in for Tesseract: a shell script at a path of its own.
    fn fake(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("korala-ocr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Reads through `engine`, again when the script was "busy": another
    /// test's process, forked while this one's script was open for writing,
    /// can hold it open for an instant (ETXTBSY).
    async fn read(engine: &Tesseract, image: &[u8], purpose: OcrPurpose) -> Result<String, OcrError> {
        for _ in 0..20 {
            match engine.read(image, purpose).await {
                Err(OcrError::Unavailable(message)) if message.contains("Text file busy") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
        panic!("{} stayed busy", engine.program().display());
    }

    #[tokio::test]
    async fn ocr_a_missing_binary_is_unavailable() {
        let engine = Tesseract::at("/nonexistent/korala/tesseract");
        let error = engine.read(PNG, OcrPurpose::Text).await.unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("/nonexistent/korala/tesseract")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn ocr_a_hung_engine_is_killed_at_the_timeout() {
        let pids = std::env::temp_dir().join(format!("korala-ocr-{}-hung.pid", std::process::id()));
        let program = fake("hung", &format!("echo $$ > {}\nexec sleep 30", pids.display()));
        let engine = Tesseract::at(program).with_timeout(Duration::from_millis(500));
        let started = Instant::now();
        let error = read(&engine, PNG, OcrPurpose::MachineReadableZone).await.unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("longer than 500 ms")),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        // Killed and reaped: the process is gone (the pid is not reused this
        // soon).
        let pid = std::fs::read_to_string(&pids).unwrap();
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the engine (pid {pid}) still runs"
        );
    }

    #[tokio::test]
    async fn ocr_the_image_goes_in_on_stdin_and_the_purpose_picks_the_arguments() {
        // Echoes its arguments, then the image's length.
        let program = fake("echo", "printf '%s\\n' \"$@\"\nwc -c");
        let engine = Tesseract::at(program);
        let zone = read(&engine, PNG, OcrPurpose::MachineReadableZone).await.unwrap();
        let zone: Vec<&str> = zone.lines().map(str::trim).collect();
        assert_eq!(
            zone,
            [
                "stdin",
                "stdout",
                "-l",
                "Latin",
                "--psm",
                "6",
                "-c",
                "tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<",
                &PNG.len().to_string(),
            ]
        );
        let text = read(&engine, PNG, OcrPurpose::Text).await.unwrap();
        let text: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(
            text,
            ["stdin", "stdout", "-l", "eng", "--psm", "3", &PNG.len().to_string()]
        );
    }

    #[tokio::test]
    async fn ocr_the_engine_s_complaints_tell_a_bad_image_from_a_broken_engine() {
        let bad_image = fake(
            "bad-image",
            "cat >/dev/null\necho 'Error in pixReadMemPng: internal png error' >&2\n\
             echo 'Error during processing.' >&2\nexit 1",
        );
        let error = read(&Tesseract::at(bad_image), PNG, OcrPurpose::Text)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            OcrError::Unreadable("Error in pixReadMemPng: internal png error; Error during processing.".into())
        );
        let no_language = fake(
            "no-language",
            "cat >/dev/null\necho \"Tesseract couldn't load any languages!\" >&2\nexit 1",
        );
        let error = read(&Tesseract::at(no_language), PNG, OcrPurpose::Text)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("couldn't load any languages")),
            "{error:?}"
        );
        let crash = fake("crash", "cat >/dev/null\nkill -SEGV $$");
        let error = read(&Tesseract::at(crash), PNG, OcrPurpose::Text).await.unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("signal")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn ocr_output_and_complaints_are_bounded() {
        let flood = fake(
            "flood",
            "cat >/dev/null\nhead -c 3000000 /dev/zero | tr '\\0' A\nhead -c 100000 /dev/zero | tr '\\0' E >&2",
        );
        let error = read(&Tesseract::at(flood), PNG, OcrPurpose::Text).await.unwrap_err();
        assert!(
            matches!(&error, OcrError::Unreadable(m) if m.contains("more than 1048576 bytes")),
            "{error:?}"
        );
        let complaint = fake(
            "complaint",
            "cat >/dev/null\nhead -c 100000 /dev/zero | tr '\\0' E >&2\nexit 3",
        );
        let error = read(&Tesseract::at(complaint), PNG, OcrPurpose::Text)
            .await
            .unwrap_err();
        let OcrError::Unavailable(message) = error else {
            panic!("{error:?}")
        };
        assert!(message.len() < MAX_STDERR_BYTES + 100, "{} bytes", message.len());
    }

    #[tokio::test]
    async fn ocr_only_images_reach_the_engine() {
        // Tesseract would read a text on stdin as a list of files to open.
        let engine = Tesseract::at("/nonexistent/korala/tesseract");
        for refused in [&b""[..], b"/etc/passwd\n", b"%PDF-1.7"] {
            let error = engine.read(refused, OcrPurpose::Text).await.unwrap_err();
            assert!(matches!(error, OcrError::Unreadable(_)), "{refused:?}: {error:?}");
        }
        let huge = vec![0xff; MAX_IMAGE_BYTES + 1];
        let error = engine.read(&huge, OcrPurpose::Text).await.unwrap_err();
        assert!(matches!(error, OcrError::Unreadable(_)), "{error:?}");
        for (image, format) in [
            (&b"\xff\xd8\xff\xe0"[..], "JPEG"),
            (b"II*\0", "TIFF"),
            (b"MM\0*", "TIFF"),
            (b"BM", "BMP"),
            (b"GIF89a", "GIF"),
            (b"RIFF\0\0\0\0WEBPVP8 ", "WebP"),
            (PNG, "PNG"),
        ] {
            assert_eq!(image_format(image), Some(format));
        }
    }

    #[tokio::test]
    async fn ocr_the_check_names_a_missing_model() {
        let both = fake(
            "both",
            "echo 'List of available languages in \"/usr/share/tesseract-ocr/5/tessdata/\" (3):'\n\
             printf 'Latin\\neng\\nosd\\n'",
        );
        check_retrying(&Tesseract::at(both.clone())).await.unwrap();
        let error = check_retrying(&Tesseract::at(both).with_models("Latin", "eng+fra"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("no model fra")),
            "{error:?}"
        );
        let english = fake("english", "echo 'List of available languages (2):'\necho eng\necho osd");
        let error = check_retrying(&Tesseract::at(english)).await.unwrap_err();
        assert!(
            matches!(&error, OcrError::Unavailable(m) if m.contains("no model Latin")),
            "{error:?}"
        );
        let error = Tesseract::at("/nonexistent/korala/tesseract")
            .check()
            .await
            .unwrap_err();
        assert!(matches!(error, OcrError::Unavailable(_)), "{error:?}");
    }

    /// [`Tesseract::check`], again when the script was busy (see [`read`]).
    async fn check_retrying(engine: &Tesseract) -> Result<(), OcrError> {
        for _ in 0..20 {
            match engine.check().await {
                Err(OcrError::Unavailable(message)) if message.contains("Text file busy") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
        panic!("{} stayed busy", engine.program().display());
    }

    #[test]
    fn ocr_detection_takes_the_variable_then_path() {
        let program = fake("tesseract", "exit 0");
        let dir = program.parent().unwrap().as_os_str().to_owned();
        let path = std::env::join_paths(["/nonexistent/korala".into(), dir.clone()]).unwrap();
        assert_eq!(detect_in(None, Some(path.clone())), Some(Tesseract::at(&program)));
        assert_eq!(
            detect_in(Some("".into()), Some(path.clone())),
            Some(Tesseract::at(&program))
        );
        assert_eq!(detect_in(None, Some("/nonexistent/korala".into())), None);
        assert_eq!(detect_in(None, None), None);
        // A path names the engine, or there is none: no falling back to PATH.
        assert_eq!(
            detect_in(Some(program.clone().into()), None),
            Some(Tesseract::at(&program))
        );
        assert_eq!(
            detect_in(Some("/nonexistent/korala/tesseract".into()), Some(path.clone())),
            None
        );
        // A name is looked up on PATH.
        let other = fake("tesseract-5", "exit 0");
        assert_eq!(
            detect_in(Some("tesseract-5".into()), Some(path)),
            Some(Tesseract::at(other))
        );
        // Not executable: not an engine.
        let plain = program.with_file_name("not-executable");
        std::fs::write(&plain, "").unwrap();
        assert_eq!(detect_in(Some(plain.into()), None), None);
    }
}
