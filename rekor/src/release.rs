//! Release statements (`stele/release/v1`): a maintainer's signed claim
//! that a file, with a given SHA-256, is version V of namespace NS. The one
//! parser and writer of the format described in docs/formats.md ("Release
//! statement").
//!
//! ```text
//! stele/release/v1
//! namespace pypi/requests
//! version 2.32.3
//! file requests-2.32.3.tar.gz
//! sha256 <64 lowercase hex>
//! key <standard padded base64 of the DER SubjectPublicKeyInfo>
//! signature <standard padded base64>
//! ```
//!
//! The signature covers the first six lines exactly as they appear (the
//! *statement*): pure Ed25519 (RFC 8032) or ECDSA P-256 with SHA-256 and an
//! ASN.1 DER `(r, s)`. [`parse`] accepts only what [`Release::render`]
//! writes, and only with a valid signature, so an entry that parses is a
//! signed release and re-renders to the same bytes.
//!
//! [`keys`] holds the maintainer keys (generation, PKCS#8 and SPKI PEM,
//! signing, the key ID); [`bundle`] the `FILE.stele` bundle.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub mod bundle;
pub mod keys;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, BundleError};
pub use keys::{KeyError, KeyKind, MaintainerKey, key_id, public_key_from_text};

/// The first line of every release statement, without its newline.
pub const HEADER: &str = "stele/release/v1";
/// What a body that claims to be a release statement begins with.
pub const PREFIX: &[u8] = b"stele/release/v1\n";
/// Longest namespace, in bytes.
pub const MAX_NAMESPACE: usize = 200;
/// Longest version, in bytes.
pub const MAX_VERSION: usize = 128;
/// Longest file name, in bytes.
pub const MAX_FILE: usize = 255;
/// Number of lines of a release entry (the statement and the signature).
pub const LINES: usize = 7;

/// The line names, in order (line 1 is the header).
const FIELDS: [&str; LINES] = [
    HEADER,
    "namespace",
    "version",
    "file",
    "sha256",
    "key",
    "signature",
];

/// A signed release statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Where the release belongs, such as `pypi/requests`.
    pub namespace: String,
    /// The version, such as `2.32.3`.
    pub version: String,
    /// The file's base name.
    pub file: String,
    /// The file's SHA-256.
    pub sha256: [u8; 32],
    /// The maintainer's public key, as DER SubjectPublicKeyInfo.
    pub key: Vec<u8>,
    /// The signature over [`Release::statement`].
    pub signature: Vec<u8>,
}

/// Why bytes are not a release statement: the line (1 to 7, or 8 for
/// bytes after the last line), the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("release statement, line {line} ({field}): {problem}")]
pub struct ReleaseError {
    /// The line at fault, from 1.
    pub line: usize,
    /// The field that line holds.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl ReleaseError {
    fn at(line: usize, problem: impl Into<String>) -> ReleaseError {
        let field = FIELDS.get(line - 1).copied().unwrap_or("end");
        ReleaseError {
            line,
            field,
            problem: problem.into(),
        }
    }
}

/// Whether `body` claims to be a release statement (begins with
/// `stele/release/v1\n`); such a body must [`parse`] to be logged.
pub fn claims_release(body: &[u8]) -> bool {
    body.starts_with(PREFIX)
}

/// Parses a release entry strictly and verifies its signature. Every rule
/// of docs/formats.md is checked; the error names the first line at fault.
pub fn parse(bytes: &[u8]) -> Result<Release, ReleaseError> {
    let mut lines = [""; LINES];
    let mut rest = bytes;
    for (number, slot) in lines.iter_mut().enumerate() {
        let number = number + 1;
        if rest.is_empty() {
            return Err(ReleaseError::at(
                number,
                format!(
                    "missing: the statement has {} lines, not {LINES}",
                    number - 1
                ),
            ));
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| ReleaseError::at(number, "does not end in a newline"))?;
        let line = &rest[..end];
        if let Some(at) = line.iter().position(|b| !(0x20..0x7f).contains(b)) {
            return Err(ReleaseError::at(
                number,
                format!(
                    "byte {at} is 0x{:02x}: only printable ASCII is allowed",
                    line[at]
                ),
            ));
        }
        *slot = std::str::from_utf8(line).map_err(|_| ReleaseError::at(number, "not ASCII"))?;
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        return Err(ReleaseError::at(
            LINES + 1,
            format!("{} bytes after the signature line", rest.len()),
        ));
    }
    if lines[0] != HEADER {
        return Err(ReleaseError::at(1, format!("is not {HEADER:?}")));
    }
    let value = |number: usize| -> Result<&str, ReleaseError> {
        let name = FIELDS[number - 1];
        let line = lines[number - 1];
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| {
                ReleaseError::at(
                    number,
                    format!("expected \"{name} <value>\" (the fields are in a fixed order)"),
                )
            })
    };
    let namespace = value(2)?;
    check_namespace(namespace).map_err(|problem| ReleaseError::at(2, problem))?;
    let version = value(3)?;
    check_version(version).map_err(|problem| ReleaseError::at(3, problem))?;
    let file = value(4)?;
    check_file(file).map_err(|problem| ReleaseError::at(4, problem))?;
    let sha256 = parse_sha256(value(5)?).map_err(|problem| ReleaseError::at(5, problem))?;
    let key = decode_base64(value(6)?).map_err(|problem| ReleaseError::at(6, problem))?;
    let signature = decode_base64(value(7)?).map_err(|problem| ReleaseError::at(7, problem))?;
    let release = Release {
        namespace: namespace.to_owned(),
        version: version.to_owned(),
        file: file.to_owned(),
        sha256,
        key,
        signature,
    };
    release.verify()?;
    Ok(release)
}

impl Release {
    /// A release signed by `key`, after checking every field.
    pub fn sign(
        namespace: &str,
        version: &str,
        file: &str,
        sha256: [u8; 32],
        key: &MaintainerKey,
    ) -> Result<Release, ReleaseError> {
        check_namespace(namespace).map_err(|problem| ReleaseError::at(2, problem))?;
        check_version(version).map_err(|problem| ReleaseError::at(3, problem))?;
        check_file(file).map_err(|problem| ReleaseError::at(4, problem))?;
        let mut release = Release {
            namespace: namespace.to_owned(),
            version: version.to_owned(),
            file: file.to_owned(),
            sha256,
            key: key.public_key_der(),
            signature: Vec::new(),
        };
        release.signature = key
            .sign(&release.statement())
            .map_err(|err| ReleaseError::at(7, format!("signing failed: {err}")))?;
        Ok(release)
    }

    /// The signed bytes: the first six lines, newlines included.
    pub fn statement(&self) -> Vec<u8> {
        format!(
            "{HEADER}\nnamespace {}\nversion {}\nfile {}\nsha256 {}\nkey {}\n",
            self.namespace,
            self.version,
            self.file,
            hex::encode(self.sha256),
            STANDARD.encode(&self.key),
        )
        .into_bytes()
    }

    /// The whole entry: the statement and the signature line.
    pub fn render(&self) -> Vec<u8> {
        let mut bytes = self.statement();
        bytes.extend_from_slice(b"signature ");
        bytes.extend_from_slice(STANDARD.encode(&self.signature).as_bytes());
        bytes.push(b'\n');
        bytes
    }

    /// The signer's key ID: lowercase hex SHA-256 of the DER SPKI.
    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }

    /// The kind of the signer's key, if it is one a release may have.
    pub fn key_kind(&self) -> Result<KeyKind, ReleaseError> {
        keys::spki_kind(&self.key).map_err(|err| ReleaseError::at(6, err.to_string()))
    }

    /// Checks the key's type and the signature over the statement.
    pub fn verify(&self) -> Result<(), ReleaseError> {
        let kind = self.key_kind()?;
        keys::verify(kind, &self.key, &self.statement(), &self.signature).map_err(|()| {
            ReleaseError::at(
                7,
                format!(
                    "the signature does not verify with the {} key {}",
                    kind.describe(),
                    self.key_id()
                ),
            )
        })
    }
}

/// `index/namespace/<namespace, each / written as ~>`: the namespace
/// index object's path.
pub fn namespace_path(namespace: &str) -> String {
    format!("index/namespace/{}", namespace.replace('/', "~"))
}

/// `index/key/<key ID>`: the signer index object's path.
pub fn key_index_path(key_id: &str) -> String {
    format!("index/key/{key_id}")
}

/// Checks a namespace: 1 to 200 bytes, segments of `a-z 0-9 . _ - @ +`
/// separated by single `/`, none of them `.` or `..`.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE {
        return Err(format!(
            "the namespace is {} bytes; it must be 1 to {MAX_NAMESPACE}",
            namespace.len()
        ));
    }
    for segment in namespace.split('/') {
        if segment.is_empty() {
            return Err(format!(
                "{namespace:?} has an empty segment (a leading, trailing or doubled /)"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!("{namespace:?} has a segment {segment:?}"));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '@' | '+'))
        {
            return Err(format!(
                "{namespace:?} has {bad:?}: a segment is made of a-z 0-9 . _ - @ + (lowercase \
                 only)"
            ));
        }
    }
    Ok(())
}

/// Checks a version: 1 to 128 bytes of printable ASCII, no space.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() || version.len() > MAX_VERSION {
        return Err(format!(
            "the version is {} bytes; it must be 1 to {MAX_VERSION}",
            version.len()
        ));
    }
    if let Some(bad) = version.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "the version has the byte 0x{bad:02x}: only printable ASCII without spaces"
        ));
    }
    Ok(())
}

/// Checks a file name: 1 to 255 bytes of printable ASCII, no space, no `/`
/// or `\`.
pub fn check_file(file: &str) -> Result<(), String> {
    if file.is_empty() || file.len() > MAX_FILE {
        return Err(format!(
            "the file name is {} bytes; it must be 1 to {MAX_FILE}",
            file.len()
        ));
    }
    if let Some(bad) = file
        .bytes()
        .find(|b| !(0x21..=0x7e).contains(b) || *b == b'/' || *b == b'\\')
    {
        return Err(format!(
            "the file name has the byte {:?}: it is a base name of printable ASCII without \
             spaces, / or \\",
            bad as char
        ));
    }
    Ok(())
}

fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("expected 64 lowercase hex digits".to_owned());
    }
    let mut digest = [0; 32];
    hex::decode_to_slice(text, &mut digest).map_err(|err| err.to_string())?;
    Ok(digest)
}

/// Standard padded base64 in its one canonical form.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|err| format!("not standard padded base64: {err}"))?;
    if bytes.is_empty() {
        return Err("empty".to_owned());
    }
    if STANDARD.encode(&bytes) != text {
        return Err("not canonical base64".to_owned());
    }
    Ok(bytes)
}
