//! What can be wrong with bytes that should hold a standard message.

use thiserror::Error;

/// Why a payload could not be read as a standard message. Every variant says where the problem is:
/// a line and column for syntax, a byte offset for encoding, a JSON pointer for structure.
/// All of them are permanent: sending the same bytes again gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("the message is empty")]
    Empty,
    #[error("the message has {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid {encoding} at byte {offset}: {reason}")]
    Encoding {
        encoding: String,
        offset: usize,
        reason: String,
    },
    #[error("{format} syntax error at line {line}, column {column}: {reason}")]
    Syntax {
        format: &'static str,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("nesting deeper than {limit} levels at line {line}, column {column}")]
    TooDeep {
        limit: usize,
        line: usize,
        column: usize,
    },
    #[error("not a standard message at {pointer}: {reason}")]
    NotStandardMessage { pointer: String, reason: String },
}

impl DecodeError {
    pub(crate) fn structure(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError::NotStandardMessage {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }

    /// The place the error points at, as text for a one-line report.
    pub fn location(&self) -> String {
        match self {
            DecodeError::Empty | DecodeError::TooLarge { .. } => "byte 0".into(),
            DecodeError::Encoding { offset, .. } => format!("byte {offset}"),
            DecodeError::Syntax { line, column, .. }
            | DecodeError::TooDeep { line, column, .. } => {
                format!("line {line}, column {column}")
            }
            DecodeError::NotStandardMessage { pointer, .. } => {
                if pointer.is_empty() {
                    "/".into()
                } else {
                    pointer.clone()
                }
            }
        }
    }
}

/// Line and column (both from 1) of a byte offset in a text.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ação\nx", 6), (1, 5));
        assert_eq!(line_column("ação\nx", 7), (2, 1));
    }
}
