//! Watching who signs for a release namespace: `--watch-namespace NS
//! --expect-key K`. A release statement of a watched namespace signed by a
//! key outside the expected set is an alert. The monitor applies the watch
//! in two places, so that neither is trusted alone:
//!
//! - its scan of every new entry (which reads the whole log the first time,
//!   and every new entry after), which an index cannot hide anything from;
//! - the namespace index `index/namespace/<NS, / as ~>`, which leads to the
//!   namespace's entries without a scan: every entry it lists is fetched,
//!   proven included in the verified checkpoint, and parsed (its signature
//!   checked), so an index that lists anything but a release of that
//!   namespace is caught lying.
//!
//! This module is the judgement; the monitor does the reading and writes
//! the evidence.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use stele_rekor::release::{self, Release};

use crate::error::{Error, Result};
use crate::keys::text_or_file;

/// One watched namespace and the keys expected to sign for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceWatch {
    /// The namespace, such as `pypi/requests`.
    pub namespace: String,
    /// Key IDs (lowercase hex SHA-256 of the DER SPKI) that may sign.
    pub expected: BTreeSet<String>,
}

/// What a release statement of a watched namespace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by an expected key.
    Expected,
    /// Signed by a key outside the expected set.
    Unexpected,
}

impl NamespaceWatch {
    /// A watch of `namespace` (checked as release statements name them)
    /// with the expected keys, each a key ID or a public key
    /// ([`expected_key_id`]).
    pub fn new(namespace: &str, expected: &[String]) -> Result<NamespaceWatch> {
        release::check_namespace(namespace)
            .map_err(|problem| Error::Usage(format!("--watch-namespace: {problem}")))?;
        let expected = expected
            .iter()
            .map(|key| expected_key_id(key))
            .collect::<Result<BTreeSet<String>>>()?;
        Ok(NamespaceWatch {
            namespace: namespace.to_owned(),
            expected,
        })
    }

    /// The path of the namespace's index object.
    pub fn index_path(&self) -> String {
        release::namespace_path(&self.namespace)
    }

    /// `None` if `release` is of another namespace.
    pub fn judge(&self, release: &Release) -> Option<Verdict> {
        if release.namespace != self.namespace {
            return None;
        }
        Some(if self.expected.contains(&release.key_id()) {
            Verdict::Expected
        } else {
            Verdict::Unexpected
        })
    }

    /// Name of the state file that records which of the namespace's entries
    /// were checked against this expected set: the namespace (`/` as `~`)
    /// and a hash of the set, so that changing the set checks everything
    /// again.
    pub fn state_name(&self) -> String {
        let mut hasher = Sha256::new();
        for key in &self.expected {
            hasher.update(key.as_bytes());
            hasher.update(b"\n");
        }
        format!(
            "{}.{}",
            self.namespace.replace('/', "~"),
            &hex::encode(hasher.finalize())[..16]
        )
    }
}

/// Why an entry an index lists for `namespace` is not one of its releases,
/// or `Ok` with the release.
pub fn read_listed(namespace: &str, entry: &[u8]) -> std::result::Result<Release, String> {
    let release = release::parse(entry).map_err(|err| {
        if release::claims_release(entry) {
            format!("not a valid release statement: {err}")
        } else {
            "not a release statement".to_owned()
        }
    })?;
    if release.namespace != namespace {
        return Err(format!(
            "a release of namespace {:?}, not {namespace:?}",
            release.namespace
        ));
    }
    Ok(release)
}

/// The key ID an `--expect-key` value names: 64 lowercase hex digits as
/// they are, or a maintainer's public key (a PEM `PUBLIC KEY`, or the
/// base64 of its DER, given inline or as a file) whose key ID is computed.
pub fn expected_key_id(value: &str) -> Result<String> {
    if stele_rekor::index::is_key_id(value) {
        return Ok(value.to_owned());
    }
    let (text, location) = text_or_file(value)?;
    let der = release::public_key_from_text(text.as_bytes()).map_err(|err| Error::Key {
        location,
        reason: format!(
            "--expect-key takes a key ID (64 lowercase hex digits) or a public key: {err}"
        ),
    })?;
    Ok(release::key_id(&der))
}

#[cfg(test)]
mod tests {
    use stele_rekor::release::{KeyKind, MaintainerKey};

    use super::*;

    #[test]
    fn judges_by_namespace_and_key() {
        let maintainer = MaintainerKey::generate(KeyKind::Ed25519).expect("key");
        let stranger = MaintainerKey::generate(KeyKind::EcdsaP256).expect("key");
        let pem = maintainer.public_key_pem().expect("PEM");
        let watch = NamespaceWatch::new("pypi/requests", &[pem]).expect("watch");
        assert_eq!(
            watch.expected,
            BTreeSet::from([hex::encode(Sha256::digest(maintainer.public_key_der()))])
        );
        let sign = |namespace: &str, key: &MaintainerKey| {
            Release::sign(namespace, "1.0", "f.tgz", [1; 32], key).expect("sign")
        };
        assert_eq!(
            watch.judge(&sign("pypi/requests", &maintainer)),
            Some(Verdict::Expected)
        );
        assert_eq!(
            watch.judge(&sign("pypi/requests", &stranger)),
            Some(Verdict::Unexpected)
        );
        assert_eq!(watch.judge(&sign("pypi/other", &stranger)), None);

        let entry = sign("pypi/other", &maintainer).render();
        assert!(read_listed("pypi/requests", &entry).is_err());
        assert!(read_listed("pypi/other", &entry).is_ok());
        assert_eq!(
            read_listed("pypi/requests", b"opaque"),
            Err("not a release statement".to_owned())
        );
        let mut forged = sign("pypi/requests", &maintainer);
        forged.key = stranger.public_key_der();
        let reason = read_listed("pypi/requests", &forged.render()).expect_err("forged");
        assert!(reason.contains("does not verify"), "{reason}");

        // The same set gives the same state file; another set another.
        let by_id = NamespaceWatch::new("pypi/requests", &[maintainer.key_id()]).expect("watch");
        assert_eq!(by_id.state_name(), watch.state_name());
        assert!(watch.state_name().starts_with("pypi~requests."));
        let wider = NamespaceWatch::new("pypi/requests", &[maintainer.key_id(), stranger.key_id()])
            .expect("watch");
        assert_ne!(wider.state_name(), watch.state_name());
    }

    #[test]
    fn refuses_bad_namespaces_and_keys() {
        for namespace in ["", "Pypi/x", "a//b", "/a", "a/..", "a~b"] {
            assert!(NamespaceWatch::new(namespace, &[]).is_err(), "{namespace}");
        }
        for key in ["AB".repeat(32), "ab".repeat(31), "not a key".to_owned()] {
            assert!(expected_key_id(&key).is_err(), "{key}");
        }
    }
}
