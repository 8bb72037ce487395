//! `shards.json`, the list of a deployment's shards that `stele-verify
//! --shards` reads: whatever parses keeps the list's invariants (valid and
//! unique names, unique origins, each key signing for its shard's origin,
//! each window's start before its end) and reads back the same from what
//! it writes.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use stele_verifier::shards::ShardList;

fuzz_target!(|data: &[u8]| {
    let Ok(list) = ShardList::parse("fuzz", data) else {
        return;
    };
    assert!(!list.shards.is_empty());
    let mut names = HashSet::new();
    let mut origins = HashSet::new();
    for shard in &list.shards {
        assert!(stele_rekor::shard::valid_name(&shard.name));
        assert!(names.insert(shard.name.as_str()));
        assert!(origins.insert(shard.origin.as_str()));
        assert_eq!(shard.key.origin, shard.origin);
        assert_eq!(shard.key.verifier().name(), shard.origin);
        if let (Some(from), Some(until)) = (shard.accept_from, shard.accept_until) {
            assert!(from < until);
        }
    }
    let written = list.to_json();
    let again = ShardList::parse("fuzz", written.to_string().as_bytes())
        .expect("a written list reads back");
    assert_eq!(again.to_json(), written);
    assert_eq!(again.names(), list.names());
    for (before, after) in list.shards.iter().zip(&again.shards) {
        assert_eq!(before.accept_from, after.accept_from);
        assert_eq!(before.accept_until, after.accept_until);
    }
});
