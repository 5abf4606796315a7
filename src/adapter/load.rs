//! Reading configuration files: every problem is reported with `FILE:LINE:COLUMN`, and all of
//! them at once, at load, never at first use.

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use super::condition::ConditionError;

/// Where in a configuration file something is. `line` 0 means the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The whole file (for errors that have no position, such as an unreadable file).
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            line: 0,
            column: 0,
        }
    }

    /// The line and column (both from 1; the column counts characters) of a byte offset.
    pub fn at(file: impl Into<String>, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: file.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// One problem in a configuration file. All of them are permanent: the file must be fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub location: Location,
    pub kind: LoadErrorKind,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

impl std::error::Error for LoadError {}

/// What is wrong, one variant per kind of problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown key `{key}`; expected one of: {}", .expected.join(", "))]
    UnknownKey {
        key: String,
        expected: Vec<&'static str>,
    },
    #[error(
        "`{key}` holds a secret, and secrets never live in configuration files; put it in an \
         environment variable and name that variable with `{instead}`"
    )]
    Secret { key: String, instead: &'static str },
    #[error("{0}")]
    Invalid(String),
    #[error("route {route:?} is not defined in the routes file; defined routes: {}", list(.known))]
    UnknownRoute { route: String, known: Vec<String> },
    #[error("no schema is registered for the transaction {message:?}")]
    UnknownTransaction { message: String },
    #[error(
        "{message} has no schema for version {version:?}; versions with a schema: {}",
        list(.known)
    )]
    UnknownVersion {
        message: String,
        version: String,
        known: Vec<String>,
    },
    #[error("{0}")]
    Condition(ConditionError),
    #[error("a second adapter {direction} {message} for {scope}; the first one is at {first}")]
    DuplicateAdapter {
        message: String,
        direction: &'static str,
        scope: String,
        first: Location,
    },
    #[error("a second route is named {name:?}; the first one is at {first}")]
    DuplicateRoute { name: String, first: Location },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Every problem found while loading a set of configuration files, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, LoadError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl IntoIterator for LoadErrors {
    type Item = LoadError;
    type IntoIter = std::vec::IntoIter<LoadError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The keys a TOML file may hold: at the top, in the arrays of tables it names, and the keys
/// that look like secrets (reported with a hint rather than as unknown).
pub(crate) struct KeySchema {
    pub top: &'static [&'static str],
    pub tables: &'static [(&'static str, &'static [&'static str])],
    pub secrets: &'static [(&'static str, &'static str)],
}

/// A configuration file being read: its name (as reported) and its text.
pub(crate) struct SourceFile<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

impl SourceFile<'_> {
    pub fn location(&self, span: &Range<usize>) -> Location {
        Location::at(self.name, self.text, span.start)
    }

    pub fn error(&self, span: &Range<usize>, kind: LoadErrorKind) -> LoadError {
        LoadError {
            location: self.location(span),
            kind,
        }
    }

    /// Parses the file into `T`: every syntax error, then every unknown key, then the first
    /// type error serde finds.
    pub fn parse<T: DeserializeOwned>(&self, keys: &KeySchema) -> Result<T, Vec<LoadError>> {
        let (root, syntax) = DeTable::parse_recoverable(self.text);
        if !syntax.is_empty() {
            return Err(syntax
                .iter()
                .map(|e| self.toml_error(e, LoadErrorKind::Syntax))
                .collect());
        }
        let mut errors = Vec::new();
        self.check_keys(root.get_ref(), keys.top, keys, true, &mut errors);
        if !errors.is_empty() {
            // Tables iterate in key order; report in file order.
            errors.sort_by_key(|e| (e.location.line, e.location.column));
            return Err(errors);
        }
        T::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| vec![self.toml_error(&e, LoadErrorKind::Invalid)])
    }

    fn toml_error(&self, error: &toml::de::Error, kind: fn(String) -> LoadErrorKind) -> LoadError {
        let message = error.message().trim().to_owned();
        LoadError {
            location: match error.span() {
                Some(span) => self.location(&span),
                None => Location::file(self.name),
            },
            kind: kind(message),
        }
    }

    fn check_keys(
        &self,
        table: &DeTable<'_>,
        allowed: &'static [&'static str],
        keys: &KeySchema,
        top: bool,
        errors: &mut Vec<LoadError>,
    ) {
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            if let Some((_, instead)) = keys.secrets.iter().find(|(s, _)| *s == name) {
                errors.push(self.error(
                    &key.span(),
                    LoadErrorKind::Secret {
                        key: name.to_owned(),
                        instead,
                    },
                ));
                continue;
            }
            if !allowed.contains(&name) {
                errors.push(self.error(
                    &key.span(),
                    LoadErrorKind::UnknownKey {
                        key: name.to_owned(),
                        expected: allowed.to_vec(),
                    },
                ));
                continue;
            }
            if !top {
                continue;
            }
            let Some((_, nested)) = keys.tables.iter().find(|(t, _)| *t == name) else {
                continue;
            };
            if let DeValue::Array(items) = value.get_ref() {
                for item in items.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        self.check_keys(inner, nested, keys, false, errors);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_lines_and_columns_in_characters() {
        let text = "a = 1\nção = 2\n  x";
        assert_eq!(Location::at("f", text, 0).to_string(), "f:1:1");
        assert_eq!(Location::at("f", text, 6).to_string(), "f:2:1");
        let x = text.find('x').unwrap_or_default();
        assert_eq!(Location::at("f", text, x).to_string(), "f:3:3");
        // An offset inside a multi-byte character and past the end stay in bounds.
        assert_eq!(Location::at("f", text, 7).line, 2);
        assert_eq!(Location::at("f", text, 999).line, 3);
        assert_eq!(Location::file("f").to_string(), "f");
    }
}
