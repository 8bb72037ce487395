use super::*;
use proptest::prelude::*;

/// Go's `golang.org/x/mod/sumdb/note` documentation and `note_test.go`.
pub(crate) const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
pub(crate) const PETER_VKEY: &str =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
pub(crate) const ENOCH_VKEY: &str =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
pub(crate) const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                                     then you don't know what your problem is.\n";
pub(crate) const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
pub(crate) const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter_note() -> String {
    format!("{PETER_TEXT}\n{PETER_SIG}")
}

fn peter() -> Ed25519Verifier {
    Ed25519Verifier::from_text(PETER_VKEY).expect("Go's example key")
}

fn enoch() -> Ed25519Verifier {
    Ed25519Verifier::from_text(ENOCH_VKEY).expect("Go's example key")
}

#[test]
fn strict_base64() {
    assert_eq!(decode_base64("AAEC"), Ok(vec![0, 1, 2]));
    assert_eq!(decode_base64("AAE="), Ok(vec![0, 1]));
    assert_eq!(decode_base64(""), Ok(vec![]));
    assert_eq!(decode_base64("AAF="), Err(()), "non-zero trailing bits");
    assert_eq!(decode_base64("AAE"), Err(()), "missing padding");
    assert_eq!(decode_base64("AA=="), Ok(vec![0]));
    assert_eq!(decode_base64("AA="), Err(()), "short padding");
    assert_eq!(decode_base64("AAEC "), Err(()), "trailing space");
    assert_eq!(decode_base64("AA\nEC"), Err(()), "embedded newline");
    assert_eq!(decode_base64("AA-_"), Err(()), "URL alphabet");
    assert_eq!(decode_base64("AAEC===="), Err(()), "excess padding");
    assert_eq!(encode_base64(&[0, 1]), "AAE=");
}

#[test]
fn go_example_note_verifies() {
    let (note, verified) = open(peter_note().as_bytes(), &[&peter()]).expect("verifies");
    assert_eq!(verified, vec![0]);
    assert_eq!(note.text, PETER_TEXT);
    assert_eq!(note.signatures.len(), 1);
    assert_eq!(note.signatures[0].name, "PeterNeumann");
    assert_eq!(note.signatures[0].key_id, 0xc74f20a3);
    assert_eq!(note.to_bytes(), peter_note().as_bytes());
}

#[test]
fn go_example_signing_is_byte_identical() {
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("Go's example key");
    let note = Note::sign(PETER_TEXT, &[&signer]).expect("signs");
    assert_eq!(note.to_string(), peter_note());
}

#[test]
fn go_example_two_signatures() {
    let both = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let (note, verified) = open(both.as_bytes(), &[&enoch(), &peter()]).expect("verifies");
    assert_eq!(verified, vec![0, 1]);
    assert_eq!(note.signatures.len(), 2);
    // Enoch's signature is unknown to a client that trusts only Peter.
    let (_, verified) = open(both.as_bytes(), &[&peter()]).expect("verifies");
    assert_eq!(verified, vec![0]);
}

#[test]
fn open_without_trusted_signature_names_the_key() {
    let error = open(peter_note().as_bytes(), &[&enoch()]).expect_err("unverified");
    assert_eq!(
        error,
        Error::NoteUnverified {
            expected: "EnochRoot+af0cfe78".to_owned()
        }
    );
    let error = open(peter_note().as_bytes(), &[]).expect_err("unverified");
    assert!(matches!(error, Error::NoteUnverified { .. }));
}

#[test]
fn open_rejects_bad_signature_from_trusted_key() {
    // Go's note_test.go corrupts the signature by inserting "ABCD".
    let corrupted = format!("{PETER_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let error = open(corrupted.as_bytes(), &[&peter()]).expect_err("bad signature");
    assert_eq!(
        error,
        Error::NoteSignatureInvalid {
            name: "PeterNeumann".to_owned(),
            key_id: 0xc74f20a3
        }
    );
    // The same corruption under an unknown key is ignored.
    let both = format!(
        "{PETER_TEXT}\n{PETER_SIG}{}ABCD{}",
        &ENOCH_SIG[..60],
        &ENOCH_SIG[60..]
    );
    assert!(open(both.as_bytes(), &[&peter()]).is_ok());
    // A different text under a valid signature.
    let changed = peter_note().replace("answer", "Answer");
    let error = open(changed.as_bytes(), &[&peter()]).expect_err("bad signature");
    assert!(matches!(error, Error::NoteSignatureInvalid { .. }));
}

#[test]
fn open_ignores_signatures_sharing_only_name_or_only_id() {
    // Same name, other key ID; same key ID, other name: both unknown.
    let other_id = "\u{2014} PeterNeumann AAAAAPOu2c7Wp2nVh0T9kq5YXKZZSBkKB4nFFI4wxmWKvsHZ+n5wlbMlZ0A8PO8dXHgy24WN9sEjyNfxrlRIuPUC1gw=\n";
    let other_name = PETER_SIG.replace("PeterNeumann", "PeterNeumann2");
    for sig in [other_id.to_owned(), other_name] {
        let note = format!("{PETER_TEXT}\n{sig}{PETER_SIG}");
        let (_, verified) = open(note.as_bytes(), &[&peter()]).expect("verifies");
        assert_eq!(verified, vec![0]);
    }
}

#[test]
fn open_rejects_ambiguous_verifiers() {
    let error = open(peter_note().as_bytes(), &[&peter(), &peter()]).expect_err("ambiguous");
    assert!(matches!(error, Error::VerifierAmbiguous { .. }));
    // Go's rule: an unused ambiguity is no error.
    assert!(open(peter_note().as_bytes(), &[&enoch(), &peter(), &enoch()]).is_ok());
}

#[test]
fn parse_accepts_text_with_blank_lines() {
    let text = "a\n\nb\n\n";
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
    let note = Note::sign(text, &[&signer]).expect("signs");
    let (parsed, _) = open(&note.to_bytes(), &[&peter()]).expect("verifies");
    assert_eq!(parsed.text, text);
}

/// One malformed note per way to break it, each with the exact error.
#[test]
fn parse_rejects_each_malformation() {
    let good = peter_note();
    let sig_body = PETER_SIG.trim_end_matches('\n');
    let text_lines = 2;
    let sig_line = text_lines + 2;
    let cases: Vec<(String, Error)> = vec![
        (PETER_TEXT.to_owned(), Error::NoteSeparator),
        (format!("{PETER_TEXT}\n"), Error::NoteNoSignatures),
        (
            format!("{PETER_TEXT}\n{sig_body}"),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the last signature line does not end in a newline",
            },
        ),
        (
            format!("\x01{good}"),
            Error::NoteControlCharacter {
                offset: 0,
                byte: 0x01,
            },
        ),
        (
            good.replace("is.\n", "is.\r\n"),
            Error::NoteControlCharacter {
                offset: PETER_TEXT.len() - 1,
                byte: b'\r',
            },
        ),
        (
            format!("{PETER_TEXT}\n{}", PETER_SIG.replace("— ", "-- ")),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "it does not start with an em dash and a space",
            },
        ),
        (
            format!(
                "{PETER_TEXT}\n{}",
                PETER_SIG.replace("PeterNeumann", "Bad Name")
            ),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the signature is not canonical standard base64",
            },
        ),
        (
            format!(
                "{PETER_TEXT}\n{}",
                PETER_SIG.replace("PeterNeumann", "Peter+Neumann")
            ),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the key name is empty or contains white space or '+'",
            },
        ),
        (
            format!(
                "{PETER_TEXT}\n{}",
                PETER_SIG.replace("— PeterNeumann ", "—  ")
            ),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the key name is empty or contains white space or '+'",
            },
        ),
        (
            format!("{PETER_TEXT}\n— PeterNeumann\n"),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "it has no space between key name and signature",
            },
        ),
        (
            format!("{PETER_TEXT}\n{}", PETER_SIG.replace("AM=", "AN=")),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the signature is not canonical standard base64",
            },
        ),
        (
            format!("{PETER_TEXT}\n{}", PETER_SIG.replace("AM=", "AM")),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the signature is not canonical standard base64",
            },
        ),
        (
            format!("{PETER_TEXT}\n— PeterNeumann AAAAAA==\n"),
            Error::NoteSignatureLine {
                line: sig_line,
                reason: "the signature is shorter than a key ID and one byte",
            },
        ),
        (
            format!("{good}Unexpected line.\n"),
            Error::NoteSignatureLine {
                line: sig_line + 1,
                reason: "it does not start with an em dash and a space",
            },
        ),
        (
            format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)),
            Error::NoteTooManySignatures {
                limit: MAX_SIGNATURES,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            Note::parse(input.as_bytes()),
            Err(expected),
            "input {input:?}"
        );
    }
    let mut invalid_utf8 = good.clone().into_bytes();
    invalid_utf8[3] = 0xff;
    assert_eq!(
        Note::parse(&invalid_utf8),
        Err(Error::NoteUtf8 { offset: 3 })
    );
    let huge = format!("{}\n{PETER_SIG}", "a".repeat(MAX_NOTE_SIZE));
    assert!(matches!(
        Note::parse(huge.as_bytes()),
        Err(Error::NoteTooLarge { .. })
    ));
    // Exactly the limit of signatures is accepted.
    let many = format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
    assert_eq!(
        Note::parse(many.as_bytes()).map(|note| note.signatures.len()),
        Ok(MAX_SIGNATURES)
    );
}

#[test]
fn sign_rejects_bad_text_and_signers() {
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
    let cases = [
        (
            "",
            Error::NoteText {
                reason: "it is empty",
            },
        ),
        (
            "abc",
            Error::NoteText {
                reason: "it does not end in a newline",
            },
        ),
        (
            "a\tb\n",
            Error::NoteControlCharacter {
                offset: 1,
                byte: b'\t',
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Note::sign(text, &[&signer]), Err(expected), "text {text:?}");
    }
    assert_eq!(Note::sign("a\n", &[]), Err(Error::NoteNoSignatures));
}

#[test]
fn add_signature_replaces_same_key_and_validates() {
    let signer = Ed25519Signer::from_private_key_text(PETER_SKEY).expect("key");
    let mut note = Note {
        text: PETER_TEXT.to_owned(),
        signatures: vec![NoteSignature {
            name: "PeterNeumann".to_owned(),
            key_id: 0xc74f20a3,
            signature: vec![1, 2, 3],
        }],
    };
    note.sign_with(&signer).expect("signs");
    assert_eq!(note.to_string(), peter_note());
    let bad_name = NoteSignature {
        name: "a b".to_owned(),
        key_id: 1,
        signature: vec![1],
    };
    assert!(matches!(
        note.add_signature(bad_name),
        Err(Error::KeyName { .. })
    ));
    let empty = NoteSignature {
        name: "a".to_owned(),
        key_id: 1,
        signature: vec![],
    };
    assert_eq!(
        note.add_signature(empty),
        Err(Error::NoteSignatureEmpty {
            name: "a".to_owned()
        })
    );
}

#[test]
fn key_names() {
    for good in ["a", "example.com/log", "ünïcode"] {
        assert_eq!(validate_key_name(good), Ok(()));
    }
    for (bad, reason) in [
        ("", "it is empty"),
        ("a b", "it contains white space"),
        ("a\u{a0}b", "it contains white space"),
        ("a+b", "it contains '+'"),
        ("a\u{3000}b", "it contains white space"),
    ] {
        assert_eq!(
            validate_key_name(bad),
            Err(Error::KeyName {
                name: bad.to_owned(),
                reason
            })
        );
    }
}

fn arbitrary_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9./_:-]{1,20}"
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    proptest::collection::vec("[^\\x00-\\x1f\\x7f]{0,12}", 1..6)
        .prop_map(|lines| lines.join("\n") + "\n")
        .prop_filter("non-empty", |text| !text.is_empty())
}

fn arbitrary_signature() -> impl Strategy<Value = NoteSignature> {
    (
        arbitrary_name(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 1..80),
    )
        .prop_map(|(name, key_id, signature)| NoteSignature {
            name,
            key_id,
            signature,
        })
}

proptest! {
    #[test]
    fn note_round_trips(
        text in arbitrary_text(),
        signatures in proptest::collection::vec(arbitrary_signature(), 1..5),
    ) {
        let note = Note { text, signatures };
        let bytes = note.to_bytes();
        prop_assert_eq!(Note::parse(&bytes), Ok(note));
    }

    #[test]
    fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        prop_assert_eq!(decode_base64(&encode_base64(&bytes)), Ok(bytes));
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Note::parse(&bytes);
    }
}
