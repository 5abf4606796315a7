//! The `eaibus` command line.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
enum Command {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let registry = match cli::load_registry(args.schemas.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eaibus: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("eaibus: {e:#}");
            ExitCode::from(2)
        }
    }
}
