//! Sign-in throttling: repeated failed sign-ins lock out, for a while, a user name and a client
//! address, without letting an attacker lock an admin out for good.
//!
//! Policy (all windows slide over the last [`WINDOW_MS`], 15 minutes):
//! - a client address with [`MAX_PER_ADDRESS`] (20) failures, whatever the user names, is
//!   refused until the oldest of them is 15 minutes old;
//! - a user name with [`MAX_PER_USER`] (5) failures is refused the same way — except from an
//!   address where that user signed in successfully in the last 30 days: there only the
//!   failures made from that very address count. An attacker elsewhere can slow the admin's
//!   name down everywhere else, but not lock the admin out of the places they work from;
//! - while refused, the password is not even checked and the attempt does not count, so a lock
//!   never lasts longer than 15 minutes after the last counted failure; restarting eaibus with
//!   `EAIBUS_ADMIN_USER` also clears that admin's failures.
//!
//! Every refused attempt is audited (`login.throttled`), and so is the failure that starts a
//! lock (`login.locked`). The client address is the TCP peer; behind a reverse proxy set
//! `EAIBUS_TRUST_PROXY=true` to take the last address of `X-Forwarded-For` instead.

use sqlx::Row;

use super::db::{WebDb, with_pool};

/// The sliding window failures are counted in.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures of one user name (from unknown addresses) before it is locked.
pub const MAX_PER_USER: usize = 5;
/// Failures from one client address before it is locked.
pub const MAX_PER_ADDRESS: usize = 20;
/// How long a successful sign-in makes its address known for that user.
pub const KNOWN_ADDRESS_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The failures in the window that matter to one attempt, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failures {
    /// Of the user name, from any address.
    pub user: Vec<i64>,
    /// From the address, any user name.
    pub address: Vec<i64>,
    /// Of the user name from the address.
    pub pair: Vec<i64>,
    /// Whether the user signed in from this address lately.
    pub known_address: bool,
}

/// Until when (ms) the attempt is refused, if it is: the time the failure that reached a limit
/// leaves the window.
pub fn locked_until(now: i64, failures: &Failures) -> Option<i64> {
    let reached = |times: &[i64], limit: usize| times.get(limit - 1).map(|t| t + WINDOW_MS);
    let user = if failures.known_address {
        &failures.pair
    } else {
        &failures.user
    };
    [
        reached(&failures.address, MAX_PER_ADDRESS),
        reached(user, MAX_PER_USER),
    ]
    .into_iter()
    .flatten()
    .max()
    .filter(|until| *until > now)
}

/// Whole minutes until `until`, at least 1 (for the message).
pub fn minutes_left(now: i64, until: i64) -> i64 {
    ((until - now).max(0) + 59_999) / 60_000
}

impl WebDb {
    /// The failures that decide whether `username` may try from `address` at `now`.
    pub async fn login_failures(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<Failures, sqlx::Error> {
        let since = now - WINDOW_MS;
        let limit = i64::try_from(MAX_PER_ADDRESS).unwrap_or(20);
        let user = with_pool!(self, pool => sqlx::query(
            "SELECT at FROM web_login_failures WHERE username = $1 AND at > $2 ORDER BY at DESC LIMIT $3",
        )
        .bind(username)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect());
        let by_address = with_pool!(self, pool => sqlx::query(
            "SELECT at FROM web_login_failures WHERE address = $1 AND at > $2 ORDER BY at DESC LIMIT $3",
        )
        .bind(address)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect());
        let pair = with_pool!(self, pool => sqlx::query(
            "SELECT at FROM web_login_failures WHERE username = $1 AND address = $2 AND at > $3 \
             ORDER BY at DESC LIMIT $4",
        )
        .bind(username)
        .bind(address)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect());
        let known_address = with_pool!(self, pool => sqlx::query(
            "SELECT 1 FROM web_login_known WHERE username = $1 AND address = $2 AND last_at > $3",
        )
        .bind(username)
        .bind(address)
        .bind(now - KNOWN_ADDRESS_MS)
        .fetch_optional(pool)
        .await?
        .is_some());
        Ok(Failures {
            user,
            address: by_address,
            pair,
            known_address,
        })
    }

    /// Counts a failed sign-in; failures older than the window go.
    pub async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_login_failures (username, address, at) VALUES ($1, $2, $3)",
        )
        .bind(username)
        .bind(address)
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        with_pool!(self, pool => sqlx::query("DELETE FROM web_login_failures WHERE at <= $1")
            .bind(now - WINDOW_MS)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A successful sign-in: the address becomes known for the user, and the user's failures
    /// from it are forgotten.
    pub async fn record_login_success(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO web_login_known (username, address, last_at) VALUES ($1, $2, $3) \
             ON CONFLICT (username, address) DO UPDATE SET last_at = excluded.last_at",
        )
        .bind(username)
        .bind(address)
        .bind(now)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        with_pool!(self, pool => sqlx::query(
            "DELETE FROM web_login_failures WHERE username = $1 AND address = $2",
        )
        .bind(username)
        .bind(address)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets every failure of `username` (an admin set up again from the environment).
    pub async fn clear_login_failures(&self, username: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("DELETE FROM web_login_failures WHERE username = $1")
            .bind(username)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn times(n: usize) -> Vec<i64> {
        // Newest first, a minute apart.
        (0..n).map(|i| NOW - 60_000 * (i as i64 + 1)).collect()
    }

    #[test]
    fn five_failures_lock_a_user_name_until_the_fifth_newest_leaves_the_window() {
        let mut f = Failures {
            user: times(4),
            ..Failures::default()
        };
        assert_eq!(locked_until(NOW, &f), None);
        f.user = times(5);
        let until = locked_until(NOW, &f).expect("locked");
        assert_eq!(until, NOW - 5 * 60_000 + WINDOW_MS);
        assert_eq!(minutes_left(NOW, until), 10);
        assert_eq!(locked_until(until, &f), None, "free once it leaves");
    }

    #[test]
    fn a_known_address_counts_only_its_own_failures() {
        let mut f = Failures {
            user: times(20),
            pair: times(1),
            known_address: true,
            ..Failures::default()
        };
        assert_eq!(
            locked_until(NOW, &f),
            None,
            "an attacker elsewhere does not lock the admin out of their address"
        );
        f.pair = times(5);
        assert!(
            locked_until(NOW, &f).is_some(),
            "guessing from there is limited too"
        );
        f.known_address = false;
        f.pair = times(1);
        assert!(locked_until(NOW, &f).is_some());
    }

    #[test]
    fn an_address_is_locked_after_twenty_failures_whatever_the_names() {
        let mut f = Failures {
            address: times(19),
            ..Failures::default()
        };
        assert_eq!(locked_until(NOW, &f), None);
        // Twenty in ten minutes (half a minute apart): locked until the oldest is 15 minutes old.
        f.address = (1..=20).map(|i| NOW - 30_000 * i).collect();
        assert_eq!(locked_until(NOW, &f), Some(NOW - 20 * 30_000 + WINDOW_MS));
        // The oldest of the twenty about to leave the window: locked for one more millisecond.
        f.address = (1..=20).rev().map(|i| NOW - WINDOW_MS + i).collect();
        assert_eq!(locked_until(NOW, &f), Some(NOW + 1));
        assert_eq!(locked_until(NOW + 1, &f), None);
    }
}
