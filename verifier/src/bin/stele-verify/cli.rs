//! The command line: clap's argument structs and subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stele-verify",
    version,
    about = "Check a transparency log: checkpoints, inclusion, consistency, receipts; monitor it, witness it",
    after_help = "Exit status: 0 the check passed, 1 it failed, 2 usage error."
)]
pub(crate) struct Cli {
    /// Print JSON on standard output instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Cache folder for immutable tiles [default: ~/.cache/stele-verify].
    #[arg(long, global = true, env = "STELE_VERIFY_CACHE", value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,
    /// Do not cache tiles on disk.
    #[arg(long, global = true)]
    pub(crate) no_cache: bool,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub(crate) timeout: u64,
    /// HTTP attempts per file (retries on 5xx and timeouts, with backoff).
    #[arg(long, global = true, default_value_t = 4)]
    pub(crate) attempts: u32,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct KeyArgs {
    /// The log's verifier key (`name+id+base64`, or a PEM public key with
    /// --origin), or a file holding it.
    #[arg(
        long,
        env = "STELE_VKEY",
        value_name = "KEY",
        required_unless_present_any = ["shards", "policy"]
    )]
    pub(crate) vkey: Option<String>,
    /// Checkpoint origin [default: the key name].
    #[arg(long, conflicts_with = "shards")]
    pub(crate) origin: Option<String>,
    /// A deployment's list of shards (`shards.json`, as `stele trust`
    /// writes it), a file or an http(s) URL, instead of --vkey and --log:
    /// each shard's name, origin, URL and key. Commands that read one log
    /// read every shard (or the one --shard names); those that check one
    /// entry or receipt pick its shard by its checkpoint's origin.
    #[arg(long, env = "STELE_SHARDS", value_name = "FILE|URL")]
    pub(crate) shards: Option<String>,
    /// With --shards: only the shard of this name.
    #[arg(long, value_name = "NAME", requires = "shards")]
    pub(crate) shard: Option<String>,
    /// A witness verifier key (or file) whose cosignature counts.
    #[arg(long = "witness", value_name = "KEY")]
    pub(crate) witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned [default: all].
    #[arg(long, value_name = "K")]
    pub(crate) min_witnesses: Option<usize>,
    /// A c2sp.org/tlog-policy file, in place of --witness and
    /// --min-witnesses: checkpoints must meet its quorum. Without --vkey,
    /// the log's key is the policy's log of the checkpoint's origin (or of
    /// --origin, or its only log).
    #[arg(
        long,
        env = "STELE_POLICY",
        value_name = "FILE",
        conflicts_with_all = ["witnesses", "min_witnesses"]
    )]
    pub(crate) policy: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct LogArgs {
    /// The log: an http(s) base URL, or a folder holding `checkpoint` and
    /// `tile/`.
    #[arg(
        long,
        env = "STELE_LOG",
        value_name = "URL|DIR",
        required_unless_present_any = ["shards", "mirror"]
    )]
    pub(crate) log: Option<String>,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) mirror: crate::mirror::MirrorArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Fetch and verify the latest checkpoint, and that the tiles compute
    /// its root.
    Checkpoint(LogArgs),
    /// Prove an entry included in the latest checkpoint.
    Inclusion {
        #[command(flatten)]
        log: LogArgs,
        /// The entry's index.
        #[arg(long, group = "which")]
        index: Option<u64>,
        /// The entry's bytes (with --index, or found by scanning the log).
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
        /// The entry's leaf hash, hex (with --index, or found by scanning).
        #[arg(long, value_name = "HEX")]
        leaf_hash: Option<String>,
    },
    /// Prove the latest checkpoint consistent with an older one.
    Consistency {
        #[command(flatten)]
        log: LogArgs,
        /// The older signed checkpoint.
        #[arg(long, value_name = "CHECKPOINT_FILE")]
        old: PathBuf,
    },
    /// Verify a c2sp.org/tlog-proof receipt offline.
    Receipt {
        /// The receipt file.
        file: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// The entry the receipt is for.
        #[arg(long, value_name = "FILE")]
        entry: Option<PathBuf>,
        /// The entry's leaf hash, hex, instead of --entry.
        #[arg(long, value_name = "HEX", conflicts_with = "entry")]
        leaf_hash: Option<String>,
    },
    /// Check a signed release: FILE against its bundle (FILE.stele, as
    /// `stele sign` writes it), the maintainer's key and the log's key,
    /// offline; with --log also against the log's latest checkpoint.
    Release {
        /// The release file.
        file: PathBuf,
        /// The bundle [default: FILE.stele].
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// The maintainer's public key (PEM, or base64 of the DER SPKI), or
        /// a file holding it.
        #[arg(long = "key", value_name = "MAINTAINER_PUB")]
        maintainer: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Also check online: the log (http(s) base URL or folder) holds
        /// the entry in its latest checkpoint, consistent with the
        /// receipt's.
        #[arg(long, value_name = "URL|DIR")]
        log: Option<String>,
    },
    /// Fetch an entry, prove it included, and print it decoded.
    Get {
        /// The entry's index.
        index: u64,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Check the checkpoint history: every snapshot listed in history/<year>
    /// signed by the log and consistent with its latest checkpoint, and the
    /// hourly and daily statistics recomputed from the lists.
    History {
        #[command(flatten)]
        log: LogArgs,
        /// A year whose list to check (repeatable) [default: this year and
        /// the two before, with the statistics].
        #[arg(long = "year", value_name = "YYYY", value_parser = clap::value_parser!(u32).range(1970..=9999))]
        years: Vec<u32>,
    },
    /// Find a file's entries through the digest index and prove each one.
    Artifact {
        /// The artifact.
        file: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Follow the log: check consistency and every new entry.
    Monitor {
        #[command(flatten)]
        log: LogArgs,
        /// Folder keeping the last verified checkpoint and any evidence.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Report entries that hold or are signed by this key.
        #[arg(long = "watch-key", value_name = "KEY_OR_FILE")]
        watch_keys: Vec<String>,
        /// Alert, with evidence, when a release statement of this namespace
        /// is signed by a key not given with --expect-key: checked in every
        /// new entry, and through the namespace's index (every entry it
        /// lists fetched and proven). Repeatable.
        #[arg(long = "watch-namespace", value_name = "NS", requires = "expect_keys")]
        watch_namespaces: Vec<String>,
        /// A key expected to sign for the watched namespaces: its key ID
        /// (64 hex digits), or its public key (PEM or base64 DER, or a file
        /// holding it). Repeatable.
        #[arg(
            long = "expect-key",
            value_name = "KEY_ID_OR_FILE",
            requires = "watch_namespaces"
        )]
        expect_keys: Vec<String>,
        /// Catch up once and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between polls.
        #[arg(long, default_value_t = 10)]
        interval: u64,
    },
    /// Run a c2sp.org/tlog-witness server.
    Witness {
        /// The log's base URL (unused: the witness needs only its key).
        #[arg(long, value_name = "URL|DIR")]
        log: Option<String>,
        /// Verifier key (or file) of a log to witness; repeat for more logs,
        /// and for each key of a log that signs with two (Ed25519 or ECDSA
        /// and ML-DSA-44: both are checked).
        #[arg(long = "vkey", required_unless_present = "shards", value_name = "KEY")]
        vkeys: Vec<String>,
        /// A deployment's list of shards (`shards.json`), a file or an
        /// http(s) URL: witness every shard it lists, each with its own key
        /// (with any --vkey logs).
        #[arg(long, value_name = "FILE|URL")]
        shards: Option<String>,
        /// Origin of the log, for a PEM key.
        #[arg(long)]
        origin: Option<String>,
        /// The witness's private key file (`cosigner keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Folder keeping the last cosigned checkpoint of each log, and
        /// rejected requests in DIR/rejected/.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// Time a client has to send a request's headers, from their first
        /// byte; then the connection is closed.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        header_timeout: Duration,
        /// Time a client has to send a request's body, from the end of its
        /// headers; then it gets 408 and the connection is closed.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        body_timeout: Duration,
        /// Time a connection may go without a request (before its first, or
        /// between keep-alive requests) before it is closed.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        idle_timeout: Duration,
        /// Connections served at once; more get 503 and are closed. Each
        /// takes a descriptor: the soft descriptor limit is raised to the
        /// hard one at start, and a warning says if N does not fit in it.
        #[arg(long, default_value_t = stele_verifier::witness::DEFAULT_MAX_CONNECTIONS, value_name = "N")]
        max_connections: usize,
        /// Total bytes of rejected requests kept as evidence in
        /// DIR/rejected/ (0: none). When full, new rejected requests are not
        /// kept (a rate-limited warning counts them), so that a flood cannot
        /// push out the evidence already kept.
        #[arg(long, default_value_t = stele_verifier::witness::DEFAULT_MAX_EVIDENCE_BYTES, value_name = "BYTES")]
        max_evidence_bytes: u64,
        /// Warnings whose rate clients control (failed accepts, refused
        /// connections, evidence not kept) are written at most once per
        /// this interval per cause, with the count of those not written.
        #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
        warn_interval: Duration,
    },
    /// Witness key management.
    Cosigner {
        #[command(subcommand)]
        command: CosignerCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CosignerCommand {
    /// Make a witness key: writes the private key to FILE (mode 0600) and
    /// its verifier key to FILE with its extension replaced by `.pub`
    /// (`w1.key` gives `w1.pub`, `w1` gives `w1.pub`), and prints the
    /// verifier key. Neither file may exist.
    Keygen {
        /// The witness name, e.g. witness.example/w1.
        #[arg(long)]
        name: String,
        /// Private key file to create; the verifier key goes beside it, in
        /// FILE with its extension replaced by `.pub`.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's kind: `ml-dsa-44` (c2sp.org/tlog-cosignature v1.1
        /// `subtree/v1`, post-quantum, the kind the spec recommends for new
        /// witnesses) or `ed25519` (`cosignature/v1`).
        #[arg(long, default_value = "ed25519", value_parser = ["ed25519", "ml-dsa-44"])]
        algorithm: String,
    },
}
