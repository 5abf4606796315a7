//! Instrumentation: latency histograms observed where the work happens — ingest (received →
//! accepted, per adapter) and delivery (accepted → delivered, per route) — kept in one
//! process-wide registry and written in the Prometheus text format by `/metrics`.
//!
//! Two histograms and a small map do not justify a metrics crate: the monitor already writes the
//! text format by hand, and fixed buckets of atomic counters are all a histogram needs.
//!
//! A delivery knows when its message was accepted from this registry: ingest notes the moment it
//! appended the message, and a route consumer notes the log's append time of each record it
//! plans (which covers messages accepted by another instance). The notes are bounded (oldest
//! dropped first); a delivery whose acceptance is no longer known is not observed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Bucket bounds, in seconds: from a fast append to a delivery that waited for retries.
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How many accepted times are remembered for deliveries to come.
const ACCEPTED_NOTES: usize = 50_000;

/// A histogram with the [`LATENCY_BOUNDS`] buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let slot = LATENCY_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `_bucket`, `_sum` and `_count` lines of one series.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = LATENCY_BOUNDS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count());
    }
}

/// When messages were accepted, oldest dropped first.
#[derive(Debug, Default)]
struct AcceptedNotes {
    at: HashMap<String, i64>,
    order: VecDeque<String>,
}

impl AcceptedNotes {
    fn note(&mut self, uuid: &str, at_ms: i64) {
        if self.at.contains_key(uuid) {
            return;
        }
        while self.order.len() >= ACCEPTED_NOTES {
            if let Some(old) = self.order.pop_front() {
                self.at.remove(&old);
            }
        }
        self.at.insert(uuid.to_owned(), at_ms);
        self.order.push_back(uuid.to_owned());
    }
}

/// The process's instruments.
#[derive(Debug, Default)]
pub struct Registry {
    ingest: Mutex<BTreeMap<String, Arc<Histogram>>>,
    delivery: Mutex<BTreeMap<String, Arc<Histogram>>>,
    accepted: Mutex<AcceptedNotes>,
}

fn series(map: &Mutex<BTreeMap<String, Arc<Histogram>>>, label: &str) -> Option<Arc<Histogram>> {
    let mut map = map.lock().ok()?;
    Some(map.entry(label.to_owned()).or_default().clone())
}

fn now_ms() -> i64 {
    crate::monitor::time::now_millis()
}

impl Registry {
    /// Ingest appended a message that `adapter` received `elapsed` ago.
    pub fn ingest_accepted(&self, adapter: &str, uuid: &str, elapsed: Duration) {
        if let Some(h) = series(&self.ingest, adapter) {
            h.observe(elapsed);
        }
        self.log_accepted(uuid, now_ms());
    }

    /// A message was appended to the log at `appended_ms` (ms since the Unix epoch).
    pub fn log_accepted(&self, uuid: &str, appended_ms: i64) {
        if uuid.is_empty() {
            return;
        }
        if let Ok(mut notes) = self.accepted.lock() {
            notes.note(uuid, appended_ms);
        }
    }

    /// A message was delivered along `route` now; observed when its acceptance is known.
    pub fn delivered(&self, route: &str, uuid: &str) {
        let accepted = self
            .accepted
            .lock()
            .ok()
            .and_then(|notes| notes.at.get(uuid).copied());
        let Some(accepted) = accepted else { return };
        let elapsed = u64::try_from(now_ms().saturating_sub(accepted)).unwrap_or(0);
        if let Some(h) = series(&self.delivery, route) {
            h.observe(Duration::from_millis(elapsed));
        }
    }

    /// The delivery histogram of `route`, if it has one.
    pub fn delivery_histogram(&self, route: &str) -> Option<Arc<Histogram>> {
        self.delivery.lock().ok()?.get(route).cloned()
    }

    /// The ingest histogram of `adapter`, if it has one.
    pub fn ingest_histogram(&self, adapter: &str) -> Option<Arc<Histogram>> {
        self.ingest.lock().ok()?.get(adapter).cloned()
    }

    /// Both histogram families in the text format.
    pub fn render(&self, out: &mut String) {
        for (map, name, label, help) in [
            (
                &self.ingest,
                "eaibus_ingest_latency_seconds",
                "adapter",
                "From receipt to the durable append to the log, per receiving adapter.",
            ),
            (
                &self.delivery,
                "eaibus_delivery_latency_seconds",
                "route",
                "From the append to the log to the delivery, per route.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            let snapshot: Vec<(String, Arc<Histogram>)> = map
                .lock()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            for (value, histogram) in snapshot {
                histogram.write(out, name, &format!("{label}=\"{}\"", label_value(&value)));
            }
        }
    }
}

/// A label value escaped as the text format wants.
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The registry of this process.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_into_cumulative_buckets() {
        let registry = Registry::default();
        registry.ingest_accepted("ADAPTER \"A\"", "u-1", Duration::from_millis(3));
        registry.ingest_accepted("ADAPTER \"A\"", "u-2", Duration::from_secs(2));
        registry.ingest_accepted("ADAPTER \"A\"", "u-3", Duration::from_secs(1000));
        let mut out = String::new();
        registry.render(&mut out);
        let labels = "adapter=\"ADAPTER \\\"A\\\"\"";
        for line in [
            format!("eaibus_ingest_latency_seconds_bucket{{{labels},le=\"0.005\"}} 1"),
            format!("eaibus_ingest_latency_seconds_bucket{{{labels},le=\"2.5\"}} 2"),
            format!("eaibus_ingest_latency_seconds_bucket{{{labels},le=\"300\"}} 2"),
            format!("eaibus_ingest_latency_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("eaibus_ingest_latency_seconds_count{{{labels}}} 3"),
        ] {
            assert!(out.contains(&line), "{line} missing in\n{out}");
        }
        assert!(out.contains("# TYPE eaibus_delivery_latency_seconds histogram"));
    }

    #[test]
    fn a_delivery_is_observed_only_when_its_acceptance_is_known() {
        let registry = Registry::default();
        registry.delivered("protheus", "unknown");
        assert!(registry.delivery_histogram("protheus").is_none());
        registry.log_accepted("known", now_ms() - 1500);
        registry.delivered("protheus", "known");
        let h = registry.delivery_histogram("protheus").expect("observed");
        assert_eq!(h.count(), 1);
        assert_eq!(
            h.buckets[7].load(Ordering::Relaxed),
            0,
            "1.5 s is above 1 s"
        );
        assert_eq!(h.buckets[8].load(Ordering::Relaxed), 1, "and within 2.5 s");
    }

    #[test]
    fn accepted_notes_are_bounded() {
        let mut notes = AcceptedNotes::default();
        for i in 0..ACCEPTED_NOTES + 10 {
            notes.note(&format!("u-{i}"), 1);
        }
        assert_eq!(notes.at.len(), ACCEPTED_NOTES);
        assert!(!notes.at.contains_key("u-0"));
        assert!(notes.at.contains_key(&format!("u-{}", ACCEPTED_NOTES + 9)));
    }
}
