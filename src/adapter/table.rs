//! The adapter table: one registered adapter per file in `adapters/*.toml`, with the fields of
//! SIGACFG's "Adapter EAI" (protocol §7.1), checked against the routes and the schema registry
//! at load. It answers which adapter receives a message (or why none does), which adapters send
//! a transaction, and what to answer a WhoIs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::condition::{ConditionError, SendCondition};
use super::depara::DeParaStore;
use super::load::{KeySchema, LoadError, LoadErrorKind, LoadErrors, Location, SourceFile};
use super::mapping::{MappedValue, MappingError};
use super::route::{Route, RouteKind, RouteTable, SECRET_KEYS};
use crate::message::{Event, Field, Format, Header, Message};
use crate::schema::SchemaRegistry;

/// `XX4_METODO`: whether the sender waits for the Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Sync,
    Async,
}

/// `XX4_TPOPER`: the events an adapter handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Upserts, deletes and requests.
    #[default]
    All,
    /// Upserts and requests (anything but a delete).
    Upsert,
    /// Deletes only.
    Delete,
}

impl Operation {
    /// Whether a message with this header `Event` (`None` for requests) is handled.
    pub fn allows(self, event: Option<Event>) -> bool {
        match self {
            Operation::All => true,
            Operation::Upsert => event != Some(Event::Delete),
            Operation::Delete => event == Some(Event::Delete),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::All => "all",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `XX4_CHANEL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Eai,
    Esb,
}

/// What a `[[mapping]]` does with the value it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingMode {
    /// The value is the counterpart's id (De/Para external); it is replaced by the internal
    /// (Protheus) id.
    #[default]
    ToInternal,
    /// The value is an internal (Protheus) id; it is replaced by the counterpart's id. For
    /// messages from Protheus to the counterpart.
    ToExternal,
    /// The pair must exist (the dependency was integrated), and the value is left as it is: the
    /// receiver does its own De/Para (protocol §5.5).
    Check,
}

impl MappingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingMode::ToInternal => "to-internal",
            MappingMode::ToExternal => "to-external",
            MappingMode::Check => "check",
        }
    }
}

/// One De/Para lookup applied to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// JSON pointer into Content; a `*` segment stands for every item of a list.
    pub path: String,
    pub alias: String,
    pub field: String,
    /// A missing pair is an error ("não integrado") rather than a value left as sent.
    pub required: bool,
    pub mode: MappingMode,
}

/// The WhoIs mode of a transaction version (protocol §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WhoIsMode {
    SendEnabled,
    ReceiveEnabled,
    BothEnabled,
}

impl WhoIsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WhoIsMode::SendEnabled => "SEND_ENABLED",
            WhoIsMode::ReceiveEnabled => "RECEIVE_ENABLED",
            WhoIsMode::BothEnabled => "BOTH_ENABLED",
        }
    }

    fn of(send: bool, receive: bool) -> Option<WhoIsMode> {
        match (send, receive) {
            (true, true) => Some(WhoIsMode::BothEnabled),
            (true, false) => Some(WhoIsMode::SendEnabled),
            (false, true) => Some(WhoIsMode::ReceiveEnabled),
            (false, false) => None,
        }
    }
}

impl fmt::Display for WhoIsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a WhoIs answer: `EnabledTransactions.Transaction`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WhoIsEntry {
    /// The transaction as its contract spells it (`RetailSales`).
    pub transaction: String,
    pub version: String,
    pub mode: WhoIsMode,
}

/// One registered adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    /// The file name without `.toml`.
    pub name: String,
    /// The file, as given to the loader.
    pub file: String,
    /// `XX4_ROTINA`, e.g. `LOJA701`.
    pub routine: String,
    /// The transaction, as its contract spells it (`RetailSales`).
    pub message: String,
    pub description: String,
    pub send: bool,
    pub receive: bool,
    pub method: Method,
    pub operation: Operation,
    pub condition: Option<SendCondition>,
    pub channel: Channel,
    /// Enabled versions, `M.mmm`, each with a schema.
    pub versions: Vec<String>,
    /// The main Protheus alias (`SL1`) and the field keying its De/Para (`L1_DOC`).
    pub alias: String,
    pub depara_field: String,
    /// The route a send goes along.
    pub route: String,
    pub format: Format,
    /// The company and branch the adapter applies to; `None` for all.
    pub company: Option<String>,
    pub branch: Option<String>,
    pub mappings: Vec<Mapping>,
}

impl Adapter {
    /// Whether the adapter handles `transaction` (any case).
    pub fn handles(&self, transaction: &str) -> bool {
        self.message.eq_ignore_ascii_case(transaction.trim())
    }

    pub fn enables_version(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version.trim())
    }

    /// Whether the adapter applies to a message of this company and branch.
    pub fn applies_to(&self, company: Option<&str>, branch: Option<&str>) -> bool {
        let matches = |wanted: &Option<String>, got: Option<&str>| match wanted {
            None => true,
            Some(w) => got.is_some_and(|g| g.trim().eq_ignore_ascii_case(w.trim())),
        };
        matches(&self.company, company) && matches(&self.branch, branch)
    }

    /// Whether the send condition lets `message` go; true without a condition.
    pub fn should_send(&self, message: &Message) -> Result<bool, ConditionError> {
        match &self.condition {
            Some(condition) => condition.evaluate(message),
            None => Ok(true),
        }
    }

    /// The WhoIs mode of this adapter; `None` when it neither sends nor receives.
    pub fn mode(&self) -> Option<WhoIsMode> {
        WhoIsMode::of(self.send, self.receive)
    }

    /// How specific the company/branch scope is: 0 all, 1 a company, 2 a branch.
    fn specificity(&self) -> u8 {
        u8::from(self.company.is_some()) + u8::from(self.branch.is_some())
    }

    fn scope(&self) -> String {
        scope_text(self.company.as_deref(), self.branch.as_deref())
    }
}

fn scope_text(company: Option<&str>, branch: Option<&str>) -> String {
    match (company, branch) {
        (None, None) => "every company".to_owned(),
        (Some(c), None) => format!("company {c:?}"),
        (Some(c), Some(b)) => format!("company {c:?} branch {b:?}"),
        (None, Some(b)) => format!("branch {b:?}"),
    }
}

/// Why no adapter receives a message. Permanent: the message or the table must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("The message names no transaction, so no adapter can receive it.")]
    NoTransaction,
    #[error("No adapter receives {transaction}.")]
    NoAdapter { transaction: String },
    #[error("No adapter receives {transaction} for {}.", scope_text(.company.as_deref(), .branch.as_deref()))]
    NotForCompany {
        transaction: String,
        company: Option<String>,
        branch: Option<String>,
    },
    #[error("The adapter {adapter} ({routine}) has receive disabled for {transaction}.")]
    ReceiveDisabled {
        transaction: String,
        adapter: String,
        routine: String,
    },
    #[error(
        "{transaction} version {} is not enabled; the enabled versions are {}.",
        .version.as_deref().unwrap_or("(none given)"),
        .enabled.join(", ")
    )]
    VersionNotEnabled {
        transaction: String,
        version: Option<String>,
        enabled: Vec<String>,
    },
    #[error(
        "The operation {event} is not enabled for {transaction}: the adapter {adapter} handles only operation {operation}."
    )]
    OperationNotEnabled {
        transaction: String,
        event: String,
        operation: Operation,
        adapter: String,
    },
}

/// The registered adapters and the routes they send along.
#[derive(Debug, Clone, Default)]
pub struct AdapterTable {
    adapters: Vec<Adapter>,
    routes: RouteTable,
}

const ADAPTER_KEYS: &[&str] = &[
    "routine",
    "message",
    "description",
    "send",
    "receive",
    "method",
    "operation",
    "condition",
    "channel",
    "versions",
    "alias",
    "depara_field",
    "route",
    "format",
    "company",
    "branch",
    "mapping",
];

const MAPPING_KEYS: &[&str] = &["path", "alias", "field", "required", "mode"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    routine: Spanned<String>,
    message: Spanned<String>,
    #[serde(default)]
    description: String,
    send: bool,
    receive: bool,
    method: Method,
    #[serde(default)]
    operation: Operation,
    condition: Option<Spanned<String>>,
    #[serde(default)]
    channel: Channel,
    versions: Spanned<Vec<Spanned<String>>>,
    alias: Spanned<String>,
    depara_field: Spanned<String>,
    route: Spanned<String>,
    format: Spanned<Format>,
    company: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    #[serde(default)]
    mapping: Vec<RawMapping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    path: Spanned<String>,
    alias: Spanned<String>,
    field: Spanned<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    mode: MappingMode,
}

impl AdapterTable {
    /// Loads every `*.toml` of `adapters_dir` and the routes file, checking each adapter against
    /// the routes and the schemas. Returns every problem found, each with `FILE:LINE:COLUMN`.
    pub fn load(
        adapters_dir: &Path,
        routes_file: &Path,
        registry: &SchemaRegistry,
    ) -> Result<AdapterTable, LoadErrors> {
        let mut errors = Vec::new();
        let routes_name = routes_file.display().to_string();
        let routes_text = match std::fs::read_to_string(routes_file) {
            Ok(text) => Some(text),
            Err(e) => {
                errors.push(io_error(&routes_name, &e));
                None
            }
        };
        let mut adapters = Vec::new();
        match list_toml(adapters_dir) {
            Ok(paths) => {
                for path in paths {
                    let name = path.display().to_string();
                    match std::fs::read_to_string(&path) {
                        Ok(text) => adapters.push((name, text)),
                        Err(e) => errors.push(io_error(&name, &e)),
                    }
                }
            }
            Err(e) => errors.push(io_error(&adapters_dir.display().to_string(), &e)),
        }
        let routes = routes_text
            .as_deref()
            .map(|text| (routes_name.as_str(), text));
        match Self::build(routes, &adapters, registry) {
            Ok(table) if errors.is_empty() => Ok(table),
            Ok(_) => Err(LoadErrors(errors)),
            Err(LoadErrors(mut more)) => {
                errors.append(&mut more);
                Err(LoadErrors(errors))
            }
        }
    }

    /// Builds the table from texts: the routes file `(name, text)` and the adapter files
    /// `(name, text)`; the names are used in errors and as adapter names.
    pub fn from_sources(
        routes: (&str, &str),
        adapters: &[(String, String)],
        registry: &SchemaRegistry,
    ) -> Result<AdapterTable, LoadErrors> {
        Self::build(Some(routes), adapters, registry)
    }

    fn build(
        routes: Option<(&str, &str)>,
        adapter_files: &[(String, String)],
        registry: &SchemaRegistry,
    ) -> Result<AdapterTable, LoadErrors> {
        let mut errors = Vec::new();
        let routes = match routes.map(|(name, text)| RouteTable::parse(name, text)) {
            Some(Ok(routes)) => Some(routes),
            Some(Err(mut e)) => {
                errors.append(&mut e);
                None
            }
            None => None,
        };
        let mut adapters = Vec::new();
        let mut first_seen: HashMap<(String, &'static str, String, String), Location> =
            HashMap::new();
        for (file, text) in adapter_files {
            let source = SourceFile { name: file, text };
            let (adapter, message_at) = match read_adapter(&source, routes.as_ref(), registry) {
                Ok(read) => read,
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            };
            let mut duplicate = false;
            for (on, direction) in [(adapter.send, "sends"), (adapter.receive, "receives")] {
                if !on {
                    continue;
                }
                let key = (
                    adapter.message.to_ascii_uppercase(),
                    direction,
                    fold(adapter.company.as_deref()),
                    fold(adapter.branch.as_deref()),
                );
                if let Some(first) = first_seen.get(&key) {
                    duplicate = true;
                    errors.push(LoadError {
                        location: message_at.clone(),
                        kind: LoadErrorKind::DuplicateAdapter {
                            message: adapter.message.clone(),
                            direction,
                            scope: adapter.scope(),
                            first: first.clone(),
                        },
                    });
                } else {
                    first_seen.insert(key, message_at.clone());
                }
            }
            if !duplicate {
                adapters.push(adapter);
            }
        }
        if let Some(routes) = &routes {
            errors.extend(unsendable_traces(routes, &adapters));
        }
        if errors.is_empty() {
            Ok(AdapterTable {
                adapters,
                routes: routes.unwrap_or_default(),
            })
        } else {
            Err(LoadErrors(errors))
        }
    }

    pub fn adapters(&self) -> &[Adapter] {
        &self.adapters
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The route an adapter sends along (always present in a loaded table).
    pub fn route_of(&self, adapter: &Adapter) -> Option<&Route> {
        self.routes.get(&adapter.route)
    }

    /// The adapter that receives a message with this header, or why there is none. The most
    /// specific company/branch scope wins; then its version and operation must be enabled.
    pub fn receiver(&self, header: &Header) -> Result<&Adapter, Refusal> {
        let transaction = header.transaction().trim();
        if transaction.is_empty() {
            return Err(Refusal::NoTransaction);
        }
        let candidates: Vec<&Adapter> = self
            .adapters
            .iter()
            .filter(|a| a.handles(transaction))
            .collect();
        if candidates.is_empty() {
            return Err(Refusal::NoAdapter {
                transaction: transaction.to_owned(),
            });
        }
        let company = header.get(Field::CompanyId);
        let branch = header.get(Field::BranchId);
        let scoped: Vec<&Adapter> = candidates
            .into_iter()
            .filter(|a| a.applies_to(company, branch))
            .collect();
        let Some(first) = scoped.first() else {
            return Err(Refusal::NotForCompany {
                transaction: transaction.to_owned(),
                company: company.map(str::to_owned),
                branch: branch.map(str::to_owned),
            });
        };
        let Some(adapter) = scoped
            .iter()
            .filter(|a| a.receive)
            .max_by_key(|a| a.specificity())
        else {
            return Err(Refusal::ReceiveDisabled {
                transaction: first.message.clone(),
                adapter: first.name.clone(),
                routine: first.routine.clone(),
            });
        };
        let version = header.version().map(str::trim);
        if !version.is_some_and(|v| adapter.enables_version(v)) {
            return Err(Refusal::VersionNotEnabled {
                transaction: adapter.message.clone(),
                version: version.map(str::to_owned),
                enabled: adapter.versions.clone(),
            });
        }
        let event = header.event();
        if !adapter.operation.allows(event) {
            return Err(Refusal::OperationNotEnabled {
                transaction: adapter.message.clone(),
                event: header
                    .get(Field::Event)
                    .unwrap_or(if header.is_request() {
                        "request"
                    } else {
                        "(none)"
                    })
                    .to_owned(),
                operation: adapter.operation,
                adapter: adapter.name.clone(),
            });
        }
        Ok(*adapter)
    }

    /// The adapters that send `transaction` (any case), whatever the version or scope.
    pub fn senders(&self, transaction: &str) -> Vec<&Adapter> {
        self.adapters
            .iter()
            .filter(|a| a.send && a.handles(transaction))
            .collect()
    }

    /// The adapters that send this message: transaction, version, operation, company and
    /// branch all match. The send condition is not evaluated here (see `Adapter::should_send`).
    pub fn senders_for(&self, header: &Header) -> Vec<&Adapter> {
        let company = header.get(Field::CompanyId);
        let branch = header.get(Field::BranchId);
        self.senders(header.transaction())
            .into_iter()
            .filter(|a| {
                header.version().is_some_and(|v| a.enables_version(v))
                    && a.operation.allows(header.event())
                    && a.applies_to(company, branch)
            })
            .collect()
    }

    /// Applies the adapter's `[[mapping]]` lookups to `message`, choosing the De/Para reference
    /// for each: the sender's header `ProductName` (e.g. `OMNI`) for `to-internal` and `check`
    /// mappings, and the product of the adapter's route (the counterpart the message goes to)
    /// for `to-external` ones. See [`apply_mappings`](super::apply_mappings).
    pub async fn apply_mappings<S: DeParaStore>(
        &self,
        adapter: &Adapter,
        message: &mut Message,
        store: &S,
    ) -> Result<Vec<MappedValue>, MappingError> {
        let sender = message.header.product_name().unwrap_or_default().to_owned();
        let receiver = self
            .route_of(adapter)
            .map_or_else(|| sender.clone(), |r| r.product.clone());
        super::mapping::apply(adapter, &sender, &receiver, message, store).await
    }

    /// What eaibus answers to a WhoIs: one entry per transaction and version, with the union of
    /// the modes of the adapters that enable it.
    pub fn whois(&self) -> Vec<WhoIsEntry> {
        let mut modes: BTreeMap<(String, String), (bool, bool)> = BTreeMap::new();
        for adapter in &self.adapters {
            for version in &adapter.versions {
                let entry = modes
                    .entry((adapter.message.clone(), version.clone()))
                    .or_default();
                entry.0 |= adapter.send;
                entry.1 |= adapter.receive;
            }
        }
        modes
            .into_iter()
            .filter_map(|((transaction, version), (send, receive))| {
                WhoIsMode::of(send, receive).map(|mode| WhoIsEntry {
                    transaction,
                    version,
                    mode,
                })
            })
            .collect()
    }
}

fn fold(value: Option<&str>) -> String {
    value
        .map(|v| v.trim().to_ascii_uppercase())
        .unwrap_or_default()
}

fn io_error(file: &str, error: &std::io::Error) -> LoadError {
    LoadError {
        location: Location::file(file),
        kind: LoadErrorKind::Io(error.to_string()),
    }
}

fn list_toml(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads and checks one adapter file; also returns where its `message` is (for duplicates).
fn read_adapter(
    source: &SourceFile,
    routes: Option<&RouteTable>,
    registry: &SchemaRegistry,
) -> Result<(Adapter, Location), Vec<LoadError>> {
    let keys = KeySchema {
        top: ADAPTER_KEYS,
        tables: &[("mapping", MAPPING_KEYS)],
        secrets: SECRET_KEYS,
    };
    let raw: RawAdapter = source.parse(&keys)?;
    let mut errors = Vec::new();
    let invalid = |errors: &mut Vec<LoadError>, span: &std::ops::Range<usize>, text: String| {
        errors.push(source.error(span, LoadErrorKind::Invalid(text)));
    };

    for (key, value) in [
        ("routine", &raw.routine),
        ("message", &raw.message),
        ("alias", &raw.alias),
        ("depara_field", &raw.depara_field),
        ("route", &raw.route),
    ] {
        if value.get_ref().trim().is_empty() {
            invalid(&mut errors, &value.span(), format!("`{key}` is empty"));
        }
    }

    // The transaction and its versions must have schemas.
    let requested = raw.message.get_ref().trim();
    let known = registry.versions(requested);
    let mut message = requested.to_owned();
    if known.is_empty() {
        if !requested.is_empty() {
            errors.push(source.error(
                &raw.message.span(),
                LoadErrorKind::UnknownTransaction {
                    message: requested.to_owned(),
                },
            ));
        }
    } else if let Some(schema) = registry.get(requested, known[0]) {
        message = schema.name.clone();
    }
    if raw.versions.get_ref().is_empty() {
        invalid(
            &mut errors,
            &raw.versions.span(),
            "`versions` is empty; list the versions this adapter enables".to_owned(),
        );
    }
    let mut versions: Vec<String> = Vec::new();
    for version in raw.versions.get_ref() {
        let text = version.get_ref().trim();
        if !is_version(text) {
            invalid(
                &mut errors,
                &version.span(),
                format!("version {text:?} is not of the form M.mmm (e.g. 2.009)"),
            );
        } else if versions.iter().any(|v| v == text) {
            invalid(
                &mut errors,
                &version.span(),
                format!("version {text} is listed twice"),
            );
        } else if !known.is_empty() && registry.get(requested, text).is_none() {
            errors.push(source.error(
                &version.span(),
                LoadErrorKind::UnknownVersion {
                    message: message.clone(),
                    version: text.to_owned(),
                    known: known.iter().map(|v| (*v).to_owned()).collect(),
                },
            ));
        } else {
            versions.push(text.to_owned());
        }
    }

    // The route must exist and fit the adapter.
    let route_name = raw.route.get_ref().trim();
    let format = *raw.format.get_ref();
    if let Some(routes) = routes {
        match routes.get(route_name) {
            None if !route_name.is_empty() => errors.push(source.error(
                &raw.route.span(),
                LoadErrorKind::UnknownRoute {
                    route: route_name.to_owned(),
                    known: routes.names(),
                },
            )),
            None => {}
            Some(route) => {
                let expected = match route.kind {
                    RouteKind::EaiRest => Some(Format::Json),
                    RouteKind::EaiSoap => Some(Format::Xml),
                    RouteKind::Kafka => None,
                };
                if let Some(expected) = expected
                    && expected != format
                {
                    invalid(
                        &mut errors,
                        &raw.format.span(),
                        format!(
                            "format {} does not fit route {route_name:?}: {} carries {}",
                            format.as_str(),
                            route.kind,
                            expected.as_str()
                        ),
                    );
                }
                if raw.method == Method::Sync && !route.kind.is_eai() {
                    invalid(
                        &mut errors,
                        &raw.route.span(),
                        format!(
                            "method sync needs a route that answers, but {route_name:?} is a Kafka topic; use method async"
                        ),
                    );
                }
            }
        }
    }

    let condition = match &raw.condition {
        None => None,
        Some(text) => match SendCondition::compile(text.get_ref()) {
            Ok(condition) => Some(condition),
            Err(e) => {
                errors.push(source.error(&text.span(), LoadErrorKind::Condition(e)));
                None
            }
        },
    };

    let text_of = |value: &Option<Spanned<String>>, key: &str, errors: &mut Vec<LoadError>| {
        let value = value.as_ref()?;
        let text = value.get_ref().trim();
        if text.is_empty() {
            errors.push(source.error(
                &value.span(),
                LoadErrorKind::Invalid(format!(
                    "`{key}` is empty; leave it out to mean every {key}"
                )),
            ));
        }
        Some(text.to_owned())
    };
    let company = text_of(&raw.company, "company", &mut errors);
    let branch = text_of(&raw.branch, "branch", &mut errors);
    if let (None, Some(b)) = (&raw.company, &raw.branch) {
        invalid(
            &mut errors,
            &b.span(),
            "`branch` needs `company`: a branch code is only unique within its company".to_owned(),
        );
    }

    let mut mappings = Vec::new();
    for m in &raw.mapping {
        let path = m.path.get_ref().trim();
        if !path.starts_with('/') || path.split('/').skip(1).any(str::is_empty) {
            invalid(
                &mut errors,
                &m.path.span(),
                format!(
                    "mapping path {path:?} must be a JSON pointer into Content, such as /ListOfSaleItem/*/ItemInternalId"
                ),
            );
        }
        for (key, value) in [("alias", &m.alias), ("field", &m.field)] {
            if value.get_ref().trim().is_empty() {
                invalid(
                    &mut errors,
                    &value.span(),
                    format!("mapping `{key}` is empty"),
                );
            }
        }
        mappings.push(Mapping {
            path: path.to_owned(),
            alias: m.alias.get_ref().trim().to_ascii_uppercase(),
            field: m.field.get_ref().trim().to_ascii_uppercase(),
            required: m.required,
            mode: m.mode,
        });
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let name = Path::new(source.name).file_stem().map_or_else(
        || source.name.to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    let message_at = source.location(&raw.message.span());
    Ok((
        Adapter {
            name,
            file: source.name.to_owned(),
            routine: raw.routine.get_ref().trim().to_owned(),
            message,
            description: raw.description.trim().to_owned(),
            send: raw.send,
            receive: raw.receive,
            method: raw.method,
            operation: raw.operation,
            condition,
            channel: raw.channel,
            versions,
            alias: raw.alias.get_ref().trim().to_ascii_uppercase(),
            depara_field: raw.depara_field.get_ref().trim().to_ascii_uppercase(),
            route: route_name.to_owned(),
            format,
            company,
            branch,
            mappings,
        },
        message_at,
    ))
}

/// `M.mmm`: digits, a dot, three digits.
fn is_version(text: &str) -> bool {
    match text.split_once('.') {
        Some((major, minor)) => {
            !major.is_empty()
                && major.chars().all(|c| c.is_ascii_digit())
                && minor.len() == 3
                && minor.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// The order projection writes DocumentTraceabilityOrder (sales orders) and
/// DocumentTraceAbilityOrderRetail (pickup-later orçamentos) for a route with `order_trace`, and
/// the route's worker delivers them through the adapter that sends them along it (format,
/// version, retries). A route asking for them without such adapters would park every one.
fn unsendable_traces(routes: &RouteTable, adapters: &[Adapter]) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for route in routes.iter() {
        let Some(version) = &route.order_trace else {
            continue;
        };
        for message in crate::order::trace::MESSAGES {
            let sent = adapters.iter().any(|a| {
                a.send
                    && a.route == route.name
                    && a.message.eq_ignore_ascii_case(message)
                    && a.enables_version(version)
                    && a.operation.allows(Some(Event::Upsert))
            });
            if !sent {
                let location = routes
                    .order_trace_location(&route.name)
                    .cloned()
                    .unwrap_or_else(|| Location::file("routes"));
                errors.push(LoadError {
                    location,
                    kind: LoadErrorKind::Invalid(format!(
                        "route {:?}: order_trace = {version:?} needs an adapter that sends \
                         {message} {version} (upsert) along {:?}, and none does",
                        route.name, route.name
                    )),
                });
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_allow_their_events() {
        assert!(Operation::All.allows(Some(Event::Delete)));
        assert!(Operation::All.allows(None));
        assert!(Operation::Upsert.allows(Some(Event::Upsert)));
        assert!(Operation::Upsert.allows(None));
        assert!(!Operation::Upsert.allows(Some(Event::Delete)));
        assert!(Operation::Delete.allows(Some(Event::Delete)));
        assert!(!Operation::Delete.allows(Some(Event::Upsert)));
    }

    #[test]
    fn versions_are_m_dot_mmm() {
        assert!(is_version("2.009"));
        assert!(is_version("10.000"));
        assert!(!is_version("2.9"));
        assert!(!is_version("2"));
        assert!(!is_version("a.000"));
        assert!(!is_version(".000"));
    }

    #[test]
    fn whois_modes_combine() {
        assert_eq!(WhoIsMode::of(true, true), Some(WhoIsMode::BothEnabled));
        assert_eq!(
            WhoIsMode::of(false, true).map(WhoIsMode::as_str),
            Some("RECEIVE_ENABLED")
        );
        assert_eq!(WhoIsMode::of(false, false), None);
    }
}
