//! HTTP Basic authentication of EAI callers, compared in constant time.

use base64::Engine;
use subtle::ConstantTimeEq;

/// `user` and `password` of an `Authorization: Basic ...` header, if it is one.
pub fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    let value = header?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// True when the given credentials equal the expected ones. Both fields are always compared, so
/// the time taken does not tell which one was wrong.
pub fn matches(
    given: Option<&(String, String)>,
    expected_user: &str,
    expected_password: &str,
) -> bool {
    let Some((user, password)) = given else {
        return false;
    };
    let user_ok = user.as_bytes().ct_eq(expected_user.as_bytes());
    let password_ok = password.as_bytes().ct_eq(expected_password.as_bytes());
    bool::from(user_ok & password_ok)
}

/// The header value a client sends.
pub fn basic_header(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_basic_credentials() {
        let header = basic_header("omni", "s3cr:et");
        let given = basic_credentials(Some(&header));
        assert_eq!(given, Some(("omni".into(), "s3cr:et".into())));
        assert!(matches(given.as_ref(), "omni", "s3cr:et"));
        assert!(!matches(given.as_ref(), "omni", "other"));
        assert!(!matches(None, "omni", "s3cr:et"));
        assert_eq!(basic_credentials(Some("Bearer abc")), None);
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
    }
}
