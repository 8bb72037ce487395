//! The signer and namespace index paths and the statistics summary
//! (stele-rekor `index::parse_request_path`, `stats::Summary`): never
//! panic; a request path that is accepted names exactly the object the
//! indexer would write for it; a summary that parses keeps its invariants
//! and reads back the same from its own rendering.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_rekor::index::{KEY_PREFIX, NAMESPACE_PREFIX, parse_request_path};
use stele_rekor::release;
use stele_rekor::stats::{Summary, TOP};

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data)
        && let Some(object) = parse_request_path(path)
    {
        assert_eq!(format!("/{object}"), path);
        if let Some(id) = object.strip_prefix(KEY_PREFIX) {
            assert_eq!(release::key_index_path(id), object);
            assert!(stele_rekor::index::is_key_id(id));
        } else if let Some(name) = object.strip_prefix(NAMESPACE_PREFIX) {
            let namespace = name.replace('~', "/");
            assert!(release::check_namespace(&namespace).is_ok());
            assert_eq!(release::namespace_path(&namespace), object);
        }
    }
    if let Ok(summary) = Summary::parse(data) {
        let kinds = &summary.kinds;
        assert_eq!(
            kinds.hashedrekord + kinds.release + kinds.other,
            summary.tree_size
        );
        assert!(summary.top_signers.len() <= TOP);
        assert!(summary.top_namespaces.len() <= TOP);
        assert_eq!(Summary::parse(&summary.render()), Ok(summary));
    }
});
