//! Synthetic specimen documents for the OCR tests, rendered as PNG by
//! ImageMagick: a passport's data page (TD3), the back of an identity card
//! (TD1) and a utility bill. Their machine-readable zones are set in OCR-B
//! (Debian's `fonts-ocr-b`), the typeface ICAO Doc 9303 prescribes, with
//! check digits computed by [`mrz::check_digit`], or printed wrong on
//! purpose ([`PassportSpec::wrong_check`]). Everything else is in DejaVu
//! Sans, as a document's printed labels and values would be.
//!
//! Rendering needs ImageMagick (`convert`, or `magick` from version 7) and
//! the OCR-B font: [`renderer_here`] says whether they are here, under the
//! policy of [`crate::engines`] (a test without them skips, or fails under
//! `CI=true`). A render that fails panics with ImageMagick's message: this
//! is test support.
//!
//! ```no_run
//! use acceptance::specimens::{self, PassportSpec};
//!
//! let expired = PassportSpec {
//!     expiry_date: chrono::NaiveDate::from_ymd_opt(2019, 1, 31).unwrap(),
//!     ..PassportSpec::example()
//! };
//! let png: Vec<u8> = specimens::passport(&expired);
//! let [first, second] = expired.mrz(); // what the zone says
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use chrono::NaiveDate;
use korala_domain::mrz::{self, Field, Sex};

// ---------------------------------------------------------------- documents

/// A passport's data page: the holder and the document, as printed and as
/// the zone encodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassportSpec {
    /// The issuing state's three-letter code (ICAO's `UTO`, Utopia, for
    /// specimens).
    pub issuing_state: String,
    /// In capitals; spaces and hyphens become fillers in the zone.
    pub surname: String,
    pub given_names: String,
    /// Up to nine letters and digits.
    pub number: String,
    pub nationality: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub expiry_date: NaiveDate,
    /// Up to fourteen letters and digits; empty for none.
    pub personal_number: String,
    /// A check digit to print wrong (one more, modulo 10, than the right
    /// one): [`Field::DocumentNumber`], [`Field::BirthDate`],
    /// [`Field::ExpiryDate`], [`Field::OptionalData`] (the personal
    /// number's) or [`Field::Composite`]. The composite check digit is
    /// computed over the digits as printed.
    pub wrong_check: Option<Field>,
}

impl PassportSpec {
    /// A valid passport of Utopia, expiring in 2034.
    pub fn example() -> PassportSpec {
        PassportSpec {
            issuing_state: "UTO".into(),
            surname: "ERIKSSON".into(),
            given_names: "ANNA MARIA".into(),
            number: "L898902C3".into(),
            nationality: "UTO".into(),
            birth_date: date(1974, 8, 12),
            sex: Sex::Female,
            expiry_date: date(2034, 4, 15),
            personal_number: "ZE184226B".into(),
            wrong_check: None,
        }
    }

    /// The zone's two lines of 44 characters.
    pub fn mrz(&self) -> [String; 2] {
        let wrong = |field| self.wrong_check == Some(field);
        let name = fit(
            &format!("{}<<{}", zone_text(&self.surname), zone_text(&self.given_names)),
            39,
        );
        let first = format!("P<{}{name}", fit(&self.issuing_state, 3));
        let number = fit(&self.number, 9);
        let personal = fit(&self.personal_number, 14);
        let birth = self.birth_date.format("%y%m%d").to_string();
        let expiry = self.expiry_date.format("%y%m%d").to_string();
        let number = format!("{number}{}", check(&number, wrong(Field::DocumentNumber)));
        let birth = format!("{birth}{}", check(&birth, wrong(Field::BirthDate)));
        let expiry = format!("{expiry}{}", check(&expiry, wrong(Field::ExpiryDate)));
        let personal = format!("{personal}{}", check(&personal, wrong(Field::OptionalData)));
        let composite = check(&format!("{number}{birth}{expiry}{personal}"), wrong(Field::Composite));
        let second = format!(
            "{number}{}{birth}{}{expiry}{personal}{composite}",
            fit(&self.nationality, 3),
            sex_code(self.sex)
        );
        [first, second]
    }
}

/// An identity card's back: its zone of three lines of 30 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCardSpec {
    pub issuing_state: String,
    pub surname: String,
    pub given_names: String,
    /// Up to nine letters and digits.
    pub number: String,
    pub nationality: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub expiry_date: NaiveDate,
    /// The first line's optional data: up to fifteen characters.
    pub optional_data: String,
    /// The place of birth and address printed above the zone.
    pub place_of_birth: String,
    pub address: String,
}

impl IdCardSpec {
    /// A valid identity card of Utopia, expiring in 2031.
    pub fn example() -> IdCardSpec {
        IdCardSpec {
            issuing_state: "UTO".into(),
            surname: "DE VRIES".into(),
            given_names: "JAN PIETER".into(),
            number: "D23145890".into(),
            nationality: "UTO".into(),
            birth_date: date(1988, 11, 3),
            sex: Sex::Male,
            expiry_date: date(2031, 6, 30),
            optional_data: String::new(),
            place_of_birth: "ZEEDORP".into(),
            address: "14 HAVENSTRAAT, ZEEDORP".into(),
        }
    }

    /// The zone's three lines of 30 characters.
    pub fn mrz(&self) -> [String; 3] {
        let number = fit(&self.number, 9);
        let number = format!("{number}{}", check(&number, false));
        let optional = fit(&self.optional_data, 15);
        let first = format!("I<{}{number}{optional}", fit(&self.issuing_state, 3));
        let birth = self.birth_date.format("%y%m%d").to_string();
        let expiry = self.expiry_date.format("%y%m%d").to_string();
        let birth = format!("{birth}{}", check(&birth, false));
        let expiry = format!("{expiry}{}", check(&expiry, false));
        let optional_second = fit("", 11);
        let composite = check(&format!("{number}{optional}{birth}{expiry}{optional_second}"), false);
        let second = format!(
            "{birth}{}{expiry}{}{optional_second}{composite}",
            sex_code(self.sex),
            fit(&self.nationality, 3)
        );
        let third = fit(
            &format!("{}<<{}", zone_text(&self.surname), zone_text(&self.given_names)),
            30,
        );
        [first, second, third]
    }
}

/// A proof of address: a utility bill addressed to the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtilityBillSpec {
    pub company: String,
    /// The holder as the bill names them ("Ms Anna Eriksson").
    pub name: String,
    /// The street lines of the address, the town last.
    pub address: Vec<String>,
    pub postcode: String,
    pub issue_date: NaiveDate,
    /// The total due, in pence.
    pub amount_pence: u32,
    pub account_number: String,
}

impl UtilityBillSpec {
    /// An electricity bill for Anna Eriksson in London.
    pub fn example() -> UtilityBillSpec {
        UtilityBillSpec {
            company: "Northwind Energy".into(),
            name: "Ms Anna Eriksson".into(),
            address: vec!["Flat 4, 27 Larkspur Road".into(), "London".into()],
            postcode: "SW9 7PQ".into(),
            issue_date: date(2026, 3, 2),
            amount_pence: 8_240,
            account_number: "7731 0042 5518".into(),
        }
    }

    /// The issue date as printed ("2 March 2026").
    pub fn printed_date(&self) -> String {
        self.issue_date.format("%-d %B %Y").to_string()
    }

    /// The total as printed ("£82.40").
    pub fn printed_amount(&self) -> String {
        pounds(self.amount_pence)
    }
}

// ---------------------------------------------------------------- rendering

/// The zone's size on the passport page: a pitch of 22 px (the standard's
/// 2.54 mm on a page photographed at 8.6 px/mm). The size was chosen by
/// reading ten holders' pages (each also with a wrong check digit) through
/// the adapter: at 30 points Tesseract's Latin model read 18 of the 20
/// exactly (the misses: `PETRA` read `PETTRA`); at 32, 16; at 34, 14; at 36,
/// 6 (`1`s in the filler run). How Tesseract reads `<` changes with every
/// few pixels, so a change here wants that measurement again.
const PASSPORT_MRZ_POINTS: u32 = 30;

/// The card's zone, larger than the page's as a photo of a card fills the
/// frame (a pitch of 29 px): at 40 points nine of the ten holders' cards
/// read exactly (`DE<VRIES<<JAN` read `DE<SVRIES<<JAN`); at 42 and 44,
/// three of four (`DE<VRIES<<JAN<PIETER` too).
const CARD_MRZ_POINTS: u32 = 40;

/// A TD3 passport data page (125 × 88 mm at 10 px/mm): the state's name,
/// the photo's place, labelled fields and the zone.
pub fn passport(spec: &PassportSpec) -> Vec<u8> {
    let fonts = renderer().fonts();
    let mut page = Canvas::new(1250, 880, "#f3efe2");
    page.rect((0, 0), (1250, 92), "#2f4858", None)
        .text(&fonts.bold, 34, "white", (40, 60), "UTOPIA")
        .text(&fonts.regular, 24, "white", (720, 58), "PASSPORT / PASSEPORT");
    photo(&mut page, (40, 130), (330, 520));
    let date = |d: NaiveDate| d.format("%d %b %Y").to_string().to_uppercase();
    let fields = [
        (370, 135, "Type / Type", "P".to_owned()),
        (520, 135, "Code / Code", spec.issuing_state.clone()),
        (800, 135, "Passport No. / No. du passeport", spec.number.clone()),
        (370, 215, "Surname / Nom", spec.surname.clone()),
        (370, 295, "Given names / Prénoms", spec.given_names.clone()),
        (370, 375, "Nationality / Nationalité", spec.nationality.clone()),
        (800, 375, "Sex / Sexe", sex_code(spec.sex).replace('<', "X")),
        (370, 455, "Date of birth / Date de naissance", date(spec.birth_date)),
        (800, 455, "Authority / Autorité", "UTOPIA".to_owned()),
        (370, 535, "Date of expiry / Date d'expiration", date(spec.expiry_date)),
        (800, 535, "Personal No. / No. personnel", spec.personal_number.clone()),
    ];
    for (x, y, label, value) in &fields {
        page.text(&fonts.regular, 16, "#5a5a5a", (*x, *y), label).text(
            &fonts.regular,
            27,
            "#111111",
            (*x, y + 34),
            value,
        );
    }
    page.line((40, 600), (330, 600), "#5a5a5a").text(
        &fonts.regular,
        14,
        "#5a5a5a",
        (40, 622),
        "Holder's signature / Signature du titulaire",
    );
    // The zone on a clear band, as Doc 9303 requires of the area.
    page.rect((0, 700), (1250, 880), "white", None);
    let ocrb = &renderer().ocrb;
    for (i, line) in spec.mrz().iter().enumerate() {
        page.text(ocrb, PASSPORT_MRZ_POINTS, "black", (56, 780 + 51 * i as u32), line);
    }
    page.png()
}

/// A TD1 identity card's back (85.6 × 54 mm at 12 px/mm): the place of birth
/// and address, and the three-line zone.
pub fn id_card(spec: &IdCardSpec) -> Vec<u8> {
    let fonts = renderer().fonts();
    let mut card = Canvas::new(1027, 648, "#e9eef2");
    card.rect((0, 0), (1027, 70), "#35536b", None)
        .text(&fonts.bold, 28, "white", (30, 48), "UTOPIA  IDENTITY CARD");
    let fields = [
        (30, 110, "Place of birth / Lieu de naissance", &spec.place_of_birth),
        (30, 190, "Address / Adresse", &spec.address),
    ];
    for (x, y, label, value) in fields {
        card.text(&fonts.regular, 16, "#5a5a5a", (x, y), label)
            .text(&fonts.regular, 26, "#111111", (x, y + 34), value);
    }
    card.rect((0, 380), (1027, 648), "white", None);
    let ocrb = &renderer().ocrb;
    for (i, line) in spec.mrz().iter().enumerate() {
        card.text(ocrb, CARD_MRZ_POINTS, "black", (40, 460 + 68 * i as u32), line);
    }
    card.png()
}

/// A one-page electricity bill (A4 at 150 dpi): the company, the holder's
/// name and address where an envelope's window shows them, the date, the
/// account and the charges.
pub fn utility_bill(spec: &UtilityBillSpec) -> Vec<u8> {
    let fonts = renderer().fonts();
    let mut page = Canvas::new(1240, 1754, "white");
    page.text(&fonts.bold, 46, "#1d5c3a", (100, 150), &spec.company).text(
        &fonts.regular,
        20,
        "#444444",
        (100, 190),
        "PO Box 118, Reading RG1 1AA  ·  0330 100 2040",
    );
    let mut y = 330;
    for line in std::iter::once(&spec.name)
        .chain(&spec.address)
        .chain(std::iter::once(&spec.postcode))
    {
        page.text(&fonts.regular, 30, "black", (100, y), line);
        y += 44;
    }
    let details = [
        ("Bill date", spec.printed_date()),
        ("Account number", spec.account_number.clone()),
        ("Amount due", spec.printed_amount()),
    ];
    for (i, (label, value)) in details.iter().enumerate() {
        let y = 330 + 44 * i as u32;
        page.text(&fonts.regular, 26, "#444444", (720, y), label)
            .text(&fonts.bold, 26, "black", (960, y), value);
    }
    page.text(&fonts.bold, 36, "black", (100, 700), "Your electricity bill")
        .line((100, 730), (1140, 730), "#1d5c3a");
    let total = spec.amount_pence;
    let vat = total / 21;
    let standing = 1_240.min(total - vat);
    let charges = [
        ("Electricity used: 212 kWh at 24.50p", pounds(total - vat - standing)),
        ("Standing charge: 28 days at 44.29p", pounds(standing)),
        ("VAT at 5%", pounds(vat)),
    ];
    let mut y = 790;
    for (what, amount) in &charges {
        page.text(&fonts.regular, 28, "black", (100, y), what)
            .text(&fonts.regular, 28, "black", (960, y), amount);
        y += 52;
    }
    page.line((100, y - 20), (1140, y - 20), "#1d5c3a")
        .text(&fonts.bold, 30, "black", (100, y + 30), "Total to pay")
        .text(&fonts.bold, 30, "black", (960, y + 30), &spec.printed_amount())
        .text(
            &fonts.regular,
            22,
            "#444444",
            (100, 1600),
            "We will collect this amount by Direct Debit on or after the 16th.",
        );
    page.png()
}

/// Whether specimens can be rendered here (ImageMagick and the OCR-B font),
/// for the calling test, under the policy of [`crate::engines`]: when not,
/// the test is skipped, saying so, or fails under `CI=true`.
pub fn renderer_here() -> bool {
    match RENDERER.get_or_init(Renderer::find) {
        Ok(_) => true,
        Err(missing) => {
            let thread = std::thread::current();
            crate::engines::absent(thread.name().unwrap_or("a test"), missing)
        }
    }
}

// ---------------------------------------------------------------- the zone

/// Text in the zone's alphabet: capitals, spaces and hyphens as fillers,
/// anything else dropped.
fn zone_text(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c.to_ascii_uppercase() {
            ' ' | '-' => Some('<'),
            c if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<' => Some(c),
            _ => None,
        })
        .collect()
}

/// `text` in the zone's alphabet, cut or padded with fillers to `width`.
fn fit(text: &str, width: usize) -> String {
    let mut text: String = zone_text(text).chars().take(width).collect();
    while text.len() < width {
        text.push('<');
    }
    text
}

/// The check digit of `text`, or one off when `wrong`.
fn check(text: &str, wrong: bool) -> char {
    let digit = mrz::check_digit(text).unwrap_or_else(|| panic!("{text:?} is not in the zone's alphabet"));
    let digit = if wrong { (digit + 1) % 10 } else { digit };
    char::from(b'0' + digit)
}

fn sex_code(sex: Sex) -> String {
    match sex {
        Sex::Male => "M",
        Sex::Female => "F",
        Sex::Unspecified => "<",
    }
    .to_owned()
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_else(|| panic!("{year}-{month}-{day} is a date"))
}

fn pounds(pence: u32) -> String {
    format!("£{}.{:02}", pence / 100, pence % 100)
}

/// A photo's place: a grey box with a head and shoulders.
fn photo(page: &mut Canvas, (x0, y0): (u32, u32), (x1, y1): (u32, u32)) {
    let cx = (x0 + x1) / 2;
    page.rect((x0, y0), (x1, y1), "#d9d9d9", Some("#444444"))
        .draw("#9a9a9a", &format!("circle {cx},{} {cx},{}", y0 + 150, y0 + 220))
        .draw(
            "#9a9a9a",
            &format!("ellipse {cx},{} {},{} 180,360", y1, (x1 - x0) / 2 - 20, 130),
        );
}

// ---------------------------------------------------------------- ImageMagick

struct Fonts {
    regular: PathBuf,
    bold: PathBuf,
}

struct Renderer {
    /// `magick` (ImageMagick 7) or `convert` (6).
    program: PathBuf,
    ocrb: PathBuf,
    /// DejaVu Sans, when installed (ImageMagick's Debian package brings it).
    sans: Option<Fonts>,
}

static RENDERER: OnceLock<Result<Renderer, String>> = OnceLock::new();

fn renderer() -> &'static Renderer {
    match RENDERER.get_or_init(Renderer::find) {
        Ok(renderer) => renderer,
        Err(missing) => panic!("{missing}"),
    }
}

impl Renderer {
    fn find() -> Result<Renderer, String> {
        const HOW: &str = "apt-get install imagemagick fonts-ocr-b";
        let program = ["magick", "convert"]
            .into_iter()
            .find(|program| is_imagemagick(program))
            .ok_or_else(|| format!("ImageMagick is missing (no `magick` or `convert` that is it): `{HOW}`"))?;
        let ocrb = ocr_b().ok_or_else(|| format!("the OCR-B font is missing: `{HOW}`"))?;
        let dejavu = Path::new("/usr/share/fonts/truetype/dejavu");
        let sans = Some(Fonts {
            regular: dejavu.join("DejaVuSans.ttf"),
            bold: dejavu.join("DejaVuSans-Bold.ttf"),
        })
        .filter(|fonts| fonts.regular.is_file() && fonts.bold.is_file());
        Ok(Renderer {
            program: program.into(),
            ocrb,
            sans,
        })
    }

    /// The fonts of everything but the zone: OCR-B too when DejaVu is
    /// missing.
    fn fonts(&self) -> Fonts {
        match &self.sans {
            Some(fonts) => Fonts {
                regular: fonts.regular.clone(),
                bold: fonts.bold.clone(),
            },
            None => Fonts {
                regular: self.ocrb.clone(),
                bold: self.ocrb.clone(),
            },
        }
    }
}

/// Whether `program` is ImageMagick: something else may be called `convert`
/// (a stand-in that only converts PNG to PPM, Windows' disk converter).
fn is_imagemagick(program: &str) -> bool {
    Command::new(program)
        .arg("-version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success() && String::from_utf8_lossy(&output.stdout).contains("ImageMagick"))
}

/// The OCR-B font's file: where Debian's `fonts-ocr-b` puts it, else where
/// fontconfig knows it.
fn ocr_b() -> Option<PathBuf> {
    let known = [
        "/usr/share/fonts/opentype/ocr-b/OCRB.otf",
        "/usr/share/fonts/truetype/ocr-b/OCRB.ttf",
    ];
    if let Some(path) = known.iter().map(PathBuf::from).find(|path| path.is_file()) {
        return Some(path);
    }
    let listed = Command::new("fc-list")
        .args([":family=OCR B:style=Regular", "file"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| PathBuf::from(line.trim().trim_end_matches(':')))
        .find(|path| path.is_file())
}

/// An ImageMagick command line that draws a picture.
struct Canvas {
    arguments: Vec<String>,
}

impl Canvas {
    fn new(width: u32, height: u32, background: &str) -> Canvas {
        let arguments = ["-size".into(), format!("{width}x{height}"), format!("xc:{background}")].into();
        Canvas { arguments }
    }

    fn push(&mut self, arguments: &[&str]) -> &mut Canvas {
        self.arguments.extend(arguments.iter().map(|a| (*a).to_owned()));
        self
    }

    /// `text` with its baseline's left end at `(x, y)`.
    fn text(&mut self, font: &Path, points: u32, colour: &str, (x, y): (u32, u32), text: &str) -> &mut Canvas {
        let font = font.to_string_lossy();
        self.push(&[
            "-font",
            &font,
            "-pointsize",
            &points.to_string(),
            "-fill",
            colour,
            "-stroke",
            "none",
            "-annotate",
            &format!("+{x}+{y}"),
            &literal(text),
        ])
    }

    fn rect(&mut self, (x0, y0): (u32, u32), (x1, y1): (u32, u32), fill: &str, border: Option<&str>) -> &mut Canvas {
        self.push(&[
            "-fill",
            fill,
            "-stroke",
            border.unwrap_or("none"),
            "-strokewidth",
            "2",
            "-draw",
            &format!("rectangle {x0},{y0} {x1},{y1}"),
        ])
    }

    fn line(&mut self, (x0, y0): (u32, u32), (x1, y1): (u32, u32), colour: &str) -> &mut Canvas {
        self.push(&[
            "-stroke",
            colour,
            "-strokewidth",
            "2",
            "-draw",
            &format!("line {x0},{y0} {x1},{y1}"),
        ])
    }

    fn draw(&mut self, fill: &str, primitive: &str) -> &mut Canvas {
        self.push(&["-fill", fill, "-stroke", "none", "-draw", primitive])
    }

    /// The picture as an 8-bit PNG, the same bytes for the same drawing (no
    /// timestamps).
    fn png(&self) -> Vec<u8> {
        let renderer = renderer();
        let output = Command::new(&renderer.program)
            .args(&self.arguments)
            .args([
                "-strip",
                "-depth",
                "8",
                "-define",
                "png:exclude-chunks=date,time",
                "png:-",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", renderer.program.display()));
        assert!(
            output.status.success() && output.stdout.starts_with(b"\x89PNG"),
            "{} failed ({}): {}",
            renderer.program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

/// `text` as `-annotate` prints it: ImageMagick expands `%` escapes and reads
/// a file for a leading `@`.
fn literal(text: &str) -> String {
    let text = text.replace('\\', "\\\\").replace('%', "%%");
    match text.strip_prefix('@') {
        Some(rest) => format!("\\@{rest}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_passport_zone_is_doc_9303_s_specimen_with_a_later_expiry() {
        let [first, second] = PassportSpec::example().mrz();
        assert_eq!(first, "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<");
        assert_eq!(second, "L898902C36UTO7408122F3404159ZE184226B<<<<<16");
        let zone = mrz::parse(&[&first, &second], date(2026, 3, 15)).unwrap();
        assert!(zone.valid(), "{zone:#?}");
    }

    #[test]
    fn a_wrong_check_digit_is_off_by_one_in_its_place_only() {
        let right = PassportSpec::example().mrz();
        for (field, column) in [
            (Field::DocumentNumber, 9),
            (Field::BirthDate, 19),
            (Field::ExpiryDate, 27),
            (Field::OptionalData, 42),
            (Field::Composite, 43),
        ] {
            let spec = PassportSpec {
                wrong_check: Some(field),
                ..PassportSpec::example()
            };
            let [first, second] = spec.mrz();
            assert_eq!(first, right[0]);
            let differ: Vec<usize> = (0..44).filter(|&i| second[i..=i] != right[1][i..=i]).collect();
            // The composite covers the others' digits, so it moves too,
            // unless one digit's change is undone in its sum.
            assert!(differ.first() == Some(&column), "{field:?}: {second} ({differ:?})");
            let zone = mrz::parse(&[&first, &second], date(2026, 3, 15)).unwrap();
            assert!(
                zone.checks.iter().any(|c| c.field == field && !c.valid),
                "{field:?}: {:?}",
                zone.checks
            );
        }
    }

    #[test]
    fn the_example_card_zone_parses() {
        let lines = IdCardSpec::example().mrz();
        assert_eq!(lines[2], "DE<VRIES<<JAN<PIETER<<<<<<<<<<");
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let zone = mrz::parse(&lines, date(2026, 3, 15)).unwrap();
        assert!(zone.valid(), "{zone:#?}");
        assert_eq!(zone.surname, "DE VRIES");
        assert_eq!(zone.given_names, "JAN PIETER");
    }

    #[test]
    fn annotate_text_is_literal() {
        assert_eq!(literal("100% @home"), "100%% @home");
        assert_eq!(literal("@etc"), "\\@etc");
        assert_eq!(literal("a\\n"), "a\\\\n");
    }
}
