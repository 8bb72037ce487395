//! `stele-verify`: check a Stele log (or any c2sp.org/tlog-tiles log).
//!
//! Exit status: 0 when the check passes, 1 when it fails (the message names
//! the evidence: which resource, which hash), 2 on a usage error.
//!
//! One module per subcommand, in `stele-verify/`; the checks themselves are
//! the library's.

use std::process::ExitCode;

use clap::Parser as _;
use serde_json::json;
use stele_verifier::Result;
use stele_verifier::witness::ServerLimits;

mod artifact;
mod checkpoint;
mod cli;
mod common;
mod consistency;
mod cosigner;
mod get;
mod history;
mod inclusion;
mod mirror;
mod monitor;
mod receipt;
mod release;
mod witness;

use cli::{Cli, Command, CosignerCommand};
use common::Report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_VERIFY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("stele-verify: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            if json {
                println!("{}", json!({"ok": true, "result": report.json}));
            } else {
                println!("{}", report.text.trim_end_matches('\n'));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if json {
                println!("{}", json!({"ok": false, "error": err.to_string()}));
            }
            eprintln!("stele-verify: FAIL: {err}");
            ExitCode::from(if err.is_usage() { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> Result<Report> {
    match &cli.command {
        Command::Checkpoint(args) => checkpoint::run(&cli, args).await,
        Command::Inclusion {
            log,
            index,
            entry,
            leaf_hash,
        } => inclusion::run(&cli, log, *index, entry.as_deref(), leaf_hash.as_deref()).await,
        Command::Consistency { log, old } => consistency::run(&cli, log, old).await,
        Command::Receipt {
            file,
            key,
            entry,
            leaf_hash,
        } => receipt::run(&cli, file, key, entry.as_deref(), leaf_hash.as_deref()).await,
        Command::Release {
            file,
            bundle,
            maintainer,
            key,
            log,
        } => {
            let args = release::ReleaseArgs {
                file,
                bundle: bundle.as_deref(),
                maintainer,
                key,
                log: log.as_deref(),
            };
            release::run(&cli, args).await
        }
        Command::Get { index, log } => get::run(&cli, log, *index).await,
        Command::History { log, years } => history::run(&cli, log, years).await,
        Command::Artifact { file, log } => artifact::run(&cli, file, log).await,
        Command::Monitor {
            log,
            state,
            watch_keys,
            watch_namespaces,
            expect_keys,
            once,
            interval,
        } => {
            let watch = monitor::Watch {
                keys: watch_keys,
                namespaces: watch_namespaces,
                expect_keys,
            };
            monitor::run(&cli, log, state, watch, *once, *interval).await
        }
        Command::Witness {
            log: _,
            vkeys,
            shards,
            origin,
            key,
            listen,
            state,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_connections,
            max_evidence_bytes,
            warn_interval,
        } => {
            let limits = ServerLimits {
                header_timeout: *header_timeout,
                body_timeout: *body_timeout,
                idle_timeout: *idle_timeout,
                max_connections: *max_connections,
                warn_interval: *warn_interval,
            };
            witness::run(
                &cli,
                vkeys,
                shards.as_deref(),
                origin.as_deref(),
                key,
                listen,
                state,
                limits,
                *max_evidence_bytes,
            )
            .await
        }
        Command::Cosigner {
            command:
                CosignerCommand::Keygen {
                    name,
                    out,
                    algorithm,
                },
        } => cosigner::keygen(name, out, algorithm),
    }
}
