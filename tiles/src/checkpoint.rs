//! Checkpoints, as specified by <https://c2sp.org/tlog-checkpoint>: a signed
//! note whose text is
//!
//! ```text
//! <origin>
//! <tree size in decimal>
//! <base64 root hash>
//! [extension lines]
//! ```
//!
//! Parsing is strict: the origin and every extension line are non-empty, the
//! size has no sign and no leading zeros, the root is canonical base64 of 32
//! bytes, and the text ends in a newline.

use std::fmt;

use crate::note::{Note, NoteSigner, NoteVerifier, open};
use crate::{Error, Hash, Result};

/// The text of a checkpoint: a log's commitment to its tree at one size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's identity, for example `example.com/log`.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 6962 root hash of the tree at `size`.
    pub root: Hash,
    /// Optional extension lines, each non-empty, without newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses checkpoint text (the note text, without signatures).
    pub fn parse(text: &str) -> Result<Checkpoint> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(Error::CheckpointText {
                reason: "it does not end in a newline",
            });
        };
        if let Some((offset, byte)) = text
            .bytes()
            .enumerate()
            .find(|&(_, byte)| byte < 0x20 && byte != b'\n')
        {
            return Err(Error::NoteControlCharacter { offset, byte });
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::CheckpointText {
                reason: "it has fewer than three lines",
            });
        };
        if origin.is_empty() {
            return Err(Error::CheckpointOriginEmpty);
        }
        let size = parse_size(size)?;
        let root = Hash::from_base64(root).map_err(|_| Error::CheckpointRoot {
            text: crate::hash::truncate_for_error(root),
        })?;
        let extensions = lines
            .enumerate()
            .map(|(index, line)| {
                if line.is_empty() {
                    // Lines count from 1; extensions start on line 4.
                    Err(Error::CheckpointExtension { line: index + 4 })
                } else {
                    Ok(line.to_owned())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint text: what the log signs.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Checks that this checkpoint's text parses back to the same value, so
    /// that a signature over it commits to exactly these fields.
    pub fn validate(&self) -> Result<()> {
        let has_newline = |line: &String| line.contains('\n');
        if has_newline(&self.origin) || self.extensions.iter().any(has_newline) {
            return Err(Error::CheckpointText {
                reason: "the origin or an extension line contains a newline",
            });
        }
        // Without newlines in the fields, the text reparses to this value
        // exactly when the fields are valid.
        Checkpoint::parse(&self.to_text()).map(|_| ())
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", self.root.to_base64())?;
        for extension in &self.extensions {
            writeln!(f, "{extension}")?;
        }
        Ok(())
    }
}

/// The tree size: ASCII decimal, no sign, no leading zeros (except `0`).
fn parse_size(text: &str) -> Result<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    let bad = || Error::CheckpointSize {
        text: crate::hash::truncate_for_error(text),
    };
    if !canonical {
        return Err(bad());
    }
    text.parse::<u64>().map_err(|_| bad())
}

/// Signs a checkpoint as a note, after checking it is well formed.
pub fn sign_checkpoint(checkpoint: &Checkpoint, signer: &dyn NoteSigner) -> Result<Note> {
    checkpoint.validate()?;
    Note::sign(&checkpoint.to_text(), &[signer])
}

/// Opens a signed checkpoint from a log with origin `origin`, trusting only
/// `verifier`: the note must carry a valid signature from it (other
/// signatures, such as cosignatures, are ignored) and its origin line must
/// be `origin`. A checkpoint with extension lines is refused when the
/// verifier's signatures do not cover them (ML-DSA-44).
pub fn open_checkpoint(
    bytes: &[u8],
    origin: &str,
    verifier: &dyn NoteVerifier,
) -> Result<(Checkpoint, Note)> {
    let (note, _) = open(bytes, &[verifier])?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != origin {
        return Err(Error::CheckpointOrigin {
            expected: crate::hash::truncate_for_error(origin),
            found: crate::hash::truncate_for_error(&checkpoint.origin),
        });
    }
    // An ML-DSA-44 signature covers the origin, size and root only: lines
    // after them would be unauthenticated text.
    if !checkpoint.extensions.is_empty() && !verifier.signs_extension_lines() {
        return Err(Error::CheckpointExtensionsUnsigned {
            count: checkpoint.extensions.len(),
            kind: "ML-DSA-44 subtree/v1",
        });
    }
    Ok((checkpoint, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{Ed25519Signer, Ed25519Verifier};
    use proptest::prelude::*;

    /// Extension lines pass with an Ed25519 key, which signs the whole
    /// text, and are refused with an ML-DSA-44 key, which does not.
    #[test]
    fn extension_lines_need_a_key_that_signs_them() {
        let origin = "example.com/ext";
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size: 3,
            root: crate::Hash::EMPTY,
            extensions: vec!["an extension".to_owned()],
        };
        let ed25519 = Ed25519Signer::from_seed(origin, &[4; 32]).expect("key");
        let mldsa = crate::note::MlDsa44Signer::from_seed(origin, &[5; 32]).expect("key");
        // The ML-DSA-44 line is made as a cosigner would (a log signer
        // refuses extension lines outright).
        let mut note = sign_checkpoint(&checkpoint, &ed25519).expect("sign");
        note.add_signature(mldsa.cosign(&note.text, 9).expect("cosign"))
            .expect("add");
        let bytes = note.to_bytes();
        open_checkpoint(&bytes, origin, &ed25519.verifier()).expect("Ed25519 covers them");
        let err = open_checkpoint(&bytes, origin, &mldsa.verifier()).expect_err("refused");
        assert!(matches!(
            err,
            Error::CheckpointExtensionsUnsigned { count: 1, .. }
        ));
        // Without extension lines the ML-DSA-44 key alone is enough.
        let plain = Checkpoint {
            extensions: Vec::new(),
            ..checkpoint
        };
        let mut note = sign_checkpoint(&plain, &ed25519).expect("sign");
        note.add_signature(mldsa.cosign(&note.text, 9).expect("cosign"))
            .expect("add");
        open_checkpoint(&note.to_bytes(), origin, &mldsa.verifier()).expect("verifies");
    }

    /// The example of c2sp.org/tlog-checkpoint (its signing key is not
    /// published, so only the text is checked).
    const SPEC_EXAMPLE: &str = "example.com/behind-the-sofa\n\
                                20852163\n\
                                CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
                                \n\
                                \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    fn signer() -> Ed25519Signer {
        Ed25519Signer::from_seed("example.com/log", &[7; 32]).expect("key")
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/log".to_owned(),
            size: 20852163,
            root: Hash::from_base64(ROOT).expect("root"),
            extensions: vec![],
        }
    }

    #[test]
    fn spec_example_parses() {
        let note = Note::parse(SPEC_EXAMPLE.as_bytes()).expect("note");
        let parsed = Checkpoint::parse(&note.text).expect("checkpoint");
        assert_eq!(parsed.origin, "example.com/behind-the-sofa");
        assert_eq!(parsed.size, 20852163);
        assert_eq!(parsed.root.to_base64(), ROOT);
        assert!(parsed.extensions.is_empty());
        assert_eq!(parsed.to_text(), note.text);
        assert_eq!(note.signatures[0].name, "example.com/behind-the-sofa");
    }

    #[test]
    fn sign_and_open() {
        let mut checkpoint = checkpoint();
        checkpoint.extensions = vec!["extension one".to_owned(), "two".to_owned()];
        let note = sign_checkpoint(&checkpoint, &signer()).expect("signs");
        let (opened, opened_note) =
            open_checkpoint(&note.to_bytes(), "example.com/log", &signer().verifier())
                .expect("opens");
        assert_eq!(opened, checkpoint);
        assert_eq!(opened_note, note);
    }

    #[test]
    fn open_checks_origin_and_key() {
        let note = sign_checkpoint(&checkpoint(), &signer()).expect("signs");
        assert_eq!(
            open_checkpoint(&note.to_bytes(), "example.com/other", &signer().verifier()),
            Err(Error::CheckpointOrigin {
                expected: "example.com/other".to_owned(),
                found: "example.com/log".to_owned(),
            })
        );
        let other_key = Ed25519Verifier::new(
            "example.com/log",
            &Ed25519Signer::from_seed("example.com/log", &[8; 32])
                .expect("key")
                .verifier()
                .public_key(),
        )
        .expect("key");
        assert!(matches!(
            open_checkpoint(&note.to_bytes(), "example.com/log", &other_key),
            Err(Error::NoteUnverified { .. })
        ));
    }

    #[test]
    fn open_rejects_signed_text_that_is_no_checkpoint() {
        let note = Note::sign("example.com/log\n01\nAAAA\n", &[&signer()]).expect("signs");
        assert_eq!(
            open_checkpoint(&note.to_bytes(), "example.com/log", &signer().verifier()),
            Err(Error::CheckpointSize {
                text: "01".to_owned()
            })
        );
    }

    /// One broken field per case, each with its exact error.
    #[test]
    fn parse_rejects_each_malformation() {
        let good = format!("example.com/log\n20852163\n{ROOT}\n");
        assert_eq!(Checkpoint::parse(&good), Ok(checkpoint()));
        let size_error = |text: &str| Error::CheckpointSize {
            text: text.to_owned(),
        };
        let cases = [
            (
                good.trim_end().to_owned(),
                Error::CheckpointText {
                    reason: "it does not end in a newline",
                },
            ),
            (
                "example.com/log\n20852163\n".to_owned(),
                Error::CheckpointText {
                    reason: "it has fewer than three lines",
                },
            ),
            (
                good.replace("example.com/log", ""),
                Error::CheckpointOriginEmpty,
            ),
            (
                good.replace("20852163", "020852163"),
                size_error("020852163"),
            ),
            (good.replace("20852163", "00"), size_error("00")),
            (
                good.replace("20852163", "+20852163"),
                size_error("+20852163"),
            ),
            (good.replace("20852163", "-1"), size_error("-1")),
            (good.replace("20852163", ""), size_error("")),
            (
                good.replace("20852163", "2085 2163"),
                size_error("2085 2163"),
            ),
            (good.replace("20852163", "0x10"), size_error("0x10")),
            (
                good.replace("20852163", "18446744073709551616"),
                size_error("18446744073709551616"),
            ),
            (
                good.replace(ROOT, "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J="),
                Error::CheckpointRoot {
                    text: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".to_owned(),
                },
            ),
            (
                good.replace(ROOT, "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I"),
                Error::CheckpointRoot {
                    text: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I".to_owned(),
                },
            ),
            (
                good.replace(ROOT, "AAAA"),
                Error::CheckpointRoot {
                    text: "AAAA".to_owned(),
                },
            ),
            (format!("{good}\n"), Error::CheckpointExtension { line: 4 }),
            (
                format!("{good}ext\n\n"),
                Error::CheckpointExtension { line: 5 },
            ),
            (
                good.replace("example.com/log", "example.com/log\r"),
                Error::NoteControlCharacter {
                    offset: 15,
                    byte: b'\r',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Checkpoint::parse(&text), Err(expected), "{text:?}");
        }
        // Limits that are accepted.
        let zero = good.replace("20852163", "0");
        assert_eq!(Checkpoint::parse(&zero).map(|cp| cp.size), Ok(0));
        let max = good.replace("20852163", &u64::MAX.to_string());
        assert_eq!(Checkpoint::parse(&max).map(|cp| cp.size), Ok(u64::MAX));
    }

    #[test]
    fn sign_rejects_fields_that_would_not_round_trip() {
        let mut checkpoint = checkpoint();
        checkpoint.origin = "example.com/log\n7".to_owned();
        assert_eq!(
            sign_checkpoint(&checkpoint, &signer()),
            Err(Error::CheckpointText {
                reason: "the origin or an extension line contains a newline"
            })
        );
        let mut checkpoint = self::checkpoint();
        checkpoint.extensions = vec![String::new()];
        assert_eq!(
            sign_checkpoint(&checkpoint, &signer()),
            Err(Error::CheckpointExtension { line: 4 })
        );
        let mut checkpoint = self::checkpoint();
        checkpoint.origin = String::new();
        assert_eq!(
            sign_checkpoint(&checkpoint, &signer()),
            Err(Error::CheckpointOriginEmpty)
        );
    }

    fn arbitrary_line() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f\\x7f]{1,24}"
    }

    proptest! {
        #[test]
        fn checkpoint_round_trips(
            origin in arbitrary_line(),
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extensions in proptest::collection::vec(arbitrary_line(), 0..4),
        ) {
            let checkpoint = Checkpoint { origin, size, root: Hash(root), extensions };
            prop_assert_eq!(Checkpoint::parse(&checkpoint.to_text()), Ok(checkpoint));
        }

        #[test]
        fn parse_never_panics(text in "[\\x00-\\x7f]{0,80}") {
            let _ = Checkpoint::parse(&text);
        }
    }
}
