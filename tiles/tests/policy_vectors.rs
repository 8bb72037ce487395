//! tlog-policy against the policies and test cases of two other
//! implementations:
//!
//! - Sigsum's Go tools (sigsum-go `pkg/policy`, commit 192b553): the four
//!   built-in policies (files under `policy_vectors/`), the accepted and
//!   refused configurations of `config_test.go` and the quorum tables of
//!   `config_test.go` and `policy_test.go`. Sigsum writes keys as hex;
//!   they are turned into vkeys the way `sigsum-key to-vkey` does, the rest
//!   of each text left as it is.
//! - transparency-dev/formats `policy/tlog_policy_test.go` (commit d94901d)
//!   and `note/note_verifier_test.go`: its fixed Ed25519 keys, its accepted
//!   and refused policies, its checkpoint tables, and the Rekor and Pixel
//!   ECDSA vkeys with the checkpoints they signed.
//!
//! Where Stele decides otherwise, the test says so and why.

mod policy_support;

use std::collections::BTreeMap;

use base64::Engine as _;
use policy_support::{ORIGIN, assert_refused, checkpoint, log, refusal, signed, unsatisfied};
use sha2::{Digest, Sha256};
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::note::{Ed25519Signer, Note, NoteSigner, encode_base64, key_id};
use stele_tiles::policy::{Member, Policy, Quorum};

// ---- Sigsum -------------------------------------------------------------------------

fn vkey(name: &str, signature_type: u8, key: &[u8]) -> String {
    let mut material = vec![signature_type];
    material.extend_from_slice(key);
    format!(
        "{name}+{:08x}+{}",
        key_id(name, signature_type, key),
        encode_base64(&material)
    )
}

/// A Sigsum log's origin: `sigsum.org/v1/tree/<hex SHA-256(key)>`.
fn sigsum_origin(key: &[u8]) -> String {
    format!("sigsum.org/v1/tree/{}", hex::encode(Sha256::digest(key)))
}

/// Rewrites Sigsum's hex keys as vkeys. `key_of` gives the public key for a
/// hex field: the bytes themselves for real keys, a key derived from them
/// for the placeholders of Sigsum's tests (`aaaa...`, which need not be
/// points on the curve).
fn from_sigsum(text: &str, key_of: &dyn Fn(&str) -> [u8; 32]) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let fields: Vec<&str> = line
            .split([' ', '\t', '\n'])
            .filter(|f| !f.is_empty())
            .collect();
        let rewritten = match fields.as_slice() {
            ["log", hex, rest @ ..] => {
                let key = key_of(hex);
                let mut parts = vec!["log".to_owned(), vkey(&sigsum_origin(&key), 0x01, &key)];
                parts.extend(rest.iter().map(|f| (*f).to_owned()));
                Some(parts.join(" "))
            }
            ["witness", name, hex, rest @ ..] => {
                let key = key_of(hex);
                let mut parts = vec![
                    "witness".to_owned(),
                    (*name).to_owned(),
                    vkey(name, 0x04, &key),
                ];
                parts.extend(rest.iter().map(|f| (*f).to_owned()));
                Some(parts.join(" "))
            }
            _ => None,
        };
        match rewritten {
            Some(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            None => out.push_str(line),
        }
    }
    out
}

fn real_key(hex: &str) -> [u8; 32] {
    hex::decode(hex)
        .expect("hex key")
        .try_into()
        .expect("32 bytes")
}

/// The Ed25519 seed standing for a placeholder key of Sigsum's tests.
fn placeholder_seed(hex: &str) -> [u8; 32] {
    Sha256::digest(hex.to_ascii_lowercase().as_bytes()).into()
}

fn placeholder_key(hex: &str) -> [u8; 32] {
    Ed25519Signer::from_seed("x", &placeholder_seed(hex))
        .expect("key")
        .verifier()
        .public_key()
}

fn read_builtin(name: &str) -> String {
    let path = format!("{}/tests/policy_vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("vector file")
}

fn names(policy: &Policy, members: &[Member]) -> Vec<String> {
    members
        .iter()
        .map(|member| policy.member_name(*member).to_string())
        .collect()
}

#[test]
fn sigsum_builtin_policies() {
    // (file, logs (each with a URL), witnesses, the quorum group, its threshold
    // and members)
    type Case<'a> = (&'a str, usize, usize, &'a str, usize, &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "sigsum-generic-2025-1.builtin-policy",
            2,
            3,
            "quorum-rule",
            2,
            &[
                "witness.glasklar.is",
                "witness.mullvad.net",
                "tillitis.se/tillitis-witness-1",
            ],
        ),
        (
            "sigsum-test-2025-3.builtin-policy",
            2,
            8,
            "quorum-rule",
            4,
            &[
                "glasklar-test-witnesses",
                "witness.navigli.sunlight.geomys.org",
                "remora.n621.de",
                "witness.stagemole.eu",
                "tillitis.se/test-witness-1",
                "transparency.dev/DEV:witness-little-garden",
            ],
        ),
        (
            "sigsum-test1-2025.builtin-policy",
            1,
            3,
            "quorum-rule",
            2,
            &[
                "poc.sigsum.org/nisse",
                "rgdd.se/poc-witness",
                "witness1.smartit.nu/witness1",
            ],
        ),
        (
            "sigsum-test2-2025.builtin-policy",
            1,
            7,
            "quorum-rule",
            4,
            &[
                "glasklar-test-witnesses",
                "navigli.sunlight.geomys.org/dev",
                "remora.n621.de",
                "witness.stagemole.eu",
                "tillitis.se/test-witness-1",
            ],
        ),
    ];
    for (file, logs, witnesses, quorum, threshold, members) in cases {
        let original = read_builtin(file);
        let text = from_sigsum(&original, &real_key);
        let policy = Policy::parse(text.as_bytes())
            .unwrap_or_else(|error| panic!("{file}: {error}\n{text}"));
        assert_eq!(policy.logs().len(), logs, "{file}");
        assert!(
            policy.logs().iter().all(|log| log.url().is_some()),
            "{file}"
        );
        assert_eq!(policy.witnesses().len(), witnesses, "{file}");
        let Quorum::Member(Member::Group(index)) = policy.quorum() else {
            panic!("{file}: the quorum is a group");
        };
        let group = &policy.groups()[index];
        assert_eq!(group.name().to_string(), quorum, "{file}");
        assert_eq!(group.threshold(), threshold, "{file}");
        assert_eq!(names(&policy, group.members()), members, "{file}");
        // Each log's key name is its Sigsum origin.
        for log in policy.logs() {
            assert!(log.origin().starts_with("sigsum.org/v1/tree/"), "{file}");
        }
    }

    // The generic policy: two of three witnesses.
    let text = from_sigsum(
        &read_builtin("sigsum-generic-2025-1.builtin-policy"),
        &real_key,
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert!(!policy.quorum_met(["witness.mullvad.net"]));
    assert!(policy.quorum_met(["witness.mullvad.net", "tillitis.se/tillitis-witness-1"]));
    let seasalp = real_key("0ec7e16843119b120377a73913ac6acbc2d03d82432e2c36b841b09a95841f25");
    assert_eq!(
        policy.logs()[0].vkey(),
        vkey(&sigsum_origin(&seasalp), 0x01, &seasalp)
    );
    assert_eq!(
        policy.logs()[0].url().and_then(|url| url.to_str()),
        Some("https://seasalp.glasklar.is")
    );

    // test-2025-3: four of (two of three Glasklar witnesses, and five more).
    let text = from_sigsum(
        &read_builtin("sigsum-test-2025-3.builtin-policy"),
        &real_key,
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let glasklar = [
        "poc.sigsum.org/nisse",
        "rgdd.se/poc-witness",
        "witness1.smartit.nu/witness1",
    ];
    let others = [
        "witness.navigli.sunlight.geomys.org",
        "remora.n621.de",
        "witness.stagemole.eu",
        "tillitis.se/test-witness-1",
        "transparency.dev/DEV:witness-little-garden",
    ];
    assert!(policy.quorum_met(&others[..4]));
    assert!(!policy.quorum_met(&others[..3]));
    assert!(!policy.quorum_met([others[0], others[1], others[2], glasklar[0]]));
    assert!(policy.quorum_met([others[0], others[1], others[2], glasklar[0], glasklar[2]]));
    assert!(!policy.quorum_met(glasklar));
}

const SIGSUM_VALID_CONFIG: &str = "
# example config
log aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa http://sigsum.example.org
  # comment
  log bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

witness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc http://w1
# same key for log and key is undesirable, but not an error
witness W2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
witness W3 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd http://w3
witness W4 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee https://w4/
witness W5 ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff https://w5

group G1 any W1 W2
group G2 2 W3 W4 W5
group G3 all G1 G2

quorum G3

  log cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
witness W6 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
";

#[test]
fn sigsum_valid_config() {
    let text = from_sigsum(SIGSUM_VALID_CONFIG, &placeholder_key);
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.logs().len(), 3);
    assert_eq!(policy.witnesses().len(), 6);
    let logs_with_url: Vec<_> = policy.logs().iter().filter_map(|log| log.url()).collect();
    assert_eq!(logs_with_url.len(), 1);
    assert_eq!(logs_with_url[0].to_str(), Some("http://sigsum.example.org"));
    let urls: BTreeMap<String, String> = policy
        .witnesses_with_url()
        .map(|(witness, url)| (witness.name().to_string(), url.to_string()))
        .collect();
    assert_eq!(
        urls,
        BTreeMap::from(
            [
                ("W1", "http://w1"),
                ("W3", "http://w3"),
                ("W4", "https://w4/"),
                ("W5", "https://w5")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        )
    );
    // The table of TestValidConfig: witness i is Wi.
    for (set, sufficient) in [
        (&[][..], false),
        (&[1][..], false),
        (&[2][..], false),
        (&[3][..], false),
        (&[3, 4, 5][..], false),
        (&[1, 2][..], false),
        (&[1, 3][..], false),
        (&[1, 3, 4][..], true),
        (&[2, 3, 5][..], true),
    ] {
        let names: Vec<String> = set.iter().map(|i| format!("W{i}")).collect();
        assert_eq!(policy.quorum_met(&names), sufficient, "{names:?}");
    }
}

#[test]
fn sigsum_numeric_threshold() {
    let config = "
# example config
log aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa http://sigsum.example.org

witness A1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1
witness A2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2
witness A3 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3
witness B1 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1
witness B2 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2
witness B3 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb3

group A-group 1 A1 A2 A3
group B-group 2 B1 B2 B3
group G any A-group B-group

quorum G
";
    let policy = Policy::parse(from_sigsum(config, &placeholder_key).as_bytes()).expect("parses");
    assert_eq!(policy.logs().len(), 1);
    assert_eq!(policy.witnesses().len(), 6);
    for (a, b, sufficient) in [
        (&[][..], &[][..], false),
        (&[1][..], &[][..], true),
        (&[2][..], &[][..], true),
        (&[3][..], &[][..], true),
        (&[1, 3][..], &[][..], true),
        (&[1, 3][..], &[1][..], true),
        (&[][..], &[1][..], false),
        (&[][..], &[2][..], false),
        (&[][..], &[3][..], false),
        (&[][..], &[1, 2][..], true),
        (&[][..], &[1, 3][..], true),
        (&[][..], &[2, 3][..], true),
        (&[][..], &[1, 2, 3][..], true),
        (&[2][..], &[1, 2, 3][..], true),
    ] {
        let names: Vec<String> = a
            .iter()
            .map(|i| format!("A{i}"))
            .chain(b.iter().map(|i| format!("B{i}")))
            .collect();
        assert_eq!(policy.quorum_met(&names), sufficient, "{names:?}");
    }
}

/// The group trees of policy_test.go's TestOneOfNWitnessPolicy and
/// TestTwoOfNWitnessPolicy, as policy text, with k everywhere.
fn sigsum_tree(k: usize) -> (String, Vec<CosignatureSigner>) {
    let witnesses: Vec<CosignatureSigner> = (0..6)
        .map(|index| policy_support::witness(&format!("w{index}.example"), 70 + index))
        .collect();
    let key = |index: usize| witnesses[index].verifier().to_text();
    let text = format!(
        "log {}\n\
         witness w0 {}\nwitness w1 {}\ngroup g0 {k} w0 w1\n\
         witness w2 {}\nwitness w3 {}\ngroup g1 {k} w2 w3\n\
         witness w4 {}\nwitness w5 {}\ngroup g2 {k} g1 w4 w5\n\
         group q {k} g0 g2\nquorum q\n",
        log(ORIGIN, 1).verifier().to_text(),
        key(0),
        key(1),
        key(2),
        key(3),
        key(4),
        key(5)
    );
    (text, witnesses)
}

#[test]
fn sigsum_one_of_n_and_two_of_n_trees_exhaustively() {
    // Two of n: g0 needs w0 and w1; g2 needs two of (g1 = w2 and w3, w4,
    // w5): Sigsum's truth table over w2..w5.
    let truth = [
        false, false, false, false, // neither w4 nor w5
        false, false, false, true, // w4: with w2 and w3
        false, false, false, true, // w5: with w2 and w3
        true, true, true, true, // w4 and w5
    ];
    for k in [1, 2] {
        let (text, witnesses) = sigsum_tree(k);
        let policy = Policy::parse(text.as_bytes()).expect("parses");
        for mask in 0usize..64 {
            let expected = match k {
                1 => mask != 0,
                _ => mask & 3 == 3 && truth[mask >> 2],
            };
            let chosen: Vec<&CosignatureSigner> = (0..6)
                .filter(|j| mask >> j & 1 == 1)
                .map(|j| &witnesses[j])
                .collect();
            let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &chosen);
            assert_eq!(
                policy.verify_checkpoint(&note.to_bytes()).is_ok(),
                expected,
                "{k} of n, witnesses {mask:06b}"
            );
        }
    }
}

#[test]
fn sigsum_k_of_n_with_invalid_cosignatures() {
    // TestWitnessPolicy: four known witnesses, three required; w4 and w5
    // are unknown.
    let witnesses: Vec<CosignatureSigner> = (0..6)
        .map(|index| policy_support::witness(&format!("w{index}.example"), 80 + index))
        .collect();
    let text = format!(
        "log {}\n{}group q 3 w0 w1 w2 w3\nquorum q\n",
        log(ORIGIN, 1).verifier().to_text(),
        (0..4)
            .map(|i| format!("witness w{i} {}\n", witnesses[i].verifier().to_text()))
            .collect::<String>()
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    // (witnesses, the one whose cosignature is damaged, valid for Stele)
    for (set, damaged, valid) in [
        (&[][..], None, false),
        (&[0][..], None, false),
        (&[0, 1, 4][..], None, false),
        (&[0, 1, 2][..], None, true),
        (&[1, 2, 3][..], None, true),
        (&[0, 1, 2, 3, 4][..], None, true),
        // Sigsum counts the three valid cosignatures and accepts; Stele
        // follows signed-note: a line by a known key that does not verify
        // rejects the note.
        (&[0, 1, 2, 3, 4][..], Some(2), false),
        (&[0, 2, 3, 4][..], Some(2), false),
    ] {
        let chosen: Vec<&CosignatureSigner> = set.iter().map(|&i| &witnesses[i]).collect();
        let mut note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &chosen);
        if let Some(index) = damaged {
            let name = witnesses[index].name();
            let line = note
                .signatures
                .iter_mut()
                .find(|signature| signature.name == name)
                .expect("cosignature");
            line.signature[3] ^= 1;
        }
        assert_eq!(
            policy.verify_checkpoint(&note.to_bytes()).is_ok(),
            valid,
            "{set:?} damaged {damaged:?}"
        );
    }
}

#[test]
fn sigsum_invalid_configs() {
    let convert = |text: &str| from_sigsum(text, &placeholder_key);
    // (description, config, line, what Stele's reason says)
    let cases: [(&str, &str, usize, &str); 13] = [
        ("empty", "", 0, "no quorum line"),
        (
            "invalid control char (formfeed)",
            "# \x0c\nquorum none\n",
            1,
            "0x0c",
        ),
        (
            "invalid control char (DEL)",
            "# \x7f\nquorum none\n",
            1,
            "DEL (0x7f)",
        ),
        (
            "duplicate log",
            "\nlog aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  log aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            3,
            "already listed on line 2",
        ),
        (
            "end-of-line comment",
            "\nlog aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa http://example.org #comment\n",
            2,
            "does not start a comment",
        ),
        (
            "duplicate witness",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W2 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n",
            3,
            "has the public key of witness \"W1\"",
        ),
        (
            "duplicate name",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W1 dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n",
            3,
            "\"W1\" is already defined on line 2",
        ),
        (
            "duplicate none",
            "\nwitness none cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n",
            2,
            "none is predefined",
        ),
        (
            "undef name",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ngroup G all W1 W3 W2\n",
            4,
            "\"W3\" is not a witness or group defined on an earlier line",
        ),
        (
            "missing quorum",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ngroup G all W1 W2\n",
            0,
            "no quorum line",
        ),
        (
            "repeated member",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ngroup G all W1 W2 W1\n",
            4,
            "lists \"W1\" twice",
        ),
        (
            "member in two groups",
            "\nwitness W1 cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\nwitness W2 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nwitness W3 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\ngroup G1 all W1 W2\ngroup G2 all W3 W2\n",
            6,
            "\"W2\" is already a member of group \"G1\"",
        ),
        (
            "none as member",
            "\nlog aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nwitness W bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\ngroup G all W none\nquorum G\n",
            4,
            "none is predefined for the quorum only",
        ),
    ];
    for (description, config, line, needle) in cases {
        let (found_line, reason) = refusal(convert(config));
        assert!(reason.contains(needle), "{description}: {reason}");
        assert_eq!(found_line, line, "{description}: {reason}");
    }
}

// ---- transparency-dev/formats ---------------------------------------------------------

/// Plain Ed25519 vkeys and their private keys, from tlog_policy_test.go.
const TD_KEYS: [(&str, &str); 3] = [
    (
        "Wit1+55ee4561+AVhZSmQj9+SoL+p/nN0Hh76xXmF7QcHfytUrI1XfSClk",
        "PRIVATE+KEY+Wit1+55ee4561+AeadRiG7XM4XiieCHzD8lxysXMwcViy5nYsoXURWGrlE",
    ),
    (
        "Wit2+85ecc407+AWVbwFJte9wMQIPSnEnj4KibeO6vSIOEDUTDp3o63c2x",
        "PRIVATE+KEY+Wit2+85ecc407+AfPTvxw5eUcqSgivo2vaiC7JPOMUZ/9baHPSDrWqgdGm",
    ),
    (
        "Wit3+d3ed3be7+ASb6Uz1+fxAcXkMvDd7nGa3FjDce7LxIKmbbTCT0MpVn",
        "PRIVATE+KEY+Wit3+d3ed3be7+AR2Kg8k6ccBr5QXz5SHtnkOS4UGQGEQaWi6Gfr6Mm3X5",
    ),
];

/// The Ed25519 note signer of a TD_KEYS private key, and the cosigner of
/// the same key (the test's `rewrapVkey` to type 0x04).
fn td_signers(index: usize) -> (Ed25519Signer, CosignatureSigner) {
    let (vkey, skey) = TD_KEYS[index];
    let signer = Ed25519Signer::from_private_key_text(skey).expect("Go's private key text");
    assert_eq!(signer.verifier().to_text(), vkey, "Go's vkey");
    let encoded = skey.rsplit('+').next().expect("base64 part");
    let material = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let seed: [u8; 32] = material[1..].try_into().expect("32-byte seed");
    let cosigner = CosignatureSigner::from_seed(signer.name(), &seed).expect("key");
    (signer, cosigner)
}

fn td_witness_vkey(index: usize) -> String {
    td_signers(index).1.verifier().to_text()
}

/// The seed of a cosigner, read back from its private key text.
fn seed_of(signer: &CosignatureSigner) -> [u8; 32] {
    let text = signer.to_private_key_text();
    let encoded = text.rsplit('+').next().expect("base64 part");
    let material = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    material[1..].try_into().expect("32-byte seed")
}

#[test]
fn transparency_dev_keys_are_log_keys_not_witness_keys() {
    for (index, (vkey, _)) in TD_KEYS.iter().enumerate() {
        // As a log key (type 0x01, named Wit1...), the vkey is accepted.
        let policy =
            Policy::parse(format!("log {vkey}\nquorum none\n").as_bytes()).expect("parses");
        assert_eq!(policy.logs()[0].origin(), format!("Wit{}", index + 1));
        // As a witness key it is refused ("witness with plain ed25519 vkey").
        assert_refused(format!("witness w1 {vkey}\nquorum w1\n"), 1, "type 0x01");
    }
    // The test rewraps the keys to type 0x04 with key ID 00000000, which its
    // cosignature verifiers do not check; Stele checks every key ID (the
    // signature lines are matched by it), so only the computed ID is taken.
    let witness = td_witness_vkey(0);
    let (_, rest) = witness.split_once('+').expect("vkey");
    let (_, key) = rest.split_once('+').expect("vkey");
    assert!(key.starts_with('B'), "type 0x04: {key}");
    assert_refused(
        format!("witness w1 Wit1+00000000+{key}\nquorum w1\n"),
        1,
        "key ID",
    );
    Policy::parse(format!("witness w1 {witness}\nquorum w1\n").as_bytes()).expect("parses");
}

#[test]
fn transparency_dev_accepted_policies() {
    let log_vkey = log(ORIGIN, 1).verifier().to_text();
    let w: Vec<String> = (0..3).map(td_witness_vkey).collect();
    let more: Vec<String> = (0..3u8)
        .map(|i| {
            policy_support::witness(&format!("Wit{}", i + 4), 90 + i)
                .verifier()
                .to_text()
        })
        .collect();

    // "spec example"
    let text = format!(
        "log {log_vkey}\n\nwitness X1 {}\nwitness X2 {}\nwitness X3 {}\ngroup X-witnesses 2 X1 X2 X3\n\nwitness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
        w[0], w[1], w[2], more[0], more[1], more[2]
    );
    let policy = Policy::parse(text.as_bytes()).expect("spec example");
    let groups: Vec<(String, usize, Vec<String>)> = policy
        .groups()
        .iter()
        .map(|g| {
            (
                g.name().to_string(),
                g.threshold(),
                names(&policy, g.members()),
            )
        })
        .collect();
    let strings = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        groups,
        [
            ("X-witnesses".to_owned(), 2, strings(&["X1", "X2", "X3"])),
            ("Y-witnesses".to_owned(), 1, strings(&["Y1", "Y2", "Y3"])),
            (
                "X-and-Y".to_owned(),
                2,
                strings(&["X-witnesses", "Y-witnesses"])
            ),
        ]
    );

    // "minimal"
    let policy = Policy::parse(b"quorum none\n").expect("minimal");
    assert_eq!(policy.quorum(), Quorum::None);

    // "whitespace and comments": the test's text has no newline after its
    // last line, which tlog-policy requires ("each line is terminated by
    // ASCII newline"); Stele refuses it as possibly cut short, and takes the
    // same text with the newline.
    let text = format!(
        "\n# comment\n\t # another comment\n\twitness \t w1  {}   https://w1.example.com/  \n\n  quorum\tw1",
        w[0]
    );
    assert_refused(&text, 6, "does not end in a newline");
    let policy = Policy::parse((text + "\n").as_bytes()).expect("with the newline");
    assert_eq!(
        policy.witnesses()[0].url().and_then(|url| url.to_str()),
        Some("https://w1.example.com/")
    );

    // "urls optional and opaque"
    let text = format!(
        "log {log_vkey} https://log.example.com/\nwitness w1 {}\nquorum w1\n",
        w[0]
    );
    let policy = Policy::parse(text.as_bytes()).expect("urls");
    assert_eq!(
        policy.logs()[0].url().map(|url| url.to_string()),
        Some("https://log.example.com/".to_owned())
    );
    assert_eq!(policy.witnesses()[0].url(), None);

    // "non-ASCII names are opaque octets"
    let mut text = b"witness KKlvin-w\x80 ".to_vec();
    text.extend_from_slice(w[0].as_bytes());
    text.extend_from_slice(b"\nquorum KKlvin-w\x80\n");
    let policy = Policy::parse(&text).expect("non-ASCII names");
    assert_eq!(policy.witnesses()[0].name().as_bytes(), b"KKlvin-w\x80");

    // "keywords other than none are valid names"
    let text = format!(
        "witness all {}\nwitness any {}\ngroup group 2 all any\nquorum group\n",
        w[0], w[1]
    );
    let policy = Policy::parse(text.as_bytes()).expect("keywords as names");
    assert_eq!(policy.groups()[0].threshold(), 2);
    assert_eq!(names(&policy, policy.groups()[0].members()), ["all", "any"]);
}

#[test]
fn transparency_dev_refused_policies() {
    let log_vkey = log(ORIGIN, 1).verifier().to_text();
    let wit1 = td_witness_vkey(0);
    let wit2 = td_witness_vkey(1);
    let ecdsa = format!(
        "ecdsa.example.com+00000000+{}",
        encode_base64(&[0x02, 1, 2, 3])
    );
    let unknown = vkey("unknown.example.com", 0x63, &[0; 32]);
    // Wit1's key under another name ("TestUnmarshal_DuplicateWitnessKeys").
    let impostor = CosignatureSigner::from_seed("impostor.example.com", &seed_of(&td_signers(0).1))
        .expect("key")
        .verifier()
        .to_text();
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "disallowed control octet",
            "quorum none\n\x01".into(),
            2,
            "0x01",
        ),
        (
            "carriage return",
            "quorum none\r\n".into(),
            1,
            "carriage return",
        ),
        (
            "unknown keyword",
            "quibble w1\nquorum none\n".into(),
            1,
            "unknown keyword",
        ),
        (
            "inline comments are not comments",
            format!("witness w1 {wit1} https://w1.example.com/ # comment\nquorum w1\n"),
            1,
            "does not start a comment",
        ),
        (
            "log without vkey",
            "log\nquorum none\n".into(),
            1,
            "expected `log <vkey> [<url>]`",
        ),
        (
            "log with invalid vkey",
            "log garbage\nquorum none\n".into(),
            1,
            "not <name>+<8 hex key ID>",
        ),
        (
            "log with unknown key type",
            format!("log {unknown}\nquorum none\n"),
            1,
            "type 0x63",
        ),
        (
            "duplicate log public key",
            format!("log {log_vkey}\nlog {log_vkey} https://log.example.com/\nquorum none\n"),
            2,
            "already listed on line 1",
        ),
        (
            "witness without vkey",
            "witness w1\nquorum none\n".into(),
            1,
            "expected `witness",
        ),
        (
            "witness with non-cosignature vkey",
            format!("witness w1 {ecdsa}\nquorum w1\n"),
            1,
            "type 0x02",
        ),
        (
            "witness with plain ed25519 vkey",
            format!("witness w1 {}\nquorum w1\n", TD_KEYS[0].0),
            1,
            "type 0x01",
        ),
        (
            "witness named none",
            format!("witness none {wit1}\nquorum none\n"),
            1,
            "none is predefined",
        ),
        (
            "duplicate witness name",
            format!("witness w1 {wit1}\nwitness w1 {wit2}\nquorum w1\n"),
            2,
            "already defined on line 1",
        ),
        (
            "group name duplicates witness name",
            format!("witness w1 {wit1}\ngroup w1 any w1\nquorum w1\n"),
            2,
            "already defined on line 1",
        ),
        (
            "group without members",
            format!("witness w1 {wit1}\ngroup g1 1\nquorum w1\n"),
            2,
            "lists no members",
        ),
        (
            "group named none",
            format!("witness w1 {wit1}\ngroup none any w1\nquorum none\n"),
            2,
            "none is predefined",
        ),
        (
            "zero threshold",
            format!("witness w1 {wit1}\ngroup g1 0 w1\nquorum g1\n"),
            2,
            "not between 1 and its 1 members",
        ),
        (
            "negative threshold",
            format!("witness w1 {wit1}\ngroup g1 -1 w1\nquorum g1\n"),
            2,
            "not all, any or a decimal number",
        ),
        (
            "threshold exceeds members",
            format!("witness w1 {wit1}\ngroup g1 2 w1\nquorum g1\n"),
            2,
            "not between 1 and its 1 members",
        ),
        (
            "unknown group member",
            format!("witness w1 {wit1}\ngroup g1 any w2\nquorum g1\n"),
            2,
            "\"w2\" is not",
        ),
        (
            "forward reference in group",
            format!("group g1 any w1\nwitness w1 {wit1}\nquorum g1\n"),
            1,
            "\"w1\" is not",
        ),
        (
            "none as group member",
            format!("witness w1 {wit1}\ngroup g1 any none w1\nquorum g1\n"),
            2,
            "cannot be a group member",
        ),
        (
            "member repeated within a group",
            format!("witness w1 {wit1}\ngroup g1 all w1 w1\nquorum g1\n"),
            2,
            "twice",
        ),
        (
            "member repeated across groups",
            format!(
                "witness w1 {wit1}\nwitness w2 {wit2}\ngroup g1 any w1 w2\ngroup g2 any w1\nquorum g1\n"
            ),
            4,
            "already a member of group \"g1\"",
        ),
        (
            "no quorum",
            format!("witness w1 {wit1}\n"),
            0,
            "no quorum line",
        ),
        (
            "multiple quorums",
            format!("witness w1 {wit1}\nquorum w1\nquorum w1\n"),
            3,
            "already defined on line 2",
        ),
        (
            "quorum with unknown name",
            "quorum unknown\n".into(),
            1,
            "\"unknown\" is not",
        ),
        (
            "quorum before referenced definition",
            format!("quorum w1\nwitness w1 {wit1}\n"),
            1,
            "\"w1\" is not",
        ),
        (
            "quorum without name",
            "quorum\n".into(),
            1,
            "expected `quorum <name>`",
        ),
        (
            "duplicate witness public keys",
            format!("witness w1 {wit1}\nwitness w2 {impostor}\nquorum w1\n"),
            2,
            "has the public key of witness \"w1\"",
        ),
    ];
    for (description, text, line, needle) in cases {
        let (found_line, reason) = refusal(&text);
        assert!(reason.contains(needle), "{description}: {reason}");
        assert_eq!(found_line, line, "{description}: {reason}");
    }
}

#[test]
fn transparency_dev_satisfied() {
    let (_, w1) = td_signers(0);
    let (_, w2) = td_signers(1);
    let (_, w3) = td_signers(2);
    let text = format!(
        "log {}\nwitness w1 {}\nwitness w2 {}\nwitness w3 {}\ngroup inner any w2 w3\ngroup outer all w1 inner\nquorum outer\n",
        log(ORIGIN, 1).verifier().to_text(),
        w1.verifier().to_text(),
        w2.verifier().to_text(),
        w3.verifier().to_text()
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    for (description, signers, satisfied) in [
        ("all witnesses", vec![&w1, &w2, &w3], true),
        ("minimum satisfying set", vec![&w1, &w3], true),
        ("outer member without inner group", vec![&w1], false),
        ("inner group without outer member", vec![&w2, &w3], false),
        ("no cosignatures", vec![], false),
    ] {
        let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &signers);
        assert_eq!(
            policy.verify_checkpoint(&note.to_bytes()).is_ok(),
            satisfied,
            "{description}"
        );
        assert_eq!(
            policy.verify_cosignatures(&note).is_ok(),
            satisfied,
            "{description}"
        );
    }
}

#[test]
fn transparency_dev_verify() {
    let (_, w1) = td_signers(0);
    let log_key = log(ORIGIN, 1);
    let other = log("other.example.com/log", 2);
    let w = w1.verifier().to_text();
    let (lv, ov) = (log_key.verifier().to_text(), other.verifier().to_text());
    type Case<'a> = (
        &'a str,
        String,
        Vec<&'a dyn NoteSigner>,
        bool,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "log signature and quorum",
            format!("log {lv}\nwitness w1 {w}\nquorum w1\n"),
            vec![&log_key],
            true,
            None,
        ),
        (
            "any one of the listed logs suffices",
            format!("log {ov}\nlog {lv}\nwitness w1 {w}\nquorum w1\n"),
            vec![&log_key],
            true,
            None,
        ),
        (
            "log signature without quorum",
            format!("log {lv}\nwitness w1 {w}\nquorum w1\n"),
            vec![&log_key],
            false,
            Some("is not met"),
        ),
        (
            "quorum without log signature",
            format!("log {lv}\nwitness w1 {w}\nquorum w1\n"),
            vec![],
            true,
            Some("no log of the policy"),
        ),
        (
            "log key name must match checkpoint origin",
            format!("log {ov}\nwitness w1 {w}\nquorum w1\n"),
            vec![&other],
            true,
            Some("no log of the policy"),
        ),
        (
            "policy without logs",
            format!("witness w1 {w}\nquorum w1\n"),
            vec![&log_key],
            true,
            Some("lists no logs"),
        ),
    ];
    for (description, text, logs, cosigned, error) in cases {
        let policy = Policy::parse(text.as_bytes()).expect(description);
        let witnesses: Vec<&CosignatureSigner> = if cosigned { vec![&w1] } else { vec![] };
        let note = signed(&checkpoint(ORIGIN), &logs, &witnesses);
        match error {
            None => {
                let verified = policy
                    .verify_checkpoint(&note.to_bytes())
                    .expect(description);
                assert_eq!(verified.checkpoint.origin, ORIGIN);
                assert_eq!(verified.checkpoint.size, 42);
            }
            Some(needle) => {
                let reason = unsatisfied(&policy, &note);
                assert!(reason.contains(needle), "{description}: {reason}");
            }
        }
    }
}

// ---- ECDSA vkeys (type 0x02): note_verifier_test.go ---------------------------------

const SIGSTORE_KEY_MATERIAL: &str = "AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=";
const PIXEL_KEY_MATERIAL: &str = "AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8=";
const REKOR_NOTE: &str = "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\u{2014} rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n";
const PIXEL_NOTE: &str = "DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n\u{2014} pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n";

#[test]
fn ecdsa_vkeys_of_rekor_and_pixel() {
    for (name, key_id, material, note, origin) in [
        (
            "rekor.sigstore.dev",
            "c0d23d6a",
            SIGSTORE_KEY_MATERIAL,
            REKOR_NOTE,
            "Rekor",
        ),
        (
            "pixel6_transparency_log",
            "91c16e30",
            PIXEL_KEY_MATERIAL,
            PIXEL_NOTE,
            "DEFAULT",
        ),
    ] {
        let vkey = format!("{name}+{key_id}+{material}");
        let policy = Policy::parse(format!("log {vkey}\nquorum none\n").as_bytes())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(policy.logs()[0].signature_type(), 0x02);
        assert_eq!(format!("{:08x}", policy.logs()[0].key_id()), key_id);
        // The key is not named as the checkpoint's origin, so the policy
        // does not take the checkpoint ...
        let parsed = Note::parse(note.as_bytes()).expect("note");
        let reason = unsatisfied(&policy, &parsed);
        assert!(
            reason.contains("no log of the policy with origin"),
            "{name}: {reason}"
        );
        // ... but its signature was verified: a damaged one is refused.
        let mut damaged = parsed.clone();
        damaged.signatures[0].signature[10] ^= 1;
        let reason = unsatisfied(&policy, &damaged);
        assert!(reason.contains("does not verify"), "{name}: {reason}");
        // Named as the origin (an ECDSA key ID does not depend on the name),
        // with the signature line renamed alike, it is the log's checkpoint.
        let renamed_vkey = format!("{origin}+{key_id}+{material}");
        let policy =
            Policy::parse(format!("log {renamed_vkey}\nquorum none\n").as_bytes()).expect("parses");
        let renamed = note.replace(&format!("\u{2014} {name} "), &format!("\u{2014} {origin} "));
        let verified = policy.verify_checkpoint(renamed.as_bytes()).expect(name);
        assert_eq!(verified.checkpoint.origin, origin);
    }
    // "incorrect keyhash", "invalid algo" (type 0x03), and the Static CT key
    // of "Static CT works" (type 0x05, which Stele does not verify) are
    // refused as log keys.
    let cases = [
        (
            format!("rekor.sigstore.dev+00000000+{SIGSTORE_KEY_MATERIAL}"),
            "gives c0d23d6a",
        ),
        ("rekor.sigstore.dev+12345678+AwEB".to_owned(), "type 0x03"),
        (
            "ct.googleapis.com/logs/us1/argon2024+7deb49d0+BTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABB25bKnLaZTFXOa2pgO70rjcVEMXKJkMBgFQHZ1kwFlGK9zIAx0FtC2oCfeZQe0E++VXuiYE9hFSzhRlOy92K8A=".to_owned(),
            "type 0x05",
        ),
    ];
    for (vkey, needle) in cases {
        assert_refused(format!("log {vkey}\nquorum none\n"), 1, needle);
    }
}
