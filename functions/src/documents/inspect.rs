//! What an uploaded file really is, and whether it is safe to process.
//!
//! End users upload photos and PDFs straight to storage, declaring a type
//! that nothing checks. Before a submission naming an upload is accepted,
//! [`inspect`] reads the stored bytes and decides by their content alone:
//!
//! - the type comes from the magic bytes ([`sniff`], with `infer`): JPEG,
//!   PNG, WebP and PDF are accepted; HEIC, GIF, TIFF, archives, programs and
//!   the rest are refused by name, so the end user knows what to send
//!   instead;
//! - a photo's width and height are read from its header and checked against
//!   [`Limits`] before any pixel buffer exists (a decompression bomb is a
//!   small file whose header declares a huge image), then the photo is
//!   decoded in full, which proves it is not truncated or damaged: `image`
//!   for PNG and WebP with its own allocation limits, `zune-jpeg` in strict
//!   mode for JPEG (through `image` it is lenient and fills a truncated scan
//!   with grey);
//! - a PDF is read with `lopdf`, its objects found by scanning the file
//!   rather than where its cross-reference table says: the object streams
//!   and page content streams it inflates count against one budget
//!   ([`Limits::max_pdf_stream_bytes`]), so a tiny stream that inflates to
//!   gigabytes is refused once the budget is spent, with memory bounded by
//!   it; objects and pages are counted, password-protected files are
//!   refused, and each page's content streams are inflated, which is what
//!   [`pdf_text`] then reads the text layer from. What would make lopdf
//!   parse the same bytes over and over (see `load_pdf`) is refused.
//!
//! The checks are synchronous and CPU-bound (a full decode of a large photo
//! takes a good part of a second of one core): run them off the async
//! executor, as [`crate::evaluation`] does for rules.
//!
//! Nothing here panics on purpose on hostile input, and the parsers'
//! calls run under [`std::panic::catch_unwind`], which turns a parser's bug
//! into [`Refusal::Corrupt`] where panics unwind (the tests, the local
//! server). The release profile aborts on panic instead, so in a deployed
//! function such a bug ends the invocation rather than refusing the file.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{ImageError, ImageFormat, ImageReader};
use lopdf::{DecompressError, Document, LoadOptions, Object, ObjectId, Stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// How many leading bytes [`sniff`] looks at. The accepted kinds, HEIC and
/// most refused ones are told apart within the first 64 bytes; office
/// documents (zip archives inside) need a few kilobytes.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// What an upload may be at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The file's size.
    pub max_bytes: u64,
    /// A photo's width × height.
    pub max_pixels: u64,
    /// A photo's width, and its height.
    pub max_side: u32,
    /// A PDF's pages.
    pub max_pdf_pages: usize,
    /// A PDF's objects (its cross-reference entries, and the objects it
    /// holds, those packed in object streams included).
    pub max_pdf_objects: usize,
    /// What a PDF's streams inflate to, all of them together.
    pub max_pdf_stream_bytes: u64,
}

impl Limits {
    /// 10 MiB files; photos up to 25 megapixels and 12,000 pixels a side (a
    /// phone's photo is 12; decoded, 25 MP is 75 MB of RGB, which a 256 MB
    /// function holds); PDFs of up to
    /// 20 pages and 10,000 objects, whose streams inflate to 64 MiB at most.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 10 * MIB,
        max_pixels: 25_000_000,
        max_side: 12_000,
        max_pdf_pages: 20,
        max_pdf_objects: 10_000,
        max_pdf_stream_bytes: 64 * MIB,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An accepted kind of file, named in JSON by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "application/pdf")]
    Pdf,
}

impl Kind {
    /// The media type, as served and as written in JSON.
    pub const fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
        }
    }

    /// The photo formats' decoder, `None` for a PDF.
    const fn image_format(self) -> Option<ImageFormat> {
        match self {
            Kind::Jpeg => Some(ImageFormat::Jpeg),
            Kind::Png => Some(ImageFormat::Png),
            Kind::Webp => Some(ImageFormat::WebP),
            Kind::Pdf => None,
        }
    }
}

/// What [`sniff`] tells from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A kind that is accepted, if the rest of the file bears it out.
    Accepted(Kind),
    /// A kind that is recognised and refused; `what` names it for the end
    /// user (see [`Refusal::UnsupportedType`]).
    Unsupported { what: &'static str },
}

/// An accepted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub kind: Kind,
    /// In bytes.
    pub size: u64,
    /// SHA-256 of the bytes, in lowercase hex.
    pub sha256: String,
    /// A PDF's pages; 1 for a photo.
    pub pages: u32,
    /// A photo's width in pixels; `None` for a PDF.
    pub width: Option<u32>,
    /// A photo's height in pixels; `None` for a PDF.
    pub height: Option<u32>,
}

/// Why a file is refused, in words the end user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the file is empty: choose the photo or PDF again")]
    Empty,
    #[error("the file is {} MB, more than the {} MB accepted: send a smaller photo or PDF", megabytes(.size), megabytes(.max))]
    TooLarge { size: u64, max: u64 },
    #[error("the file is not a photo (JPEG, PNG or WebP) or a PDF: check that you chose the right file")]
    UnknownType,
    #[error("{}", unsupported_advice(.what))]
    UnsupportedType { what: &'static str },
    #[error(
        "the photo is {width} × {height} pixels, more than accepted ({} megapixels, {max_side} pixels a side): \
         send a smaller photo",
        megapixels(.max_pixels)
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
        max_side: u32,
    },
    /// Truncated, damaged or unreadable; the text says what was wrong, in
    /// general terms.
    #[error("the file is damaged or incomplete ({0}): upload it again, or send another copy")]
    Corrupt(String),
    #[error("the PDF has {pages} pages, more than the {max} accepted: send only the pages needed")]
    TooManyPages { pages: u64, max: usize },
    #[error(
        "the PDF is too complex to check ({objects} parts or more, at most {max}): \
         send a simpler copy (print it to a new PDF) or a photo"
    )]
    TooManyObjects { objects: u64, max: usize },
    #[error(
        "the PDF holds far more data than its size suggests: send a simpler copy (print it to a new PDF) or a photo"
    )]
    DecompressionBomb,
    #[error("the PDF is password-protected: send a copy without a password")]
    Encrypted,
}

impl Refusal {
    /// A stable name for the reason, for problem documents and metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::Empty => "empty",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::UnknownType => "unknown_type",
            Refusal::UnsupportedType { .. } => "unsupported_type",
            Refusal::TooManyPixels { .. } => "too_many_pixels",
            Refusal::Corrupt(_) => "corrupt",
            Refusal::TooManyPages { .. } => "too_many_pages",
            Refusal::TooManyObjects { .. } => "too_many_objects",
            Refusal::DecompressionBomb => "decompression_bomb",
            Refusal::Encrypted => "encrypted",
        }
    }
}

/// What [`Refusal::UnsupportedType`] names, for the kinds with advice of
/// their own.
const HEIC: &str = "HEIC";
const OFFICE: &str = "office document";

fn unsupported_advice(what: &str) -> String {
    match what {
        HEIC => "HEIC photos are not accepted yet: send a JPEG (most phones convert when you choose the file)".into(),
        OFFICE => "office documents are not accepted: save it as a PDF and send that".into(),
        _ => format!("{what} files are not accepted: send a photo (JPEG, PNG or WebP) or a PDF"),
    }
}

/// 10485760 → "10", 15938355 → "15.2".
fn megabytes(bytes: &u64) -> String {
    one_decimal(*bytes as f64 / MIB as f64)
}

fn megapixels(pixels: &u64) -> String {
    one_decimal(*pixels as f64 / 1e6)
}

fn one_decimal(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

/// The text of [`Refusal::Corrupt`] when a parser panicked.
const PANICKED: &str = "it could not be read";

/// Decides whether `bytes` is an acceptable upload: its kind by content,
/// within `limits`, whole.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Inspection, Refusal> {
    let (kind, size) = admit(bytes, limits)?;
    let (pages, width, height) = match kind.image_format() {
        Some(format) => {
            let (width, height) = guarded(|| inspect_image(bytes, format, limits))?;
            (1, Some(width), Some(height))
        }
        None => {
            let pdf = guarded(|| open_pdf(bytes, limits))?;
            (u32::try_from(pdf.pages.len()).unwrap_or(u32::MAX), None, None)
        }
    };
    Ok(Inspection {
        kind,
        size,
        sha256: sha256_hex(bytes),
        pages,
        width,
        height,
    })
}

/// The kind of file that starts with `head`, from its magic bytes alone:
/// `None` when they match nothing known (a text file, say). Looks at no more
/// than [`SNIFF_BYTES`]; 64 bytes are enough for a cheap early answer about
/// the accepted kinds and HEIC.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let head = head.get(..SNIFF_BYTES).unwrap_or(head);
    let found = infer::get(head)?;
    let what = match found.mime_type() {
        "image/jpeg" => return Some(Sniffed::Accepted(Kind::Jpeg)),
        "image/png" => return Some(Sniffed::Accepted(Kind::Png)),
        "image/webp" => return Some(Sniffed::Accepted(Kind::Webp)),
        "application/pdf" => return Some(Sniffed::Accepted(Kind::Pdf)),
        "image/heif" => HEIC,
        "image/avif" => "AVIF",
        "image/gif" => "GIF",
        "image/tiff" => "TIFF",
        "image/bmp" => "BMP",
        "image/jxl" => "JPEG XL",
        "image/vnd.adobe.photoshop" => "Photoshop",
        _ => match found.matcher_type() {
            infer::MatcherType::Image => "other image",
            infer::MatcherType::Doc => OFFICE,
            infer::MatcherType::Archive => "archive",
            infer::MatcherType::App => "program",
            infer::MatcherType::Video => "video",
            infer::MatcherType::Audio => "audio",
            _ => "these",
        },
    };
    Some(Sniffed::Unsupported { what })
}

/// The text layer of each page of the PDF `bytes`, in page order; an empty
/// string for a page without one (a scan). Refuses what [`inspect`] refuses.
/// A photo is one page without a text layer (and is not decoded here: that
/// is [`inspect`]'s part).
pub fn pdf_text(bytes: &[u8], limits: &Limits) -> Result<Vec<String>, Refusal> {
    let (kind, _) = admit(bytes, limits)?;
    if kind != Kind::Pdf {
        return Ok(vec![String::new()]);
    }
    guarded(|| {
        let pdf = open_pdf(bytes, limits)?;
        (1..=pdf.pages.len()).map(|number| page_text(&pdf, number)).collect()
    })
}

/// The checks every file passes first: not empty, not too large, a kind
/// that is accepted.
fn admit(bytes: &[u8], limits: &Limits) -> Result<(Kind, u64), Refusal> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size == 0 {
        return Err(Refusal::Empty);
    }
    if size > limits.max_bytes {
        return Err(Refusal::TooLarge {
            size,
            max: limits.max_bytes,
        });
    }
    match sniff(bytes) {
        Some(Sniffed::Accepted(kind)) => Ok((kind, size)),
        Some(Sniffed::Unsupported { what }) => Err(Refusal::UnsupportedType { what }),
        None => Err(Refusal::UnknownType),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs a parser's work, a panic in it refusing the file as unreadable.
///
/// `image`, `zune-jpeg` and `lopdf` return errors for bad input, but they
/// are large parsers of hostile bytes, and a bug in one may still panic: an
/// upload must then be refused, not end the request. The closure's state is
/// dropped with the panic, so nothing half-updated is seen again. Where the
/// profile aborts on panic (release), this cannot catch anything.
fn guarded<T>(work: impl FnOnce() -> Result<T, Refusal>) -> Result<T, Refusal> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(Refusal::Corrupt(PANICKED.to_owned())))
}

// ---------------------------------------------------------------- photos

/// The photo's width and height, once its header is within `limits` and
/// the whole of it decodes.
fn inspect_image(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<(u32, u32), Refusal> {
    // The header only: nothing the size of the image is allocated.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|error| image_refusal(&error, None))?;
    let too_many = Refusal::TooManyPixels {
        width,
        height,
        max_pixels: limits.max_pixels,
        max_side: limits.max_side,
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(Refusal::Corrupt("the image has no pixels".into()));
    }
    if width > limits.max_side || height > limits.max_side || pixels > limits.max_pixels {
        return Err(too_many);
    }

    if format == ImageFormat::Jpeg {
        return decode_jpeg_strictly(bytes, limits).map(|()| (width, height));
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // What the decoded image needs at most (16-bit RGBA), and room for the
    // decoder's own buffers: a decoder asking for more than the header
    // implies is refused.
    decoder_limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(16 * MIB));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits);
    reader.decode().map_err(|error| image_refusal(&error, Some(too_many)))?;
    Ok((width, height))
}

/// Decodes a JPEG, refusing what a lenient decoder would paper over: a scan
/// that ends early (a truncated upload), a damaged Huffman stream, markers
/// where none belong.
fn decode_jpeg_strictly(bytes: &[u8], limits: &Limits) -> Result<(), Refusal> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::options::DecoderOptions;

    let side = usize::try_from(limits.max_side).unwrap_or(usize::MAX);
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    match decoder.decode() {
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::debug!(%error, "an uploaded JPEG does not decode");
            Err(Refusal::Corrupt("the photo's data is incomplete or damaged".into()))
        }
    }
}

fn image_refusal(error: &ImageError, too_many: Option<Refusal>) -> Refusal {
    tracing::debug!(%error, "an uploaded photo does not decode");
    match (error, too_many) {
        (ImageError::Limits(_), Some(too_many)) => too_many,
        (ImageError::Unsupported(_), _) => Refusal::Corrupt("the photo is encoded in a way that cannot be read".into()),
        _ => Refusal::Corrupt("the photo's data is incomplete or damaged".into()),
    }
}

// ------------------------------------------------------------------- PDFs

/// A PDF within the limits, its pages' content streams inflated in place.
struct Pdf {
    document: Document,
    /// The pages, in order.
    pages: Vec<ObjectId>,
    /// What streams may still inflate to.
    stream_bytes_left: u64,
}

fn open_pdf(bytes: &[u8], limits: &Limits) -> Result<Pdf, Refusal> {
    let (mut document, inflated) = load_pdf(bytes, limits)?;

    // lopdf keeps `/Encrypt` in the trailer when no password opens the file,
    // and moves it to `encryption_state` when the empty one does (a file
    // with an owner password only): both are password-protected.
    if document.trailer.has(b"Encrypt") || document.encryption_state.is_some() {
        return Err(Refusal::Encrypted);
    }

    let objects = document.reference_table.entries.len().max(document.objects.len());
    if objects > limits.max_pdf_objects {
        return Err(Refusal::TooManyObjects {
            objects: objects as u64,
            max: limits.max_pdf_objects,
        });
    }

    // The page tree's own count first, then the pages found walking it.
    if let Some(declared) = declared_pages(&document)
        && declared > limits.max_pdf_pages as u64
    {
        return Err(Refusal::TooManyPages {
            pages: declared,
            max: limits.max_pdf_pages,
        });
    }
    let pages: Vec<ObjectId> = document
        .page_iter()
        .take(limits.max_pdf_pages.saturating_add(1))
        .collect();
    if pages.len() > limits.max_pdf_pages {
        return Err(Refusal::TooManyPages {
            pages: pages.len() as u64,
            max: limits.max_pdf_pages,
        });
    }
    if pages.is_empty() {
        return Err(Refusal::Corrupt("the PDF has no pages that can be read".into()));
    }

    let mut stream_bytes_left = limits.max_pdf_stream_bytes.saturating_sub(inflated);
    inflate_pages(&mut document, &pages, &mut stream_bytes_left)?;
    Ok(Pdf {
        document,
        pages,
        stream_bytes_left,
    })
}

/// The page tree's `/Count`, when it has a usable one.
fn declared_pages(document: &Document) -> Option<u64> {
    let root = document
        .catalog()
        .ok()?
        .get_deref(b"Pages", document)
        .ok()?
        .as_dict()
        .ok()?;
    let count = root.get_deref(b"Count", document).ok()?.as_i64().ok()?;
    u64::try_from(count).ok()
}

/// Inflates, in place and within the budget, what the text layer is read
/// from: each page's content streams and its fonts' `/ToUnicode` maps. Each
/// is inflated once, however many pages share it; lopdf then finds them
/// plain and copies them rather than inflating them again.
fn inflate_pages(document: &mut Document, pages: &[ObjectId], left: &mut u64) -> Result<(), Refusal> {
    let mut streams = Vec::new();
    for &page in pages {
        streams.extend(document.get_page_contents(page));
        if let Ok(fonts) = document.get_page_fonts(page) {
            streams.extend(
                fonts
                    .values()
                    .filter_map(|font| font.get(b"ToUnicode").ok()?.as_reference().ok()),
            );
        }
    }
    let mut seen = HashSet::new();
    for id in streams {
        if !seen.insert(id) {
            continue;
        }
        if let Ok(Object::Stream(stream)) = document.get_object_mut(id) {
            inflate(stream, left)?;
        }
    }
    Ok(())
}

/// Inflates `stream` in place, charging what it inflates to against `left`.
fn inflate(stream: &mut Stream, left: &mut u64) -> Result<(), Refusal> {
    if !stream.is_compressed() {
        return Ok(());
    }
    match stream.decompress_with_limit(usize::try_from(*left).unwrap_or(usize::MAX)) {
        Ok(()) => {
            *left = left.saturating_sub(stream.content.len() as u64);
            Ok(())
        }
        Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => Err(Refusal::DecompressionBomb),
        Err(error) => {
            tracing::debug!(%error, "a stream of an uploaded PDF does not inflate");
            Err(Refusal::Corrupt("a page of the PDF cannot be read".into()))
        }
    }
}

/// The text of page `number` (from 1), trimmed.
fn page_text(pdf: &Pdf, number: usize) -> Result<String, Refusal> {
    let number = u32::try_from(number).unwrap_or(u32::MAX);
    let limit = usize::try_from(pdf.stream_bytes_left).unwrap_or(usize::MAX);
    let mut text = String::new();
    for chunk in pdf.document.extract_text_chunks_with_limit(&[number], limit) {
        match chunk {
            Ok(chunk) => text.push_str(&chunk),
            Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(Refusal::DecompressionBomb);
            }
            // A font whose encoding cannot be read, an operator with the
            // wrong operands: the text around it still counts.
            Err(error) => tracing::debug!(%error, "part of an uploaded PDF's text layer does not read"),
        }
    }
    Ok(text.trim().to_owned())
}

/// Loads the PDF, refusing it when loading would inflate more than the
/// budget or keep more objects than the limit.
///
/// The cross-reference table is rebuilt by scanning the file for its
/// objects (lopdf's repair of a damaged file), not read as written: each
/// entry of a written table is parsed where it points, and a small file
/// whose thousands of entries all point at one large object would be
/// parsed thousands of times over (a 220 kB file took minutes and 11 GB).
/// Scanned, each object is found once, where it is.
///
/// lopdf inflates object streams (they hold other objects) and
/// cross-reference streams while it loads, each within
/// `max_decompressed_size`, a bound per stream; it is kept small, since a
/// cross-reference stream of n bytes may list n / 3 entries, all kept in
/// memory. The object filter (called on this thread for each object loaded,
/// the `rayon` feature being off) adds a bound for all streams together: it
/// inflates each object stream itself, in place and within what is left of
/// the budget, so lopdf finds it plain; it counts the objects; and once a
/// limit is passed it drops every object that follows, so memory stays
/// bounded while lopdf reads on to the end of the file.
fn load_pdf(bytes: &[u8], limits: &Limits) -> Result<(Document, u64), Refusal> {
    if shares_a_length(bytes) {
        return Err(Refusal::Corrupt("the PDF's structure cannot be read".into()));
    }
    let per_stream = limits.max_pdf_stream_bytes.min(LOAD_STREAM_BYTES);
    let mut options = LoadOptions::with_max_decompressed_size(usize::try_from(per_stream).unwrap_or(usize::MAX));
    options.force_reconstruct = true;
    options.filter = Some(budget_object);

    let scope = LoadScope::enter(limits);
    let loaded = Document::load_mem_with_options(bytes, options);
    let budget = scope.leave();
    if let Some(refusal) = budget.refusal {
        return Err(refusal);
    }
    match loaded {
        Ok(document) => Ok((document, budget.inflated)),
        Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => Err(Refusal::DecompressionBomb),
        Err(error) => {
            tracing::debug!(%error, "an uploaded PDF does not load");
            Err(Refusal::Corrupt("the PDF's structure cannot be read".into()))
        }
    }
}

/// Whether many stream dictionaries name the same object as their
/// `/Length`.
///
/// lopdf reads an indirect `/Length` anew for each stream that names it,
/// parsing the whole object each time: in a file whose thousands of streams
/// all name one large object, loading runs for hours (a 360 kB file did not
/// finish in minutes). A writer gives each stream a length object of its
/// own; an incremental update may write a stream again with the same one.
/// So a length object named by more than a few streams refuses the file
/// before lopdf reads it, and the parsing stays within a few times the
/// file's size. Stream dictionaries are never compressed or encrypted, so a
/// scan of the raw bytes sees them all.
fn shares_a_length(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"/Length";
    const MAX_STREAMS_PER_LENGTH: u32 = 4;
    let mut named = std::collections::HashMap::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(KEY.len()).position(|window| window == KEY) {
        rest = rest.get(at + KEY.len()..).unwrap_or_default();
        if let Some(number) = indirect_reference(rest) {
            let streams = named.entry(number).or_insert(0_u32);
            *streams += 1;
            if *streams > MAX_STREAMS_PER_LENGTH {
                return true;
            }
        }
    }
    false
}

/// The object number of the reference (`12 0 R`) that starts `bytes` after
/// white space.
fn indirect_reference(bytes: &[u8]) -> Option<u64> {
    // PDF white space (ISO 32000-1, 7.2.2).
    let white = |byte: &u8| matches!(byte, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    if !white(bytes.first()?) {
        return None;
    }
    let mut tokens = bytes.split(white).filter(|token| !token.is_empty());
    let number = std::str::from_utf8(tokens.next()?).ok()?.parse().ok()?;
    std::str::from_utf8(tokens.next()?).ok()?.parse::<u16>().ok()?;
    let reference = tokens.next()?;
    let after = reference.get(1).copied();
    (reference.first() == Some(&b'R') && after.is_none_or(|byte| b"/<>[]()%".contains(&byte))).then_some(number)
}

/// What one stream that lopdf reads while loading may inflate to: a
/// cross-reference stream (a table of 10,000 objects takes some 70 kB), an
/// object stream (lopdf checks this bound again on the object streams the
/// filter has inflated; writers put a hundred objects or so in each).
const LOAD_STREAM_BYTES: u64 = 4 * MIB;

/// What one PDF's load has used so far.
#[derive(Default)]
struct LoadBudget {
    objects: u64,
    max_objects: u64,
    inflated: u64,
    max_inflated: u64,
    refusal: Option<Refusal>,
}

thread_local! {
    /// The budget of the load running on this thread: lopdf's object filter
    /// is a plain `fn`, with no state of its own.
    static LOADING: RefCell<Option<LoadBudget>> = const { RefCell::new(None) };
}

/// Sets this thread's load budget, and takes it back when left or dropped
/// (a panic in lopdf included).
struct LoadScope;

impl LoadScope {
    fn enter(limits: &Limits) -> LoadScope {
        let budget = LoadBudget {
            objects: 0,
            max_objects: limits.max_pdf_objects as u64,
            inflated: 0,
            max_inflated: limits.max_pdf_stream_bytes,
            refusal: None,
        };
        LOADING.with_borrow_mut(|loading| *loading = Some(budget));
        LoadScope
    }

    fn leave(self) -> LoadBudget {
        LOADING.with_borrow_mut(Option::take).unwrap_or_default()
    }
}

impl Drop for LoadScope {
    fn drop(&mut self) {
        LOADING.with_borrow_mut(|loading| *loading = None);
    }
}

/// lopdf's object filter: keeps an object (a copy, which is what lopdf
/// keeps for the objects of object streams) while the load is within its
/// budget.
fn budget_object(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    LOADING.with_borrow_mut(|loading| {
        // No budget: called on another thread than the load's (were the
        // `rayon` feature on), where nothing can be bounded. Fail closed.
        let budget = loading.as_mut()?;
        if budget.refusal.is_some() {
            return None;
        }
        budget.objects += 1;
        let outcome = match object {
            Object::Stream(stream) if stream.dict.has_type(b"ObjStm") => budget.inflate_object_stream(stream),
            _ => Ok(()),
        };
        let outcome = outcome.and_then(|()| budget.check_objects());
        match outcome {
            Ok(()) => Some((id, object.clone())),
            Err(refusal) => {
                budget.refusal = Some(refusal);
                None
            }
        }
    })
}

impl LoadBudget {
    fn check_objects(&self) -> Result<(), Refusal> {
        if self.objects > self.max_objects {
            let max = usize::try_from(self.max_objects).unwrap_or(usize::MAX);
            return Err(Refusal::TooManyObjects {
                objects: self.objects,
                max,
            });
        }
        Ok(())
    }

    /// Inflates an object stream within the budget, and refuses an index
    /// whose offsets are not increasing (ISO 32000-1, 7.5.7), since with an
    /// offset repeated lopdf would parse the same large object once for
    /// each, in time and memory far beyond the stream's size; or one that
    /// lists more objects than are left.
    fn inflate_object_stream(&mut self, stream: &mut Stream) -> Result<(), Refusal> {
        let left = self.max_inflated.saturating_sub(self.inflated);
        match stream.decompress_with_limit(usize::try_from(left).unwrap_or(usize::MAX)) {
            Ok(()) => self.inflated = self.inflated.saturating_add(stream.content.len() as u64),
            Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                return Err(Refusal::DecompressionBomb);
            }
            // Not inflatable: lopdf fails on it in turn and, lenient, skips it.
            Err(_) => return Ok(()),
        }
        let Some(members) = object_stream_members(stream) else {
            return Ok(());
        };
        if members
            .windows(2)
            .any(|pair| matches!(pair, [before, after] if after <= before))
        {
            return Err(Refusal::Corrupt("an object stream's index is out of order".into()));
        }
        // Refused now rather than as lopdf hands the members over, one by one.
        let objects = self.objects.saturating_add(members.len() as u64);
        if objects > self.max_objects {
            return Err(Refusal::TooManyObjects {
                objects,
                max: usize::try_from(self.max_objects).unwrap_or(usize::MAX),
            });
        }
        Ok(())
    }
}

/// The offsets of the objects an object stream's index lists, read as
/// lopdf reads them (`ObjectStream::new_with_limit`): the numbers before
/// `/First`, comments left out, in pairs of object number and offset, a
/// pair with anything but two numbers skipped. `None` when lopdf cannot
/// read the index either (and skips the stream).
fn object_stream_members(stream: &Stream) -> Option<Vec<u32>> {
    let first = usize::try_from(stream.dict.get(b"First").ok()?.as_i64().ok()?).ok()?;
    let header = std::str::from_utf8(stream.content.get(..first)?).ok()?;
    let numbers: Vec<Option<u32>> = header
        .split(['\r', '\n'])
        .flat_map(|line| line.split('%').next().unwrap_or_default().split_whitespace())
        .map(|number| number.parse().ok())
        .collect();
    let offsets = numbers.chunks_exact(2).filter_map(|pair| match *pair {
        [Some(_), Some(offset)] => Some(offset),
        _ => None,
    });
    Some(offsets.collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::LazyLock;
    use std::time::{Duration, Instant};

    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use image::{DynamicImage, RgbImage};
    use lopdf::content::{Content, Operation};
    use lopdf::dictionary;
    use proptest::prelude::*;

    use super::*;

    // ------------------------------------------------------------ fixtures

    /// A photo-like image: noise, so that JPEG's scan is most of the file.
    fn noise(width: u32, height: u32) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |_, _| {
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            };
            image::Rgb([next(), next(), next()])
        }))
    }

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    static JPEG: LazyLock<Vec<u8>> = LazyLock::new(|| encode(&noise(160, 120), ImageFormat::Jpeg));
    static PNG: LazyLock<Vec<u8>> = LazyLock::new(|| encode(&noise(64, 48), ImageFormat::Png));
    static WEBP: LazyLock<Vec<u8>> = LazyLock::new(|| encode(&noise(40, 30), ImageFormat::WebP));
    static PDF: LazyLock<Vec<u8>> = LazyLock::new(|| text_pdf(&["Jane Doe", "12 High Street", "London"]));

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn save(document: &mut Document) -> Vec<u8> {
        let mut out = Vec::new();
        document.save_to(&mut out).unwrap();
        out
    }

    /// A document whose pages are the given content streams (shared when
    /// the same id is given twice), with Helvetica as /F1.
    fn pdf_with_pages(document: &mut Document, contents: &[ObjectId]) {
        let pages_id = document.new_object_id();
        let font = document.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        });
        let resources = document.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
        let kids: Vec<Object> = contents
            .iter()
            .map(|&content| {
                document
                    .add_object(dictionary! {
                        "Type" => "Page",
                        "Parent" => pages_id,
                        "Contents" => content,
                        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                    })
                    .into()
            })
            .collect();
        let count = kids.len() as i64;
        document.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => kids, "Count" => count, "Resources" => resources,
            }),
        );
        let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        document.trailer.set("Root", catalog);
    }

    fn text_content(text: &str) -> Vec<u8> {
        Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 24.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ],
        }
        .encode()
        .unwrap()
    }

    /// One page per text, the content streams compressed.
    fn text_pdf(texts: &[&str]) -> Vec<u8> {
        let mut document = Document::with_version("1.5");
        let contents: Vec<ObjectId> = texts
            .iter()
            .map(|text| document.add_object(Stream::new(dictionary! {}, text_content(text))))
            .collect();
        pdf_with_pages(&mut document, &contents);
        document.compress();
        save(&mut document)
    }

    /// A 100000 × 100000 RGB PNG header (valid CRC), and no pixel data.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib(&[0; 64]));
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn refused(bytes: &[u8]) -> Refusal {
        inspect(bytes, &Limits::DEFAULT).unwrap_err()
    }

    // --------------------------------------------------------------- accepted

    #[test]
    fn a_jpeg_png_and_webp_are_accepted_with_their_size() {
        for (bytes, kind, width, height) in [
            (&*JPEG, Kind::Jpeg, 160, 120),
            (&*PNG, Kind::Png, 64, 48),
            (&*WEBP, Kind::Webp, 40, 30),
        ] {
            let inspection = inspect(bytes, &Limits::DEFAULT).unwrap();
            assert_eq!(
                inspection,
                Inspection {
                    kind,
                    size: bytes.len() as u64,
                    sha256: sha256_hex(bytes),
                    pages: 1,
                    width: Some(width),
                    height: Some(height),
                }
            );
        }
    }

    #[test]
    fn a_one_page_pdf_is_accepted_and_its_text_read() {
        let pdf = text_pdf(&["Proof of address: 12 High Street"]);
        let inspection = inspect(&pdf, &Limits::DEFAULT).unwrap();
        assert_eq!(
            (inspection.kind, inspection.pages, inspection.width),
            (Kind::Pdf, 1, None)
        );
        assert_eq!(
            pdf_text(&pdf, &Limits::DEFAULT).unwrap(),
            ["Proof of address: 12 High Street"]
        );
    }

    #[test]
    fn a_three_page_pdf_gives_each_page_its_text() {
        assert_eq!(inspect(&PDF, &Limits::DEFAULT).unwrap().pages, 3);
        assert_eq!(
            pdf_text(&PDF, &Limits::DEFAULT).unwrap(),
            ["Jane Doe", "12 High Street", "London"]
        );
    }

    #[test]
    fn a_page_without_a_text_layer_reads_as_an_empty_string() {
        let mut document = Document::with_version("1.5");
        let text = document.add_object(Stream::new(dictionary! {}, text_content("Statement")));
        let drawing = document.add_object(Stream::new(dictionary! {}, b"0 0 m 100 100 l S".to_vec()));
        pdf_with_pages(&mut document, &[text, drawing]);
        assert_eq!(
            pdf_text(&save(&mut document), &Limits::DEFAULT).unwrap(),
            ["Statement", ""]
        );
    }

    #[test]
    fn the_sha256_is_that_of_the_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            inspect(&PNG, &Limits::DEFAULT).unwrap().sha256,
            hex::encode(Sha256::digest(&*PNG))
        );
    }

    #[test]
    fn kinds_are_named_by_their_media_type() {
        for kind in [Kind::Jpeg, Kind::Png, Kind::Webp, Kind::Pdf] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.mime());
            assert_eq!(serde_json::from_value::<Kind>(kind.mime().into()).unwrap(), kind);
        }
    }

    #[test]
    fn the_first_64_bytes_are_enough_to_sniff() {
        assert_eq!(sniff(&PNG[..64]), Some(Sniffed::Accepted(Kind::Png)));
        assert_eq!(sniff(&JPEG[..64]), Some(Sniffed::Accepted(Kind::Jpeg)));
        assert_eq!(sniff(&WEBP[..64]), Some(Sniffed::Accepted(Kind::Webp)));
        assert_eq!(sniff(&PDF[..64]), Some(Sniffed::Accepted(Kind::Pdf)));
        assert_eq!(sniff(b"just some text"), None);
    }

    // ---------------------------------------------------------------- refused

    #[test]
    fn an_empty_file_is_refused() {
        assert_eq!(refused(b""), Refusal::Empty);
        assert_eq!(pdf_text(b"", &Limits::DEFAULT), Err(Refusal::Empty));
    }

    #[test]
    fn a_text_file_named_jpg_is_of_unknown_type() {
        assert_eq!(
            refused(b"Dear Sir or Madam,\nplease find my passport attached.\n"),
            Refusal::UnknownType
        );
    }

    #[test]
    fn gif_and_heic_are_refused_by_name() {
        let gif =
            b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
        assert_eq!(refused(gif), Refusal::UnsupportedType { what: "GIF" });

        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x08mdat";
        let refusal = refused(heic);
        assert_eq!(refusal, Refusal::UnsupportedType { what: HEIC });
        assert_eq!(
            refusal.to_string(),
            "HEIC photos are not accepted yet: send a JPEG (most phones convert when you choose the file)"
        );
        assert_eq!(sniff(&heic[..]), Some(Sniffed::Unsupported { what: HEIC }));
    }

    #[test]
    fn a_program_and_an_archive_are_refused_by_name() {
        let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
        elf.resize(64, 0);
        assert_eq!(refused(&elf), Refusal::UnsupportedType { what: "program" });
        let zip = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        assert_eq!(refused(zip), Refusal::UnsupportedType { what: "archive" });
    }

    #[test]
    fn a_truncated_jpeg_is_corrupt() {
        let half = &JPEG[..JPEG.len() / 2];
        assert!(matches!(refused(half), Refusal::Corrupt(_)), "{:?}", refused(half));
    }

    #[test]
    fn truncated_png_and_webp_are_corrupt() {
        for bytes in [&*PNG, &*WEBP] {
            let half = &bytes[..bytes.len() / 2];
            assert!(matches!(refused(half), Refusal::Corrupt(_)), "{:?}", refused(half));
        }
    }

    #[test]
    fn a_png_declaring_a_huge_image_is_refused_from_its_header() {
        let limits = Limits::DEFAULT;
        let huge = png_header(100_000, 100_000);
        let started = Instant::now();
        assert_eq!(
            refused(&huge),
            Refusal::TooManyPixels {
                width: 100_000,
                height: 100_000,
                max_pixels: 25_000_000,
                max_side: 12_000
            }
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        // Within the side limit, over the pixel limit.
        assert_eq!(
            refused(&png_header(10_000, 10_000)),
            Refusal::TooManyPixels {
                width: 10_000,
                height: 10_000,
                max_pixels: limits.max_pixels,
                max_side: 12_000
            }
        );
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_anything_else() {
        let limits = Limits {
            max_bytes: 500,
            ..Limits::DEFAULT
        };
        let refusal = inspect(&PDF, &limits).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::TooLarge {
                size: PDF.len() as u64,
                max: 500
            }
        );
        let big = vec![0; 15_938_355];
        assert_eq!(
            refused(&big).to_string(),
            "the file is 15.2 MB, more than the 10 MB accepted: send a smaller photo or PDF"
        );
    }

    #[test]
    fn a_pdf_of_5000_pages_is_refused() {
        let mut document = Document::with_version("1.5");
        let content = document.add_object(Stream::new(dictionary! {}, text_content("page")));
        pdf_with_pages(&mut document, &vec![content; 5000]);
        let pdf = save(&mut document);
        assert_eq!(refused(&pdf), Refusal::TooManyPages { pages: 5000, max: 20 });
        assert_eq!(
            pdf_text(&pdf, &Limits::DEFAULT),
            Err(Refusal::TooManyPages { pages: 5000, max: 20 })
        );
    }

    #[test]
    fn a_page_tree_that_lies_about_its_count_is_refused_by_its_pages() {
        let mut document = Document::with_version("1.5");
        let content = document.add_object(Stream::new(dictionary! {}, text_content("page")));
        pdf_with_pages(&mut document, &vec![content; 30]);
        let root = document
            .catalog()
            .unwrap()
            .get(b"Pages")
            .unwrap()
            .as_reference()
            .unwrap();
        document.get_dictionary_mut(root).unwrap().set("Count", 1);
        assert_eq!(
            refused(&save(&mut document)),
            Refusal::TooManyPages { pages: 21, max: 20 }
        );
    }

    #[test]
    fn a_pdf_of_too_many_objects_is_refused() {
        let limits = Limits {
            max_pdf_objects: 5,
            ..Limits::DEFAULT
        };
        assert!(matches!(
            inspect(&PDF, &limits),
            Err(Refusal::TooManyObjects { max: 5, .. })
        ));
    }

    /// 10 MB of zeros in a 10 kB content stream, against a budget of 1 MiB.
    #[test]
    fn a_content_stream_that_inflates_past_the_budget_is_a_bomb() {
        let mut document = Document::with_version("1.5");
        let bomb = document.add_object(Stream::new(
            dictionary! { "Filter" => "FlateDecode" },
            zlib(&[0; 10_000_000]),
        ));
        pdf_with_pages(&mut document, &[bomb]);
        let pdf = save(&mut document);
        assert!(pdf.len() < 50_000);
        let limits = Limits {
            max_pdf_stream_bytes: MIB,
            ..Limits::DEFAULT
        };

        let started = Instant::now();
        assert_eq!(inspect(&pdf, &limits), Err(Refusal::DecompressionBomb));
        assert_eq!(pdf_text(&pdf, &limits), Err(Refusal::DecompressionBomb));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // Under the default budget (64 MiB), it is inflated and accepted.
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(1)
        );
    }

    /// Each page's streams within the budget, all of them together over it.
    #[test]
    fn the_budget_is_for_all_streams_together() {
        let mut document = Document::with_version("1.5");
        let pages: Vec<ObjectId> = (0..4)
            .map(|_| {
                document.add_object(Stream::new(
                    dictionary! { "Filter" => "FlateDecode" },
                    zlib(&[b' '; 400_000]),
                ))
            })
            .collect();
        pdf_with_pages(&mut document, &pages);
        let pdf = save(&mut document);
        let limits = Limits {
            max_pdf_stream_bytes: MIB,
            ..Limits::DEFAULT
        };
        assert_eq!(inspect(&pdf, &limits), Err(Refusal::DecompressionBomb));
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(4)
        );
    }

    const BLANK_PAGE: &[u8] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>";

    /// A one-page PDF written by hand, `page` being object 3 and `extra`
    /// objects 4 and on (lopdf's writer leaves object streams out, to write
    /// its own), with `repeats` more entries in its cross-reference table,
    /// all pointing at object 4.
    fn hand_written_pdf(page: &[u8], extra: &[&[u8]], repeats: usize) -> Vec<u8> {
        let mut objects: Vec<&[u8]> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            page,
        ];
        objects.extend_from_slice(extra);
        let mut out = b"%PDF-1.5\n".to_vec();
        let mut offsets = Vec::new();
        for (index, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        offsets.extend(std::iter::repeat_n(offsets[3], repeats));
        let xref = out.len();
        let size = offsets.len() + 1;
        out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
        for offset in offsets {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
        );
        out
    }

    fn pdf_with_object(extra: &[u8]) -> Vec<u8> {
        hand_written_pdf(BLANK_PAGE, &[extra], 0)
    }

    /// Thousands of cross-reference entries pointing at one large object:
    /// read as written, lopdf parses it once for each.
    #[test]
    fn many_entries_pointing_at_one_object_are_read_once() {
        let array = [&b"["[..], &b"0 ".repeat(10_000), b"]"].concat();
        let pdf = hand_written_pdf(BLANK_PAGE, &[&array], 2000);
        let started = Instant::now();
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(1)
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn streams_sharing_one_length_object_are_refused() {
        let array = [&b"["[..], &b"0 ".repeat(10_000), b"]"].concat();
        let stream: &[u8] = b"<< /Length 4 0 R >>\nstream\nhello\nendstream";
        let mut objects = vec![&array[..]];
        objects.extend(std::iter::repeat_n(stream, 2000));
        let started = Instant::now();
        assert_eq!(
            refused(&hand_written_pdf(BLANK_PAGE, &objects, 0)),
            Refusal::Corrupt("the PDF's structure cannot be read".into())
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn indirect_lengths_of_their_own_are_read() {
        let content = text_content("Account holder: Jane Doe");
        let head = b"<< /Length 5 0 R >>\nstream\n";
        let stream = [&head[..], &content, b"\nendstream"].concat();
        let length = content.len().to_string();
        let font: &[u8] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
        let page = b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 6 0 R >> >> >>";
        let pdf = hand_written_pdf(page, &[&stream, length.as_bytes(), font], 0);
        assert!(!shares_a_length(&pdf));
        assert_eq!(indirect_reference(b" 5 0 R>>"), Some(5));
        assert_eq!(indirect_reference(b"1 5 0 R"), None);
        assert_eq!(
            pdf_text(&pdf, &Limits::DEFAULT),
            Ok(vec!["Account holder: Jane Doe".to_owned()])
        );
    }

    fn object_stream(dictionary: &str, content: &[u8]) -> Vec<u8> {
        let head = format!("<< /Type /ObjStm {dictionary} /Length {} >>\nstream\n", content.len());
        [head.as_bytes(), content, b"\nendstream"].concat()
    }

    #[test]
    fn a_hand_written_pdf_with_an_object_stream_is_accepted() {
        let pdf = pdf_with_object(&object_stream("/N 2 /First 12", b"900 0 901 4 [1] (text)"));
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(1)
        );
        assert_eq!(pdf_text(&pdf, &Limits::DEFAULT), Ok(vec![String::new()]));
    }

    /// An object stream is inflated while the file loads, before any page.
    #[test]
    fn an_object_stream_that_inflates_past_the_budget_is_a_bomb() {
        let mut members = b"900 0 ".to_vec();
        members.resize(3_000_000, b' ');
        let pdf = pdf_with_object(&object_stream("/N 1 /First 6 /Filter /FlateDecode", &zlib(&members)));
        let limits = Limits {
            max_pdf_stream_bytes: MIB,
            ..Limits::DEFAULT
        };
        assert_eq!(inspect(&pdf, &limits), Err(Refusal::DecompressionBomb));
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(1)
        );
    }

    #[test]
    fn an_object_stream_repeating_an_offset_is_corrupt() {
        let pdf = pdf_with_object(&object_stream("/N 2 /First 12", b"900 0 901 0 [1 2 3]"));
        assert_eq!(
            refused(&pdf),
            Refusal::Corrupt("an object stream's index is out of order".into())
        );
        // Read as lopdf reads it, comments left out.
        let pdf = pdf_with_object(&object_stream("/N 2 /First 16", b"900 0 % c\n901 0 [1 2 3]"));
        assert_eq!(
            refused(&pdf),
            Refusal::Corrupt("an object stream's index is out of order".into())
        );
    }

    #[test]
    fn an_object_stream_listing_too_many_objects_is_refused() {
        let index: String = (0..20)
            .map(|number| format!("{} {} ", 900 + number, number * 2))
            .collect();
        let content = format!("{index}{}", "1 ".repeat(20));
        let dictionary = format!("/N 20 /First {}", index.len());
        let pdf = pdf_with_object(&object_stream(&dictionary, content.as_bytes()));
        let limits = Limits {
            max_pdf_objects: 10,
            ..Limits::DEFAULT
        };
        assert_eq!(
            inspect(&pdf, &limits),
            Err(Refusal::TooManyObjects { objects: 24, max: 10 })
        );
        assert_eq!(
            inspect(&pdf, &Limits::DEFAULT).map(|inspection| inspection.pages),
            Ok(1)
        );
    }

    #[test]
    fn a_password_protected_pdf_is_refused() {
        let mut document = lopdf::Document::load_mem(&PDF).unwrap();
        let encrypt = document.add_object(dictionary! {
            "Filter" => "Standard",
            "V" => 1,
            "R" => 2,
            "O" => Object::string_literal([0x4f_u8; 32].to_vec()),
            "U" => Object::string_literal([0x55_u8; 32].to_vec()),
            "P" => -4,
        });
        document.trailer.set("Encrypt", encrypt);
        let id = Object::string_literal(b"0123456789abcdef".to_vec());
        document.trailer.set("ID", vec![id.clone(), id]);
        let pdf = save(&mut document);
        assert_eq!(refused(&pdf), Refusal::Encrypted);
        assert_eq!(pdf_text(&pdf, &Limits::DEFAULT), Err(Refusal::Encrypted));
    }

    #[test]
    fn a_photo_is_one_page_without_a_text_layer() {
        assert_eq!(pdf_text(&PNG, &Limits::DEFAULT), Ok(vec![String::new()]));
    }

    #[test]
    fn refusals_have_stable_codes() {
        assert_eq!(Refusal::DecompressionBomb.code(), "decompression_bomb");
        assert_eq!(Refusal::UnsupportedType { what: "GIF" }.code(), "unsupported_type");
        assert_eq!(
            Refusal::UnsupportedType { what: "GIF" }.to_string(),
            "GIF files are not accepted: send a photo (JPEG, PNG or WebP) or a PDF"
        );
    }

    // ---------------------------------------------------------- hostile bytes

    /// Neither inspect nor pdf_text panics (the guard would turn a panic
    /// into `Corrupt(PANICKED)`, which is checked for).
    fn never_panics(bytes: &[u8]) -> Result<(), TestCaseError> {
        for outcome in [
            inspect(bytes, &Limits::DEFAULT).map(drop),
            pdf_text(bytes, &Limits::DEFAULT).map(drop),
        ] {
            prop_assert_ne!(outcome, Err(Refusal::Corrupt(PANICKED.to_owned())));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn random_bytes_never_panic(
            prefix in prop::sample::select(vec![
                &b""[..], b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\0\x10\0\0WEBPVP8L", b"%PDF-1.7\n",
            ]),
            tail in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            never_panics(&[prefix, &tail[..]].concat())?;
        }

        #[test]
        fn damaged_files_never_panic(
            which in 0..4_usize,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = [&*JPEG, &*PNG, &*WEBP, &*PDF][which].clone();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            never_panics(&bytes)?;
            bytes.truncate(cut.index(bytes.len()).max(1));
            never_panics(&bytes)?;
        }
    }
}
