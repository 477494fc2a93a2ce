//! The OCR adapter on the real engine: Tesseract (found as the service finds
//! it, through `KORALA_TESSERACT`) reads specimen documents that ImageMagick
//! renders (acceptance::specimens), and the domain's MRZ reader reads the
//! zone out of its text — the whole path from a picture of a document to
//! its fields, with nothing stubbed.

use std::time::{Duration, Instant};

use acceptance::specimens::{self, IdCardSpec, PassportSpec, UtilityBillSpec};
use chrono::NaiveDate;
use functions::adapters::ocr::Tesseract;
use korala_domain::mrz::{self, Field, Format, Mrz, Sex};
use korala_domain::ports::{Ocr, OcrPurpose};

/// The reference date of the readings.
fn today() -> NaiveDate {
    date(2026, 3, 15)
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

/// The engine, or `None` (the test skips, or fails under CI) when Tesseract
/// or the specimens' renderer is missing. One that is here must have its
/// models.
async fn engine() -> Option<Tesseract> {
    if !(acceptance::engines::Engine::Tesseract.here() && specimens::renderer_here()) {
        return None;
    }
    let engine = Tesseract::detect().expect("KORALA_TESSERACT names an executable");
    if let Err(e) = engine.check().await {
        panic!("{e}");
    }
    Some(engine)
}

/// The zone of a passport's data page, as Tesseract and `mrz::find` read it.
async fn read_zone(engine: &Tesseract, png: &[u8]) -> Mrz {
    let text = engine.read(png, OcrPurpose::MachineReadableZone).await.unwrap();
    let zone = mrz::find(&text, today()).unwrap_or_else(|e| panic!("{e}; Tesseract read:\n{text}"));
    // What the reader had to correct, for whoever reads the test's output.
    for correction in &zone.corrections {
        eprintln!("corrected: {correction}");
    }
    zone
}

/// The zone says exactly what the page was rendered with.
fn assert_passport(zone: &Mrz, spec: &PassportSpec) {
    assert_eq!(zone.format, Format::Td3);
    assert_eq!(zone.document_code, "P");
    assert_eq!(zone.issuing_state, spec.issuing_state);
    assert_eq!(zone.document_number, spec.number);
    assert_eq!(zone.surname, spec.surname);
    assert_eq!(zone.given_names, spec.given_names);
    assert_eq!(zone.nationality, spec.nationality);
    assert_eq!(zone.birth_date, Some(spec.birth_date));
    assert_eq!(zone.sex, spec.sex);
    assert_eq!(zone.expiry_date, Some(spec.expiry_date));
    assert_eq!(zone.optional_data, std::slice::from_ref(&spec.personal_number));
    assert!(!zone.name_truncated);
    assert_eq!(zone.lines, spec.mrz(), "the zone as corrected is the zone as printed");
}

#[tokio::test]
async fn ocr_reads_a_passport_zone_to_exactly_its_fields() {
    let Some(engine) = engine().await else { return };
    let spec = PassportSpec::example();
    let zone = read_zone(&engine, &specimens::passport(&spec)).await;
    assert_passport(&zone, &spec);
    assert!(zone.valid(), "{zone:#?}");
    assert_eq!(zone.is_expired(today()), Some(false));
}

#[tokio::test]
async fn ocr_reads_an_expired_passport_as_valid_and_expired() {
    let Some(engine) = engine().await else { return };
    let spec = PassportSpec {
        surname: "OKAFOR".into(),
        given_names: "CHIDI".into(),
        number: "C03005988".into(),
        birth_date: date(1969, 2, 28),
        sex: Sex::Male,
        expiry_date: date(2023, 11, 30),
        personal_number: String::new(),
        ..PassportSpec::example()
    };
    let zone = read_zone(&engine, &specimens::passport(&spec)).await;
    assert_passport(&zone, &spec);
    assert!(
        zone.valid(),
        "an expired document's zone is still well formed: {zone:#?}"
    );
    assert_eq!(zone.is_expired(today()), Some(true));
}

#[tokio::test]
async fn ocr_finds_a_wrong_check_digit_and_only_that_one() {
    let Some(engine) = engine().await else { return };
    let spec = PassportSpec {
        wrong_check: Some(Field::BirthDate),
        ..PassportSpec::example()
    };
    let zone = read_zone(&engine, &specimens::passport(&spec)).await;
    assert_passport(&zone, &spec);
    assert!(!zone.valid());
    let invalid: Vec<Field> = zone.checks.iter().filter(|c| !c.valid).map(|c| c.field).collect();
    assert_eq!(invalid, [Field::BirthDate], "{:#?}", zone.checks);
}

#[tokio::test]
async fn ocr_reads_an_identity_card_zone() {
    let Some(engine) = engine().await else { return };
    let spec = IdCardSpec::example();
    let zone = read_zone(&engine, &specimens::id_card(&spec)).await;
    assert_eq!(zone.format, Format::Td1);
    assert_eq!(zone.document_code, "I");
    assert_eq!(zone.issuing_state, spec.issuing_state);
    assert_eq!(zone.document_number, spec.number);
    assert_eq!(zone.surname, spec.surname);
    assert_eq!(zone.given_names, spec.given_names);
    assert_eq!(zone.nationality, spec.nationality);
    assert_eq!(zone.birth_date, Some(spec.birth_date));
    assert_eq!(zone.sex, spec.sex);
    assert_eq!(zone.expiry_date, Some(spec.expiry_date));
    assert_eq!(zone.lines, spec.mrz());
    assert!(zone.valid(), "{zone:#?}");
}

#[tokio::test]
async fn ocr_reads_a_utility_bill_s_name_postcode_date_and_amount() {
    let Some(engine) = engine().await else { return };
    let spec = UtilityBillSpec::example();
    let text = engine
        .read(&specimens::utility_bill(&spec), OcrPurpose::Text)
        .await
        .unwrap();
    for expected in [
        spec.name.clone(),
        spec.postcode.clone(),
        spec.printed_date(),
        spec.printed_amount(),
        spec.company.clone(),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} is not in what Tesseract read:\n{text}"
        );
    }
    // The passport's zone alphabet is not forced on a letter.
    assert!(text.contains("Larkspur Road"), "{text}");
}

#[tokio::test]
async fn ocr_refuses_what_is_not_an_image_without_running_the_engine() {
    let Some(engine) = engine().await else { return };
    let error = engine.read(b"/etc/passwd\n", OcrPurpose::Text).await.unwrap_err();
    assert!(
        matches!(error, korala_domain::ports::OcrError::Unreadable(_)),
        "{error:?}"
    );
    // A PNG cut short gets as far as the engine, which cannot read it.
    let png = specimens::passport(&PassportSpec::example());
    let error = engine
        .read(&png[..png.len() / 2], OcrPurpose::MachineReadableZone)
        .await
        .unwrap_err();
    assert!(
        matches!(error, korala_domain::ports::OcrError::Unreadable(_)),
        "{error:?}"
    );
}

/// How long a reading takes: the median of a few, per purpose. Run by hand
/// (`cargo test -p acceptance --test it ocr_timings -- --ignored
/// --nocapture`); CI's machine is too busy for its numbers to mean much.
#[tokio::test]
#[ignore]
async fn ocr_timings() {
    let Some(engine) = engine().await else { return };
    let passport = specimens::passport(&PassportSpec::example());
    let card = specimens::id_card(&IdCardSpec::example());
    let bill = specimens::utility_bill(&UtilityBillSpec::example());
    for (what, png, purpose) in [
        ("passport, zone", &passport, OcrPurpose::MachineReadableZone),
        ("identity card, zone", &card, OcrPurpose::MachineReadableZone),
        ("utility bill, text", &bill, OcrPurpose::Text),
    ] {
        let mut times: Vec<Duration> = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            engine.read(png, purpose).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        eprintln!(
            "{what}: p50 {:?}, min {:?}, max {:?} ({} KB image)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            png.len() / 1024
        );
    }
}

/// How often the zone of a page reads exactly, over holders whose names
/// exercise the filler (one `<` between names, two between surname and
/// given names, long and short runs at the end), each page also with a
/// wrong check digit: what chose the specimens' sizes
/// (`PASSPORT_MRZ_POINTS`, `CARD_MRZ_POINTS`). Run by hand, like
/// [`ocr_timings`]; each miss is printed with what Tesseract read.
#[tokio::test]
#[ignore]
async fn ocr_zone_reading_rate() {
    let Some(engine) = engine().await else { return };
    let holders = [
        ("ERIKSSON", "ANNA MARIA"),
        ("SMITH", "JOHN PETER"),
        ("MUSTERMANN", "ERIKA"),
        ("DUPONT LEGRAND", "MARIE CLAIRE"),
        ("DE VRIES", "JAN"),
        ("MARTIN", "SARAH"),
        ("OKAFOR", "CHIDI NKEM"),
        ("GARCIA LOPEZ", "LUCIA"),
        ("NOVAK", "PETRA"),
        ("TANAKA", "HIRO"),
    ];
    let (mut pages, mut exact) = (0, 0);
    for (surname, given_names) in holders {
        for wrong_check in [None, Some(Field::BirthDate)] {
            let spec = PassportSpec {
                surname: surname.into(),
                given_names: given_names.into(),
                wrong_check,
                ..PassportSpec::example()
            };
            let text = engine
                .read(&specimens::passport(&spec), OcrPurpose::MachineReadableZone)
                .await
                .unwrap();
            pages += 1;
            match mrz::find(&text, today()) {
                Ok(zone) if zone.lines == spec.mrz() => exact += 1,
                Ok(zone) => eprintln!("passport {surname}: read {:?}", zone.lines),
                Err(e) => eprintln!("passport {surname}: {e}; read {text:?}"),
            }
        }
    }
    eprintln!("passports: {exact} of {pages} zones read exactly");
    let (mut cards, mut exact) = (0, 0);
    for (surname, given_names) in holders {
        let spec = IdCardSpec {
            surname: surname.into(),
            given_names: given_names.into(),
            ..IdCardSpec::example()
        };
        let text = engine
            .read(&specimens::id_card(&spec), OcrPurpose::MachineReadableZone)
            .await
            .unwrap();
        cards += 1;
        match mrz::find(&text, today()) {
            Ok(zone) if zone.lines == spec.mrz() => exact += 1,
            Ok(zone) => eprintln!("card {surname}: read {:?}", zone.lines),
            Err(e) => eprintln!("card {surname}: {e}; read {text:?}"),
        }
    }
    eprintln!("cards: {exact} of {cards} zones read exactly");
}
