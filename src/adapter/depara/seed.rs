//! Seeds: De/Para rows shipped as CSV in `config/depara/`. A file whose header is
//! `reference,alias,field,external,internal` holds pairs; one whose header is
//! `reference,company,branch,protheus_company,protheus_branch` holds company mappings. Lines
//! starting with `#` are comments. Every malformed row is reported, with file and line, before
//! anything is written.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{CompanyMapping, DeParaError, DeParaPair, DeParaStore};

const PAIR_COLUMNS: [&str; 5] = ["reference", "alias", "field", "external", "internal"];
const COMPANY_COLUMNS: [&str; 5] = [
    "reference",
    "company",
    "branch",
    "protheus_company",
    "protheus_branch",
];

/// One bad row (or header) of a seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRowError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for SeedRowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Why seeds were not loaded. Bad files are permanent; a store failure may be retried.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read the De/Para seeds at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rows(Vec<SeedRowError>),
    #[error(transparent)]
    Store(#[from] DeParaError),
}

/// The rows of a seed directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSet {
    pub pairs: Vec<DeParaPair>,
    pub companies: Vec<CompanyMapping>,
    pub files: Vec<PathBuf>,
}

/// How many rows were loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub files: usize,
    pub pairs: usize,
    pub companies: usize,
}

/// Reads every `*.csv` of `dir`, reporting every bad row.
pub fn read_seeds(dir: &Path) -> Result<SeedSet, SeedError> {
    let io = |path: &Path, source| SeedError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    let mut set = SeedSet::default();
    let mut errors = Vec::new();
    let mut pair_lines: HashMap<super::DeParaKey, (String, u64, String)> = HashMap::new();
    let mut company_lines: HashMap<(String, String, String), (String, u64)> = HashMap::new();
    for path in &files {
        let text = std::fs::read(path).map_err(|e| io(path, e))?;
        let name = path.display().to_string();
        read_file(
            &name,
            &text,
            &mut set,
            &mut errors,
            &mut pair_lines,
            &mut company_lines,
        );
    }
    set.files = files;
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(SeedError::Rows(errors))
    }
}

/// Reads the seeds of `dir` and upserts them, pairs and companies each in one transaction.
/// Loading the same seeds again changes nothing.
pub async fn load_seeds<S: DeParaStore>(store: &S, dir: &Path) -> Result<SeedReport, SeedError> {
    let set = read_seeds(dir)?;
    store.upsert_all(&set.pairs).await?;
    store.upsert_companies(&set.companies).await?;
    Ok(SeedReport {
        files: set.files.len(),
        pairs: set.pairs.len(),
        companies: set.companies.len(),
    })
}

enum Kind {
    Pairs,
    Companies,
}

fn read_file(
    name: &str,
    bytes: &[u8],
    set: &mut SeedSet,
    errors: &mut Vec<SeedRowError>,
    pair_lines: &mut HashMap<super::DeParaKey, (String, u64, String)>,
    company_lines: &mut HashMap<(String, String, String), (String, u64)>,
) {
    let mut error = |line: u64, reason: String| {
        errors.push(SeedRowError {
            file: name.to_owned(),
            line,
            reason,
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let (header, header_line): (Vec<String>, u64) = match reader.headers() {
        Ok(h) => (
            h.iter().map(|c| c.to_ascii_lowercase()).collect(),
            first_data_line(bytes),
        ),
        Err(e) => {
            error(line_of(&e).unwrap_or(1), one_line(&e));
            return;
        }
    };
    let kind = if header == PAIR_COLUMNS {
        Kind::Pairs
    } else if header == COMPANY_COLUMNS {
        Kind::Companies
    } else {
        error(
            header_line,
            format!(
                "unknown header {:?}; expected `{}` (pairs) or `{}` (companies)",
                header.join(","),
                PAIR_COLUMNS.join(","),
                COMPANY_COLUMNS.join(",")
            ),
        );
        return;
    };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                error(line_of(&e).unwrap_or(0), one_line(&e));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let column = |i: usize| record.get(i).unwrap_or("");
        let empty: Vec<&str> = match kind {
            Kind::Pairs => (0..5)
                .filter(|&i| column(i).is_empty())
                .map(|i| PAIR_COLUMNS[i])
                .collect(),
            Kind::Companies => [0, 1, 3]
                .into_iter()
                .filter(|&i| column(i).is_empty())
                .map(|i| COMPANY_COLUMNS[i])
                .collect(),
        };
        if !empty.is_empty() {
            error(line, format!("empty {}", empty.join(", ")));
            continue;
        }
        match kind {
            Kind::Pairs => {
                let pair = DeParaPair::new(column(0), column(1), column(2), column(3), column(4));
                match pair_lines.get(&pair.key()) {
                    Some((file, first, internal)) if *internal != pair.internal => error(
                        line,
                        format!(
                            "{} {}/{} {:?} is mapped to {:?} here and to {:?} at {file}:{first}",
                            pair.reference,
                            pair.alias,
                            pair.field,
                            pair.external,
                            pair.internal,
                            internal
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        pair_lines
                            .insert(pair.key(), (name.to_owned(), line, pair.internal.clone()));
                        set.pairs.push(pair);
                    }
                }
            }
            Kind::Companies => {
                let mapping =
                    CompanyMapping::new(column(0), column(1), column(2), column(3), column(4));
                let key = (
                    mapping.reference.clone(),
                    mapping.company.clone(),
                    mapping.branch.clone(),
                );
                if let Some((file, first)) = company_lines.get(&key) {
                    error(
                        line,
                        format!(
                            "company {:?} branch {:?} of {} is already mapped at {file}:{first}",
                            mapping.company, mapping.branch, mapping.reference
                        ),
                    );
                } else {
                    company_lines.insert(key, (name.to_owned(), line));
                    set.companies.push(mapping);
                }
            }
        }
    }
}

/// The line of the header: the first that is neither blank nor a comment.
fn first_data_line(bytes: &[u8]) -> u64 {
    for (line, text) in (1..).zip(bytes.split(|b| *b == b'\n')) {
        let trimmed = text.trim_ascii();
        if !trimmed.is_empty() && !trimmed.starts_with(b"#") {
            return line;
        }
    }
    1
}

fn line_of(error: &csv::Error) -> Option<u64> {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { pos, .. } => pos.as_ref().map(|p| p.line()),
        csv::ErrorKind::Utf8 { pos, .. } => pos.as_ref().map(|p| p.line()),
        csv::ErrorKind::Deserialize { pos, .. } => pos.as_ref().map(|p| p.line()),
        _ => None,
    }
}

fn one_line(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields; the header has {expected_len}"),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (SeedSet, Vec<SeedRowError>) {
        let mut set = SeedSet::default();
        let mut errors = Vec::new();
        read_file(
            "x.csv",
            text.as_bytes(),
            &mut set,
            &mut errors,
            &mut HashMap::new(),
            &mut HashMap::new(),
        );
        (set, errors)
    }

    #[test]
    fn reads_pairs_and_companies_with_comments() {
        let (set, errors) = read(
            "# products\nreference,alias,field,external,internal\nomni,sb1,b1_cod,P-1,T1|D MG 01|PROD1\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.pairs[0].alias, "SB1");
        let (set, errors) = read(
            "reference,company,branch,protheus_company,protheus_branch\nOMNI,1,001,T1,D MG 01\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.companies[0].protheus_branch, "D MG 01");
    }

    #[test]
    fn names_the_line_of_every_bad_row() {
        let (_, errors) = read(
            "reference,alias,field,external,internal\nOMNI,SB1,B1_COD,P-1\nOMNI,SB1,B1_COD,,X\nOMNI,SB1,B1_COD,P-2,A\nOMNI,SB1,B1_COD,P-2,B\n",
        );
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 5], "{errors:?}");
        assert!(
            errors[0].to_string().starts_with("x.csv:2: "),
            "{}",
            errors[0]
        );
        assert!(errors[1].reason.contains("external"));
        let (_, errors) = read("# a comment\na,b\n1,2\n");
        assert_eq!(errors[0].line, 2, "{errors:?}");
    }
}
