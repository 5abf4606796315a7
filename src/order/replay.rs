//! Replay: re-deliver a window of a topic to ONE route or ONE consumer group, nothing else.
//!
//! - **Consumer group**: the group's committed offsets move back to the window start, per
//!   partition (found with `offset_for_time` for a time); the group's members read from there on
//!   their next start. A group reads on to the end of the log, so `until` is refused for it. On
//!   Kafka, stop the group's members first (as `kafka-consumer-groups --reset-offsets` requires);
//!   on the embedded log a running member keeps its position until it restarts.
//! - **Route**: every business message of the window that an adapter of that route sends (and
//!   whose send condition holds) is planned again on that route only: a delivery that never
//!   existed is planned (`plan_delivery`); a settled one — delivered, failed, parked or not
//!   delivered — starts a new cycle of attempts (`replay_delivery`, which keeps its history and
//!   counts the replay), so a message already delivered is sent again; one still waiting or
//!   running is left alone. A message the monitor lost is recorded again from the log first.
//!
//! `dry_run` reports what would happen and changes nothing. A progress bar (indicatif) shows the
//! records read; the summary prints as text.

use std::fmt;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::bus::Bus;
use crate::log::{LogError, Position};
use crate::message::MessageType;
use crate::monitor::{Direction, Format, MonitorError, NewMessage, Situation};

/// Where the window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// This offset in every partition.
    Offset(i64),
    /// This long before now.
    Since(Duration),
    /// This time (ms since the epoch).
    Time(i64),
}

/// Where the window ends (exclusive); none means the end of the log when the replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayUntil {
    Offset(i64),
    Time(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayTarget {
    Route(String),
    Group(String),
}

impl fmt::Display for ReplayTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayTarget::Route(r) => write!(f, "route {r}"),
            ReplayTarget::Group(g) => write!(f, "consumer group {g}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// A topic (`eai.retailsales`) or a transaction (`RetailSales`).
    pub topic: String,
    pub from: ReplayFrom,
    pub until: Option<ReplayUntil>,
    pub target: ReplayTarget,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error("route {0:?} is not in the adapter table")]
    UnknownRoute(String),
    #[error(
        "a consumer group reads on to the end of the log: --until applies to a route replay only"
    )]
    UntilForGroup,
    #[error(
        "{0:?} is not a window bound: write an offset (@1200), a duration back from now (90s, 30m, 24h, 7d), a date (2024-05-07) or an RFC 3339 time"
    )]
    Bound(String),
    #[error(
        "the consumer group {group} was not given partition {partition} of {topic}; stop its other members and run the replay again"
    )]
    NotAssigned {
        group: String,
        topic: String,
        partition: i32,
    },
}

impl ReplayFrom {
    /// Reads `@N` / `offset:N` (an offset), `90s` / `30m` / `24h` / `7d` (back from now), a date
    /// (`2024-05-07`, midnight UTC) or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<ReplayFrom, ReplayError> {
        let t = text.trim();
        if let Some(n) = t.strip_prefix('@').or_else(|| t.strip_prefix("offset:")) {
            return n
                .trim()
                .parse()
                .map(ReplayFrom::Offset)
                .map_err(|_| ReplayError::Bound(text.to_owned()));
        }
        if let Some(d) = parse_duration(t) {
            return Ok(ReplayFrom::Since(d));
        }
        super::events::parse_time(t)
            .map(ReplayFrom::Time)
            .ok_or_else(|| ReplayError::Bound(text.to_owned()))
    }
}

impl ReplayUntil {
    /// As [`ReplayFrom::parse`]; a duration means that long before now.
    pub fn parse(text: &str, now_ms: i64) -> Result<ReplayUntil, ReplayError> {
        Ok(match ReplayFrom::parse(text)? {
            ReplayFrom::Offset(n) => ReplayUntil::Offset(n),
            ReplayFrom::Since(d) => {
                ReplayUntil::Time(now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            ReplayFrom::Time(t) => ReplayUntil::Time(t),
        })
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last().filter(char::is_ascii_alphabetic)?;
    let amount: u64 = text[..text.len() - 1].trim().parse().ok()?;
    let seconds = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(amount.checked_mul(seconds)?))
}

/// One partition's window: offsets `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWindow {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
    /// For a group: its committed offset before the replay.
    pub committed_before: Option<i64>,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub topic: String,
    pub target: String,
    pub dry_run: bool,
    pub windows: Vec<PartitionWindow>,
    /// Records in the window.
    pub records: u64,
    /// Route: deliveries planned that did not exist.
    pub planned: u64,
    /// Route: failed, parked or not-delivered deliveries put back to waiting.
    pub reset: u64,
    /// Route: deliveries already made, planned to be sent again.
    pub resent: u64,
    /// Route: deliveries already waiting or running.
    pub already_waiting: u64,
    /// Route: messages no adapter of the route sends, or whose send condition is false.
    pub not_for_route: u64,
    /// Route: messages the monitor did not know, recorded again from the log.
    pub recorded_again: u64,
    /// Responses, receipts and unreadable records.
    pub skipped: u64,
    pub errors: Vec<String>,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        writeln!(
            f,
            "Replay of {} to {} {verb} {} records:",
            self.topic, self.target, self.records
        )?;
        for w in &self.windows {
            write!(
                f,
                "  partition {}: offsets {}..{}",
                w.partition, w.start, w.end
            )?;
            if let Some(c) = w.committed_before {
                write!(f, " (group was at {c})")?;
            }
            writeln!(f)?;
        }
        if self.target.starts_with("route") {
            writeln!(f, "  planned again:        {}", self.planned)?;
            writeln!(f, "  failed, sent again:   {}", self.reset)?;
            writeln!(f, "  delivered, sent again: {}", self.resent)?;
            writeln!(f, "  already waiting:      {}", self.already_waiting)?;
            writeln!(f, "  not for this route:   {}", self.not_for_route)?;
            writeln!(f, "  recorded again:       {}", self.recorded_again)?;
        }
        writeln!(f, "  skipped:              {}", self.skipped)?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

fn progress_bar(show: bool, len: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Re-delivers a window of a topic to one route or one consumer group.
pub async fn replay(
    bus: &Bus,
    request: ReplayRequest,
    progress: bool,
) -> Result<ReplaySummary, ReplayError> {
    if let (ReplayTarget::Group(_), Some(_)) = (&request.target, &request.until) {
        return Err(ReplayError::UntilForGroup);
    }
    if let ReplayTarget::Route(route) = &request.target
        && bus.adapter_table().routes().get(route).is_none()
    {
        return Err(ReplayError::UnknownRoute(route.clone()));
    }
    let topic = match bus.log.partitions(&request.topic).await {
        Ok(_) => request.topic.clone(),
        Err(_) => bus.config.topic(&request.topic),
    };
    let partitions = bus.log.partitions(&topic).await?;
    let now = super::now_ms();
    let mut summary = ReplaySummary {
        topic: topic.clone(),
        target: request.target.to_string(),
        dry_run: request.dry_run,
        ..ReplaySummary::default()
    };
    for partition in partitions {
        let end_of_log = bus.log.end_offset(&topic, partition).await?;
        let start = match request.from {
            ReplayFrom::Offset(n) => n.clamp(0, end_of_log),
            ReplayFrom::Since(d) => {
                let t = now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                bus.log.offset_for_time(&topic, partition, t).await?
            }
            ReplayFrom::Time(t) => bus.log.offset_for_time(&topic, partition, t).await?,
        };
        let end = match request.until {
            None => end_of_log,
            Some(ReplayUntil::Offset(n)) => n.clamp(0, end_of_log),
            Some(ReplayUntil::Time(t)) => bus.log.offset_for_time(&topic, partition, t).await?,
        }
        .max(start);
        let committed_before = match &request.target {
            ReplayTarget::Group(g) => bus.log.committed(g, &topic, partition).await?,
            ReplayTarget::Route(_) => None,
        };
        summary.records += u64::try_from(end - start).unwrap_or(0);
        summary.windows.push(PartitionWindow {
            partition,
            start,
            end,
            committed_before,
        });
    }
    match request.target.clone() {
        ReplayTarget::Group(group) => {
            if !request.dry_run {
                move_group(bus, &group, &topic, &summary.windows).await?;
            }
        }
        ReplayTarget::Route(route) => {
            let bar = progress_bar(progress, summary.records, &format!("{topic} → {route}"));
            for window in summary.windows.clone() {
                replan_window(
                    bus,
                    &route,
                    &topic,
                    &window,
                    request.dry_run,
                    &bar,
                    &mut summary,
                )
                .await?;
            }
            bar.finish_and_clear();
        }
    }
    tracing::info!(topic = %summary.topic, target = %summary.target, records = summary.records, dry_run = summary.dry_run, "A replay ran.");
    Ok(summary)
}

/// Commits the group's offsets at the window starts.
async fn move_group(
    bus: &Bus,
    group: &str,
    topic: &str,
    windows: &[PartitionWindow],
) -> Result<(), ReplayError> {
    let mut consumer = bus.log.subscribe(group, &[topic.to_owned()]).await?;
    // Kafka assigns partitions during poll; the embedded log at once. Records read here are not
    // committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let assigned = consumer.assignment();
        if windows.iter().all(|w| {
            assigned
                .iter()
                .any(|(t, p)| t == topic && *p == w.partition)
        }) || tokio::time::Instant::now() >= deadline
        {
            break;
        }
        consumer.poll(Duration::from_millis(200)).await?;
    }
    for w in windows {
        let position = Position {
            topic: topic.to_owned(),
            partition: w.partition,
            offset: w.start - 1,
        };
        consumer.commit(&position).await.map_err(|e| match e {
            LogError::Refused(_) => ReplayError::NotAssigned {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition: w.partition,
            },
            other => ReplayError::Log(other),
        })?;
    }
    Ok(())
}

async fn replan_window(
    bus: &Bus,
    route: &str,
    topic: &str,
    window: &PartitionWindow,
    dry_run: bool,
    bar: &ProgressBar,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    let mut offset = window.start;
    while offset < window.end {
        let max = usize::try_from((window.end - offset).min(500)).unwrap_or(500);
        let records = bus.log.read(topic, window.partition, offset, max).await?;
        if records.is_empty() {
            break;
        }
        for record in records {
            if record.offset >= window.end {
                offset = window.end;
                break;
            }
            offset = record.offset + 1;
            bar.inc(1);
            let message = match bus.codec().decode_json(&record.payload) {
                Ok(m) if m.header.message_type() == MessageType::BusinessMessage => m,
                _ => {
                    summary.skipped += 1;
                    continue;
                }
            };
            let table = bus.adapter_table();
            let sends = table
                .senders_for(&message.header)
                .into_iter()
                .filter(|a| a.route == route)
                .any(|a| a.should_send(&message).unwrap_or(false));
            if !sends {
                summary.not_for_route += 1;
                continue;
            }
            let uuid = message.uuid().to_owned();
            if bus.monitor.get(&uuid).await?.is_none() {
                summary.recorded_again += 1;
                if dry_run {
                    summary.planned += 1;
                    continue;
                }
                let canonical = String::from_utf8_lossy(&record.payload).into_owned();
                let again = NewMessage {
                    uuid: uuid.clone(),
                    transaction: message.transaction().to_owned(),
                    version: message.header.version().unwrap_or_default().to_owned(),
                    direction: Direction::Inbound,
                    source_application: record.header("source").unwrap_or_default().to_owned(),
                    format: Format::Json,
                    origin: format!("replay:{topic}/{}/{}", record.partition, record.offset),
                    business_key: record.key_str().map(str::to_owned),
                    received_at: None,
                    raw_payload: record.payload.clone(),
                    canonical_json: Some(canonical),
                };
                bus.monitor.record_received(&again).await?;
            }
            match bus.monitor.delivery(&uuid, route).await? {
                None => {
                    if dry_run
                        || bus
                            .monitor
                            .plan_delivery(&uuid, route, super::now_ms())
                            .await?
                    {
                        summary.planned += 1;
                    }
                }
                Some(d) => match d.situation {
                    Situation::Finalizada
                    | Situation::Falhou
                    | Situation::Bloqueado
                    | Situation::NaoEntregue => {
                        let reason = format!(
                            "replay of {topic} partition {} offsets {}..{} to route {route}",
                            window.partition, window.start, window.end
                        );
                        if !dry_run
                            && let Err(e) = bus.monitor.replay_delivery(&uuid, route, &reason).await
                        {
                            summary.errors.push(format!("{uuid}: {e}"));
                            continue;
                        }
                        if d.situation == Situation::Finalizada {
                            summary.resent += 1;
                        } else {
                            summary.reset += 1;
                        }
                    }
                    Situation::AguardandoExecucao | Situation::Executando => {
                        summary.already_waiting += 1;
                    }
                    Situation::Recusada => summary.skipped += 1,
                },
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_parse() {
        assert_eq!(ReplayFrom::parse("@12").unwrap(), ReplayFrom::Offset(12));
        assert_eq!(
            ReplayFrom::parse("24h").unwrap(),
            ReplayFrom::Since(Duration::from_secs(86_400))
        );
        assert_eq!(
            ReplayFrom::parse("2024-05-07T00:00:00Z").unwrap(),
            ReplayFrom::parse("2024-05-07").unwrap()
        );
        assert!(ReplayFrom::parse("yesterday").is_err());
        assert_eq!(
            ReplayUntil::parse("1h", 7_200_000).unwrap(),
            ReplayUntil::Time(3_600_000)
        );
    }
}
