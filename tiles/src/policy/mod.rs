//! Transparency log policies, as specified by <https://c2sp.org/tlog-policy>:
//! which logs and witnesses a reader trusts, and which sets of witnesses
//! must have cosigned a checkpoint before it is believed.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> <all|any|k> <member>...
//! quorum <name>
//! ```
//!
//! [`Policy::parse`] follows the specification strictly; every refusal names
//! the line and what is wrong with it:
//!
//! - the file is bytes `0x09`, `0x0A`, `0x20`–`0x7E` and `0x80`–`0xFF` only,
//!   and every line, the last one included, ends in a newline;
//! - fields are separated by ASCII spaces and tabs only; a line whose first
//!   field starts with `#` is a comment (there are no end-of-line comments);
//! - names (of witnesses and groups) and URLs are opaque bytes ([`Octets`]);
//!   witnesses and groups share one namespace; `none` is predefined, may be
//!   the quorum and nothing else;
//! - a group or the quorum names only witnesses and groups defined on an
//!   earlier line, and a name is listed as a group member at most once in
//!   the whole policy (so each witness counts towards the quorum one way
//!   only: the groups form a forest); `1 <= k <= n`;
//! - exactly one `quorum` line;
//! - a log's key is of type `0x01`, `0x02` or `0x06`, a witness's of type
//!   `0x04` or `0x06` (see `policy/keys.rs`); two logs, or two witnesses,
//!   with the same public key are refused whatever their key names and IDs,
//!   and no two keys of the policy may share a key name and key ID (their
//!   signature lines could not be told apart);
//! - at most [`MAX_ENTRIES`] logs, witnesses and groups each, and at most
//!   [`MAX_POLICY_SIZE`] bytes.
//!
//! A checkpoint satisfies a policy ([`Policy::verify_checkpoint`]) when a log
//! of the policy whose key name is the checkpoint's origin signed it, and the
//! witnesses whose cosignatures verify meet the quorum. As signed-note
//! requires, a signature line that carries the name and key ID of a key of
//! the policy and does not verify rejects the checkpoint. An ML-DSA-44 log
//! signature does not cover extension lines, so a checkpoint with extension
//! lines needs a valid signature by a classical key of one of its logs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::note::{Note, NoteVerifier};
use crate::{Error, Result};

mod keys;
mod parse;

/// At most this many logs, this many witnesses and this many groups: eight
/// times what the specification asks every implementation to support.
pub const MAX_ENTRIES: usize = 256;

/// At most this many bytes in a policy file: room for the largest policy of
/// ML-DSA-44 keys with long URLs and comments.
pub const MAX_POLICY_SIZE: usize = 4 << 20;

/// The predefined quorum name that requires no cosignature.
pub const NONE: &[u8] = b"none";

/// Bytes that the policy format treats as opaque: witness and group names,
/// URLs. Compared byte for byte; shown as UTF-8 where they are, with other
/// bytes escaped as `\xNN`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Octets(Vec<u8>);

impl Octets {
    /// The bytes, as they were in the policy file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, if they are UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Display for Octets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Octets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A log of the policy.
#[derive(Clone)]
pub struct PolicyLog {
    key: keys::Key,
    url: Option<Octets>,
    line: usize,
}

impl PolicyLog {
    /// The verifier key, as written in the policy.
    pub fn vkey(&self) -> &str {
        &self.key.vkey
    }

    /// The key name, which is the origin of the log's checkpoints.
    pub fn origin(&self) -> &str {
        &self.key.name
    }

    /// The key ID of the vkey.
    pub fn key_id(&self) -> u32 {
        self.key.key_id
    }

    /// The vkey's signature type: `0x01`, `0x02` or `0x06`.
    pub fn signature_type(&self) -> u8 {
        self.key.signature_type
    }

    /// The log's URL, if the policy gives one.
    pub fn url(&self) -> Option<&Octets> {
        self.url.as_ref()
    }

    /// The note verifier of the log's key.
    pub fn verifier(&self) -> &dyn NoteVerifier {
        self.key.verifier.as_ref()
    }

    /// A shared handle on the verifier, for callers that keep it.
    pub fn verifier_arc(&self) -> Arc<dyn NoteVerifier> {
        Arc::clone(&self.key.verifier)
    }

    /// The line of the policy that defines the log, from 1.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Debug for PolicyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyLog")
            .field("vkey", &self.key.vkey)
            .field("url", &self.url)
            .field("line", &self.line)
            .finish()
    }
}

/// A witness of the policy.
#[derive(Clone)]
pub struct PolicyWitness {
    name: Octets,
    key: keys::Key,
    url: Option<Octets>,
    line: usize,
}

impl PolicyWitness {
    /// The witness's name in the policy (not its key name).
    pub fn name(&self) -> &Octets {
        &self.name
    }

    /// The verifier key, as written in the policy.
    pub fn vkey(&self) -> &str {
        &self.key.vkey
    }

    /// The key name its cosignature lines carry.
    pub fn key_name(&self) -> &str {
        &self.key.name
    }

    /// The key ID of the vkey.
    pub fn key_id(&self) -> u32 {
        self.key.key_id
    }

    /// The vkey's signature type: `0x04` or `0x06`.
    pub fn signature_type(&self) -> u8 {
        self.key.signature_type
    }

    /// The witness's URL (its tlog-witness submission prefix), if the policy
    /// gives one.
    pub fn url(&self) -> Option<&Octets> {
        self.url.as_ref()
    }

    /// The note verifier of the witness's cosignatures.
    pub fn verifier(&self) -> &dyn NoteVerifier {
        self.key.verifier.as_ref()
    }

    /// A shared handle on the verifier, for callers that keep it.
    pub fn verifier_arc(&self) -> Arc<dyn NoteVerifier> {
        Arc::clone(&self.key.verifier)
    }

    /// The line of the policy that defines the witness, from 1.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Debug for PolicyWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyWitness")
            .field("name", &self.name)
            .field("vkey", &self.key.vkey)
            .field("url", &self.url)
            .field("line", &self.line)
            .finish()
    }
}

/// A member of a group, or the quorum: a witness or a group, by its index
/// in [`Policy::witnesses`] or [`Policy::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    /// A witness, by index.
    Witness(usize),
    /// A group, by index; always one defined before the group naming it.
    Group(usize),
}

/// A group of the policy: met when at least `threshold` of its members are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyGroup {
    name: Octets,
    threshold: usize,
    members: Vec<Member>,
    line: usize,
}

impl PolicyGroup {
    /// The group's name.
    pub fn name(&self) -> &Octets {
        &self.name
    }

    /// How many members must be met: `1 <= threshold <= members().len()`.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The members, in the order the policy lists them.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The line of the policy that defines the group, from 1.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// The quorum: no cosignature (`quorum none`), one witness, or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quorum {
    /// `quorum none`: no cosignature is required.
    None,
    /// The quorum is met by the members of [`Member`].
    Member(Member),
}

/// A parsed policy.
#[derive(Clone, Debug)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<PolicyGroup>,
    quorum: Quorum,
}

/// A witness whose cosignature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness's index in [`Policy::witnesses`].
    pub witness: usize,
    /// The time the cosignature claims, in POSIX seconds.
    pub timestamp: u64,
}

/// A checkpoint that satisfies a policy.
#[derive(Clone, Debug)]
pub struct VerifiedCheckpoint {
    /// The note, with every signature line it had.
    pub note: Note,
    /// The checkpoint its text holds.
    pub checkpoint: Checkpoint,
    /// The indices in [`Policy::logs`] of the logs whose signatures
    /// verified and count: key name equal to the origin.
    pub logs: Vec<usize>,
    /// The witnesses whose cosignatures verified, in policy order.
    pub witnesses: Vec<Cosigned>,
}

impl Policy {
    /// Parses a policy file strictly (see the module documentation).
    pub fn parse(bytes: &[u8]) -> Result<Policy> {
        parse::parse(bytes)
    }

    /// The logs, in the order the policy lists them.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The witnesses, in the order the policy lists them.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The witnesses that have a URL, in policy order, with it.
    pub fn witnesses_with_url(&self) -> impl Iterator<Item = (&PolicyWitness, &Octets)> {
        self.witnesses
            .iter()
            .filter_map(|witness| witness.url.as_ref().map(|url| (witness, url)))
    }

    /// The groups, in the order the policy defines them.
    pub fn groups(&self) -> &[PolicyGroup] {
        &self.groups
    }

    /// The quorum.
    pub fn quorum(&self) -> Quorum {
        self.quorum
    }

    /// The index of the witness with this name, if there is one.
    pub fn witness_index(&self, name: &[u8]) -> Option<usize> {
        self.witnesses
            .iter()
            .position(|witness| witness.name.as_bytes() == name)
    }

    /// Whether the witnesses named (by their names in the policy) meet the
    /// quorum. Names that are not witnesses of the policy count for nothing.
    /// For callers that collect and verify cosignatures themselves.
    pub fn quorum_met<I, N>(&self, cosigned: I) -> bool
    where
        I: IntoIterator<Item = N>,
        N: AsRef<[u8]>,
    {
        let mut set = vec![false; self.witnesses.len()];
        for name in cosigned {
            if let Some(index) = self.witness_index(name.as_ref()) {
                set[index] = true;
            }
        }
        self.quorum_met_by_index(&set)
    }

    /// Whether the witnesses `i` with `cosigned[i]` meet the quorum; indices
    /// past the end of `cosigned` count as not cosigned.
    pub fn quorum_met_by_index(&self, cosigned: &[bool]) -> bool {
        let witness = |index: usize| cosigned.get(index).copied().unwrap_or(false);
        // Groups only name earlier groups, so one pass in order settles them.
        let mut met: Vec<bool> = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let count = group
                .members
                .iter()
                .filter(|member| match **member {
                    Member::Witness(index) => witness(index),
                    Member::Group(index) => met[index],
                })
                .count();
            met.push(count >= group.threshold);
        }
        match self.quorum {
            Quorum::None => true,
            Quorum::Member(Member::Witness(index)) => witness(index),
            Quorum::Member(Member::Group(index)) => met[index],
        }
    }

    /// Verifies a checkpoint against the policy: a log of the policy whose
    /// key name is the origin signed it, every signature line by a key of
    /// the policy verifies, and the cosigning witnesses meet the quorum.
    pub fn verify_checkpoint(&self, bytes: &[u8]) -> Result<VerifiedCheckpoint> {
        if self.logs.is_empty() {
            return Err(unsatisfied(
                "the policy lists no logs: verify the log's signature with its key, then the cosignatures with verify_cosignatures"
                    .to_owned(),
            ));
        }
        let note = Note::parse(bytes)?;
        let (logs, witnesses) = self.verify_signatures(&note)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        let origin_logs: Vec<usize> = logs
            .into_iter()
            .filter(|&index| self.logs[index].origin() == checkpoint.origin)
            .collect();
        if origin_logs.is_empty() {
            let listed: BTreeSet<&str> = self.logs.iter().map(PolicyLog::origin).collect();
            return Err(unsatisfied(format!(
                "no log of the policy with origin {:?} signed the checkpoint (the policy's logs: {})",
                crate::hash::truncate_for_error(&checkpoint.origin),
                listed.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let covered = origin_logs
            .iter()
            .any(|&index| self.logs[index].verifier().signs_extension_lines());
        if !checkpoint.extensions.is_empty() && !covered {
            return Err(unsatisfied(
                "the checkpoint has extension lines, which its log's ML-DSA-44 signature does not cover, and no classical signature of its log"
                    .to_owned(),
            ));
        }
        self.check_quorum(&witnesses)?;
        Ok(VerifiedCheckpoint {
            note,
            checkpoint,
            logs: origin_logs,
            witnesses,
        })
    }

    /// Verifies the cosignatures of a note (a checkpoint whose log signature
    /// the caller checked with a key it got elsewhere) and checks the
    /// quorum. Signature lines by the policy's logs are verified too.
    /// Returns the witnesses whose cosignatures verified.
    pub fn verify_cosignatures(&self, note: &Note) -> Result<Vec<Cosigned>> {
        let (_, witnesses) = self.verify_signatures(note)?;
        self.check_quorum(&witnesses)?;
        Ok(witnesses)
    }

    /// Verifies every signature line by a key of the policy; returns the
    /// logs and the witnesses whose lines verified, each once, in policy
    /// order.
    fn verify_signatures(&self, note: &Note) -> Result<(Vec<usize>, Vec<Cosigned>)> {
        let mut logs = BTreeSet::new();
        let mut witnesses = BTreeMap::new();
        for signature in &note.signatures {
            let log = self
                .logs
                .iter()
                .position(|log| signature.is_from(log.origin(), log.key_id()));
            let witness = self
                .witnesses
                .iter()
                .position(|witness| signature.is_from(witness.key_name(), witness.key_id()));
            let (key, what) = match (log, witness) {
                (Some(index), _) => {
                    let log = &self.logs[index];
                    logs.insert(index);
                    (&log.key, format!("log (line {})", log.line))
                }
                (None, Some(index)) => {
                    let witness = &self.witnesses[index];
                    let timestamp = signature
                        .signature
                        .first_chunk::<8>()
                        .map_or(0, |bytes| u64::from_be_bytes(*bytes));
                    witnesses.entry(index).or_insert(timestamp);
                    (
                        &witness.key,
                        format!("witness {:?} (line {})", witness.name, witness.line),
                    )
                }
                (None, None) => continue,
            };
            if !key
                .verifier
                .verify(note.text.as_bytes(), &signature.signature)
            {
                return Err(unsatisfied(format!(
                    "the signature by {}+{:08x}, the key of the {what}, does not verify",
                    key.name, key.key_id
                )));
            }
        }
        let witnesses = witnesses
            .into_iter()
            .map(|(witness, timestamp)| Cosigned { witness, timestamp })
            .collect();
        Ok((logs.into_iter().collect(), witnesses))
    }

    fn check_quorum(&self, witnesses: &[Cosigned]) -> Result<()> {
        let mut set = vec![false; self.witnesses.len()];
        for cosigned in witnesses {
            set[cosigned.witness] = true;
        }
        if self.quorum_met_by_index(&set) {
            return Ok(());
        }
        let quorum = match self.quorum {
            Quorum::None => "none".to_owned(),
            Quorum::Member(Member::Witness(index)) => self.witnesses[index].name.to_string(),
            Quorum::Member(Member::Group(index)) => self.groups[index].name.to_string(),
        };
        let names: Vec<String> = witnesses
            .iter()
            .map(|cosigned| self.witnesses[cosigned.witness].name.to_string())
            .collect();
        Err(unsatisfied(format!(
            "the quorum {quorum:?} is not met: valid cosignatures from {} witnesses of the policy{}",
            names.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            }
        )))
    }

    /// The policy in canonical form: logs, witnesses, groups (thresholds as
    /// numbers), then the quorum, one line each. Parsing it gives the same
    /// policy.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let push_url = |out: &mut Vec<u8>, url: &Option<Octets>| {
            if let Some(url) = url {
                out.push(b' ');
                out.extend_from_slice(url.as_bytes());
            }
            out.push(b'\n');
        };
        for log in &self.logs {
            out.extend_from_slice(b"log ");
            out.extend_from_slice(log.key.vkey.as_bytes());
            push_url(&mut out, &log.url);
        }
        for witness in &self.witnesses {
            out.extend_from_slice(b"witness ");
            out.extend_from_slice(witness.name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(witness.key.vkey.as_bytes());
            push_url(&mut out, &witness.url);
        }
        for group in &self.groups {
            out.extend_from_slice(b"group ");
            out.extend_from_slice(group.name.as_bytes());
            out.extend_from_slice(format!(" {}", group.threshold).as_bytes());
            for member in &group.members {
                out.push(b' ');
                out.extend_from_slice(self.member_name(*member).as_bytes());
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b"quorum ");
        match self.quorum {
            Quorum::None => out.extend_from_slice(NONE),
            Quorum::Member(member) => out.extend_from_slice(self.member_name(member).as_bytes()),
        }
        out.push(b'\n');
        out
    }

    /// The name of a witness or group.
    pub fn member_name(&self, member: Member) -> &Octets {
        match member {
            Member::Witness(index) => &self.witnesses[index].name,
            Member::Group(index) => &self.groups[index].name,
        }
    }
}

fn unsatisfied(reason: String) -> Error {
    Error::PolicyUnsatisfied { reason }
}
