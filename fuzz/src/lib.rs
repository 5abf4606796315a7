//! The properties the fuzz targets check, in one place.
//!
//! The targets in `fuzz_targets/` call these functions, and `tests/fuzz_corpus.rs` in the main
//! crate includes this very file (`#[path]`) to replay the seed corpus on stable Rust, so what CI
//! replays is exactly what the fuzzer runs. Keep it free of anything but `std` and `eaibus`.
//!
//! Every check panics (so libFuzzer reports a crash) when the library breaks a promise:
//! a panic inside it, an error that does not say what and where, `detect` disagreeing with
//! `decode`, or a writer whose output does not read again (see `round_trip`).

use std::sync::OnceLock;

use eaibus::message::{Codec, DecodeError, Format, JsonStyle, Message};
use eaibus::schema::{FieldError, SchemaRegistry};

/// The embedded schemas, compiled once per process.
pub fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| SchemaRegistry::embedded().expect("the embedded schemas load"))
}

fn codec() -> Codec<'static> {
    Codec::new(registry())
}

/// An error must say what is wrong and where: a non-empty message and location, a line from 1
/// for syntax, a JSON pointer for structure.
pub fn check_error(stage: &str, error: &DecodeError) {
    let display = error.to_string();
    let location = error.location();
    assert!(
        !display.trim().is_empty(),
        "{stage}: an error with an empty message: {error:?}"
    );
    assert!(
        !location.trim().is_empty(),
        "{stage}: an error without a location: {error:?}"
    );
    match error {
        DecodeError::Empty => {}
        DecodeError::TooLarge { size, limit } => {
            assert!(
                size > limit,
                "{stage}: TooLarge within the limit: {error:?}"
            )
        }
        DecodeError::Encoding {
            encoding, reason, ..
        } => assert!(
            !encoding.is_empty() && !reason.is_empty(),
            "{stage}: an encoding error that does not say which or why: {error:?}"
        ),
        DecodeError::Syntax { line, reason, .. } => assert!(
            *line >= 1 && !reason.is_empty(),
            "{stage}: a syntax error without a line or a reason: {error:?}"
        ),
        DecodeError::TooDeep { line, .. } => {
            assert!(*line >= 1, "{stage}: TooDeep without a line: {error:?}")
        }
        DecodeError::NotStandardMessage { pointer, reason } => assert!(
            (pointer.is_empty() || pointer.starts_with('/')) && !reason.is_empty(),
            "{stage}: a structure error without a JSON pointer or a reason: {error:?}"
        ),
    }
}

/// Validation failures must name at least one field, each by a JSON pointer and a reason.
pub fn check_validation(stage: &str, message: &Message) -> bool {
    match registry().validate(message) {
        Ok(()) => true,
        Err(errors) => {
            check_field_errors(stage, &errors);
            false
        }
    }
}

fn check_field_errors(stage: &str, errors: &[FieldError]) {
    assert!(
        !errors.is_empty(),
        "{stage}: validate failed without naming a field"
    );
    for e in errors {
        assert!(
            e.pointer.starts_with('/') && !e.reason.trim().is_empty(),
            "{stage}: a field error without a pointer or a reason: {e:?}"
        );
    }
}

/// Target `decode_json`: the JSON reader, then validation of whatever it reads.
pub fn decode_json(data: &[u8]) {
    match codec().decode_json(data) {
        Ok(message) => {
            check_validation("decode_json: validate", &message);
        }
        Err(e) => check_error("decode_json", &e),
    }
}

/// Target `decode_xml`: the XML reader, then validation of whatever it reads.
pub fn decode_xml(data: &[u8]) {
    match codec().decode_xml(data) {
        Ok(message) => {
            check_validation("decode_xml: validate", &message);
        }
        Err(e) => check_error("decode_xml", &e),
    }
}

/// Target `decode_any`: detection, decoding in the detected form, validation.
/// `decode` must read a payload in the form `detect` names, and fail where `detect` fails.
pub fn decode_any(data: &[u8]) {
    let codec = codec();
    let detected = codec.detect(data);
    if let Err(e) = &detected {
        check_error("detect", e);
    }
    match codec.decode(data) {
        Ok((message, format)) => {
            match detected {
                Ok(f) => assert_eq!(f, format, "decode read a form other than detect named"),
                Err(e) => panic!("detect failed ({e}) but decode read {format:?}"),
            }
            check_validation("decode_any: validate", &message);
        }
        Err(e) => check_error("decode_any", &e),
    }
}

/// Target `round_trip`: whatever decodes is written back as XML and as JSON (both styles) and
/// read again.
///
/// What the writers promise, checked here:
/// - the XML writer never writes ill-formed XML: reading its output never fails with a syntax or
///   encoding error, whatever message it was given;
/// - a valid message read from XML reads again from its XML re-encode (only the size limit may
///   stop it: escaping grows text, e.g. a CDATA section full of '<');
/// - a valid message read from JSON reads again from its XML re-encode unless it is too large or
///   too deep (JSON nests to 128 levels, XML to 64);
/// - an invalid message may also lose its XML body (Content `[]` writes no BusinessContent);
/// - the JSON writers' output always reads again, but for the size and depth limits.
pub fn round_trip(data: &[u8]) {
    let codec = codec();
    let (message, format) = match codec.decode(data) {
        Ok(decoded) => decoded,
        Err(e) => return check_error("round_trip: decode", &e),
    };
    let valid = check_validation("round_trip: validate", &message);

    let xml = codec.to_xml(&message);
    match codec.decode_xml(xml.as_bytes()) {
        Ok(again) => {
            check_validation("round_trip: validate the XML re-encode", &again);
        }
        Err(e) => {
            check_error("round_trip: decode the XML re-encode", &e);
            let tolerated = match &e {
                DecodeError::TooLarge { .. } => true,
                DecodeError::TooDeep { .. } => !(valid && format == Format::Xml),
                DecodeError::NotStandardMessage { .. } => !valid,
                DecodeError::Empty | DecodeError::Syntax { .. } | DecodeError::Encoding { .. } => {
                    false
                }
            };
            assert!(
                tolerated,
                "the XML re-encode of a decoded message (read from {format:?}, valid: {valid}) \
                 does not decode: {e}\n--- re-encode:\n{xml}"
            );
        }
    }

    for style in [JsonStyle::Canonical, JsonStyle::Protheus] {
        let json = codec.to_json(&message, style);
        match codec.decode_json(json.as_bytes()) {
            Ok(again) => {
                check_validation("round_trip: validate the JSON re-encode", &again);
            }
            Err(e) => {
                check_error(&format!("round_trip: decode the {style:?} JSON"), &e);
                assert!(
                    matches!(
                        e,
                        DecodeError::TooLarge { .. } | DecodeError::TooDeep { .. }
                    ),
                    "the {style:?} JSON re-encode of a decoded message (read from {format:?}) \
                     does not decode: {e}\n--- re-encode:\n{json}"
                );
            }
        }
    }
}
