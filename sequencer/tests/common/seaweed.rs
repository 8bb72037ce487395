//! The S3 tests' SeaweedFS server (started by `stele-testkit`) and stores
//! of the sequencer's S3 backend over it.

#[allow(unused_imports)] // each test binary uses a subset
pub use stele_testkit::seaweed::{ACCESS_KEY_ID, BUCKET, SeaweedFs, shared};

use stele_sequencer::storage::s3::{S3Config, S3Storage, StaticCredentials};

/// A config for `server` whose keys all start with `key_prefix`.
pub fn config(server: &SeaweedFs, key_prefix: &str) -> S3Config {
    S3Config {
        endpoint_url: Some(server.endpoint.clone()),
        force_path_style: true,
        key_prefix: key_prefix.to_string(),
        credentials: Some(StaticCredentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: server.secret_access_key.clone(),
        }),
        ..S3Config::new(BUCKET)
    }
}

/// A store over a fresh prefix, so tests sharing the server never meet.
pub async fn fresh_store(server: &SeaweedFs, test: &str) -> S3Storage {
    let prefix = format!("{test}-{:08x}/", fastrand::u32(..));
    S3Storage::connect(config(server, &prefix)).await
}
