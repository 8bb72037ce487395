//! `stele-genlog`: writes a large, valid c2sp.org/tlog-tiles log into a
//! folder, fast, for the scale benchmark (`scripts/bench-scale.sh`).
//!
//! ```text
//! stele keygen --origin example.com/scale --out keys
//! stele-genlog write --out /work/scale-log --entries 10000000 --key keys/log.key
//! stele-genlog entry --index 10 > dup.bin      # the bytes of entry 10
//! stele-genlog estimate --entries 100000000    # disk it would take
//! stele-genlog write --s3-bucket stele --s3-endpoint http://127.0.0.1:8333 \
//!     --s3-prefix scale-1m --entries 1000000 --key keys/log.key
//! ```
//!
//! The folder (or bucket prefix) holds what the log publishes (tiles, entry bundles, a signed
//! `checkpoint`) laid out as `stele serve --data` lays out its folder, and
//! none of Stele's private state: `stele adopt` makes it a Stele log. See
//! `stele_e2e::genlog` for what is written and how.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use stele_e2e::genlog::{self, Footprint, MIN_ENTRY_SIZE, Target};
use stele_sequencer::storage::s3::S3Config;

/// Space left free beyond the estimate, at least.
const MARGIN_BYTES: u64 = 1 << 30;

#[derive(Debug, Parser)]
#[command(
    name = "stele-genlog",
    version,
    about = "Write a large, valid tlog-tiles log into a folder (for the scale benchmark)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a log of N entries into an empty (or new) folder, or an empty
    /// bucket prefix.
    Write {
        /// Folder to write the log into; created if missing, must be empty.
        #[arg(long, value_name = "DIR", required_unless_present = "s3_bucket")]
        out: Option<PathBuf>,
        /// Number of entries.
        #[arg(long, value_name = "N")]
        entries: u64,
        /// Private key file as `stele keygen` writes it; signs the checkpoint.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The log's origin (required for an ECDSA PEM key, which holds no
        /// name; for an Ed25519 key it must equal the key name).
        #[arg(long)]
        origin: Option<String>,
        /// Bytes per entry (8 to 4096).
        #[arg(long, default_value_t = 16)]
        entry_size: usize,
        #[command(flatten)]
        s3: S3Args,
    },
    /// Print entry INDEX of a generated log (raw bytes) on standard output.
    Entry {
        /// The entry's index.
        #[arg(long)]
        index: u64,
        /// Bytes per entry, as given to `write`.
        #[arg(long, default_value_t = 16)]
        entry_size: usize,
    },
    /// Print the files and disk a log of N entries takes.
    Estimate {
        /// Number of entries.
        #[arg(long, value_name = "N")]
        entries: u64,
        /// Bytes per entry.
        #[arg(long, default_value_t = 16)]
        entry_size: usize,
    },
}

/// Writing to a bucket instead of a folder, through the sequencer's own S3
/// backend; credentials come from the usual AWS environment variables.
#[derive(Debug, clap::Args)]
struct S3Args {
    /// Write the log to this bucket (under --s3-prefix) instead of --out.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:8333 for a local SeaweedFS
    /// (path-style addressing is then used).
    #[arg(long)]
    s3_endpoint: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// Key prefix of the log in the bucket; it must hold no object yet.
    #[arg(long, default_value = "")]
    s3_prefix: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Write {
            out,
            entries,
            key,
            origin,
            entry_size,
            s3,
        } => write(out, entries, &key, origin.as_deref(), entry_size, s3),
        Command::Entry { index, entry_size } => {
            if !(MIN_ENTRY_SIZE..=genlog::MAX_ENTRY_SIZE).contains(&entry_size) {
                Err(genlog::GenError::EntrySize(entry_size).to_string())
            } else {
                std::io::stdout()
                    .write_all(&genlog::entry(index, entry_size))
                    .map_err(|err| format!("standard output: {err}"))
            }
        }
        Command::Estimate {
            entries,
            entry_size,
        } => {
            let f = genlog::footprint(entries, entry_size, 4096);
            println!("{}", describe(&f));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stele-genlog: {message}");
            ExitCode::FAILURE
        }
    }
}

fn describe(f: &Footprint) -> String {
    format!(
        "{} files in {} folders, {:.1} MiB of content, about {:.1} MiB of disk",
        f.files,
        f.folders,
        f.content_bytes as f64 / 1048576.0,
        f.disk_bytes as f64 / 1048576.0
    )
}

fn write(
    out: Option<PathBuf>,
    entries: u64,
    key: &std::path::Path,
    origin: Option<&str>,
    entry_size: usize,
    s3: S3Args,
) -> Result<(), String> {
    if !(MIN_ENTRY_SIZE..=genlog::MAX_ENTRY_SIZE).contains(&entry_size) {
        return Err(genlog::GenError::EntrySize(entry_size).to_string());
    }
    let key = stele_sequencer::keyfile::load(key, origin, false).map_err(|err| err.to_string())?;
    let target = match (out, s3.s3_bucket) {
        (Some(_), Some(_)) => return Err("give either --out or --s3-bucket, not both".into()),
        (None, None) => return Err("give --out DIR or --s3-bucket BUCKET".into()),
        (None, Some(bucket)) => {
            let mut config = S3Config::new(bucket);
            config.force_path_style = s3.s3_endpoint.is_some();
            config.endpoint_url = s3.s3_endpoint;
            config.region = s3.s3_region;
            // As `stele serve --s3-prefix` reads it: a prefix names a
            // folder, and the backend prepends it verbatim.
            config.key_prefix = match s3.s3_prefix.trim_matches('/') {
                "" => String::new(),
                prefix => format!("{prefix}/"),
            };
            Target::S3(config)
        }
        (Some(out), None) => Target::Folder(out),
    };
    let out = match &target {
        Target::Folder(out) => out.clone(),
        Target::S3(_) => {
            let needed = genlog::footprint(entries, entry_size, 1);
            eprintln!(
                "stele-genlog: {entries} entries of {entry_size} bytes for {} to {}: {}",
                key.origin(),
                target.describe(),
                describe(&needed)
            );
            return generate(&target, entries, entry_size, &key);
        }
    };
    let free = genlog::free_space(&out).map_err(|err| err.to_string())?;
    let needed = genlog::footprint(entries, entry_size, free.block);
    eprintln!(
        "stele-genlog: {entries} entries of {entry_size} bytes for {}: {}; {:.1} MiB and {} inodes free",
        key.origin(),
        describe(&needed),
        free.bytes as f64 / 1048576.0,
        free.inodes
    );
    let margin = MARGIN_BYTES.max(needed.disk_bytes / 20);
    if needed.disk_bytes.saturating_add(margin) > free.bytes {
        return Err(format!(
            "not enough free space under {}: the log needs about {:.1} MiB and {:.1} MiB more \
             must stay free, but only {:.1} MiB are",
            out.display(),
            needed.disk_bytes as f64 / 1048576.0,
            margin as f64 / 1048576.0,
            free.bytes as f64 / 1048576.0
        ));
    }
    if free.inodes > 0 && needed.files + needed.folders > free.inodes {
        return Err(format!(
            "not enough free inodes under {}: the log needs {} files and folders, {} are free",
            out.display(),
            needed.files + needed.folders,
            free.inodes
        ));
    }

    generate(&target, entries, entry_size, &key)
}

fn generate(
    target: &Target,
    entries: u64,
    entry_size: usize,
    key: &stele_sequencer::keyfile::LogKey,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last_report = started;
    let mut progress = |done: u64| {
        let now = Instant::now();
        if done == entries || now.duration_since(last_report).as_secs_f64() >= 5.0 {
            last_report = now;
            let seconds = now.duration_since(started).as_secs_f64();
            eprintln!(
                "stele-genlog: {done}/{entries} entries ({:.0}%), {:.0} entries/s",
                100.0 * done as f64 / entries.max(1) as f64,
                done as f64 / seconds.max(1e-9)
            );
        }
    };
    let generated = genlog::generate_to(
        target,
        entries,
        entry_size,
        key.signer.as_ref(),
        &mut progress,
    )
    .map_err(|err| err.to_string())?;
    eprintln!(
        "stele-genlog: wrote {} entries ({} files, {:.1} MiB) to {} in {:.1} s: {:.0} entries/s",
        generated.entries,
        generated.files,
        generated.bytes as f64 / 1048576.0,
        target.describe(),
        generated.elapsed.as_secs_f64(),
        generated.rate()
    );
    println!(
        "entries={} files={} bytes={} seconds={:.3} rate={:.0} root={}",
        generated.entries,
        generated.files,
        generated.bytes,
        generated.elapsed.as_secs_f64(),
        generated.rate(),
        generated.root.to_hex()
    );
    Ok(())
}
