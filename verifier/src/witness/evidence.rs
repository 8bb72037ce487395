//! The evidence folder: rejected requests kept, within a bound, under names
//! never reused.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How often a full evidence folder is measured again at most.
const REMEASURE: Duration = Duration::from_secs(5);

/// The evidence folder and its bound.
#[derive(Debug)]
pub(super) struct Evidence {
    pub(super) dir: PathBuf,
    /// Bytes the folder may hold.
    pub(super) limit: u64,
    /// Bytes it holds.
    pub(super) used: u64,
    /// The counter of the next file name.
    next: u64,
    /// Requests not kept because the folder was full, since the start.
    pub(super) dropped: u64,
    /// When `used` was last measured on disk.
    measured: Instant,
}

impl Evidence {
    /// Reads the size of the folder `dir`, removing temporary files an
    /// interrupted write left.
    pub(super) fn open(dir: PathBuf, limit: u64) -> Result<Evidence> {
        let used = measure(&dir).map_err(|err| Error::io("read", &dir, err))?;
        Ok(Evidence {
            dir,
            limit,
            used,
            next: 0,
            dropped: 0,
            measured: Instant::now(),
        })
    }

    /// Whether `len` more bytes fit. A full folder is measured again (at
    /// most once per [`REMEASURE`]), so that files moved away make room.
    pub(super) fn has_room(&mut self, len: u64) -> bool {
        if self.used.saturating_add(len) <= self.limit {
            return true;
        }
        if self.measured.elapsed() >= REMEASURE {
            self.measured = Instant::now();
            if let Ok(used) = measure(&self.dir) {
                self.used = used;
            }
        }
        self.used.saturating_add(len) <= self.limit
    }

    /// Writes `body` durably under a name no other file has, and returns
    /// that name.
    pub(super) fn keep(&mut self, body: &[u8], size: u64, now: u64) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let digest = hex::encode(Sha256::digest(body));
        let temporary = self
            .dir
            .join(format!(".incoming-{}.tmp", std::process::id()));
        let result = self.keep_from(&temporary, body, |next| {
            format!("{now}-{size}-{}-{next}.txt", &digest[..16])
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }

    fn keep_from(
        &mut self,
        temporary: &Path,
        body: &[u8],
        name: impl Fn(u64) -> String,
    ) -> std::io::Result<PathBuf> {
        let mut file = std::fs::File::create(temporary)?;
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        // All writes happen under the witness's lock, so a name found free
        // here is still free at the rename.
        let path = loop {
            let path = self.dir.join(name(self.next));
            self.next += 1;
            match std::fs::symlink_metadata(&path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => break path,
                Err(err) => return Err(err),
                Ok(_) => continue,
            }
        };
        std::fs::rename(temporary, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.used += body.len() as u64;
        Ok(path)
    }
}

/// The total length of the files in `dir` (0 if it does not exist),
/// removing the temporary files of interrupted writes; called under the
/// witness's lock, when no write is under way.
fn measure(dir: &Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut used = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if !metadata.is_file() {
            continue;
        }
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            std::fs::remove_file(entry.path())?;
        } else {
            used += metadata.len();
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evidence never replaces a file: a name that exists is skipped, a
    /// restart counts what the folder holds and clears interrupted writes.
    #[test]
    fn evidence_names_are_never_reused() {
        let temp = tempfile::tempdir().expect("temp");
        let dir = temp.path().join("rejected");
        let mut evidence = Evidence::open(dir.clone(), 1000).expect("open");
        let digest = hex::encode(Sha256::digest(b"body"));
        // A file from an earlier run with the name the counter starts at.
        std::fs::create_dir_all(&dir).expect("dir");
        let taken = dir.join(format!("7-3-{}-0.txt", &digest[..16]));
        std::fs::write(&taken, b"earlier").expect("write");
        let first = evidence.keep(b"body", 3, 7).expect("keep");
        let second = evidence.keep(b"body", 3, 7).expect("keep");
        assert_ne!(first, taken);
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&taken).expect("read"), b"earlier");
        assert_eq!(std::fs::read(&first).expect("read"), b"body");
        assert_eq!(std::fs::read(&second).expect("read"), b"body");
        assert_eq!(evidence.used, 8);
        std::fs::write(dir.join(".incoming-1.tmp"), b"partial").expect("write");
        let reopened = Evidence::open(dir.clone(), 1000).expect("open");
        assert_eq!(reopened.used, 7 + 8);
        assert!(!dir.join(".incoming-1.tmp").exists());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 3);
    }
}
