//! De/Para: the correspondence between the counterpart's ids and Protheus' (protocol §6).
//!
//! A pair is keyed like Protheus' `XXF` table: (reference = the counterpart's "marca", e.g.
//! `OMNI`; alias, e.g. `SA1`; key field, e.g. `A1_COD`; external value = the counterpart's id)
//! and holds the internal value (the Protheus InternalId). The company/branch De/Para (`XXD`,
//! §6.4) maps the counterpart's company and branch to Protheus' empresa and filial.
//!
//! Two stores implement [`DeParaStore`] with the same SQL: [`SqliteDePara`] (one file, the
//! default) and [`PostgresDePara`] (shared by several eaibus instances). [`DePara`] is either,
//! chosen by the location it is opened with. Every write is an upsert, so replays are harmless.

mod lookup_queue;
mod postgres;
mod seed;
mod sql;
mod sqlite;

use std::future::Future;

pub use postgres::PostgresDePara;
pub use seed::{SeedError, SeedReport, SeedRowError, SeedSet, load_seeds, read_seeds};
pub use sqlite::SqliteDePara;

use crate::message::{Event, InternalIdPair};

/// The key of a pair: which counterpart, which Protheus entity, which external id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeParaKey {
    pub reference: String,
    pub alias: String,
    pub field: String,
    pub external: String,
}

impl DeParaKey {
    /// A key in canonical form: `reference`, `alias` and `field` trimmed and in upper case, the
    /// external value without trailing spaces (Protheus pads its codes; the padding means
    /// nothing).
    pub fn new(reference: &str, alias: &str, field: &str, external: &str) -> Self {
        DeParaKey {
            reference: canonical(reference),
            alias: canonical(alias),
            field: canonical(field),
            external: external.trim_end().to_owned(),
        }
    }
}

/// One lookup of [`DeParaStore::lookup_all`]: the internal value of an external one
/// (`to_internal`) or the external value of an internal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub to_internal: bool,
    pub reference: String,
    pub alias: String,
    pub field: String,
    pub value: String,
}

/// One De/Para pair (`XXF` row).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeParaPair {
    pub reference: String,
    pub alias: String,
    pub field: String,
    /// The counterpart's id (`XXF_EXTVAL`).
    pub external: String,
    /// The Protheus InternalId (`XXF_INTVAL`).
    pub internal: String,
}

impl DeParaPair {
    /// A pair in canonical form (see [`DeParaKey::new`]); the internal value is kept exactly
    /// (a reservation id keeps its padding, protocol §6.3).
    pub fn new(reference: &str, alias: &str, field: &str, external: &str, internal: &str) -> Self {
        DeParaPair {
            reference: canonical(reference),
            alias: canonical(alias),
            field: canonical(field),
            external: external.trim_end().to_owned(),
            internal: internal.to_owned(),
        }
    }

    pub fn key(&self) -> DeParaKey {
        DeParaKey {
            reference: self.reference.clone(),
            alias: self.alias.clone(),
            field: self.field.clone(),
            external: self.external.clone(),
        }
    }

    fn check(&self) -> Result<(), DeParaError> {
        for (name, value) in [
            ("reference", &self.reference),
            ("alias", &self.alias),
            ("field", &self.field),
            ("external value", &self.external),
            ("internal value", &self.internal),
        ] {
            if value.trim().is_empty() {
                return Err(DeParaError::Invalid(format!(
                    "the {name} of a De/Para pair is empty ({self:?})"
                )));
            }
        }
        Ok(())
    }
}

/// The Protheus empresa and filial that a counterpart's company and branch stand for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProtheusBranch {
    pub company: String,
    pub branch: String,
}

/// One company/branch De/Para row (`XXD`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompanyMapping {
    pub reference: String,
    /// The counterpart's company and branch (trimmed; the branch may be empty).
    pub company: String,
    pub branch: String,
    pub protheus_company: String,
    /// Protheus' filial, kept exactly (inner spaces matter: `D MG 01`).
    pub protheus_branch: String,
}

impl CompanyMapping {
    pub fn new(
        reference: &str,
        company: &str,
        branch: &str,
        protheus_company: &str,
        protheus_branch: &str,
    ) -> Self {
        CompanyMapping {
            reference: canonical(reference),
            company: company.trim().to_owned(),
            branch: branch.trim().to_owned(),
            protheus_company: protheus_company.trim().to_owned(),
            protheus_branch: protheus_branch.trim_end().to_owned(),
        }
    }

    pub fn protheus(&self) -> ProtheusBranch {
        ProtheusBranch {
            company: self.protheus_company.clone(),
            branch: self.protheus_branch.clone(),
        }
    }

    fn check(&self) -> Result<(), DeParaError> {
        for (name, value) in [
            ("reference", &self.reference),
            ("company", &self.company),
            ("Protheus company", &self.protheus_company),
        ] {
            if value.is_empty() {
                return Err(DeParaError::Invalid(format!(
                    "the {name} of a company mapping is empty ({self:?})"
                )));
            }
        }
        Ok(())
    }
}

/// What to list: every filter is optional; `text` matches part of either value, in any case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeParaQuery {
    pub reference: Option<String>,
    pub alias: Option<String>,
    pub field: Option<String>,
    pub text: Option<String>,
}

/// Which slice of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u64,
}

impl PageRequest {
    /// The most a page holds.
    pub const MAX_LIMIT: u64 = 1000;

    pub fn new(offset: u64, limit: u64) -> Self {
        PageRequest {
            offset,
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::new(0, 100)
    }
}

/// One page of a list, with the total number of matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

/// A De/Para store failure. Connection and query failures are retryable; an invalid entry or
/// a bad schema name is permanent.
#[derive(Debug, thiserror::Error)]
pub enum DeParaError {
    #[error("cannot open the De/Para store at {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("cannot create the directory {path} for the De/Para store: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("the De/Para store could not {operation}: {source}")]
    Query {
        operation: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "{0:?} is not a usable PostgreSQL schema name: use 1 to 63 lower-case letters, digits or '_', not starting with a digit"
    )]
    SchemaName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
}

impl DeParaError {
    /// True when trying again later may succeed (the database was unreachable or busy).
    pub fn is_retryable(&self) -> bool {
        match self {
            DeParaError::Open { source, .. } | DeParaError::Query { source, .. } => matches!(
                source,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::Database(_)
            ),
            DeParaError::Directory { .. } | DeParaError::Unavailable(_) => true,
            DeParaError::SchemaName(_) | DeParaError::Invalid(_) => false,
        }
    }
}

/// A De/Para store. Lookups take `reference`, `alias` and `field` in any case.
pub trait DeParaStore: Send + Sync {
    /// Inserts the pair or replaces the internal value of its key.
    fn upsert(&self, pair: &DeParaPair) -> impl Future<Output = Result<(), DeParaError>> + Send;

    /// Upserts every pair in one transaction: all or none.
    fn upsert_all(
        &self,
        pairs: &[DeParaPair],
    ) -> impl Future<Output = Result<(), DeParaError>> + Send;

    /// Removes a pair; true when it existed.
    fn remove(&self, key: &DeParaKey) -> impl Future<Output = Result<bool, DeParaError>> + Send;

    /// The internal value for an external one (`CFGA070Int`).
    fn internal(
        &self,
        reference: &str,
        alias: &str,
        field: &str,
        external: &str,
    ) -> impl Future<Output = Result<Option<String>, DeParaError>> + Send;

    /// The external value for an internal one (`CFGA070Ext`); the first in order when several
    /// external values share it.
    fn external(
        &self,
        reference: &str,
        alias: &str,
        field: &str,
        internal: &str,
    ) -> impl Future<Output = Result<Option<String>, DeParaError>> + Send;

    /// Several lookups in one round trip: each answer is what [`DeParaStore::internal`] or
    /// [`DeParaStore::external`] gives for it, in the order asked.
    fn lookup_all(
        &self,
        lookups: &[Lookup],
    ) -> impl Future<Output = Result<Vec<Option<String>>, DeParaError>> + Send;

    /// Lists pairs matching `query`, ordered by key.
    fn search(
        &self,
        query: &DeParaQuery,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<DeParaPair>, DeParaError>> + Send;

    /// Inserts a company mapping or replaces the Protheus side of its key.
    fn upsert_company(
        &self,
        mapping: &CompanyMapping,
    ) -> impl Future<Output = Result<(), DeParaError>> + Send;

    /// Upserts every company mapping in one transaction.
    fn upsert_companies(
        &self,
        mappings: &[CompanyMapping],
    ) -> impl Future<Output = Result<(), DeParaError>> + Send;

    /// Removes a company mapping; true when it existed.
    fn remove_company(
        &self,
        reference: &str,
        company: &str,
        branch: &str,
    ) -> impl Future<Output = Result<bool, DeParaError>> + Send;

    /// The Protheus empresa/filial for the counterpart's company and branch (`FWEAIEMPFIL`).
    fn company(
        &self,
        reference: &str,
        company: &str,
        branch: &str,
    ) -> impl Future<Output = Result<Option<ProtheusBranch>, DeParaError>> + Send;

    /// Lists company mappings, of one reference or all, ordered by key.
    fn companies(
        &self,
        reference: Option<&str>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<CompanyMapping>, DeParaError>> + Send;
}

/// The De/Para store eaibus is configured with: SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum DePara {
    Sqlite(SqliteDePara),
    Postgres(PostgresDePara),
}

impl DePara {
    /// Opens the store at `location`: a `postgres://` or `postgresql://` URL, or a SQLite file
    /// (a path, optionally prefixed `sqlite://` or `sqlite:`), created with its tables if
    /// missing.
    pub async fn open(location: &str) -> Result<DePara, DeParaError> {
        let location = location.trim();
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Ok(DePara::Postgres(PostgresDePara::connect(location).await?));
        }
        let path = location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location);
        Ok(DePara::Sqlite(
            SqliteDePara::open(std::path::Path::new(path)).await?,
        ))
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            DePara::Sqlite($store) => $call.await,
            DePara::Postgres($store) => $call.await,
        }
    };
}

impl DeParaStore for DePara {
    async fn upsert(&self, pair: &DeParaPair) -> Result<(), DeParaError> {
        dispatch!(self, s => s.upsert(pair))
    }

    async fn upsert_all(&self, pairs: &[DeParaPair]) -> Result<(), DeParaError> {
        dispatch!(self, s => s.upsert_all(pairs))
    }

    async fn remove(&self, key: &DeParaKey) -> Result<bool, DeParaError> {
        dispatch!(self, s => s.remove(key))
    }

    async fn internal(
        &self,
        reference: &str,
        alias: &str,
        field: &str,
        external: &str,
    ) -> Result<Option<String>, DeParaError> {
        dispatch!(self, s => s.internal(reference, alias, field, external))
    }

    async fn external(
        &self,
        reference: &str,
        alias: &str,
        field: &str,
        internal: &str,
    ) -> Result<Option<String>, DeParaError> {
        dispatch!(self, s => s.external(reference, alias, field, internal))
    }

    async fn lookup_all(&self, lookups: &[Lookup]) -> Result<Vec<Option<String>>, DeParaError> {
        dispatch!(self, s => s.lookup_all(lookups))
    }

    async fn search(
        &self,
        query: &DeParaQuery,
        page: PageRequest,
    ) -> Result<Page<DeParaPair>, DeParaError> {
        dispatch!(self, s => s.search(query, page))
    }

    async fn upsert_company(&self, mapping: &CompanyMapping) -> Result<(), DeParaError> {
        dispatch!(self, s => s.upsert_company(mapping))
    }

    async fn upsert_companies(&self, mappings: &[CompanyMapping]) -> Result<(), DeParaError> {
        dispatch!(self, s => s.upsert_companies(mappings))
    }

    async fn remove_company(
        &self,
        reference: &str,
        company: &str,
        branch: &str,
    ) -> Result<bool, DeParaError> {
        dispatch!(self, s => s.remove_company(reference, company, branch))
    }

    async fn company(
        &self,
        reference: &str,
        company: &str,
        branch: &str,
    ) -> Result<Option<ProtheusBranch>, DeParaError> {
        dispatch!(self, s => s.company(reference, company, branch))
    }

    async fn companies(
        &self,
        reference: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<CompanyMapping>, DeParaError> {
        dispatch!(self, s => s.companies(reference, page))
    }
}

/// What a Response taught the De/Para.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learned {
    pub upserted: usize,
    pub removed: usize,
    /// Pairs without an Origin, or an upsert without a Destination.
    pub skipped: usize,
}

/// Stores what a successful Response says (protocol §6.5): for an upsert or a request, each
/// `Origin` (the counterpart's id, external) → `Destination` (the Protheus id, internal); for a
/// delete, removes each `Origin`. `alias` and `field` are the adapter's (`SA1`/`A1_COD`).
pub async fn learn_from_response<S: DeParaStore>(
    store: &S,
    reference: &str,
    alias: &str,
    field: &str,
    event: Option<Event>,
    pairs: &[InternalIdPair],
) -> Result<Learned, DeParaError> {
    let mut learned = Learned::default();
    let mut upserts = Vec::new();
    for pair in pairs {
        let origin = pair.origin.trim_end();
        if origin.trim().is_empty() {
            learned.skipped += 1;
            continue;
        }
        if event == Some(Event::Delete) {
            if store
                .remove(&DeParaKey::new(reference, alias, field, origin))
                .await?
            {
                learned.removed += 1;
            }
        } else if pair.destination.trim().is_empty() {
            learned.skipped += 1;
        } else {
            upserts.push(DeParaPair::new(
                reference,
                alias,
                field,
                origin,
                &pair.destination,
            ));
        }
    }
    if !upserts.is_empty() {
        store.upsert_all(&upserts).await?;
        learned.upserted = upserts.len();
    }
    Ok(learned)
}

/// A header or Response `Event` text (any case) as an [`Event`]: `upsert`, `delete` or `None`.
pub fn event_from_text(text: Option<&str>) -> Option<Event> {
    let text = text?.trim();
    if text.eq_ignore_ascii_case("delete") {
        Some(Event::Delete)
    } else if text.eq_ignore_ascii_case("upsert") {
        Some(Event::Upsert)
    } else {
        None
    }
}

fn canonical(text: &str) -> String {
    text.trim().to_ascii_uppercase()
}

/// `text` as a LIKE pattern matching it anywhere, lower case, with `%`, `_` and `\` escaped.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A location safe to print: the password of a URL is hidden.
fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical_and_values_exact() {
        let pair = DeParaPair::new(" omni", "sc0 ", "c0_docres", "R-1", "T1|D MG 01|000001|LJ ");
        assert_eq!(
            (
                pair.reference.as_str(),
                pair.alias.as_str(),
                pair.field.as_str()
            ),
            ("OMNI", "SC0", "C0_DOCRES")
        );
        assert_eq!(pair.internal, "T1|D MG 01|000001|LJ ");
        assert!(
            DeParaPair::new("OMNI", "SA1", "A1_COD", "", "x")
                .check()
                .is_err()
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("A_1%"), "%a\\_1\\%%");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact("postgres://eai:secret@db:5432/eaibus"),
            "postgres://eai:***@db:5432/eaibus"
        );
        assert_eq!(redact("postgres://db/eaibus"), "postgres://db/eaibus");
        assert_eq!(
            redact("/var/lib/eaibus/depara.db"),
            "/var/lib/eaibus/depara.db"
        );
    }

    #[test]
    fn reads_event_texts() {
        assert_eq!(event_from_text(Some("DELETE")), Some(Event::Delete));
        assert_eq!(event_from_text(Some("upsert")), Some(Event::Upsert));
        assert_eq!(event_from_text(Some("request")), None);
        assert_eq!(event_from_text(None), None);
    }
}
