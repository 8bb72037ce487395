//! The examples printed in c2sp.org/tlog-witness and c2sp.org/tlog-cosignature,
//! read by Stele's parsers: the request body of `add-checkpoint`, the
//! answer's signature lines, and the cosignature whose timestamp and signed
//! message the cosignature spec spells out. The examples' keys are not
//! published, so signatures are checked for shape, not validity; the
//! signing and verifying sides are tested against other implementations
//! elsewhere (`tiles/tests/`).

use stele_tiles::Hash;
use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::{CosignatureVerifier, cosigned_message};
use stele_tiles::note::Note;
use stele_verifier::witness::parse_request;

/// The `add-checkpoint` request body of c2sp.org/tlog-witness, verbatim.
const ADD_CHECKPOINT_EXAMPLE: &str = "old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
";

/// The `add-checkpoint` answer of c2sp.org/tlog-witness, verbatim.
const ADD_CHECKPOINT_ANSWER: &str = "\u{2014} witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==
\u{2014} witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==
\u{2014} witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==
";

/// The cosigned checkpoint of c2sp.org/tlog-cosignature, verbatim.
const COSIGNED_EXAMPLE: &str = "example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==
";

/// The signed message the cosignature spec shows for that cosignature.
const COSIGNED_MESSAGE_EXAMPLE: &str = "cosignature/v1
time 1679315147
example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
";

#[test]
fn the_witness_spec_request_body_parses() {
    let request = parse_request(ADD_CHECKPOINT_EXAMPLE.as_bytes()).expect("spec example");
    assert_eq!(request.old_size, 20852014);
    let proof: Vec<String> = request.proof.iter().map(Hash::to_base64).collect();
    assert_eq!(
        proof,
        [
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
            "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
            "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
            "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
        ]
    );
    let checkpoint = Checkpoint::parse(&request.note.text).expect("checkpoint");
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20852163);
    assert_eq!(
        checkpoint.root.to_base64(),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    // Two log signatures: an Ed25519 one (64 bytes) and a second key's.
    assert_eq!(request.note.signatures.len(), 2);
    assert!(
        request
            .note
            .signatures
            .iter()
            .all(|line| line.name == "example.com/behind-the-sofa")
    );
    assert_eq!(request.note.signatures[0].signature.len(), 64);
    // The body is the request byte for byte when written back.
    let mut rewritten = format!("old {}\n", request.old_size);
    for hash in &proof {
        rewritten.push_str(hash);
        rewritten.push('\n');
    }
    rewritten.push('\n');
    rewritten.push_str(&String::from_utf8(request.note.to_bytes()).expect("utf-8"));
    assert_eq!(rewritten, ADD_CHECKPOINT_EXAMPLE);
}

#[test]
fn the_witness_spec_answer_reads_as_cosignatures() {
    // A client reads the answer by appending it to the checkpoint it sent.
    let checkpoint =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let note = Note::parse(format!("{checkpoint}\n{ADD_CHECKPOINT_ANSWER}").as_bytes())
        .expect("answer lines");
    let names: Vec<&str> = note.signatures.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "witness.example/w1",
            "witness.example/w1",
            "witness.example/w2"
        ]
    );
    for line in &note.signatures {
        // timestamp (8) + Ed25519 signature (64). The example's bytes are
        // made up (their "timestamps" exceed 2^63 - 1), so only the shape
        // is the spec's.
        assert_eq!(line.signature.len(), 72, "{}", line.name);
    }
}

#[test]
fn the_cosignature_spec_example_has_the_timestamp_of_its_message() {
    let note = Note::parse(COSIGNED_EXAMPLE.as_bytes()).expect("example");
    let cosignature = note
        .signatures
        .iter()
        .find(|line| line.name == "witness.example.com/w1")
        .expect("cosignature line");
    let timestamp = CosignatureVerifier::timestamp_of(&cosignature.signature).expect("timestamp");
    assert_eq!(timestamp, 1679315147);
    assert_eq!(
        cosigned_message(note.text.as_bytes(), timestamp),
        COSIGNED_MESSAGE_EXAMPLE.as_bytes()
    );
}
