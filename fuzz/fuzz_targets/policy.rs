//! tlog-policy files: whatever parses keeps the format's rules (limits,
//! unique names other than none, groups naming only earlier names, each
//! name a member once, 1 <= k <= n, key types by role, no duplicate keys),
//! its canonical form reads back the same, and its quorum is met by every
//! witness and, unless it is none, by none of them.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use stele_tiles::policy::{MAX_ENTRIES, Member, Policy, Quorum};

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::parse(data) else {
        return;
    };
    assert!(policy.logs().len() <= MAX_ENTRIES);
    assert!(policy.witnesses().len() <= MAX_ENTRIES);
    assert!(policy.groups().len() <= MAX_ENTRIES);

    let mut keys = HashSet::new();
    let mut log_keys = HashSet::new();
    for log in policy.logs() {
        assert!(matches!(log.signature_type(), 0x01 | 0x02 | 0x06));
        assert_eq!(log.verifier().name(), log.origin());
        assert!(log_keys.insert(key_material(log.vkey())));
        assert!(keys.insert((log.origin().to_owned(), log.key_id())));
    }
    let mut names = HashSet::new();
    let mut witness_keys = HashSet::new();
    for witness in policy.witnesses() {
        assert!(matches!(witness.signature_type(), 0x04 | 0x06));
        assert!(witness_keys.insert(key_material(witness.vkey())));
        assert!(keys.insert((witness.key_name().to_owned(), witness.key_id())));
        assert!(valid_name(witness.name().as_bytes()));
        assert!(names.insert(witness.name().as_bytes().to_vec()));
    }
    let mut members = HashSet::new();
    for (index, group) in policy.groups().iter().enumerate() {
        assert!(valid_name(group.name().as_bytes()));
        assert!(names.insert(group.name().as_bytes().to_vec()));
        assert!(1 <= group.threshold() && group.threshold() <= group.members().len());
        for member in group.members() {
            match *member {
                Member::Witness(witness) => assert!(witness < policy.witnesses().len()),
                Member::Group(earlier) => assert!(earlier < index),
            }
            assert!(members.insert(*member), "a name is a member once");
        }
    }

    let everyone = vec![true; policy.witnesses().len()];
    assert!(policy.quorum_met_by_index(&everyone));
    assert_eq!(
        policy.quorum_met_by_index(&[]),
        policy.quorum() == Quorum::None
    );

    let canonical = policy.to_bytes();
    let again = Policy::parse(&canonical).expect("the canonical form parses");
    assert_eq!(again.to_bytes(), canonical);
    assert_eq!(again.quorum(), policy.quorum());
});

/// The base64 part of a vkey: what duplicate keys are compared by (with
/// the type byte, which differs for keys of different lengths only).
fn key_material(vkey: &str) -> String {
    vkey.splitn(3, '+').nth(2).expect("a vkey").to_owned()
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"none"
        && !name
            .iter()
            .any(|&byte| byte == b' ' || byte == b'\t' || byte == b'\n')
}
