//! The SQL both stores run. SQLite and PostgreSQL accept the same statements (`$n` parameters,
//! `ON CONFLICT ... DO UPDATE`, `LIMIT/OFFSET`), so one body, expanded by `depara_store!`,
//! implements [`DeParaStore`](super::DeParaStore) for each.

pub(super) const CREATE_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS eaibus_depara (
        reference TEXT NOT NULL,
        alias TEXT NOT NULL,
        field TEXT NOT NULL,
        external_value TEXT NOT NULL,
        internal_value TEXT NOT NULL,
        PRIMARY KEY (reference, alias, field, external_value))",
    "CREATE INDEX IF NOT EXISTS eaibus_depara_by_internal
        ON eaibus_depara (reference, alias, field, internal_value)",
    "CREATE TABLE IF NOT EXISTS eaibus_depara_company (
        reference TEXT NOT NULL,
        company TEXT NOT NULL,
        branch TEXT NOT NULL,
        protheus_company TEXT NOT NULL,
        protheus_branch TEXT NOT NULL,
        PRIMARY KEY (reference, company, branch))",
];

pub(super) const UPSERT: &str = "INSERT INTO eaibus_depara
        (reference, alias, field, external_value, internal_value) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (reference, alias, field, external_value)
    DO UPDATE SET internal_value = excluded.internal_value";

pub(super) const REMOVE: &str = "DELETE FROM eaibus_depara
    WHERE reference = $1 AND alias = $2 AND field = $3 AND external_value = $4";

pub(super) const INTERNAL: &str = "SELECT internal_value FROM eaibus_depara
    WHERE reference = $1 AND alias = $2 AND field = $3 AND external_value = $4";

pub(super) const EXTERNAL: &str = "SELECT external_value FROM eaibus_depara
    WHERE reference = $1 AND alias = $2 AND field = $3 AND internal_value = $4
    ORDER BY external_value LIMIT 1";

/// The filter of a pair search: `$1` reference, `$2` alias, `$3` field, `$4` LIKE pattern.
macro_rules! pair_filter {
    () => {
        "WHERE ($1 IS NULL OR reference = $1) AND ($2 IS NULL OR alias = $2)
          AND ($3 IS NULL OR field = $3)
          AND ($4 IS NULL OR LOWER(external_value) LIKE $4 ESCAPE '\\'
                          OR LOWER(internal_value) LIKE $4 ESCAPE '\\')"
    };
}

pub(super) const SEARCH: &str = concat!(
    "SELECT reference, alias, field, external_value, internal_value FROM eaibus_depara ",
    pair_filter!(),
    " ORDER BY reference, alias, field, external_value LIMIT $5 OFFSET $6"
);

pub(super) const COUNT: &str = concat!("SELECT COUNT(*) FROM eaibus_depara ", pair_filter!());

pub(super) const UPSERT_COMPANY: &str = "INSERT INTO eaibus_depara_company
        (reference, company, branch, protheus_company, protheus_branch) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (reference, company, branch)
    DO UPDATE SET protheus_company = excluded.protheus_company,
                  protheus_branch = excluded.protheus_branch";

pub(super) const REMOVE_COMPANY: &str = "DELETE FROM eaibus_depara_company
    WHERE reference = $1 AND company = $2 AND branch = $3";

pub(super) const COMPANY: &str = "SELECT protheus_company, protheus_branch
    FROM eaibus_depara_company WHERE reference = $1 AND company = $2 AND branch = $3";

pub(super) const COMPANIES: &str =
    "SELECT reference, company, branch, protheus_company, protheus_branch
    FROM eaibus_depara_company WHERE ($1 IS NULL OR reference = $1)
    ORDER BY reference, company, branch LIMIT $2 OFFSET $3";

pub(super) const COUNT_COMPANIES: &str =
    "SELECT COUNT(*) FROM eaibus_depara_company WHERE ($1 IS NULL OR reference = $1)";

/// Lookups as the JSON array the LOOKUPS statements read: `["i" | "e", reference, alias,
/// field, value]` each, "i" for the internal value of an external one. The key is put in
/// canonical form; an internal value is kept exactly (padding included).
pub(super) fn lookups_json(lookups: &[super::Lookup]) -> String {
    let rows: Vec<[String; 5]> = lookups
        .iter()
        .map(|l| {
            let key = super::DeParaKey::new(&l.reference, &l.alias, &l.field, &l.value);
            let (kind, value) = if l.to_internal {
                ("i", key.external)
            } else {
                ("e", l.value.clone())
            };
            [kind.to_owned(), key.reference, key.alias, key.field, value]
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

/// Implements `DeParaStore` for a store type with a `pool` field (of type `$pool`) and a
/// `lookups` queue, with the statements above and the dialect's `$lookups_sql`.
macro_rules! depara_store {
    ($store:ty, $pool:ty, $lookups_sql:expr) => {
        impl $crate::adapter::depara::DeParaStore for $store {
            async fn upsert(
                &self,
                pair: &$crate::adapter::depara::DeParaPair,
            ) -> Result<(), $crate::adapter::depara::DeParaError> {
                self.upsert_all(std::slice::from_ref(pair)).await
            }

            async fn upsert_all(
                &self,
                pairs: &[$crate::adapter::depara::DeParaPair],
            ) -> Result<(), $crate::adapter::depara::DeParaError> {
                use $crate::adapter::depara::{DeParaError, DeParaPair};
                let query = |source| DeParaError::Query {
                    operation: "store De/Para pairs",
                    source,
                };
                let pairs: Vec<DeParaPair> = pairs
                    .iter()
                    .map(|p| {
                        DeParaPair::new(&p.reference, &p.alias, &p.field, &p.external, &p.internal)
                    })
                    .collect();
                for pair in &pairs {
                    pair.check()?;
                }
                let mut tx = self.pool.begin().await.map_err(query)?;
                for pair in &pairs {
                    sqlx::query($crate::adapter::depara::sql::UPSERT)
                        .bind(&pair.reference)
                        .bind(&pair.alias)
                        .bind(&pair.field)
                        .bind(&pair.external)
                        .bind(&pair.internal)
                        .execute(&mut *tx)
                        .await
                        .map_err(query)?;
                }
                tx.commit().await.map_err(query)
            }

            async fn remove(
                &self,
                key: &$crate::adapter::depara::DeParaKey,
            ) -> Result<bool, $crate::adapter::depara::DeParaError> {
                let key = $crate::adapter::depara::DeParaKey::new(
                    &key.reference,
                    &key.alias,
                    &key.field,
                    &key.external,
                );
                let done = sqlx::query($crate::adapter::depara::sql::REMOVE)
                    .bind(&key.reference)
                    .bind(&key.alias)
                    .bind(&key.field)
                    .bind(&key.external)
                    .execute(&self.pool)
                    .await
                    .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                        operation: "remove a De/Para pair",
                        source,
                    })?;
                Ok(done.rows_affected() > 0)
            }

            async fn internal(
                &self,
                reference: &str,
                alias: &str,
                field: &str,
                external: &str,
            ) -> Result<Option<String>, $crate::adapter::depara::DeParaError> {
                let key =
                    $crate::adapter::depara::DeParaKey::new(reference, alias, field, external);
                sqlx::query_scalar::<_, String>($crate::adapter::depara::sql::INTERNAL)
                    .bind(&key.reference)
                    .bind(&key.alias)
                    .bind(&key.field)
                    .bind(&key.external)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                        operation: "look up an internal value",
                        source,
                    })
            }

            async fn external(
                &self,
                reference: &str,
                alias: &str,
                field: &str,
                internal: &str,
            ) -> Result<Option<String>, $crate::adapter::depara::DeParaError> {
                let key = $crate::adapter::depara::DeParaKey::new(reference, alias, field, "");
                sqlx::query_scalar::<_, String>($crate::adapter::depara::sql::EXTERNAL)
                    .bind(&key.reference)
                    .bind(&key.alias)
                    .bind(&key.field)
                    .bind(internal)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                        operation: "look up an external value",
                        source,
                    })
            }

            async fn lookup_all(
                &self,
                lookups: &[$crate::adapter::depara::Lookup],
            ) -> Result<Vec<Option<String>>, $crate::adapter::depara::DeParaError> {
                self.lookups.lookup_all(lookups).await
            }

            async fn search(
                &self,
                query: &$crate::adapter::depara::DeParaQuery,
                page: $crate::adapter::depara::PageRequest,
            ) -> Result<
                $crate::adapter::depara::Page<$crate::adapter::depara::DeParaPair>,
                $crate::adapter::depara::DeParaError,
            > {
                use $crate::adapter::depara::{DeParaError, DeParaPair, Page, PageRequest};
                let failed = |source| DeParaError::Query {
                    operation: "list De/Para pairs",
                    source,
                };
                let page = PageRequest::new(page.offset, page.limit);
                let canonical =
                    |v: &Option<String>| v.as_deref().map($crate::adapter::depara::canonical);
                let reference = canonical(&query.reference);
                let alias = canonical(&query.alias);
                let field = canonical(&query.field);
                let pattern = query
                    .text
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map($crate::adapter::depara::like_pattern);
                let total: i64 = sqlx::query_scalar($crate::adapter::depara::sql::COUNT)
                    .bind(&reference)
                    .bind(&alias)
                    .bind(&field)
                    .bind(&pattern)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(failed)?;
                let rows: Vec<(String, String, String, String, String)> =
                    sqlx::query_as($crate::adapter::depara::sql::SEARCH)
                        .bind(&reference)
                        .bind(&alias)
                        .bind(&field)
                        .bind(&pattern)
                        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
                        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(failed)?;
                Ok(Page {
                    items: rows
                        .into_iter()
                        .map(|(reference, alias, field, external, internal)| DeParaPair {
                            reference,
                            alias,
                            field,
                            external,
                            internal,
                        })
                        .collect(),
                    total: u64::try_from(total).unwrap_or(0),
                    offset: page.offset,
                    limit: page.limit,
                })
            }

            async fn upsert_company(
                &self,
                mapping: &$crate::adapter::depara::CompanyMapping,
            ) -> Result<(), $crate::adapter::depara::DeParaError> {
                self.upsert_companies(std::slice::from_ref(mapping)).await
            }

            async fn upsert_companies(
                &self,
                mappings: &[$crate::adapter::depara::CompanyMapping],
            ) -> Result<(), $crate::adapter::depara::DeParaError> {
                use $crate::adapter::depara::{CompanyMapping, DeParaError};
                let query = |source| DeParaError::Query {
                    operation: "store company mappings",
                    source,
                };
                let mappings: Vec<CompanyMapping> = mappings
                    .iter()
                    .map(|m| {
                        CompanyMapping::new(
                            &m.reference,
                            &m.company,
                            &m.branch,
                            &m.protheus_company,
                            &m.protheus_branch,
                        )
                    })
                    .collect();
                for mapping in &mappings {
                    mapping.check()?;
                }
                let mut tx = self.pool.begin().await.map_err(query)?;
                for m in &mappings {
                    sqlx::query($crate::adapter::depara::sql::UPSERT_COMPANY)
                        .bind(&m.reference)
                        .bind(&m.company)
                        .bind(&m.branch)
                        .bind(&m.protheus_company)
                        .bind(&m.protheus_branch)
                        .execute(&mut *tx)
                        .await
                        .map_err(query)?;
                }
                tx.commit().await.map_err(query)
            }

            async fn remove_company(
                &self,
                reference: &str,
                company: &str,
                branch: &str,
            ) -> Result<bool, $crate::adapter::depara::DeParaError> {
                let done = sqlx::query($crate::adapter::depara::sql::REMOVE_COMPANY)
                    .bind($crate::adapter::depara::canonical(reference))
                    .bind(company.trim())
                    .bind(branch.trim())
                    .execute(&self.pool)
                    .await
                    .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                        operation: "remove a company mapping",
                        source,
                    })?;
                Ok(done.rows_affected() > 0)
            }

            async fn company(
                &self,
                reference: &str,
                company: &str,
                branch: &str,
            ) -> Result<
                Option<$crate::adapter::depara::ProtheusBranch>,
                $crate::adapter::depara::DeParaError,
            > {
                let row: Option<(String, String)> =
                    sqlx::query_as($crate::adapter::depara::sql::COMPANY)
                        .bind($crate::adapter::depara::canonical(reference))
                        .bind(company.trim())
                        .bind(branch.trim())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                            operation: "look up a company mapping",
                            source,
                        })?;
                Ok(row.map(
                    |(company, branch)| $crate::adapter::depara::ProtheusBranch { company, branch },
                ))
            }

            async fn companies(
                &self,
                reference: Option<&str>,
                page: $crate::adapter::depara::PageRequest,
            ) -> Result<
                $crate::adapter::depara::Page<$crate::adapter::depara::CompanyMapping>,
                $crate::adapter::depara::DeParaError,
            > {
                use $crate::adapter::depara::{CompanyMapping, DeParaError, Page, PageRequest};
                let failed = |source| DeParaError::Query {
                    operation: "list company mappings",
                    source,
                };
                let page = PageRequest::new(page.offset, page.limit);
                let reference = reference.map($crate::adapter::depara::canonical);
                let total: i64 = sqlx::query_scalar($crate::adapter::depara::sql::COUNT_COMPANIES)
                    .bind(&reference)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(failed)?;
                let rows: Vec<(String, String, String, String, String)> =
                    sqlx::query_as($crate::adapter::depara::sql::COMPANIES)
                        .bind(&reference)
                        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
                        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(failed)?;
                Ok(Page {
                    items: rows
                        .into_iter()
                        .map(
                            |(reference, company, branch, protheus_company, protheus_branch)| {
                                CompanyMapping {
                                    reference,
                                    company,
                                    branch,
                                    protheus_company,
                                    protheus_branch,
                                }
                            },
                        )
                        .collect(),
                    total: u64::try_from(total).unwrap_or(0),
                    offset: page.offset,
                    limit: page.limit,
                })
            }
        }

        impl $store {
            /// The lookup queue of a store on `pool` (see `lookup_queue.rs`).
            fn lookup_queue(pool: &$pool) -> $crate::adapter::depara::lookup_queue::LookupQueue {
                let pool = pool.clone();
                $crate::adapter::depara::lookup_queue::LookupQueue::new(std::sync::Arc::new(
                    move |lookups: Vec<$crate::adapter::depara::Lookup>| {
                        let pool = pool.clone();
                        Box::pin(async move { Self::run_lookups(&pool, &lookups).await })
                    },
                ))
            }

            /// Runs `lookups` on `pool` in one statement, whatever their number: the lookups
            /// travel as one JSON array, so the statement keeps one shape and stays prepared.
            async fn run_lookups(
                pool: &$pool,
                lookups: &[$crate::adapter::depara::Lookup],
            ) -> Result<Vec<Option<String>>, $crate::adapter::depara::DeParaError> {
                if lookups.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<(i64, Option<String>)> = sqlx::query_as($lookups_sql)
                    .bind($crate::adapter::depara::sql::lookups_json(lookups))
                    .fetch_all(pool)
                    .await
                    .map_err(|source| $crate::adapter::depara::DeParaError::Query {
                        operation: "look up values",
                        source,
                    })?;
                let mut answers = vec![None; lookups.len()];
                for (i, value) in rows {
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| answers.get_mut(i)) {
                        *slot = value;
                    }
                }
                Ok(answers)
            }
        }
    };
}

pub(super) use depara_store;
