//! Checks of the `[[shard]]` tables of a configuration.

use super::{Config, Error, valid_shard_name};

impl Config {
    /// Checks the `[[shard]]` tables (called by [`Config::validate`]).
    pub(super) fn validate_shards(&self) -> Result<(), Error> {
        if self.shards.is_empty() {
            return Ok(());
        }
        let bad = |problem: String| Err(Error::Config(problem));
        for (option, set) in [
            ("origin", self.origin.is_some()),
            ("key", self.key.is_some()),
            ("key_algorithm", self.key_algorithm.is_some()),
            ("mldsa_key", self.mldsa_key.is_some()),
        ] {
            if set {
                return bad(format!(
                    "{option}: names one log, but the file has [[shard]] tables: set it in \
                     each shard"
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut origins = std::collections::HashSet::new();
        for shard in &self.shards {
            let name = &shard.name;
            if !valid_shard_name(name) {
                return bad(format!(
                    "shard {name:?}: a name is [a-z0-9][a-z0-9._-]*, at most 63 bytes"
                ));
            }
            if !names.insert(name.as_str()) {
                return bad(format!("shard {name:?}: two shards have this name"));
            }
            stele_tiles::note::validate_key_name(&shard.origin).map_err(|err| {
                Error::Config(format!("shard {name:?}: origin {:?}: {err}", shard.origin))
            })?;
            if !origins.insert(shard.origin.as_str()) {
                return bad(format!(
                    "shard {name:?}: origin {:?} is another shard's too",
                    shard.origin
                ));
            }
            if let (Some(from), Some(until)) = (shard.accept_from, shard.accept_until) {
                if from >= until {
                    return bad(format!(
                        "shard {name:?}: accept_from {} is not before accept_until {}",
                        humantime::format_rfc3339(from),
                        humantime::format_rfc3339(until)
                    ));
                }
            }
            if shard.s3_prefix.is_some() && self.s3_bucket.is_none() && shard.s3_bucket.is_none() {
                return bad(format!("shard {name:?}: s3_prefix is set but no s3_bucket"));
            }
            if let Some(url) = &shard.url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return bad(format!("shard {name:?}: url {url:?} is not an http(s) URL"));
                }
            }
            let witnesses = shard.witnesses.as_ref().unwrap_or(&self.witnesses);
            let threshold = shard.witness_threshold.unwrap_or(self.witness_threshold);
            if shard.witness_policy.is_some()
                && (shard.witnesses.is_some() || shard.witness_threshold.is_some())
            {
                return bad(format!(
                    "shard {name:?}: witness_policy replaces witnesses and witness_threshold: \
                     set one or the other"
                ));
            }
            if threshold > witnesses.len() {
                return bad(format!(
                    "shard {name:?}: witness_threshold {threshold} is more than the {} witnesses",
                    witnesses.len()
                ));
            }
            crate::witness::parse_witness_settings(witnesses).map_err(|err| match err {
                Error::Config(problem) => Error::Config(format!("shard {name:?}: {problem}")),
                other => other,
            })?;
        }
        Ok(())
    }
}
