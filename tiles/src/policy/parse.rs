//! The policy file parser: one pass over the lines, each checked against
//! what the lines before it defined.

use std::collections::HashMap;

use super::keys::{self, Key, Role};
use super::{
    MAX_ENTRIES, MAX_POLICY_SIZE, Member, NONE, Octets, Policy, PolicyGroup, PolicyLog,
    PolicyWitness, Quorum,
};
use crate::{Error, Result};

/// Parses a policy file; see the module documentation of `policy`.
pub(super) fn parse(bytes: &[u8]) -> Result<Policy> {
    if bytes.len() > MAX_POLICY_SIZE {
        return Err(Error::Policy {
            reason: format!(
                "the file is {} bytes, more than the limit of {MAX_POLICY_SIZE}",
                bytes.len()
            ),
        });
    }
    let mut parser = Parser::default();
    let mut rest = bytes;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let at = |reason: String| Error::PolicyLine {
            line: number,
            reason,
        };
        let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
            check_characters(rest).map_err(at)?;
            return Err(at(
                "the last line does not end in a newline (is the file cut short?)".to_owned(),
            ));
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        check_characters(line).map_err(at)?;
        parser.line(number, line).map_err(at)?;
    }
    parser.finish()
}

/// The octets the format allows: tab, newline, `0x20`–`0x7E`, `0x80`–`0xFF`.
/// `line` holds no newline.
fn check_characters(line: &[u8]) -> std::result::Result<(), String> {
    let Some(column) = line
        .iter()
        .position(|&byte| !(byte == b'\t' || (0x20..0x7f).contains(&byte) || byte >= 0x80))
    else {
        return Ok(());
    };
    let byte = line[column];
    let what = match byte {
        b'\r' => "a carriage return (0x0d): lines end in a newline alone".to_owned(),
        0x7f => "the control character DEL (0x7f)".to_owned(),
        _ => format!("the control character {byte:#04x}"),
    };
    Err(format!(
        "{what} at column {}; only tab and newline are allowed among the control characters",
        column + 1
    ))
}

/// Splits a line into its fields: runs of bytes other than space and tab.
fn fields(line: &[u8]) -> Vec<&[u8]> {
    line.split(|&byte| byte == b' ' || byte == b'\t')
        .filter(|field| !field.is_empty())
        .collect()
}

/// A name for error messages: quoted, non-UTF-8 bytes escaped.
fn show(name: &[u8]) -> String {
    format!("{:?}", Octets(name.to_vec()))
}

#[derive(Default)]
struct Parser {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<PolicyGroup>,
    quorum: Option<(Quorum, usize)>,
    /// Witness and group names, with what they are and their line.
    names: HashMap<Vec<u8>, (Member, usize)>,
    /// Names already listed as a group member, with the group's index.
    members: HashMap<Member, usize>,
    /// Key name and key ID of every key, with its line.
    key_ids: HashMap<(String, u32), usize>,
}

type LineResult = std::result::Result<(), String>;

impl Parser {
    fn line(&mut self, number: usize, line: &[u8]) -> LineResult {
        let fields = fields(line);
        let Some((&keyword, args)) = fields.split_first() else {
            return Ok(());
        };
        if keyword.starts_with(b"#") {
            return Ok(());
        }
        match keyword {
            b"log" => self.log(number, args),
            b"witness" => self.witness(number, args),
            b"group" => self.group(number, args),
            b"quorum" => self.quorum(number, args),
            _ => Err(format!(
                "unknown keyword {}: a line is log, witness, group, quorum, a comment (# first) or blank",
                show(keyword)
            )),
        }
    }

    fn log(&mut self, number: usize, args: &[&[u8]]) -> LineResult {
        let [vkey, url @ ..] = args else {
            return Err(arity("log <vkey> [<url>]", args));
        };
        if url.len() > 1 {
            return Err(arity("log <vkey> [<url>]", args));
        }
        if self.logs.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} logs"));
        }
        let key = keys::parse_key(vkey, Role::Log).map_err(|reason| format!("log: {reason}"))?;
        if let Some(earlier) = self
            .logs
            .iter()
            .find(|log| log.key.public_key == key.public_key)
        {
            return Err(format!(
                "the log's public key is already listed on line {} (a log may be listed once, whatever its key name)",
                earlier.line
            ));
        }
        self.claim_key_id(number, &key)?;
        self.logs.push(PolicyLog {
            key,
            url: url.first().map(|url| Octets(url.to_vec())),
            line: number,
        });
        Ok(())
    }

    fn witness(&mut self, number: usize, args: &[&[u8]]) -> LineResult {
        let [name, vkey, url @ ..] = args else {
            return Err(arity("witness <name> <vkey> [<url>]", args));
        };
        if url.len() > 1 {
            return Err(arity("witness <name> <vkey> [<url>]", args));
        }
        self.check_new_name(name)?;
        if self.witnesses.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} witnesses"));
        }
        let key = keys::parse_key(vkey, Role::Witness)
            .map_err(|reason| format!("witness {}: {reason}", show(name)))?;
        if let Some(earlier) = self
            .witnesses
            .iter()
            .find(|witness| witness.key.public_key == key.public_key)
        {
            return Err(format!(
                "witness {} has the public key of witness {:?} (line {}); a witness may be listed once, whatever its key name",
                show(name),
                earlier.name,
                earlier.line
            ));
        }
        self.claim_key_id(number, &key)?;
        let index = self.witnesses.len();
        self.names
            .insert(name.to_vec(), (Member::Witness(index), number));
        self.witnesses.push(PolicyWitness {
            name: Octets(name.to_vec()),
            key,
            url: url.first().map(|url| Octets(url.to_vec())),
            line: number,
        });
        Ok(())
    }

    fn group(&mut self, number: usize, args: &[&[u8]]) -> LineResult {
        let [name, threshold, members @ ..] = args else {
            return Err(arity("group <name> <all|any|k> <member>...", args));
        };
        if members.is_empty() {
            return Err(format!(
                "group {} lists no members (group <name> <all|any|k> <member>...)",
                show(name)
            ));
        }
        self.check_new_name(name)?;
        if self.groups.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} groups"));
        }
        let count = members.len();
        let threshold = match *threshold {
            b"all" => count,
            b"any" => 1,
            digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => digits
                .iter()
                .try_fold(0usize, |value, digit| {
                    value
                        .checked_mul(10)?
                        .checked_add(usize::from(digit - b'0'))
                })
                .unwrap_or(usize::MAX),
            other => {
                return Err(format!(
                    "group {}: threshold {} is not all, any or a decimal number",
                    show(name),
                    show(other)
                ));
            }
        };
        if threshold == 0 || threshold > count {
            return Err(format!(
                "group {}: threshold {} is not between 1 and its {count} members",
                show(name),
                show(args[1])
            ));
        }
        let index = self.groups.len();
        let mut resolved = Vec::with_capacity(count);
        for member in members {
            let member = self.resolve(member, &format!("group {}", show(name)))?;
            if resolved.contains(&member) {
                return Err(format!(
                    "group {} lists {} twice",
                    show(name),
                    self.name_of(member)
                ));
            }
            if let Some(&other) = self.members.get(&member) {
                let other = &self.groups[other];
                return Err(format!(
                    "{} is already a member of group {:?} (line {}); a name may be a group member once in the whole policy",
                    self.name_of(member),
                    other.name,
                    other.line
                ));
            }
            resolved.push(member);
        }
        for member in &resolved {
            self.members.insert(*member, index);
        }
        self.names
            .insert(name.to_vec(), (Member::Group(index), number));
        self.groups.push(PolicyGroup {
            name: Octets(name.to_vec()),
            threshold,
            members: resolved,
            line: number,
        });
        Ok(())
    }

    fn quorum(&mut self, number: usize, args: &[&[u8]]) -> LineResult {
        let [name] = args else {
            return Err(arity("quorum <name>", args));
        };
        if let Some((_, first)) = self.quorum {
            return Err(format!(
                "a second quorum line; the quorum is already defined on line {first}"
            ));
        }
        let quorum = if *name == NONE {
            Quorum::None
        } else {
            Quorum::Member(self.resolve(name, "the quorum")?)
        };
        self.quorum = Some((quorum, number));
        Ok(())
    }

    /// A member of a group or the quorum: a name defined on an earlier line.
    fn resolve(&self, name: &[u8], user: &str) -> std::result::Result<Member, String> {
        if name == NONE {
            return Err(format!(
                "{user}: none is predefined for the quorum only and cannot be a group member"
            ));
        }
        match self.names.get(name) {
            Some(&(member, _)) => Ok(member),
            None => Err(format!(
                "{user}: {} is not a witness or group defined on an earlier line",
                show(name)
            )),
        }
    }

    fn check_new_name(&self, name: &[u8]) -> LineResult {
        if name == NONE {
            return Err(
                "the name none is predefined (the quorum of no witnesses) and cannot be defined"
                    .to_owned(),
            );
        }
        if let Some((_, line)) = self.names.get(name) {
            return Err(format!(
                "the name {} is already defined on line {line} (witnesses and groups share one namespace)",
                show(name)
            ));
        }
        Ok(())
    }

    /// Signature lines are matched to keys by key name and key ID, so no two
    /// keys of the policy may share both.
    fn claim_key_id(&mut self, number: usize, key: &Key) -> LineResult {
        if let Some(line) = self.key_ids.insert((key.name.clone(), key.key_id), number) {
            return Err(format!(
                "the key {}+{:08x} has the key name and key ID of the key on line {line}, so their signature lines could not be told apart",
                key.name, key.key_id
            ));
        }
        Ok(())
    }

    fn name_of(&self, member: Member) -> String {
        match member {
            Member::Witness(index) => format!("{:?}", self.witnesses[index].name),
            Member::Group(index) => format!("{:?}", self.groups[index].name),
        }
    }

    fn finish(self) -> Result<Policy> {
        let Some((quorum, _)) = self.quorum else {
            return Err(Error::Policy {
                reason: "no quorum line (write `quorum none` to require no cosignature)".to_owned(),
            });
        };
        Ok(Policy {
            logs: self.logs,
            witnesses: self.witnesses,
            groups: self.groups,
            quorum,
        })
    }
}

/// The error for a line with the wrong number of fields.
fn arity(form: &str, args: &[&[u8]]) -> String {
    let hint = if args.iter().any(|field| field.starts_with(b"#")) {
        "; a # after the first field does not start a comment"
    } else {
        ""
    };
    format!(
        "expected `{form}`, found {} fields after the keyword{hint}",
        args.len()
    )
}
