//! Reading a log from a mirror (c2sp.org/tlog-mirror): `--mirror URL`
//! reads the log at `URL/<origin hash>` (the lowercase hex SHA-256 of its
//! origin) in place of `--log`, and everything read is verified exactly as
//! from the log itself; `--mirror-key VKEY` also requires the mirror's
//! cosignature on every checkpoint read, beside the witnesses asked for.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use stele_tiles::cosignature::{WitnessPolicy, WitnessVerifier};
use stele_tiles::note::NoteVerifier as _;
use stele_tiles::policy::{Policy, Quorum};
use stele_verifier::keys::{Cosigners, text_or_file};
use stele_verifier::{Error, Result};

/// Options to read a log from a mirror.
#[derive(Debug, clap::Args, Clone, Default)]
pub(crate) struct MirrorArgs {
    /// Read the log from this mirror (its monitoring prefix, http(s) or a
    /// folder) instead of --log: at URL/<hex SHA-256 of the log's origin>.
    #[arg(long, value_name = "URL|DIR", conflicts_with_all = ["log", "shards"])]
    pub(crate) mirror: Option<String>,
    /// The mirror's cosigner verifier key (or a file holding it): every
    /// checkpoint read must also carry its cosignature.
    #[arg(long, value_name = "VKEY", requires = "mirror")]
    pub(crate) mirror_key: Option<String>,
}

/// The lowercase hex SHA-256 of `origin`: the log's folder in a mirror.
pub(crate) fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// Where to read the log of `origin`: its place in the mirror, if one is
/// given, else `log`.
pub(crate) fn location(args: &MirrorArgs, log: Option<&str>, origin: &str) -> Option<String> {
    match &args.mirror {
        Some(mirror) => Some(format!(
            "{}/{}",
            mirror.trim_end_matches('/'),
            origin_hash(origin)
        )),
        None => log.map(str::to_owned),
    }
}

/// The cosignatures a checkpoint needs: `cosigners`, and with
/// `--mirror-key` the mirror's too, as one tlog-policy whose quorum is
/// "the mirror and the old quorum".
pub(crate) fn cosigners(args: &MirrorArgs, cosigners: Cosigners) -> Result<Cosigners> {
    let Some(value) = &args.mirror_key else {
        return Ok(cosigners);
    };
    let (text, location) = text_or_file(value)?;
    let mirror = WitnessVerifier::from_text(text.trim()).map_err(|err| Error::Key {
        location: location.clone(),
        reason: err.to_string(),
    })?;
    let policy = match cosigners {
        Cosigners::Threshold(policy) => with_mirror(&threshold_policy(&policy)?, &mirror)?,
        Cosigners::Policy(policy) => with_mirror(&policy, &mirror)?,
    };
    Ok(Cosigners::Policy(Arc::new(policy)))
}

/// A K-of-N witness threshold as a tlog-policy.
fn threshold_policy(policy: &WitnessPolicy) -> Result<Policy> {
    let mut text = String::new();
    let names: Vec<String> = (0..policy.witnesses().len())
        .map(|index| format!("witness-{index}"))
        .collect();
    for (name, witness) in names.iter().zip(policy.witnesses()) {
        text.push_str(&format!("witness {name} {}\n", witness.to_text()));
    }
    if policy.threshold() == 0 || names.is_empty() {
        text.push_str("quorum none\n");
    } else {
        text.push_str(&format!(
            "group witnesses {} {}\nquorum witnesses\n",
            policy.threshold(),
            names.join(" ")
        ));
    }
    Policy::parse(text.as_bytes()).map_err(|err| Error::Usage(format!("the witnesses: {err}")))
}

/// `policy` with the mirror added as a witness named by its key name, and
/// the quorum "the mirror and `policy`'s quorum".
fn with_mirror(policy: &Policy, mirror: &WitnessVerifier) -> Result<Policy> {
    let taken = |name: &str| {
        policy.witness_index(name.as_bytes()).is_some()
            || policy
                .groups()
                .iter()
                .any(|group| group.name().as_bytes() == name.as_bytes())
            || name == "none"
    };
    let unique = |base: &str| {
        let mut name = base.to_owned();
        let mut suffix = 1;
        while taken(&name) {
            suffix += 1;
            name = format!("{base}-{suffix}");
        }
        name
    };
    let witness = unique(mirror.name());
    let mut text = policy.to_bytes();
    // The canonical form ends with the quorum line.
    let cut = text[..text.len() - 1]
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let quorum = String::from_utf8_lossy(&text[cut + "quorum ".len()..text.len() - 1]).into_owned();
    text.truncate(cut);
    text.extend_from_slice(format!("witness {witness} {}\n", mirror.to_text()).as_bytes());
    match policy.quorum() {
        Quorum::None => text.extend_from_slice(format!("quorum {witness}\n").as_bytes()),
        Quorum::Member(_) => {
            let group = unique("mirror-and-quorum");
            text.extend_from_slice(
                format!("group {group} all {witness} {quorum}\nquorum {group}\n").as_bytes(),
            );
        }
    }
    Policy::parse(&text)
        .map_err(|err| Error::Usage(format!("--mirror-key {}: {err}", mirror.to_text())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_tiles::cosignature::CosignatureSigner;
    use stele_tiles::note::{Ed25519Signer, Note};

    fn cosigner(name: &str, seed: u8) -> CosignatureSigner {
        CosignatureSigner::from_seed(name, &[seed; 32]).expect("key")
    }

    /// A checkpoint cosigned by the named cosigners.
    fn note(cosigners: &[&CosignatureSigner]) -> Note {
        let log = Ed25519Signer::from_seed("example.com/log", &[1; 32]).expect("log key");
        let text = format!(
            "example.com/log\n5\n{}\n",
            stele_tiles::Hash([7; 32]).to_base64()
        );
        let mut note = Note::sign(&text, &[&log]).expect("sign");
        for cosigner in cosigners {
            note.add_signature(cosigner.cosign(&text, 1_700_000_000).expect("cosign"))
                .expect("add");
        }
        note
    }

    #[test]
    fn the_mirror_is_required_beside_the_witnesses() {
        let (w1, w2, m) = (cosigner("w1", 2), cosigner("w2", 3), cosigner("mirror", 4));
        let args = MirrorArgs {
            mirror: Some("http://mirror.example/".to_owned()),
            mirror_key: Some(m.verifier().to_text()),
        };
        assert_eq!(
            location(&args, None, "example.com/log").as_deref(),
            Some(
                "http://mirror.example/\
                 4d3203c8f35cdf600e475f55fede6081a703d3d322f208865fca2ec4f0e030f8"
            )
        );
        assert_eq!(
            location(&MirrorArgs::default(), Some("http://log"), "x").as_deref(),
            Some("http://log")
        );
        // No witnesses: the mirror alone.
        let none: Cosigners = WitnessPolicy::new(vec![], 0).expect("policy").into();
        let alone = cosigners(&args, none).expect("policy");
        assert!(alone.check(&note(&[&m])).is_ok());
        assert!(alone.check(&note(&[&w1])).is_err());
        // One of two witnesses, and the mirror.
        let one_of_two: Cosigners = WitnessPolicy::new(vec![w1.verifier(), w2.verifier()], 1)
            .expect("policy")
            .into();
        let both = cosigners(&args, one_of_two).expect("policy");
        assert!(both.check(&note(&[&w2, &m])).is_ok());
        assert!(both.check(&note(&[&w1, &w2])).is_err(), "no mirror");
        assert!(both.check(&note(&[&m])).is_err(), "no witness");
        let names: Vec<String> = both
            .check(&note(&[&w1, &m]))
            .expect("met")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(names.contains(&"mirror".to_owned()), "{names:?}");
        // A policy file's quorum, and the mirror.
        let file = format!(
            "witness a {}\nwitness b {}\ngroup g all a b\nquorum g\n",
            w1.verifier().to_text(),
            w2.verifier().to_text()
        );
        let policy = Cosigners::Policy(Arc::new(Policy::parse(file.as_bytes()).expect("policy")));
        let all = cosigners(&args, policy).expect("policy");
        assert!(all.check(&note(&[&w1, &w2, &m])).is_ok());
        assert!(all.check(&note(&[&w1, &m])).is_err());
        // A mirror key that is one of the witnesses' is refused.
        let same = MirrorArgs {
            mirror_key: Some(w1.verifier().to_text()),
            ..args
        };
        let one: Cosigners = WitnessPolicy::new(vec![w1.verifier()], 1)
            .expect("policy")
            .into();
        assert!(cosigners(&same, one).is_err());
    }
}
