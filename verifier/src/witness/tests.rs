use super::*;
use stele_tiles::cosignature::CosignatureSigner;

/// Arbitrary bodies never panic and never get a cosignature: every
/// answer is a 4xx.
#[test]
fn garbage_bodies_are_refused() {
    let temp = tempfile::tempdir().expect("temp");
    let signer = CosignatureSigner::from_seed("w.example/w", &[1; 32]).expect("key");
    let log =
        stele_tiles::note::Ed25519Signer::from_seed("l.example/log", &[2; 32]).expect("log key");
    let key = LogKey::parse(&log.verifier().to_text(), None).expect("vkey");
    let witness = Witness::new(signer, vec![key], temp.path()).expect("witness");
    let seeds: [&[u8]; 6] = [
        b"",
        b"old 0\n",
        b"old 0\n\n",
        b"old 0\n\nl.example/log\n1\n",
        b"old 18446744073709551616\n\n",
        b"old 0\nAAAA\n\nl.example/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
    ];
    let mut rng = 0x2545f4914f6cdd1du64;
    for seed in seeds {
        for round in 0..200 {
            let mut body = seed.to_vec();
            if round > 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let position = (rng as usize) % (body.len() + 1);
                body.insert(position, (rng >> 32) as u8);
            }
            let answer = witness.add_checkpoint(&body, 1);
            assert!((400..500).contains(&answer.status), "{body:?}: {answer:?}");
        }
    }
}
