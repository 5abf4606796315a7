//! Adapter table, routes, send conditions (CEL) and De/Para.
//!
//! - [`AdapterTable`]: the registered adapters (`adapters/*.toml`, SIGACFG "Adapter EAI") and
//!   the [`RouteTable`] (`config/routes.toml`), loaded and checked once, reporting every problem
//!   with `FILE:LINE:COLUMN`. It says which [`Adapter`] receives a message or gives a
//!   [`Refusal`], which adapters send a transaction, and what to answer a WhoIs.
//! - [`SendCondition`]: an adapter's CEL send condition over `header` and `content`.
//! - [`depara`]: the De/Para stores (SQLite, PostgreSQL), seeds, learning from Responses, and
//!   [`apply_mappings`] for an adapter's `[[mapping]]` lookups.

mod condition;
pub mod depara;
mod load;
mod mapping;
mod route;
mod table;

pub use condition::{ConditionError, SendCondition};
pub use depara::{
    CompanyMapping, DePara, DeParaError, DeParaKey, DeParaPair, DeParaQuery, DeParaStore, Learned,
    Page, PageRequest, PostgresDePara, ProtheusBranch, SqliteDePara, learn_from_response,
};
pub use load::{LoadError, LoadErrorKind, LoadErrors, Location};
pub use mapping::{MappedValue, MappingError, MissingPair, apply_mappings};
pub use route::{Credentials, Route, RouteError, RouteKind, RouteTable};
pub use table::{
    Adapter, AdapterTable, Channel, Mapping, MappingMode, Method, Operation, Refusal, WhoIsEntry,
    WhoIsMode,
};
