//! `eaibus dlq list|show|redrive`: the dead-letter queue for operators (see `eaibus::ops::dlq`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::monitor::time::format_utc;
use eaibus::ops::dlq::{self, Candidate, Decision, Outcome, Selection, StoredLetter};
use eaibus::ops::parse_since;

#[derive(Args)]
pub struct DlqArgs {
    /// The configuration of the bus whose DLQ this is.
    #[arg(
        long,
        global = true,
        default_value = "config/eaibus.toml",
        value_name = "FILE"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List the dead letters, newest first.
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only letters written since then: 30m, 24h, 7d, 2024-05-07 or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Print one dead letter: its headers and its payload (the newest letter of the UUID, and the
    /// earlier ones in short).
    Show {
        /// The message UUID (or the beginning of it).
        #[arg(value_name = "UUID")]
        uuid: String,
    },
    /// Send dead letters back to where they came from: ingest for refused messages, the route
    /// for failed deliveries. Without a filter, every letter in the DLQ.
    ///
    /// A running eaibus plans and delivers with the adapter table it loaded: after fixing
    /// adapters or routes, reload it (kill -HUP) before redriving, or what this command accepts
    /// may find no route worker that sends it.
    Redrive {
        /// Only this message (repeat for more).
        #[arg(long = "uuid", value_name = "UUID")]
        uuids: Vec<String>,
        /// Only letters whose reason contains this text (any case).
        #[arg(long, value_name = "TEXT")]
        reason_contains: Option<String>,
        /// Only letters written since then (30m, 24h, 7d, a date or a time).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// The loop guard: a message redriven this many times already is refused.
        #[arg(long, default_value_t = 3)]
        max_replays: u32,
        /// Print the reasons counted and what would be redriven; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: DlqArgs, schemas: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&args.config)?;
    if let Some(dir) = schemas {
        config.paths.schemas = Some(dir.to_owned());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        eaibus::transport::install_crypto();
        let bus = Bus::open(config).await?;
        let now = eaibus::monitor::time::now_millis();
        let since =
            |text: &Option<String>| text.as_deref().map(|t| parse_since(t, now)).transpose();
        match args.command {
            DlqCommand::List { limit, since: s } => list(&bus, limit, since(&s)?).await,
            DlqCommand::Show { uuid } => show(&bus, &uuid).await,
            DlqCommand::Redrive {
                uuids,
                reason_contains,
                since: s,
                max_replays,
                dry_run,
            } => {
                let selection = Selection {
                    uuids,
                    reason_contains,
                    since_ms: since(&s)?,
                    max_replays,
                };
                redrive(&bus, &selection, dry_run).await
            }
        }
    })
}

/// The first line of `text`, at most `width` characters.
fn shorten(text: &str, width: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= width {
        return line;
    }
    let mut short: String = line.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Wide enough for a UUID, or for the longest one shown (refused-… ids are longer).
fn uuid_width<'a>(uuids: impl Iterator<Item = &'a str>) -> usize {
    uuids.map(|u| u.chars().count()).fold(36, usize::max)
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

async fn list(bus: &Bus, limit: usize, since: Option<i64>) -> anyhow::Result<ExitCode> {
    let letters = dlq::read_letters(bus, since).await?;
    let total = letters.len();
    let shown: Vec<&StoredLetter> = letters.iter().rev().take(limit).collect();
    let width = uuid_width(shown.iter().map(|s| s.letter.uuid.as_str()));
    println!(
        "{:<width$}  {:<26}  {:<8}  {:<24}  {:>3}  {:>3}  {:<24}  REASON",
        "UUID", "TRANSACTION", "STAGE", "ORIGIN", "ATT", "REP", "FIRST SEEN"
    );
    for stored in &shown {
        let l = &stored.letter;
        println!(
            "{:<width$}  {:<26}  {:<8}  {:<24}  {:>3}  {:>3}  {:<24}  {}",
            or_dash(&l.uuid),
            shorten(or_dash(&l.transaction), 26),
            or_dash(&l.stage),
            shorten(or_dash(&l.origin), 24),
            l.attempts,
            l.replays,
            format_utc(l.first_seen_ms),
            shorten(&l.reason, 72),
        );
    }
    println!("{} of {total} dead letter(s) shown.", shown.len());
    Ok(ExitCode::SUCCESS)
}

/// JSON indented; XML and other text as they are; anything else as hexadecimal.
fn pretty_payload(payload: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload)
        && let Ok(text) = serde_json::to_string_pretty(&value)
    {
        return text;
    }
    match std::str::from_utf8(payload) {
        Ok(text) => text.trim_end().to_owned(),
        Err(_) => {
            let shown = &payload[..payload.len().min(1024)];
            let hex: Vec<String> = shown
                .chunks(32)
                .map(|chunk| chunk.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            format!(
                "({} bytes, not text; the first {} in hexadecimal)\n{}",
                payload.len(),
                shown.len(),
                hex.join("\n")
            )
        }
    }
}

async fn show(bus: &Bus, uuid: &str) -> anyhow::Result<ExitCode> {
    let letters = dlq::find(bus, uuid).await?;
    let Some(newest) = letters.last() else {
        eprintln!("eaibus: no dead letter has UUID {uuid}");
        return Ok(ExitCode::from(1));
    };
    let uuids: std::collections::BTreeSet<&str> =
        letters.iter().map(|l| l.letter.uuid.as_str()).collect();
    if uuids.len() > 1 {
        eprintln!(
            "eaibus: {uuid} names {} messages; write more of it: {}",
            uuids.len(),
            uuids.into_iter().collect::<Vec<_>>().join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    let l = &newest.letter;
    println!("UUID         {}", or_dash(&l.uuid));
    println!("Transaction  {}", or_dash(&l.transaction));
    println!("Key          {}", l.key.as_deref().unwrap_or("-"));
    println!("Stage        {}", or_dash(&l.stage));
    println!("Origin       {}", or_dash(&l.origin));
    println!("Reason       {}", l.reason);
    println!("Attempts     {}", l.attempts);
    println!("Replays      {}", l.replays);
    println!("First seen   {}", format_utc(l.first_seen_ms));
    println!(
        "In the DLQ   {}/{}/{} at {}",
        newest.position.topic,
        newest.position.partition,
        newest.position.offset,
        format_utc(newest.appended_ms)
    );
    if let Ok(Some(record)) = bus.monitor.get(&l.uuid).await {
        println!(
            "Monitor      {} ({}), {} attempt(s), {} manual reprocess(es)",
            record.situation.label(),
            record.stage.label(),
            record.attempts,
            record.repeated_failures
        );
    }
    if letters.len() > 1 {
        println!("Earlier letters of this message:");
        for earlier in &letters[..letters.len() - 1] {
            println!(
                "  {}  {}/{}  {:<8}  {}",
                format_utc(earlier.appended_ms),
                earlier.position.partition,
                earlier.position.offset,
                earlier.letter.stage,
                shorten(&earlier.letter.reason, 80)
            );
        }
    }
    println!("Headers:");
    for (name, value) in &newest.headers {
        println!("  {name}: {value}");
    }
    println!("Payload ({} bytes):", l.payload.len());
    println!("{}", pretty_payload(&l.payload));
    Ok(ExitCode::SUCCESS)
}

fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Redrive => "redrive".into(),
        Decision::Resolved(why) => format!("skip: {why}"),
        Decision::Waiting(why) => format!("skip: already {why}"),
        Decision::Guarded { replays, max } => {
            format!("refused by the loop guard: redriven {replays} time(s), at most {max}")
        }
        Decision::Impossible(why) => format!("cannot redrive: {why}"),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::NotRedriven => String::new(),
        Outcome::Accepted { status } => format!("accepted (HTTP {status})"),
        Outcome::RefusedAgain { status, reason } => format!(
            "refused again (HTTP {status}): {}; a new dead letter was written",
            shorten(reason, 100)
        ),
        Outcome::NotAccepted { status, reason } => {
            format!("not accepted (HTTP {status}): {}", shorten(reason, 100))
        }
        Outcome::Replanned { route } => {
            format!("planned again along {route}; the route worker of the running bus sends it")
        }
        Outcome::Failed(why) => format!("failed: {why}"),
    }
}

fn candidate_line(candidate: &Candidate, width: usize) -> String {
    let l: &StoredLetter = &candidate.letter;
    format!(
        "{:<width$}  {:<26}  {:<8}  {:<24}  replays {}",
        or_dash(&l.letter.uuid),
        shorten(or_dash(&l.letter.transaction), 26),
        or_dash(&l.letter.stage),
        shorten(or_dash(&l.letter.origin), 24),
        candidate.replays
    )
}

async fn redrive(bus: &Bus, selection: &Selection, dry_run: bool) -> anyhow::Result<ExitCode> {
    if dry_run {
        let plan = dlq::plan(bus, selection).await?;
        println!("Reasons ({} message(s) selected):", plan.candidates.len());
        for (reason, count) in &plan.histogram {
            println!("{count:>7}  {}", shorten(reason, 110));
        }
        println!();
        let would = plan
            .candidates
            .iter()
            .filter(|c| c.decision == Decision::Redrive)
            .count();
        println!("Would redrive {would} of {}:", plan.candidates.len());
        let width = uuid_width(
            plan.candidates
                .iter()
                .map(|c| c.letter.letter.uuid.as_str()),
        );
        for candidate in &plan.candidates {
            println!(
                "{}  {}",
                candidate_line(candidate, width),
                describe(&candidate.decision)
            );
        }
        println!("Dry run: nothing was changed.");
        return Ok(ExitCode::SUCCESS);
    }
    let results = eaibus::ops::runs::redrive(bus, selection).await?;
    let width = uuid_width(
        results
            .iter()
            .map(|r| r.candidate.letter.letter.uuid.as_str()),
    );
    let mut redriven = 0;
    let mut taken = 0;
    let mut attention = 0;
    for result in &results {
        let candidate = &result.candidate;
        let text = match &result.outcome {
            Outcome::NotRedriven => describe(&candidate.decision),
            outcome => {
                redriven += 1;
                describe_outcome(outcome)
            }
        };
        if result.outcome.succeeded() {
            taken += 1;
        } else if result.outcome != Outcome::NotRedriven || candidate.decision.needs_attention() {
            attention += 1;
        }
        println!("{}  {text}", candidate_line(candidate, width));
    }
    println!(
        "{redriven} of {} selected message(s) redriven: {taken} taken, {attention} need attention.",
        results.len()
    );
    Ok(if attention == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
