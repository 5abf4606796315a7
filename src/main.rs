//! The `eaibus` command line.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of the system allocator: messages, order events and read-model rows are
/// many short-lived strings, and glibc's malloc was the largest single cost of a rebuild
/// (BENCHMARKS.md, "Order projection").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "eaibus",
    version,
    about = "Integration bus between TOTVS standard messages (EAI) and Kafka"
)]
struct Args {
    /// Read schemas from this directory instead of the ones built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    schemas: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Current status, history and invoices of an order, by its OMNI id, Protheus order id or
    /// sale id.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RebuildCommand {
    /// Rebuild the order read model from offset 0, print its digest and swap it in.
    Projection,
}

#[derive(Subcommand)]
enum Command {
    /// Orders rebuilt from the log.
    Order {
        #[command(subcommand)]
        command: OrderCommand,
        #[arg(long, default_value = "config/eaibus.toml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Re-deliver a window of a topic to one route or one consumer group only.
    Replay {
        #[arg(long)]
        topic: String,
        #[arg(long, value_name = "N")]
        from_offset: Option<i64>,
        /// A duration back from now: 24h, 30m, 7d.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        #[arg(long, value_name = "TIME")]
        from_time: Option<String>,
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = "config/eaibus.toml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Rebuild a read model from the log.
    Rebuild {
        #[command(subcommand)]
        command: RebuildCommand,
        #[arg(long, default_value = "config/eaibus.toml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the bus: EAI REST and SOAP endpoints, Kafka ingest, route workers.
    Serve {
        #[arg(long, default_value = "config/eaibus.toml", value_name = "FILE")]
        config: PathBuf,
    },
    /// Send a message to an EAI endpoint (REST by default, SOAP with --soap) and print the answer.
    Send {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_name = "URL")]
        to: String,
        #[arg(long)]
        soap: bool,
        #[arg(long)]
        user: Option<String>,
        /// The environment variable holding the password (never the password itself).
        #[arg(long, value_name = "VARIABLE")]
        password_env: Option<String>,
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// A stand-in Protheus EAI endpoint (REST and SOAP) that integrates every message it gets,
    /// for trying a route without an ERP.
    SimulateProtheus {
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDRESS")]
        listen: std::net::SocketAddr,
        /// The environment variables of the credentials callers must present (Basic); when
        /// either is unset, no authentication is asked.
        #[arg(long, default_value = "EAIBUS_PROTHEUS_USER", value_name = "VARIABLE")]
        user_env: String,
        #[arg(
            long,
            default_value = "EAIBUS_PROTHEUS_PASSWORD",
            value_name = "VARIABLE"
        )]
        password_env: String,
    },
    /// Decode each file (JSON or XML, detected) and validate its header and content.
    Validate {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a message converted to JSON or XML.
    Convert {
        #[arg(long, value_enum)]
        to: Target,
        /// JSON layout: canonical (plain lists) or as the Protheus adapter reads it.
        #[arg(long, value_enum, default_value_t = JsonLayout::Canonical)]
        layout: JsonLayout,
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List the adapter table; with --check, load all configuration and report every error.
    Adapters {
        #[arg(long)]
        check: bool,
        #[arg(long, default_value = "adapters", value_name = "DIR")]
        adapters: PathBuf,
        #[arg(long, default_value = "config/routes.toml", value_name = "FILE")]
        routes: PathBuf,
    },
    /// The dead-letter queue: list, show and redrive its letters.
    Dlq(cli::dlq::DlqArgs),
    /// Print the WhoIs answer (transactions, versions, mode) of the configured adapters.
    Whois {
        #[arg(long, default_value = "adapters", value_name = "DIR")]
        adapters: PathBuf,
        #[arg(long, default_value = "config/routes.toml", value_name = "FILE")]
        routes: PathBuf,
        /// SourceApplication and ProductName of the answer.
        #[arg(long, default_value = "EAIBUS")]
        application: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    Json,
    Xml,
}

#[derive(Clone, Copy, ValueEnum)]
enum JsonLayout {
    Canonical,
    Protheus,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EAIBUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    // Printing into a closed pipe (`eaibus whois | head`) ends the program quietly, as for any
    // Unix tool, instead of panicking.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = Args::parse();
    let registry = match cli::load_registry(args.schemas.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eaibus: {e:#}");
            return ExitCode::from(2);
        }
    };
    if !matches!(
        args.command,
        Command::Validate { .. } | Command::Convert { .. }
    ) {
        init_tracing();
    }
    let result = match args.command {
        Command::Order {
            command: OrderCommand::Show { id, json },
            config,
        } => cli::order::show(&config, &id, json),
        Command::Replay {
            topic,
            from_offset,
            since,
            from_time,
            until,
            route,
            group,
            dry_run,
            config,
        } => cli::order::replay(
            &config,
            cli::order::ReplayArgs {
                topic: &topic,
                from_offset,
                since: since.as_deref(),
                from_time: from_time.as_deref(),
                until: until.as_deref(),
                route: route.as_deref(),
                group: group.as_deref(),
                dry_run,
            },
        ),
        Command::Rebuild {
            command: RebuildCommand::Projection,
            config,
        } => cli::order::rebuild(&config),
        Command::Serve { config } => cli::serve::run(&config),
        Command::Send {
            file,
            to,
            soap,
            user,
            password_env,
            timeout_secs,
        } => cli::send::run(
            &registry,
            cli::send::SendOptions {
                file: &file,
                url: &to,
                soap,
                user,
                password_env,
                timeout: std::time::Duration::from_secs(timeout_secs),
            },
        ),
        Command::SimulateProtheus {
            listen,
            user_env,
            password_env,
        } => cli::simulate::run(registry, listen, &user_env, &password_env),
        Command::Validate { format, files } => {
            cli::validate::run(&registry, &files, matches!(format, OutputFormat::Json))
        }
        Command::Convert { to, layout, file } => cli::convert::run(
            &registry,
            &file,
            match to {
                Target::Json => eaibus::message::Format::Json,
                Target::Xml => eaibus::message::Format::Xml,
            },
            matches!(layout, JsonLayout::Protheus),
        ),
        Command::Adapters {
            check,
            adapters,
            routes,
        } => cli::adapters::run(&registry, &adapters, &routes, check),
        Command::Whois {
            adapters,
            routes,
            application,
        } => cli::adapters::whois(&registry, &adapters, &routes, &application),
        Command::Dlq(dlq) => cli::dlq::run(dlq, args.schemas.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("eaibus: {e:#}");
            ExitCode::from(2)
        }
    }
}
