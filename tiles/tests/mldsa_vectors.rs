//! ML-DSA-44 `subtree/v1` keys and signatures against an independent
//! implementation: @noble/post-quantum's `ml_dsa44` (JavaScript), driven by
//! `tests/mldsa/vectors.mjs`, which also writes the key IDs, key texts,
//! messages and signature lines again from the specifications.
//!
//! - `mldsa_vectors.json` is that script's output (`node vectors.mjs
//!   generate`), committed so that these tests need no Node: the same seeds
//!   must give the same public keys, key IDs, vkeys and private key texts
//!   byte for byte, the same `subtree/v1` messages, and noble's checkpoint
//!   and subtree signatures must verify here (and not once tampered with).
//! - With Node and `tests/mldsa/node_modules` (scripts/install-test-deps.sh
//!   runs `npm ci` there), the script is run: its output must equal the
//!   committed file, and noble must verify the signatures stele-tiles makes
//!   (and reject them tampered with). Without them these two tests print
//!   `SKIPPED:`, and fail under `CI`.
//! - A third party's known answer: the IETF LAMPS example key pair, whose
//!   seed is 0x00..0x1f.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use stele_tiles::Hash;
use stele_tiles::checkpoint::{Checkpoint, open_checkpoint};
use stele_tiles::note::{
    Ed25519Signer, MlDsa44Signer, MlDsa44Verifier, Note, NoteVerifier, SIGNATURE_TYPE_MLDSA44,
    key_id, open, subtree_message, verifier_from_vkey,
};

#[derive(Deserialize)]
struct Vectors {
    generator: String,
    keys: Vec<Key>,
    checkpoints: Vec<CheckpointCase>,
    subtrees: Vec<SubtreeCase>,
}

#[derive(Deserialize)]
struct Key {
    name: String,
    seed_hex: String,
    public_key_hex: String,
    key_id: String,
    vkey: String,
    private_key: String,
}

#[derive(Deserialize)]
struct CheckpointCase {
    key: usize,
    timestamp: String,
    text: String,
    message_hex: String,
    note: String,
}

#[derive(Deserialize)]
struct SubtreeCase {
    key: usize,
    origin: String,
    start: String,
    end: String,
    hash: String,
    message_hex: String,
    line: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mldsa")
}

fn vectors() -> Vectors {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mldsa_vectors.json"),
    )
    .expect("tests/mldsa_vectors.json");
    serde_json::from_str(&text).expect("the vectors' JSON")
}

fn seed(key: &Key) -> [u8; 32] {
    hex::decode(&key.seed_hex)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn verifier(key: &Key) -> MlDsa44Verifier {
    MlDsa44Verifier::from_text(&key.vkey).expect("noble's vkey")
}

#[test]
fn same_keys_from_the_same_seeds() {
    let vectors = vectors();
    assert!(vectors.generator.starts_with("@noble/post-quantum "));
    assert_eq!(vectors.keys.len(), 3);
    for key in &vectors.keys {
        let signer = MlDsa44Signer::from_seed(&key.name, &seed(key)).expect("key");
        let public = hex::decode(&key.public_key_hex).expect("hex");
        assert_eq!(public.len(), 1312);
        assert_eq!(signer.verifier().public_key(), &public[..], "{}", key.name);
        assert_eq!(
            format!("{:08x}", signer.key_id()),
            key.key_id,
            "{}",
            key.name
        );
        assert_eq!(
            signer.key_id(),
            key_id(&key.name, SIGNATURE_TYPE_MLDSA44, &public)
        );
        assert_eq!(signer.verifier().to_text(), key.vkey);
        assert_eq!(signer.to_private_key_text(), key.private_key);
        let reread = MlDsa44Signer::from_private_key_text(&key.private_key).expect("noble's text");
        assert_eq!(reread.verifier(), signer.verifier());
        assert_eq!(verifier(key), signer.verifier());
        let any = verifier_from_vkey(&key.vkey).expect("a known type");
        assert_eq!(
            (any.name(), any.key_id()),
            (key.name.as_str(), signer.key_id())
        );
    }
}

#[test]
fn noble_checkpoint_signatures_verify() {
    let vectors = vectors();
    assert_eq!(vectors.checkpoints.len(), 7);
    for case in &vectors.checkpoints {
        let key = &vectors.keys[case.key];
        let verifier = verifier(key);
        let checkpoint = Checkpoint::parse(&case.text).expect("checkpoint");
        let timestamp: u64 = case.timestamp.parse().expect("timestamp");
        let message = subtree_message(
            &key.name,
            timestamp,
            &checkpoint.origin,
            0,
            checkpoint.size,
            &checkpoint.root,
        )
        .expect("message");
        assert_eq!(hex::encode(message), case.message_hex, "{}", case.text);

        let (note, verified) = open(case.note.as_bytes(), &[&verifier]).expect("verifies");
        assert_eq!(verified, vec![0]);
        assert_eq!(note.text, case.text);
        let signature = &note.signatures[0].signature;
        assert_eq!(MlDsa44Verifier::timestamp_of(signature), Some(timestamp));
        // A log's key: open_checkpoint checks the origin too.
        if key.name == checkpoint.origin {
            let (opened, _) = open_checkpoint(case.note.as_bytes(), &checkpoint.origin, &verifier)
                .expect("opens");
            assert_eq!(opened, checkpoint);
        }

        // Tampered: each field of the text, the timestamp, the signature.
        let tampered_texts = [
            case.text
                .replacen(&checkpoint.origin, "example.com/forged", 1),
            Checkpoint {
                size: checkpoint.size + 1,
                ..checkpoint.clone()
            }
            .to_text(),
            Checkpoint {
                root: Hash([0; 32]),
                ..checkpoint.clone()
            }
            .to_text(),
        ];
        for text in &tampered_texts {
            assert!(!verifier.verify(text.as_bytes(), signature), "{text}");
        }
        for index in [7, 8, 500, signature.len() - 1] {
            let mut bad = signature.clone();
            bad[index] ^= 1;
            assert!(!verifier.verify(case.text.as_bytes(), &bad), "byte {index}");
        }
        assert!(!verifier.verify(case.text.as_bytes(), &signature[..signature.len() - 1]));
        // Another cosigner name over the same key.
        let renamed =
            MlDsa44Verifier::new("example.com/renamed", verifier.public_key()).expect("key");
        assert!(!renamed.verify(case.text.as_bytes(), signature));
    }
}

#[test]
fn noble_subtree_signatures_verify() {
    let vectors = vectors();
    assert_eq!(vectors.subtrees.len(), 4);
    for case in &vectors.subtrees {
        let key = &vectors.keys[case.key];
        let verifier = verifier(key);
        let start: u64 = case.start.parse().expect("start");
        let end: u64 = case.end.parse().expect("end");
        let hash = Hash::from_base64(&case.hash).expect("hash");
        let message =
            subtree_message(&key.name, 0, &case.origin, start, end, &hash).expect("message");
        assert_eq!(hex::encode(message), case.message_hex);
        let line = parse_line(&case.line);
        assert!(line.is_from(&key.name, verifier.key_id()));
        assert_eq!(
            verifier.verify_subtree(&case.origin, start, end, &hash, &line.signature),
            Ok(0)
        );
        // Each field of the message.
        let other = Hash([1; 32]);
        for (origin, start, end, hash) in [
            ("example.com/forged", start, end, &hash),
            (case.origin.as_str(), start, end + 1, &hash),
            (case.origin.as_str(), start, end, &other),
        ] {
            assert!(
                verifier
                    .verify_subtree(origin, start, end, hash, &line.signature)
                    .is_err(),
                "{origin} [{start}, {end})"
            );
        }
        if start != 0 {
            assert!(
                verifier
                    .verify_subtree(&case.origin, 0, end, &hash, &line.signature)
                    .is_err()
            );
        }
    }
}

/// The ML-DSA-44 example of the IETF LAMPS ML-DSA certificates draft
/// (github.com/lamps-wg/dilithium-certificates, `examples/`): the private
/// key is the seed 0x00, 0x01, ..., 0x1f, and this its public key, as a DER
/// SubjectPublicKeyInfo. A known answer from a third party for key
/// generation from the seed.
const LAMPS_ML_DSA_44_PUBLIC_KEY: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIFMjALBglghkgBZQMEAxEDggUhANeytHJUquDbReeTDUqY0sl9jxOX0Xidr6Fw\n\
JLMW6b7JT8mUbULxm3mnQTu6oz5xSctC7VEVaTrAQfrLmIretf4OHYYxGEmVtZLD\n\
l9IpTi4U+QqkFLo4JomaxD9MzKy8JumoMrlRGNXLQzy++WYLABOOCBf2HnYsonTD\n\
atVU6yKqwRYuSrAay6HjjE79j4C2WzM9D3LlXf5xzpweu5iJ58VhBsD9c4A6Kuz+\n\
r97XqjyyztpU0SvYzTanjPl1lDtHq9JeiArEUuV0LtHo0agq+oblkMdYwVrk0oQN\n\
kryhpQkPQElll/yn2LlRPxob2m6VCqqY3kZ1B9Sk9aTwWZIWWCw1cvYu2okFqzWB\n\
ZwxKAnd6M+DKcpX9j0/20aCjp2g9ZfX19/xg2gI+gmxfkhRMAvfRuhB1mHVT6pNn\n\
/NdtmQt/qZzUWv24g21D5Fn1GH3wWEeXCaAepoNZNfpwRgmQzT3BukAbqUurHd5B\n\
rGerMxncrKBgSNTE7vJ+4TqcF9BTj0MPLWQtwkFWYN54h32NirxyUjl4wELkKF9D\n\
GYRsRBJiQpdoRMEOVWuiFbWnGeWdDGsqltOYWQcf3MLN51JKe+2uVOhbMY6FTo/i\n\
svPt+slxkSgnCq/R5QRMOk/a/Z/zH5B4S46ORZYUSg2vWGUR09mWK56pWvGXtOX8\n\
YPKx7RXeOlvvX4m9x52RBR2bKBbnT6VFMe/cHL501EiFf0drzVjyHAtlOzt2pOB2\n\
plWaMCcYVVzGP3SFmqurkl8COGHKjND3utsocfZ9VTJtdFETWtRfShumkRj7ssij\n\
DuyTku8/l3Bmya3VxxDMZHsVFNIX2VjHAXw+kP0gwE5nS5BIbpNwoxoAHTL0c5ee\n\
SQZ0nn5Hf6C3RQj4pfI3gxK4PCW9OIygsP/3R4uvQrcWZ+2qyXxGsSlkPlhuWwVa\n\
DCEZRtTzbmdb7Vhg+gQqMV2YJhZNapI3w1pfv0lUkKW9TfJIuVxKrneEtgVnMWas\n\
QkW1tLCCoJ6TI+YvIHjFt2eDRG3v1zatOjcC1JsImESQCmGDM5e8RBmzDXqXoLOH\n\
wZEUdMTUG1PjKpd6y28Op122W7OeWecB52lX3vby1EVZwxp3EitSBOO1whnxaIsU\n\
7QvAuAGz5ugtzUPpwOn0F0TNmBW9G8iCDYuxI/BPrNGxtoXdWisbjbvz7ZM2cPCV\n\
oYC08ZLQixC4+rvfzCskUY4y7qCl4MkEyoRHgAg/OwzS0Li2r2e8NVuUlAJdx7Cn\n\
j6gOOi2/61EyiFHWB4GY6Uk2Ua54fsAlH5Irow6fUd9iptcnhM890gU5MXbfoySl\n\
Er2Ulwo23TSlFKhnkfDrNvAUWwmrZGUbSgMTsplhGiocSIkWJ1mHaKMRQGC6RENI\n\
bfUVIqHOiLMJhcIW+ObtF43VZ7MEoNTK+6iCooNC8XqaomrljbYwCD0sNY/fVmw/\n\
XWKkKFZ7yeqM6VyqDzVHSwv6jzOaJQq0388gg76O77wQVeGP4VNw7ssmBWbYP/Br\n\
IRquxDyim1TM0A+IFaJGXvC0ZRXMfkHzEk8J7/9zkwmrWLKaFFmgC85QOOk4yWeP\n\
cusOTuX9quZtn4Vz/Jf8QrSVn0v4th14Qz6GsDNdbpGRxNi/SHs5BcEIz9asJLDO\n\
t9y3z1H4TQ7Wh7lerrHFM8BvDZcCPZKnCCWDe1m6bLfU5WsKh8IDhiro8xW6WSXo\n\
7e+meTaaIgJ2YVHxapZfn4Hs52zAcLVYaeTbl4TPBcgwsyQsgxI=\n\
-----END PUBLIC KEY-----\n";

#[test]
fn lamps_example_key_from_its_seed() {
    use base64::Engine as _;
    let body: String = LAMPS_ML_DSA_44_PUBLIC_KEY
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64");
    // SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.3.17 (id-ml-dsa-44) },
    // BIT STRING { 0 unused bits, the 1,312-byte key } }.
    let header = hex::decode("30820532300b06096086480165030403110382052100").expect("hex");
    assert_eq!(der.len(), 22 + 1312);
    assert_eq!(&der[..22], &header[..]);
    let seed: [u8; 32] = std::array::from_fn(|index| index as u8);
    let signer = MlDsa44Signer::from_seed("example", &seed).expect("key");
    assert_eq!(signer.verifier().public_key(), &der[22..]);
}

/// A signature line `— <name> <base64>` as a note parses it.
fn parse_line(line: &str) -> stele_tiles::note::NoteSignature {
    let note = format!("a\n\n{line}\n");
    Note::parse(note.as_bytes())
        .expect("a signature line")
        .signatures
        .remove(0)
}

/// The script and Node, if installed; `None` (after a `SKIPPED:` line)
/// otherwise, and a failure under `CI`.
fn noble() -> Option<PathBuf> {
    let dir = dir();
    let ready = dir
        .join("node_modules/@noble/post-quantum/package.json")
        .is_file()
        && Command::new("node").arg("--version").output().is_ok();
    if ready {
        return Some(dir.join("vectors.mjs"));
    }
    let message = format!(
        "@noble/post-quantum is not installed in {} (scripts/install-test-deps.sh runs npm ci there)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
    eprintln!("SKIPPED: {message}");
    None
}

#[test]
fn committed_vectors_are_what_the_script_writes() {
    let Some(script) = noble() else { return };
    let output = Command::new("node")
        .arg(&script)
        .arg("generate")
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mldsa_vectors.json"))
            .expect("the committed vectors");
    assert!(
        output.stdout == committed,
        "tests/mldsa_vectors.json differs from `node tests/mldsa/vectors.mjs generate`"
    );
}

#[test]
fn noble_verifies_stele_signatures() {
    let Some(script) = noble() else { return };
    const NOW: u64 = 1_767_225_600;
    let log = MlDsa44Signer::from_seed("example.com/log", &[1; 32])
        .expect("key")
        .with_clock(Arc::new(|| NOW));
    let classical = Ed25519Signer::from_seed("example.com/log", &[2; 32]).expect("key");
    let witness = MlDsa44Signer::from_seed("witness.example/w1", &[3; 32]).expect("key");

    let mut checkpoints = Vec::new();
    let mut expected = Vec::new();
    for size in [0u64, 1, 13, 1 << 40] {
        let checkpoint = Checkpoint {
            origin: "example.com/log".to_owned(),
            size,
            root: Hash([size as u8; 32]),
            extensions: vec![],
        };
        // The log signs beside an Ed25519 key; the witness cosigns.
        let mut note = Note::sign(&checkpoint.to_text(), &[&classical, &log]).expect("signs");
        let cosignature = witness.cosign(&note.text, NOW + size).expect("cosigns");
        note.add_signature(cosignature).expect("adds");
        for (signer, key) in [(&log, log.verifier()), (&witness, witness.verifier())] {
            checkpoints.push(json!({"vkey": key.to_text(), "note": note.to_string()}));
            expected.push(true);
            // The same line over another size must fail at noble.
            let forged =
                note.to_string()
                    .replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
            checkpoints.push(json!({"vkey": key.to_text(), "note": forged}));
            expected.push(false);
            // And a flipped bit in the signature.
            let mut flipped = note.clone();
            let line = flipped
                .signatures
                .iter_mut()
                .find(|line| line.name == signer.name() && line.key_id == signer.key_id())
                .expect("the line");
            line.signature[100] ^= 1;
            checkpoints.push(json!({"vkey": key.to_text(), "note": flipped.to_string()}));
            expected.push(false);
        }
    }
    // A cosignature over a checkpoint with an extension line (not signed).
    let text = "example.com/log\n5\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nextension\n";
    let mut note = Note::sign(text, &[&classical]).expect("signs");
    note.add_signature(witness.cosign(text, NOW).expect("cosigns"))
        .expect("adds");
    checkpoints.push(json!({"vkey": witness.verifier().to_text(), "note": note.to_string()}));
    expected.push(true);

    let mut subtrees = Vec::new();
    let mut expected_subtrees = Vec::new();
    for (start, end) in [(8u64, 13u64), (0, 8), (16, 32), (1 << 40, (1 << 40) + 1)] {
        let hash = Hash([start as u8 ^ 0x55; 32]);
        let line = witness
            .sign_subtree("example.com/log", start, end, &hash)
            .expect("signs");
        let case = |end: u64| {
            json!({
                "vkey": witness.verifier().to_text(),
                "origin": "example.com/log",
                "start": start.to_string(),
                "end": end.to_string(),
                "hash": hash.to_base64(),
                "line": line.to_string(),
            })
        };
        subtrees.push(case(end));
        expected_subtrees.push(true);
        subtrees.push(case(end + 1));
        expected_subtrees.push(false);
    }

    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mldsa-stele-signatures-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"checkpoints": checkpoints, "subtrees": subtrees}))
            .expect("json"),
    )
    .expect("write the signatures");
    let output = Command::new("node")
        .arg(&script)
        .arg("verify")
        .arg(&file)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).expect("noble's JSON");
    assert_eq!(results["checkpoints"], json!(expected));
    assert_eq!(results["subtrees"], json!(expected_subtrees));
}
