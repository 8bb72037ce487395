//! `stele-verify witness`: run a c2sp.org/tlog-witness server.

use std::path::Path;
use std::sync::Arc;

use stele_tiles::cosignature::WitnessSigner;
use stele_verifier::keys::{LogKey, text_or_file};
use stele_verifier::shards::ShardList;
use stele_verifier::witness::{
    RESERVED_DESCRIPTORS, ServerLimits, Witness, raise_descriptor_limit,
};
use stele_verifier::{Error, Result};

use crate::cli::Cli;
use crate::common::{Report, http_options};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    cli: &Cli,
    vkeys: &[String],
    shards: Option<&str>,
    origin: Option<&str>,
    key: &Path,
    listen: &str,
    state: &Path,
    limits: ServerLimits,
    max_evidence_bytes: u64,
) -> Result<Report> {
    for (flag, value) in [
        ("--header-timeout", limits.header_timeout),
        ("--body-timeout", limits.body_timeout),
        ("--idle-timeout", limits.idle_timeout),
    ] {
        if value.is_zero() {
            return Err(Error::Usage(format!("{flag} must be above zero")));
        }
    }
    if limits.max_connections == 0 {
        return Err(Error::Usage(
            "--max-connections must be at least 1".to_owned(),
        ));
    }
    let (text, _) = text_or_file(&key.display().to_string())?;
    let signer = WitnessSigner::from_private_key_text(text.trim()).map_err(|err| Error::Key {
        location: key.display().to_string(),
        reason: err.to_string(),
    })?;
    let mut logs = vkeys
        .iter()
        .map(|vkey| LogKey::parse(vkey, origin))
        .collect::<Result<Vec<_>>>()?;
    if let Some(location) = shards {
        let list = ShardList::load(location, &http_options(cli)).await?;
        logs.extend(list.shards.into_iter().map(|shard| shard.key));
    }
    let witness = Arc::new(Witness::with_evidence_limit(
        signer,
        logs,
        state,
        max_evidence_bytes,
        limits.warn_interval,
    )?);
    if let Some(descriptors) = raise_descriptor_limit() {
        let needed = (limits.max_connections as u64).saturating_add(RESERVED_DESCRIPTORS);
        if needed > descriptors {
            tracing::warn!(
                "--max-connections {} and about {RESERVED_DESCRIPTORS} descriptors for the rest need {needed}, above the limit of {descriptors} open files: connections past it wait in the listen queue while `accept` backs off",
                limits.max_connections
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|err| Error::Usage(format!("listen on {listen}: {err}")))?;
    let address = listener
        .local_addr()
        .map_err(|err| Error::io("listen", listen, err))?;
    eprintln!(
        "witness {} listening on http://{address}/add-checkpoint",
        witness.verifier_text()
    );
    witness.serve_with(listener, limits).await?;
    Err(Error::Usage("the witness server stopped".to_owned()))
}
