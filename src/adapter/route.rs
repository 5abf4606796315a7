//! Routes: where a send-enabled adapter delivers (the SIGACFG "Cadastro de Rotas EAI",
//! protocol §7.3) — a Kafka topic or a Protheus EAI endpoint (REST or SOAP). Credentials are
//! never written in the file: a route names the environment variables that hold them, and they
//! are read when the route is used.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::load::{KeySchema, LoadError, LoadErrorKind, LoadErrors, Location, SourceFile};

/// What sits at the end of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteKind {
    /// A Kafka topic.
    Kafka,
    /// `POST /totvseai/standardmessage/v1/transactions` (JSON).
    EaiRest,
    /// `EAISERVICE.apw` `RECEIVEMESSAGE` (XML in SOAP).
    EaiSoap,
}

impl RouteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Kafka => "kafka",
            RouteKind::EaiRest => "eai-rest",
            RouteKind::EaiSoap => "eai-soap",
        }
    }

    /// True for the EAI endpoints, which answer (Response or Receipt); a topic does not.
    pub fn is_eai(self) -> bool {
        !matches!(self, RouteKind::Kafka)
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    /// The product at the other end ("Produto"), e.g. `OMNI`, `PROTHEUS`.
    pub product: String,
    /// The `SourceApplication` the counterpart uses ("Aplicação").
    pub application: String,
    pub kind: RouteKind,
    /// A topic for `kafka`, a URL for `eai-rest` and `eai-soap`.
    pub target: String,
    /// The name of the environment variable holding the user.
    pub user_env: Option<String>,
    /// The name of the environment variable holding the password.
    pub password_env: Option<String>,
    pub timeout: Option<Duration>,
    /// The DocumentTraceabilityOrder(+Retail) version this route receives on each order status
    /// change (`order_trace = "1.001"`); `None`: the route gets no traceability messages from
    /// the order projection.
    pub order_trace: Option<String>,
}

/// A user and password read from the environment. The password is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A route that cannot be used right now. Fixed by setting the environment, then retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "route {route:?} needs the environment variable {variable} (the {purpose}), which is not set"
    )]
    MissingVariable {
        route: String,
        variable: String,
        purpose: &'static str,
    },
    #[error("route {route:?}: the environment variable {variable} does not hold valid Unicode")]
    NotUnicode { route: String, variable: String },
}

impl Route {
    /// The credentials, read from the environment now; `None` when the route needs none.
    pub fn credentials(&self) -> Result<Option<Credentials>, RouteError> {
        self.credentials_from(|name| std::env::var(name))
    }

    /// The credentials, read through `lookup` (the environment, in production).
    pub fn credentials_from(
        &self,
        lookup: impl Fn(&str) -> Result<String, std::env::VarError>,
    ) -> Result<Option<Credentials>, RouteError> {
        let (Some(user_env), Some(password_env)) = (&self.user_env, &self.password_env) else {
            return Ok(None);
        };
        let read = |variable: &str, purpose| match lookup(variable) {
            Ok(value) => Ok(value),
            Err(std::env::VarError::NotPresent) => Err(RouteError::MissingVariable {
                route: self.name.clone(),
                variable: variable.to_owned(),
                purpose,
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(RouteError::NotUnicode {
                route: self.name.clone(),
                variable: variable.to_owned(),
            }),
        };
        let user = read(user_env, "user")?;
        let password = read(password_env, "password")?;
        Ok(Some(Credentials { user, password }))
    }

    /// The topic of a Kafka route.
    pub fn topic(&self) -> Option<&str> {
        (self.kind == RouteKind::Kafka).then_some(self.target.as_str())
    }

    /// The URL of an EAI route.
    pub fn url(&self) -> Option<&str> {
        self.kind.is_eai().then_some(self.target.as_str())
    }
}

/// Every route, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: BTreeMap<String, Route>,
    /// Where each route's `order_trace` is written, for errors found with the adapters.
    order_trace_at: BTreeMap<String, Location>,
}

const ROUTE_KEYS: &[&str] = &[
    "name",
    "product",
    "application",
    "kind",
    "target",
    "user_env",
    "password_env",
    "timeout_ms",
    "order_trace",
];

pub(crate) const SECRET_KEYS: &[(&str, &str)] = &[
    ("password", "password_env"),
    ("senha", "password_env"),
    ("secret", "password_env"),
    ("token", "password_env"),
    ("user", "user_env"),
    ("usuario", "user_env"),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Spanned<String>,
    product: Spanned<String>,
    application: Spanned<String>,
    kind: RouteKind,
    target: Spanned<String>,
    user_env: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    order_trace: Option<Spanned<String>>,
}

impl RouteTable {
    /// Reads a routes file (`[[route]]` tables).
    pub fn load(path: &Path) -> Result<RouteTable, LoadErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadErrors(vec![LoadError {
                location: Location::file(&name),
                kind: LoadErrorKind::Io(e.to_string()),
            }])
        })?;
        Self::parse(&name, &text).map_err(LoadErrors)
    }

    /// Reads routes from text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<RouteTable, Vec<LoadError>> {
        let source = SourceFile { name: file, text };
        let keys = KeySchema {
            top: &["route"],
            tables: &[("route", ROUTE_KEYS)],
            secrets: SECRET_KEYS,
        };
        let parsed: RoutesFile = source.parse(&keys)?;
        let mut errors = Vec::new();
        let mut routes = BTreeMap::new();
        let mut order_trace_at = BTreeMap::new();
        let mut first_seen: BTreeMap<String, Location> = BTreeMap::new();
        for raw in parsed.route {
            let name = raw.name.get_ref().trim().to_owned();
            let location = source.location(&raw.name.span());
            if let Some(first) = first_seen.get(&name) {
                errors.push(LoadError {
                    location,
                    kind: LoadErrorKind::DuplicateRoute {
                        name,
                        first: first.clone(),
                    },
                });
                continue;
            }
            first_seen.insert(name.clone(), location);
            if let Some(trace) = &raw.order_trace {
                order_trace_at.insert(name, source.location(&trace.span()));
            }
            match check_route(&source, raw) {
                Ok(route) => {
                    routes.insert(route.name.clone(), route);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(RouteTable {
                routes,
                order_trace_at,
            })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    /// Where the route's `order_trace` setting is written.
    pub fn order_trace_location(&self, name: &str) -> Option<&Location> {
        self.order_trace_at.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.values()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn check_route(source: &SourceFile, raw: RawRoute) -> Result<Route, Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut invalid = |span: &std::ops::Range<usize>, text: String| {
        errors.push(source.error(span, LoadErrorKind::Invalid(text)));
    };
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        invalid(
            &raw.name.span(),
            format!("route name {name:?} must be letters, digits, '-', '_' or '.'"),
        );
    }
    for (field, value) in [("product", &raw.product), ("application", &raw.application)] {
        if value.get_ref().trim().is_empty() {
            invalid(&value.span(), format!("route {name:?}: `{field}` is empty"));
        }
    }
    let target = raw.target.get_ref().trim().to_owned();
    match raw.kind {
        RouteKind::Kafka => {
            let valid = !target.is_empty()
                && target.len() <= 249
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                invalid(
                    &raw.target.span(),
                    format!(
                        "route {name:?} is kind kafka, so its target must be a topic name \
                         (letters, digits, '.', '_', '-'), not {target:?}"
                    ),
                );
            }
        }
        RouteKind::EaiRest | RouteKind::EaiSoap => {
            if !(target.starts_with("http://") || target.starts_with("https://")) {
                invalid(
                    &raw.target.span(),
                    format!(
                        "route {name:?} is kind {}, so its target must be an http:// or https:// URL, not {target:?}",
                        raw.kind
                    ),
                );
            }
        }
    }
    for variable in [&raw.user_env, &raw.password_env].into_iter().flatten() {
        if !is_env_name(variable.get_ref()) {
            invalid(
                &variable.span(),
                format!(
                    "{:?} is not an environment variable name (letters, digits and '_', not starting with a digit)",
                    variable.get_ref()
                ),
            );
        }
    }
    match (&raw.user_env, &raw.password_env) {
        (Some(only), None) | (None, Some(only)) => invalid(
            &only.span(),
            format!("route {name:?} must name both user_env and password_env, or neither"),
        ),
        _ => {}
    }
    if let Some(timeout) = &raw.timeout_ms
        && *timeout.get_ref() == 0
    {
        invalid(
            &timeout.span(),
            format!("route {name:?}: timeout_ms must be above 0"),
        );
    }
    if let Some(trace) = &raw.order_trace {
        let version = trace.get_ref().trim();
        if !crate::order::trace::VERSIONS.contains(&version) {
            invalid(
                &trace.span(),
                format!(
                    "route {name:?}: order_trace = {version:?} is not a traceability version \
                     eaibus writes; write one of: {}",
                    crate::order::trace::VERSIONS.join(", ")
                ),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Route {
        name,
        product: raw.product.into_inner().trim().to_owned(),
        application: raw.application.into_inner().trim().to_owned(),
        kind: raw.kind,
        target,
        user_env: raw.user_env.map(Spanned::into_inner),
        password_env: raw.password_env.map(Spanned::into_inner),
        timeout: raw
            .timeout_ms
            .map(|t| Duration::from_millis(t.into_inner())),
        order_trace: raw.order_trace.map(|t| t.into_inner().trim().to_owned()),
    })
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = r#"
[[route]]
name = "protheus"
product = "PROTHEUS"
application = "P12"
kind = "eai-rest"
target = "http://127.0.0.1:8081/totvseai/standardmessage/v1/transactions"
user_env = "EAIBUS_PROTHEUS_USER"
password_env = "EAIBUS_PROTHEUS_PASSWORD"
timeout_ms = 30000

[[route]]
name = "omni"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "omni.order-trace"
"#;

    #[test]
    fn reads_routes_and_credentials_from_the_environment() {
        let table = RouteTable::parse("routes.toml", ROUTES).unwrap();
        let protheus = table.get("protheus").unwrap();
        assert_eq!(protheus.kind, RouteKind::EaiRest);
        assert_eq!(protheus.timeout, Some(Duration::from_secs(30)));
        assert!(protheus.topic().is_none());
        let env = |name: &str| match name {
            "EAIBUS_PROTHEUS_USER" => Ok("admin".to_owned()),
            "EAIBUS_PROTHEUS_PASSWORD" => Ok("s3cret".to_owned()),
            _ => Err(std::env::VarError::NotPresent),
        };
        let credentials = protheus.credentials_from(env).unwrap().unwrap();
        assert_eq!(
            (credentials.user.as_str(), credentials.password()),
            ("admin", "s3cret")
        );
        assert!(!format!("{credentials:?}").contains("s3cret"));
        let missing = protheus
            .credentials_from(|_| Err(std::env::VarError::NotPresent))
            .unwrap_err();
        assert!(
            missing.to_string().contains("EAIBUS_PROTHEUS_USER"),
            "{missing}"
        );
        let omni = table.get("omni").unwrap();
        assert_eq!(omni.topic(), Some("omni.order-trace"));
        assert_eq!(
            omni.credentials_from(|_| Err(std::env::VarError::NotPresent)),
            Ok(None)
        );
    }

    #[test]
    fn rejects_secrets_with_a_hint_and_reports_every_problem() {
        let text = "[[route]]\nname = \"p\"\nproduct = \"P\"\napplication = \"P\"\nkind = \"eai-rest\"\n\
                    target = \"http://x\"\npassword = \"hunter2\"\ncolour = \"red\"\n";
        let errors = RouteTable::parse("routes.toml", text).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].location.to_string(), "routes.toml:7:1");
        assert!(
            errors[0].to_string().contains("password_env"),
            "{}",
            errors[0]
        );
        assert!(matches!(errors[1].kind, LoadErrorKind::UnknownKey { .. }));
        assert_eq!(errors[1].location.line, 8);
    }

    #[test]
    fn order_trace_names_a_version_eaibus_writes() {
        let with = |value: &str| {
            format!(
                "[[route]]\nname = \"omni\"\nproduct = \"OMNI\"\napplication = \"OMNI\"\n\
                 kind = \"kafka\"\ntarget = \"omni.order-trace\"\norder_trace = {value}\n"
            )
        };
        let table = RouteTable::parse("routes.toml", &with("\" 1.000 \"")).unwrap();
        assert_eq!(
            table.get("omni").unwrap().order_trace.as_deref(),
            Some("1.000")
        );
        assert_eq!(table.order_trace_location("omni").map(|l| l.line), Some(7));
        let plain = RouteTable::parse("routes.toml", ROUTES).unwrap();
        assert_eq!(plain.get("omni").unwrap().order_trace, None);

        for bad in ["\"2.000\"", "\"\""] {
            let errors = RouteTable::parse("routes.toml", &with(bad)).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            let text = errors[0].to_string();
            assert!(text.starts_with("routes.toml:7:"), "{text}");
            assert!(
                text.contains("route \"omni\"")
                    && text.contains("order_trace")
                    && text.contains("1.000, 1.001"),
                "{text}"
            );
        }
        let errors = RouteTable::parse("routes.toml", &with("1.001")).unwrap_err();
        assert_eq!(errors[0].location.line, 7, "{errors:?}");
    }

    #[test]
    fn checks_targets_variables_and_duplicates() {
        let text = r#"
[[route]]
name = "k"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "http://not-a-topic"

[[route]]
name = "r"
product = "P"
application = "P"
kind = "eai-soap"
target = "localhost:8081"
user_env = "1BAD"

[[route]]
name = "k"
product = "OMNI"
application = "OMNI"
kind = "kafka"
target = "ok"
"#;
        let errors = RouteTable::parse("routes.toml", text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.location.line).collect();
        assert_eq!(lines, vec![7, 14, 15, 15, 18], "{errors:#?}");
        assert!(matches!(
            errors[4].kind,
            LoadErrorKind::DuplicateRoute { .. }
        ));
    }
}
