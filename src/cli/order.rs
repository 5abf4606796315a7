//! `eaibus order show`, `eaibus replay` and `eaibus rebuild projection`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use eaibus::bus::Bus;
use eaibus::config::Config;
use eaibus::order::replay::{ReplayFrom, ReplayRequest, ReplayTarget, ReplayUntil};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn open(config_path: &Path) -> anyhow::Result<Bus> {
    let bus = Bus::open(Config::load(config_path)?).await?;
    eaibus::order::ensure_topics(&bus).await?;
    Ok(bus)
}

pub fn show(config_path: &Path, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let bus = open(config_path).await?;
        let store = eaibus::order::store::OrderStore::open_for(&bus.config).await?;
        match eaibus::order::query::find(&store, id).await? {
            Some(view) if json => println!("{}", serde_json::to_string_pretty(&view)?),
            Some(view) => println!("{view}"),
            None => {
                eprintln!("no order is known by {id}");
                return Ok(ExitCode::from(1));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub struct ReplayArgs<'a> {
    pub topic: &'a str,
    pub from_offset: Option<i64>,
    pub since: Option<&'a str>,
    pub from_time: Option<&'a str>,
    pub until: Option<&'a str>,
    pub route: Option<&'a str>,
    pub group: Option<&'a str>,
    pub dry_run: bool,
}

pub fn replay(config_path: &Path, args: ReplayArgs<'_>) -> anyhow::Result<ExitCode> {
    let from = match (args.from_offset, args.since, args.from_time) {
        (Some(n), None, None) => ReplayFrom::Offset(n),
        (None, Some(d), None) => ReplayFrom::parse(d)?,
        (None, None, Some(t)) => ReplayFrom::parse(t)?,
        _ => anyhow::bail!("give exactly one of --from-offset, --since, --from-time"),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let until = args.until.map(|u| ReplayUntil::parse(u, now)).transpose()?;
    let target = match (args.route, args.group) {
        (Some(r), None) => ReplayTarget::Route(r.to_owned()),
        (None, Some(g)) => ReplayTarget::Group(g.to_owned()),
        _ => anyhow::bail!("give exactly one of --route, --group"),
    };
    runtime()?.block_on(async {
        let bus = open(config_path).await?;
        let request = ReplayRequest {
            topic: args.topic.to_owned(),
            from,
            until,
            target,
            dry_run: args.dry_run,
        };
        let summary = eaibus::ops::runs::replay(&bus, request, true).await?;
        println!("{summary}");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rebuild(config_path: &Path) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let bus = open(config_path).await?;
        let report = eaibus::order::rebuild::rebuild(&bus, true).await?;
        println!("{report}");
        Ok(ExitCode::SUCCESS)
    })
}
