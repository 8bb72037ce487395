use std::path::Path;

use stele_tiles::checkpoint::sign_checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::integrate::RightEdge;
use stele_tiles::note::Ed25519Signer;
use stele_tiles::tile::TILE_HEIGHT;

use super::*;
use crate::fetch::{Fetcher, HttpOptions};
use crate::keys::LogKey;
use crate::shards::ShardList;

/// A small deterministic generator (xorshift64*), so that a failing
/// sequence is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What a shard serves in one round: its `final-checkpoint` (if any) and
/// its `checkpoint`, each one of a few distinct objects.
#[derive(Debug, Clone, Copy)]
struct Round {
    served_final: Option<usize>,
    checkpoint: usize,
}

fn rounds(rng: &mut Rng, count: usize, objects: u64) -> Vec<Round> {
    (0..count)
        .map(|_| Round {
            // Finals are rarer than plain rounds, as they are in life.
            served_final: (rng.below(3) == 0).then(|| rng.below(objects) as usize),
            checkpoint: rng.below(objects) as usize,
        })
        .collect()
}

/// The rule written from its statement, over the whole history rather
/// than a remembered state: from the first round that served a final
/// checkpoint on, the shard's checkpoint must be that object, and in every
/// later round so must its final checkpoint.
fn naive(history: &[Round]) -> Vec<FrozenCheck> {
    let now = history[history.len() - 1];
    let Some(first) = history.iter().position(|r| r.served_final.is_some()) else {
        return Vec::new();
    };
    let last = history[first].served_final;
    let mut wrong = Vec::new();
    if now.checkpoint != last.unwrap_or(usize::MAX) {
        wrong.push(FrozenCheck::CheckpointChanged);
    }
    if first < history.len() - 1 {
        match now.served_final {
            None => wrong.push(FrozenCheck::FinalGone),
            Some(served) if Some(served) != last => wrong.push(FrozenCheck::FinalChanged),
            Some(_) => {}
        }
    }
    wrong.sort();
    wrong
}

#[test]
fn judge_follows_the_naive_rule() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let objects: Vec<Vec<u8>> = (0..4)
        .map(|i| format!("object {i}\n").into_bytes())
        .collect();
    for _ in 0..2000 {
        let length = 1 + rng.below(12) as usize;
        let history = rounds(&mut rng, length, objects.len() as u64);
        let mut remembered: Option<Vec<u8>> = None;
        for end in 1..=history.len() {
            let now = history[end - 1];
            let (held_to, mut wrong) = judge(
                remembered.as_deref(),
                now.served_final.map(|i| &objects[i][..]),
                &objects[now.checkpoint],
            );
            wrong.sort();
            assert_eq!(wrong, naive(&history[..end]), "{history:?} round {end}");
            let first = history[..end]
                .iter()
                .find_map(|r| r.served_final)
                .map(|i| objects[i].clone());
            assert_eq!(held_to.map(<[u8]>::to_vec), first);
            remembered = held_to.map(<[u8]>::to_vec);
        }
    }
}

const ORIGIN: &str = "log.example.com/shard-a";

fn signer(origin: &str) -> Ed25519Signer {
    Ed25519Signer::from_seed(origin, &[7; 32]).expect("a key")
}

fn log_over(dir: &Path, origin: &str) -> Log {
    std::fs::create_dir_all(dir).expect("create the log folder");
    Log {
        fetcher: Fetcher::new(&dir.display().to_string(), HttpOptions::default()).expect("fetcher"),
        key: LogKey::parse(&signer(origin).verifier().to_text(), None).expect("key"),
        policy: WitnessPolicy::new(vec![], 0).expect("policy").into(),
    }
}

/// A log written into a folder as the sequencer lays it out, signed with
/// the test key of `origin`.
struct FolderLog {
    dir: PathBuf,
    origin: String,
    edge: RightEdge,
}

impl FolderLog {
    fn new(dir: &Path, origin: &str) -> FolderLog {
        std::fs::create_dir_all(dir).expect("create the log folder");
        FolderLog {
            dir: dir.to_owned(),
            origin: origin.to_owned(),
            edge: RightEdge::empty(TILE_HEIGHT),
        }
    }

    /// Appends `count` entries; returns the new checkpoint, signed, also
    /// published as `checkpoint`.
    fn grow(&mut self, count: u64) -> Vec<u8> {
        let start = self.edge.size();
        let entries: Vec<Vec<u8>> = (start..start + count)
            .map(|i| format!("{} entry {i}", self.origin).into_bytes())
            .collect();
        let integration = self.edge.integrate(&entries).expect("integrate");
        for (tile, data) in integration.objects() {
            self.write(&tile.path(), &data);
        }
        let note = sign_checkpoint(&integration.checkpoint(&self.origin), &signer(&self.origin))
            .expect("sign")
            .to_bytes();
        self.write("checkpoint", &note);
        note
    }

    fn write(&self, path: &str, data: &[u8]) {
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
        std::fs::write(file, data).expect("write");
    }
}

/// Signed checkpoints of `origin`, all different: sizes 1 to `count`,
/// over made-up roots (the frozen checks read signatures, not tiles).
fn checkpoints(origin: &str, count: usize) -> Vec<VerifiedCheckpoint> {
    let dir = tempfile::tempdir().expect("temp");
    let log = log_over(dir.path(), origin);
    (0..count)
        .map(|i| {
            let checkpoint = Checkpoint {
                origin: origin.to_owned(),
                size: i as u64 + 1,
                root: stele_tiles::Hash([i as u8; 32]),
                extensions: Vec::new(),
            };
            let bytes = sign_checkpoint(&checkpoint, &signer(origin))
                .expect("sign")
                .to_bytes();
            log.verify_checkpoint(bytes.into(), "test")
                .expect("verifies")
        })
        .collect()
}

/// The watch on a real folder, created anew each round as the command
/// does, against the naive rule; each alert's evidence names what it must,
/// and is written once per distinct offending object.
#[test]
fn frozen_watch_keeps_to_the_rule_across_rounds() {
    let objects = checkpoints(ORIGIN, 3);
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..150 {
        let temp = tempfile::tempdir().expect("temp");
        let log = log_over(&temp.path().join("log"), ORIGIN);
        let state = temp.path().join("state");
        let length = 1 + rng.below(8) as usize;
        let history = rounds(&mut rng, length, objects.len() as u64);
        for end in 1..=history.len() {
            let now = history[end - 1];
            let watch = FrozenWatch::new(&state);
            let alerts = watch
                .observe(
                    &log,
                    now.served_final.map(|i| &objects[i]),
                    &objects[now.checkpoint],
                )
                .expect("observe");
            let mut checks: Vec<FrozenCheck> = alerts.iter().map(|a| a.check).collect();
            checks.sort();
            assert_eq!(checks, naive(&history[..end]), "{history:?} round {end}");
            let first = history[..end].iter().find_map(|r| r.served_final);
            let remembered = watch.remembered(&log).expect("reads back");
            assert_eq!(
                remembered.map(|(_, bytes)| bytes),
                first.map(|i| objects[i].bytes.to_vec())
            );
            for alert in &alerts {
                let last = &objects[first.expect("an alert needs a final checkpoint")];
                assert_eq!(alert.final_size, last.checkpoint.size);
                let evidence = |name: &str| std::fs::read(alert.evidence.join(name)).ok();
                assert_eq!(
                    evidence(FINAL_CHECKPOINT),
                    Some(last.bytes.to_vec()),
                    "{alert:?}"
                );
                let finding =
                    String::from_utf8(evidence("finding.txt").expect("finding")).expect("text");
                match alert.check {
                    FrozenCheck::CheckpointChanged => {
                        let served = &objects[now.checkpoint];
                        assert_eq!(evidence("checkpoint"), Some(served.bytes.to_vec()));
                        assert_eq!(alert.size, Some(served.checkpoint.size));
                        assert!(
                            finding.contains("a frozen shard never changes"),
                            "{finding}"
                        );
                    }
                    FrozenCheck::FinalChanged => {
                        let served = &objects[now.served_final.expect("served")];
                        assert_eq!(
                            evidence("new-final-checkpoint"),
                            Some(served.bytes.to_vec())
                        );
                    }
                    FrozenCheck::FinalGone => {
                        assert_eq!(alert.size, None);
                        assert!(finding.contains("no longer serves it"), "{finding}");
                    }
                }
            }
        }
        // One evidence folder per distinct (kind, offending object).
        let mut distinct = std::collections::BTreeSet::new();
        for end in 1..=history.len() {
            let now = history[end - 1];
            for check in naive(&history[..end]) {
                let offending = match check {
                    FrozenCheck::CheckpointChanged => Some(now.checkpoint),
                    FrozenCheck::FinalChanged => now.served_final,
                    FrozenCheck::FinalGone => None,
                };
                distinct.insert((check, offending));
            }
        }
        let written = std::fs::read_dir(state.join("evidence"))
            .map(|dir| dir.count())
            .unwrap_or(0);
        assert_eq!(written, distinct.len(), "{history:?}");
    }
}

/// A remembered final checkpoint that the shard's key did not sign is
/// refused, not believed.
#[test]
fn a_doctored_state_is_refused() {
    let temp = tempfile::tempdir().expect("temp");
    let log = log_over(&temp.path().join("log"), ORIGIN);
    let other = checkpoints("log.example.com/other", 1);
    let state = temp.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(state.join(FINAL_CHECKPOINT), &other[0].bytes).expect("write");
    assert!(matches!(
        FrozenWatch::new(&state).remembered(&log),
        Err(Error::Checkpoint { .. })
    ));
}

fn list_of(logs: &[(&str, &FolderLog)]) -> ShardList {
    let shards: Vec<serde_json::Value> = logs
        .iter()
        .map(|(name, log)| {
            serde_json::json!({
                "name": name,
                "origin": log.origin,
                "url": format!("https://unused.example/{name}"),
                "vkey": signer(&log.origin).verifier().to_text(),
                "accept_from": null,
                "accept_until": null,
            })
        })
        .collect();
    ShardList::parse(
        "test",
        serde_json::json!({ "shards": shards })
            .to_string()
            .as_bytes(),
    )
    .expect("a valid list")
}

/// The shards of the list, read from the folders (the list's URLs are not
/// fetched here).
fn followed(list: ShardList, logs: &[(&str, &FolderLog)]) -> Vec<FollowedShard> {
    list.shards
        .into_iter()
        .map(|shard| {
            let dir = &logs
                .iter()
                .find(|(name, _)| *name == shard.name)
                .expect("listed")
                .1
                .dir;
            let fetcher =
                Fetcher::new(&dir.display().to_string(), HttpOptions::default()).expect("fetcher");
            FollowedShard::new(
                shard,
                fetcher,
                WitnessPolicy::new(vec![], 0).expect("policy").into(),
            )
        })
        .collect()
}

/// Rounds over two shards, then three: state per shard, a new shard
/// reported once, a frozen shard held to its final checkpoint (alerted
/// even when its grown checkpoint has no tiles behind it), a shard's
/// failure kept to itself, and a list that changes a shard's key refused
/// for that shard.
#[tokio::test]
async fn rounds_follow_each_shard_on_its_own() {
    let temp = tempfile::tempdir().expect("temp");
    let mut a = FolderLog::new(&temp.path().join("a"), "log.example.com/a");
    let mut b = FolderLog::new(&temp.path().join("b"), "log.example.com/b");
    a.grow(300);
    let frozen = b.grow(20);
    b.write(FINAL_CHECKPOINT, &frozen);
    let monitor =
        ShardsMonitor::new(&temp.path().join("state"), Vec::new(), Vec::new()).expect("monitor");
    let nothing = |_: &str, _: u64, _: u64| {};
    let two = [("a", &a), ("b", &b)];
    let round = monitor
        .round(&followed(list_of(&two), &two), &nothing)
        .await
        .expect("round");
    assert_eq!(round.alerts() + round.errors(), 0, "{round:?}");
    let sizes: Vec<(bool, Option<u64>, u64)> = round
        .shards
        .iter()
        .map(|s| (s.new, s.frozen_at, s.step.as_ref().expect("step").new_size))
        .collect();
    assert_eq!(sizes, [(true, None, 300), (true, Some(20), 20)]);

    // A grows; b's checkpoint is replaced by a bigger one signed by its
    // key, with no tiles behind it; c joins the list.
    a.grow(5);
    let mut c = FolderLog::new(&temp.path().join("c"), "log.example.com/c");
    c.grow(1);
    let grown = sign_checkpoint(
        &Checkpoint {
            origin: b.origin.clone(),
            size: 21,
            root: stele_tiles::Hash([9; 32]),
            extensions: Vec::new(),
        },
        &signer(&b.origin),
    )
    .expect("sign")
    .to_bytes();
    b.write("checkpoint", &grown);
    let three = [("a", &a), ("b", &b), ("c", &c)];
    let round = monitor
        .round(&followed(list_of(&three), &three), &nothing)
        .await
        .expect("round");
    let [sa, sb, sc] = &round.shards[..] else {
        panic!("three shards: {round:?}");
    };
    assert!(!sa.new && sa.error.is_none() && sa.alerts() == 0, "{sa:?}");
    assert_eq!(
        sa.step.as_ref().map(|s| (s.old_size, s.new_size)),
        Some((300, 305))
    );
    assert!(sc.new && sc.error.is_none(), "{sc:?}");
    assert_eq!(sb.frozen_at, Some(20));
    assert_eq!(sb.frozen_alerts.len(), 1, "{sb:?}");
    let alert = &sb.frozen_alerts[0];
    assert_eq!(alert.check, FrozenCheck::CheckpointChanged);
    assert_eq!((alert.final_size, alert.size), (20, Some(21)));
    assert_eq!(
        std::fs::read(alert.evidence.join("checkpoint")).expect("evidence"),
        grown
    );
    // Catching up to the grown checkpoint fails on its missing tiles: the
    // shard's own error, after its alert.
    assert!(sb.error.is_some() && sb.step.is_none(), "{sb:?}");
    assert_eq!(round.alerts(), 1);
    assert!(round.unlisted.is_empty());

    // The list drops a and gives c another key: a is reported unlisted,
    // c refused.
    let c_other = FolderLog::new(&temp.path().join("c2"), "log.example.com/c2");
    let changed = [("b", &b), ("c", &c_other)];
    let round = monitor
        .round(&followed(list_of(&changed), &changed), &nothing)
        .await
        .expect("round");
    assert_eq!(round.unlisted, ["a"]);
    let error = round.shards[1].error.as_deref().expect("refused");
    assert!(
        error.contains("a shard's origin and key never change"),
        "{error}"
    );
    assert_eq!(round.shards[0].frozen_alerts.len(), 1);
}
