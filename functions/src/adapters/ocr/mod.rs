//! The OCR port ([`Ocr`](korala_domain::ports::Ocr)) over a real engine:
//! [`Tesseract`], run as a subprocess. An engine is found at start
//! ([`Tesseract::detect`]), so a service without one can say so then
//! rather than at the first document.

pub mod tesseract;

pub use tesseract::Tesseract;
