//! c2sp.org/tlog-policy: the spec's example with real keys, one test for
//! each rule a policy file can break, and checkpoints verified against
//! policies with real signatures.

mod policy_support;

use policy_support::{
    ORIGIN, assert_refused, checkpoint, log, refusal, signed, unsatisfied, witness,
};
use stele_tiles::Error;
use stele_tiles::note::{EcdsaP256Signer, MlDsa44Signer, Note, NoteSigner, encode_base64};
use stele_tiles::policy::{MAX_ENTRIES, MAX_POLICY_SIZE, Member, Policy, Quorum};

fn wkey(name: &str, seed: u8) -> String {
    witness(name, seed).verifier().to_text()
}

fn lkey(origin: &str, seed: u8) -> String {
    log(origin, seed).verifier().to_text()
}

/// The example of c2sp.org/tlog-policy, keys filled in.
fn spec_example() -> String {
    format!(
        "log {}\n\
         \n\
         witness X1 {}\n\
         witness X2 {}\n\
         witness X3 {}\n\
         group X-witnesses 2 X1 X2 X3\n\
         \n\
         witness Y1 {}\n\
         witness Y2 {}\n\
         witness Y3 {}\n\
         group Y-witnesses any Y1 Y2 Y3\n\
         \n\
         group X-and-Y all X-witnesses Y-witnesses\n\
         quorum X-and-Y\n",
        lkey(ORIGIN, 1),
        wkey("x1.example", 11),
        wkey("x2.example", 12),
        wkey("x3.example", 13),
        wkey("y1.example", 21),
        wkey("y2.example", 22),
        wkey("y3.example", 23),
    )
}

#[test]
fn spec_example_parses_and_its_quorum_is_two_x_and_one_y() {
    let policy = Policy::parse(spec_example().as_bytes()).expect("the spec's example parses");
    assert_eq!(policy.logs().len(), 1);
    assert_eq!(policy.logs()[0].origin(), ORIGIN);
    assert_eq!(policy.logs()[0].vkey(), lkey(ORIGIN, 1));
    assert_eq!(policy.logs()[0].line(), 1);
    let names: Vec<String> = policy
        .witnesses()
        .iter()
        .map(|witness| witness.name().to_string())
        .collect();
    assert_eq!(names, ["X1", "X2", "X3", "Y1", "Y2", "Y3"]);
    assert_eq!(policy.witnesses()[0].key_name(), "x1.example");
    assert_eq!(policy.witnesses()[3].line(), 8);
    let groups = policy.groups();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].threshold(), 2);
    assert_eq!(
        groups[0].members(),
        [Member::Witness(0), Member::Witness(1), Member::Witness(2)]
    );
    assert_eq!(groups[1].threshold(), 1);
    assert_eq!(groups[2].threshold(), 2);
    assert_eq!(groups[2].members(), [Member::Group(0), Member::Group(1)]);
    assert_eq!(policy.quorum(), Quorum::Member(Member::Group(2)));

    for (set, met) in [
        (&[][..], false),
        (&["X1", "X2"][..], false),
        (&["X1", "Y1"][..], false),
        (&["X1", "X2", "X3"][..], false),
        (&["Y1", "Y2", "Y3"][..], false),
        (&["X1", "X2", "Y1"][..], true),
        (&["X3", "X1", "Y3"][..], true),
        (&["X1", "X2", "X3", "Y1", "Y2", "Y3"][..], true),
        // Names that are not witnesses count for nothing.
        (&["X1", "X-witnesses", "Y1", "nobody"][..], false),
    ] {
        assert_eq!(policy.quorum_met(set), met, "{set:?}");
    }

    // The same with real cosignatures.
    let logkey = log(ORIGIN, 1);
    let [x1, x2, x3, y1] = [
        witness("x1.example", 11),
        witness("x2.example", 12),
        witness("x3.example", 13),
        witness("y1.example", 21),
    ];
    let note = signed(&checkpoint(ORIGIN), &[&logkey], &[&x1, &x3, &y1]);
    let verified = policy
        .verify_checkpoint(&note.to_bytes())
        .expect("two X and one Y");
    assert_eq!(verified.logs, [0]);
    assert_eq!(verified.checkpoint, checkpoint(ORIGIN));
    let cosigned: Vec<(usize, u64)> = verified
        .witnesses
        .iter()
        .map(|cosigned| (cosigned.witness, cosigned.timestamp))
        .collect();
    assert_eq!(cosigned, [(0, 1000), (2, 1001), (3, 1002)]);

    let note = signed(&checkpoint(ORIGIN), &[&logkey], &[&x1, &x2, &x3]);
    let reason = unsatisfied(&policy, &note);
    assert!(reason.contains("\"X-and-Y\" is not met"), "{reason}");
    assert!(reason.contains("X1, X2, X3"), "{reason}");
}

#[test]
fn whitespace_comments_and_blank_lines() {
    let text = format!(
        "# a comment\n\
         \t  # an indented comment, with bytes \u{e9}\u{2603} and \t tabs\n\
         \x20\t \n\
         \n\
         \t log \t {}\t\thttps://log.example/  \n\
         witness\tW {}\n\
         quorum W\t\n",
        lkey(ORIGIN, 1),
        wkey("w.example", 2)
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.logs()[0].line(), 5);
    assert_eq!(
        policy.logs()[0].url().and_then(|url| url.to_str()),
        Some("https://log.example/")
    );
    assert_eq!(policy.witnesses()[0].url(), None);
    assert_eq!(policy.quorum(), Quorum::Member(Member::Witness(0)));
}

#[test]
fn names_and_urls_are_opaque_bytes() {
    // "K" and the Kelvin sign are different names; bytes that are not
    // UTF-8 are names too, and so are the keywords other than none.
    let mut text = Vec::new();
    text.extend_from_slice(format!("witness K {}\n", wkey("a", 1)).as_bytes());
    text.extend_from_slice(format!("witness \u{212a} {}\n", wkey("b", 2)).as_bytes());
    text.extend_from_slice(b"witness \xff\xfe ");
    text.extend_from_slice(wkey("c", 3).as_bytes());
    text.extend_from_slice(b" https://w\xe9.example/\n");
    text.extend_from_slice(format!("witness any {}\n", wkey("d", 4)).as_bytes());
    text.extend_from_slice(b"group all all K \xe2\x84\xaa \xff\xfe any\n");
    text.extend_from_slice(b"group #g any all\n");
    text.extend_from_slice(b"quorum #g\n");
    let policy = Policy::parse(&text).expect("parses");
    assert_eq!(policy.witnesses().len(), 4);
    assert_eq!(policy.witness_index(b"K"), Some(0));
    assert_eq!(policy.witness_index("\u{212a}".as_bytes()), Some(1));
    assert_eq!(policy.witness_index(b"\xff\xfe"), Some(2));
    assert_eq!(policy.witness_index(b"k"), None);
    let third = &policy.witnesses()[2];
    assert_eq!(third.name().to_str(), None);
    assert_eq!(third.name().to_string(), "\\xff\\xfe");
    assert_eq!(
        third.url().map(|url| url.as_bytes()),
        Some(&b"https://w\xe9.example/"[..])
    );
    assert_eq!(policy.groups()[0].threshold(), 4);
    assert_eq!(policy.groups()[1].name().as_bytes(), b"#g");
    assert!(!policy.quorum_met([&b"K"[..], b"\xff\xfe", "\u{212a}".as_bytes()]));
    assert!(policy.quorum_met([&b"K"[..], b"\xff\xfe", "\u{212a}".as_bytes(), b"any"]));
    let with_url: Vec<_> = policy
        .witnesses_with_url()
        .map(|(witness, _)| witness.name().as_bytes().to_vec())
        .collect();
    assert_eq!(with_url, [b"\xff\xfe".to_vec()]);
}

#[test]
fn canonical_form_reads_back_the_same() {
    let text = format!(
        "{}log {} https://other.example\nwitness Z {} https://z.example/\ngroup Z-and-all all X-and-Y Z\n",
        spec_example(),
        lkey("other.example/log", 2),
        wkey("z.example", 30)
    );
    let text = text.replace("quorum X-and-Y\n", "") + "quorum Z-and-all\n";
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let canonical = policy.to_bytes();
    let again = Policy::parse(&canonical).expect("the canonical form parses");
    assert_eq!(again.to_bytes(), canonical);
    let shape = |policy: &Policy| -> Vec<(String, usize, Vec<Member>)> {
        policy
            .groups()
            .iter()
            .map(|group| {
                (
                    group.name().to_string(),
                    group.threshold(),
                    group.members().to_vec(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&again), shape(&policy));
    assert_eq!(again.quorum(), policy.quorum());
    let text = String::from_utf8(canonical).expect("UTF-8");
    assert!(text.contains("\ngroup Y-witnesses 1 Y1 Y2 Y3\n"), "{text}");
    assert!(text.ends_with("\nquorum Z-and-all\n"), "{text}");
}

// ---- the character set and the lines ----------------------------------------

#[test]
fn refuses_control_characters() {
    assert_refused(
        "quorum none\n#\x01\n",
        2,
        "control character 0x01 at column 2",
    );
    assert_refused("# \x0c\nquorum none\n", 1, "0x0c");
    assert_refused("# \x7f\nquorum none\n", 1, "DEL (0x7f)");
    assert_refused("quorum none\r\n", 1, "carriage return");
    assert_refused("quorum\x00none\n", 1, "0x00 at column 7");
    // Bytes 0x80-0xFF are allowed anywhere, comments included.
    Policy::parse(b"# \x80\xff\xc3\nquorum none\n").expect("high bytes are allowed");
}

#[test]
fn refuses_a_last_line_without_newline() {
    assert_refused("quorum none", 1, "does not end in a newline");
    assert_refused("quorum none\n# comment", 2, "does not end in a newline");
    // A control character on that line is named first.
    assert_refused("quorum none\n#\x02", 2, "0x02");
}

#[test]
fn refuses_unknown_keywords() {
    assert_refused(
        "quorum none\nquibble w1\n",
        2,
        "unknown keyword \"quibble\"",
    );
    assert_refused("Quorum none\n", 1, "unknown keyword");
}

#[test]
fn refuses_end_of_line_comments() {
    let text = format!(
        "log {} https://log.example # main log\nquorum none\n",
        lkey(ORIGIN, 1)
    );
    assert_refused(
        text,
        1,
        "a # after the first field does not start a comment",
    );
}

#[test]
fn refuses_lines_with_the_wrong_number_of_fields() {
    let log = lkey(ORIGIN, 1);
    let w = wkey("w", 2);
    assert_refused(
        "log\nquorum none\n",
        1,
        "expected `log <vkey> [<url>]`, found 0",
    );
    assert_refused(format!("log {log} a b\nquorum none\n"), 1, "found 3");
    assert_refused(
        "witness W\nquorum none\n",
        1,
        "expected `witness <name> <vkey> [<url>]`",
    );
    assert_refused(format!("witness W {w} u v\nquorum none\n"), 1, "found 4");
    assert_refused(
        format!("witness W {w}\ngroup G\nquorum W\n"),
        2,
        "expected `group",
    );
    assert_refused(
        format!("witness W {w}\ngroup G any\nquorum W\n"),
        2,
        "lists no members",
    );
    assert_refused("quorum\n", 1, "expected `quorum <name>`, found 0");
    assert_refused(format!("witness W {w}\nquorum W W\n"), 2, "found 2");
}

// ---- keys ---------------------------------------------------------------------

#[test]
fn refuses_invalid_vkeys() {
    assert_refused("log garbage\nquorum none\n", 1, "not <name>+<8 hex key ID>");
    let good = lkey(ORIGIN, 1);
    let (name, rest) = good.split_once('+').expect("vkey");
    let (_, key) = rest.split_once('+').expect("vkey");
    assert_refused(
        format!("log {name}+00000000+{key}\nquorum none\n"),
        1,
        "key ID",
    );
    assert_refused(
        format!("log {name}+zz+{key}\nquorum none\n"),
        1,
        "eight hex digits",
    );
    assert_refused(
        format!("log {name}+{}+@@@@\nquorum none\n", &rest[..8]),
        1,
        "base64",
    );
    assert_refused(
        b"log ex\xffample+00000000+AQ==\nquorum none\n",
        1,
        "not UTF-8",
    );
    // Ed25519 keys must be 32 bytes.
    let short = format!("{name}+00000000+{}", encode_base64(&[1, 2, 3]));
    let (_, reason) = refusal(format!("log {short}\nquorum none\n"));
    assert!(reason.starts_with("log: "), "{reason}");
}

#[test]
fn refuses_witness_key_types_for_logs_and_log_key_types_for_witnesses() {
    let cosigner = wkey(ORIGIN, 1);
    assert_refused(format!("log {cosigner}\nquorum none\n"), 1, "type 0x04");
    let plain = lkey("w.example", 1);
    assert_refused(format!("witness W {plain}\nquorum W\n"), 1, "type 0x01");
    let ecdsa =
        ecdsa_vkey(&EcdsaP256Signer::from_pem("w.example", REKOR_TILES_EC_KEY).expect("key"));
    assert_refused(format!("witness W {ecdsa}\nquorum W\n"), 1, "type 0x02");
    for signature_type in [0x03u8, 0x05, 0x63, 0xff] {
        let mut material = vec![signature_type];
        material.extend_from_slice(&[9; 32]);
        let id = stele_tiles::note::key_id("x.example", signature_type, &[9; 32]);
        let vkey = format!("x.example+{id:08x}+{}", encode_base64(&material));
        let (_, reason) = refusal(format!("log {vkey}\nquorum none\n"));
        assert!(
            reason.contains(&format!("{signature_type:#04x}")),
            "{reason}"
        );
        let (_, reason) = refusal(format!("witness W {vkey}\nquorum W\n"));
        assert!(reason.contains("a witness key has type 0x04"), "{reason}");
    }
}

#[test]
fn refuses_two_logs_with_one_public_key() {
    let text = format!(
        "log {}\nlog {} https://mirror.example\nquorum none\n",
        lkey(ORIGIN, 1),
        lkey("renamed.example/log", 1)
    );
    assert_refused(text, 2, "already listed on line 1");
}

#[test]
fn refuses_two_witnesses_with_one_public_key() {
    let text = format!(
        "witness A {}\nwitness B {}\nquorum A\n",
        wkey("w.example", 1),
        wkey("impostor.example", 1)
    );
    assert_refused(text, 2, "has the public key of witness \"A\" (line 1)");
}

#[test]
fn a_log_and_a_witness_may_share_a_public_key() {
    // The spec counts duplicates among logs and among witnesses; Sigsum's
    // tests call one key for a log and a witness undesirable, not an error.
    let text = format!(
        "log {}\nwitness W {}\nquorum W\n",
        lkey(ORIGIN, 1),
        wkey(ORIGIN, 1)
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_ne!(policy.logs()[0].key_id(), policy.witnesses()[0].key_id());
}

// ---- names, groups, quorum -------------------------------------------------

#[test]
fn refuses_defining_none() {
    assert_refused(
        format!("witness none {}\nquorum none\n", wkey("w", 1)),
        1,
        "none is predefined",
    );
    let text = format!(
        "witness W {}\ngroup none any W\nquorum none\n",
        wkey("w", 1)
    );
    assert_refused(text, 2, "none is predefined");
}

#[test]
fn refuses_none_as_a_group_member() {
    let text = format!("witness W {}\ngroup G all W none\nquorum G\n", wkey("w", 1));
    assert_refused(text, 2, "none is predefined for the quorum only");
}

#[test]
fn refuses_a_name_defined_twice() {
    let text = format!(
        "witness W {}\nwitness W {}\nquorum W\n",
        wkey("a", 1),
        wkey("b", 2)
    );
    assert_refused(text, 2, "\"W\" is already defined on line 1");
    let text = format!("witness W {}\ngroup W any W\nquorum W\n", wkey("a", 1));
    assert_refused(text, 2, "\"W\" is already defined on line 1");
    let text = format!(
        "witness W {}\ngroup G any W\ngroup G all W\nquorum G\n",
        wkey("a", 1)
    );
    assert_refused(text, 3, "already defined on line 2");
}

#[test]
fn refuses_names_not_defined_on_an_earlier_line() {
    let w = wkey("a", 1);
    assert_refused(
        format!("witness W {w}\ngroup G any X\nquorum G\n"),
        2,
        "\"X\" is not a witness or group defined on an earlier line",
    );
    assert_refused(
        format!("group G any W\nwitness W {w}\nquorum G\n"),
        1,
        "\"W\" is not",
    );
    assert_refused(
        format!("witness W {w}\ngroup G any W G\nquorum G\n"),
        2,
        "\"G\" is not",
    );
    assert_refused(
        format!("quorum W\nwitness W {w}\n"),
        1,
        "the quorum: \"W\" is not",
    );
    assert_refused("quorum unknown\n", 1, "\"unknown\" is not");
}

#[test]
fn refuses_a_member_listed_twice_in_a_group() {
    let text = format!(
        "witness A {}\nwitness B {}\ngroup G all A B A\nquorum G\n",
        wkey("a", 1),
        wkey("b", 2)
    );
    assert_refused(text, 3, "group \"G\" lists \"A\" twice");
}

#[test]
fn refuses_a_member_of_two_groups() {
    // "Each defined name can be listed as a group member at most once", as
    // Sigsum and transparency-dev read it: across the whole policy.
    let text = format!(
        "witness A {}\nwitness B {}\nwitness C {}\ngroup G1 all A B\ngroup G2 all C B\nquorum G2\n",
        wkey("a", 1),
        wkey("b", 2),
        wkey("c", 3)
    );
    assert_refused(
        text,
        5,
        "\"B\" is already a member of group \"G1\" (line 4)",
    );
    let text = format!(
        "witness A {}\nwitness B {}\ngroup G1 any A B\ngroup G2 any G1\ngroup G3 any G1 A\nquorum G3\n",
        wkey("a", 1),
        wkey("b", 2),
    );
    assert_refused(text, 5, "\"G1\" is already a member of group \"G2\"");
}

#[test]
fn thresholds() {
    let base = format!(
        "witness A {}\nwitness B {}\nwitness C {}\n",
        wkey("a", 1),
        wkey("b", 2),
        wkey("c", 3)
    );
    let parse = |k: &str| Policy::parse(format!("{base}group G {k} A B C\nquorum G\n").as_bytes());
    for (k, threshold) in [
        ("any", 1),
        ("all", 3),
        ("1", 1),
        ("2", 2),
        ("3", 3),
        ("02", 2),
    ] {
        let policy = parse(k).expect("valid threshold");
        assert_eq!(policy.groups()[0].threshold(), threshold, "{k}");
    }
    for (k, needle) in [
        ("0", "threshold \"0\" is not between 1 and its 3 members"),
        ("4", "threshold \"4\" is not between 1 and its 3 members"),
        (
            "99999999999999999999999999",
            "is not between 1 and its 3 members",
        ),
        ("-1", "is not all, any or a decimal number"),
        ("+1", "is not all, any or a decimal number"),
        ("0x2", "is not all, any or a decimal number"),
        ("ALL", "is not all, any or a decimal number"),
        ("two", "is not all, any or a decimal number"),
    ] {
        match parse(k) {
            Err(Error::PolicyLine { line: 4, reason }) => {
                assert!(reason.contains(needle), "{k}: {reason}");
            }
            other => panic!("{k}: {other:?}"),
        }
    }
}

#[test]
fn refuses_no_quorum_and_two_quorums() {
    assert_refused("", 0, "no quorum line");
    assert_refused("# only a comment\n", 0, "no quorum line");
    let text = format!("witness W {}\ngroup G all W\n", wkey("a", 1));
    assert_refused(text, 0, "no quorum line");
    let text = format!("witness W {}\nquorum W\n\nquorum none\n", wkey("a", 1));
    assert_refused(text, 4, "already defined on line 2");
}

#[test]
fn quorum_none_needs_no_witness() {
    let policy = Policy::parse(b"quorum none\n").expect("parses");
    assert_eq!(policy.quorum(), Quorum::None);
    assert!(policy.quorum_met(Vec::<&str>::new()));
}

#[test]
fn definitions_may_follow_the_quorum() {
    let text = format!(
        "witness A {}\nquorum A\nlog {}\nwitness B {}\ngroup unused any B\n",
        wkey("a", 1),
        lkey(ORIGIN, 2),
        wkey("b", 3)
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.logs().len(), 1);
    assert!(policy.quorum_met(["A"]));
    assert!(!policy.quorum_met(["B"]));
}

// ---- limits -------------------------------------------------------------------

#[test]
fn at_most_256_logs_witnesses_and_groups() {
    let mut logs = String::new();
    for index in 0..=MAX_ENTRIES {
        let seed = [index as u8, (index >> 8) as u8].repeat(16);
        let signer = stele_tiles::note::Ed25519Signer::from_seed(
            &format!("log{index}.example"),
            seed.as_slice().try_into().expect("32 bytes"),
        )
        .expect("key");
        logs.push_str(&format!("log {}\n", signer.verifier().to_text()));
    }
    let lines: Vec<&str> = logs.lines().collect();
    let fits = lines[..MAX_ENTRIES].join("\n") + "\nquorum none\n";
    assert_eq!(
        Policy::parse(fits.as_bytes())
            .expect("256 logs")
            .logs()
            .len(),
        256
    );
    assert_refused(logs + "quorum none\n", 257, "more than 256 logs");

    let mut witnesses = String::new();
    let mut groups = String::new();
    for index in 0..=MAX_ENTRIES {
        let seed: [u8; 32] = [index as u8, (index >> 8) as u8, 7].repeat(11)[..32]
            .try_into()
            .expect("32 bytes");
        let key =
            stele_tiles::cosignature::CosignatureSigner::from_seed(&format!("w{index}"), &seed)
                .expect("key");
        witnesses.push_str(&format!("witness w{index} {}\n", key.verifier().to_text()));
        groups.push_str(&format!("group g{index} any w{index}\n"));
    }
    let lines: Vec<&str> = witnesses.lines().collect();
    let fits = lines[..MAX_ENTRIES].join("\n") + "\nquorum w0\n";
    assert_eq!(
        Policy::parse(fits.as_bytes())
            .expect("256 witnesses")
            .witnesses()
            .len(),
        256
    );
    assert_refused(
        witnesses.clone() + "quorum w0\n",
        257,
        "more than 256 witnesses",
    );

    // 256 witnesses and 257 groups of one each.
    let group_lines: Vec<&str> = groups.lines().collect();
    let fits = format!(
        "{}\n{}\nquorum g255\n",
        lines[..MAX_ENTRIES].join("\n"),
        group_lines[..MAX_ENTRIES].join("\n")
    );
    let policy = Policy::parse(fits.as_bytes()).expect("256 groups");
    assert_eq!(policy.groups().len(), 256);
    assert!(policy.quorum_met(["w255"]));
    let over = format!(
        "{}\n{}\ngroup extra any g0\nquorum none\n",
        lines[..MAX_ENTRIES].join("\n"),
        group_lines[..MAX_ENTRIES].join("\n")
    );
    assert_refused(over, 2 * MAX_ENTRIES + 1, "more than 256 groups");
}

#[test]
fn refuses_a_file_over_the_size_limit() {
    let mut text = vec![b'#'; MAX_POLICY_SIZE];
    text.extend_from_slice(b"\nquorum none\n");
    assert_refused(&text, 0, "more than the limit");
}

// ---- verifying checkpoints ------------------------------------------------------

fn two_of_three() -> (String, Vec<stele_tiles::cosignature::CosignatureSigner>) {
    let witnesses = vec![
        witness("a.example", 11),
        witness("b.example", 12),
        witness("c.example", 13),
    ];
    let text = format!(
        "log {}\nlog {}\nwitness A {}\nwitness B {}\nwitness C {} https://c.example/\ngroup G 2 A B C\nquorum G\n",
        lkey("other.example/log", 2),
        lkey(ORIGIN, 1),
        witnesses[0].verifier().to_text(),
        witnesses[1].verifier().to_text(),
        witnesses[2].verifier().to_text(),
    );
    (text, witnesses)
}

#[test]
fn any_listed_log_whose_key_name_is_the_origin_signs() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[0], &w[2]]);
    let verified = policy.verify_checkpoint(&note.to_bytes()).expect("valid");
    assert_eq!(verified.logs, [1]);
    let other = signed(
        &checkpoint("other.example/log"),
        &[&log("other.example/log", 2)],
        &[&w[1], &w[2]],
    );
    assert_eq!(
        policy
            .verify_checkpoint(&other.to_bytes())
            .expect("valid")
            .logs,
        [0]
    );
}

#[test]
fn a_log_key_named_otherwise_than_the_origin_does_not_count() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    // other.example/log's key signs a checkpoint of example.com/log.
    let note = signed(
        &checkpoint(ORIGIN),
        &[&log("other.example/log", 2)],
        &[&w[0], &w[1]],
    );
    let reason = unsatisfied(&policy, &note);
    assert!(
        reason.contains("no log of the policy with origin \"example.com/log\""),
        "{reason}"
    );
}

#[test]
fn a_checkpoint_without_log_signature_is_refused() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let note = signed(
        &checkpoint(ORIGIN),
        &[&log(ORIGIN, 99)],
        &[&w[0], &w[1], &w[2]],
    );
    let reason = unsatisfied(&policy, &note);
    assert!(reason.contains("no log of the policy"), "{reason}");
}

#[test]
fn too_few_cosignatures_are_refused() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let stranger = witness("stranger.example", 50);
    let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[1], &stranger]);
    let reason = unsatisfied(&policy, &note);
    assert!(
        reason.contains("\"G\" is not met: valid cosignatures from 1 witnesses of the policy (B)"),
        "{reason}"
    );
}

/// One witness's cosignature twice (two lines of its key, two
/// timestamps, as a note read from text may hold them) counts once, in the
/// policy's quorum as in a K-of-N threshold.
#[test]
fn one_witness_cosigning_twice_counts_once() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let mut note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[1]]);
    let again = w[1].cosign(&note.text, 2000).expect("cosigns");
    let mut bytes = note.to_bytes();
    bytes.extend_from_slice(format!("{again}\n").as_bytes());
    let twice = Note::parse(&bytes).expect("a note with both lines");
    assert_eq!(twice.signatures.len(), 3);
    let reason = unsatisfied(&policy, &twice);
    assert!(
        reason.contains("valid cosignatures from 1 witnesses of the policy (B)"),
        "{reason}"
    );
    let threshold = stele_tiles::cosignature::WitnessPolicy::new(
        w.iter().map(|witness| witness.verifier()).collect(),
        2,
    )
    .expect("2 of 3");
    assert!(matches!(
        threshold.check(&twice),
        Err(Error::WitnessThreshold {
            required: 2,
            verified: 1,
            ..
        })
    ));
    // A second witness meets both.
    note.add_signature(w[2].cosign(&note.text, 3000).expect("cosigns"))
        .expect("adds");
    policy.verify_checkpoint(&note.to_bytes()).expect("2 of 3");
    assert_eq!(threshold.check(&note).expect("2 of 3").len(), 2);
}

#[test]
fn a_bad_signature_by_a_key_of_the_policy_rejects_the_checkpoint() {
    let (text, w) = two_of_three();
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    // All three witnesses cosign, but C's cosignature is damaged: the quorum
    // would be met without it, and the checkpoint is refused all the same.
    let mut note = signed(
        &checkpoint(ORIGIN),
        &[&log(ORIGIN, 1)],
        &[&w[0], &w[1], &w[2]],
    );
    let last = note.signatures.last_mut().expect("signature");
    last.signature[20] ^= 1;
    let reason = unsatisfied(&policy, &note);
    assert!(reason.contains("c.example+"), "{reason}");
    assert!(
        reason.contains("witness \"C\" (line 5), does not verify"),
        "{reason}"
    );

    let mut note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[0], &w[1]]);
    note.signatures[0].signature[3] ^= 1;
    let reason = unsatisfied(&policy, &note);
    assert!(
        reason.contains("the log (line 2), does not verify"),
        "{reason}"
    );

    // A signature by an unknown key is ignored, valid or not.
    let mut note = signed(
        &checkpoint(ORIGIN),
        &[&log(ORIGIN, 1)],
        &[&w[0], &w[1], &witness("x", 9)],
    );
    note.signatures.last_mut().expect("signature").signature[20] ^= 1;
    policy
        .verify_checkpoint(&note.to_bytes())
        .expect("unknown keys are ignored");
}

#[test]
fn a_policy_without_logs_checks_cosignatures_only() {
    let w = [witness("a.example", 11), witness("b.example", 12)];
    let text = format!(
        "witness A {}\nwitness B {}\ngroup G all A B\nquorum G\n",
        w[0].verifier().to_text(),
        w[1].verifier().to_text()
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[0], &w[1]]);
    let reason = unsatisfied(&policy, &note);
    assert!(reason.contains("the policy lists no logs"), "{reason}");
    let cosigned = policy.verify_cosignatures(&note).expect("both cosigned");
    assert_eq!(cosigned.len(), 2);
    let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&w[1]]);
    assert!(matches!(
        policy.verify_cosignatures(&note),
        Err(Error::PolicyUnsatisfied { .. })
    ));
}

#[test]
fn quorum_none_needs_only_the_log() {
    let text = format!("log {}\nquorum none\n", lkey(ORIGIN, 1));
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[]);
    let verified = policy.verify_checkpoint(&note.to_bytes()).expect("valid");
    assert!(verified.witnesses.is_empty());
}

#[test]
fn malformed_notes_and_checkpoints_are_refused() {
    let text = format!("log {}\nquorum none\n", lkey(ORIGIN, 1));
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert!(matches!(
        policy.verify_checkpoint(b"not a note"),
        Err(Error::NoteSeparator)
    ));
    let signer = log(ORIGIN, 1);
    let note = stele_tiles::note::Note::sign(&format!("{ORIGIN}\nnot a size\n"), &[&signer])
        .expect("signs");
    assert!(policy.verify_checkpoint(&note.to_bytes()).is_err());
}

// ---- ECDSA log keys (type 0x02) --------------------------------------------------

/// sigstore/rekor-tiles pkg/note/note_test.go, `ec-secp256r1-priv-key.pem`.
const REKOR_TILES_EC_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOMZNOBbRU3CHBjZoc13R8HYNUoqsvce5UlOmRzlOZqUoAoGCCqGSM49
AwEHoUQDQgAEeLw7gX40qy1z7JUhGMAaaDITbV7p2D+C5G9xPEsy/PVAo9H0mgS4
NYzpGirkXxBht+IvvL19WR1X9ANXha5ldQ==
-----END EC PRIVATE KEY-----
";

fn ecdsa_vkey(signer: &EcdsaP256Signer) -> String {
    let mut material = vec![0x02];
    material.extend_from_slice(&signer.verifier().to_spki_der());
    format!(
        "{}+{:08x}+{}",
        signer.name(),
        signer.key_id(),
        encode_base64(&material)
    )
}

#[test]
fn ecdsa_p256_log_keys() {
    let signer = EcdsaP256Signer::from_pem(ORIGIN, REKOR_TILES_EC_KEY).expect("key");
    // rekor-tiles' TestKeyHash: key ID 2408765216 for this key.
    assert_eq!(signer.key_id(), 2408765216);
    let w = witness("a.example", 11);
    let text = format!(
        "log {}\nwitness A {}\nquorum A\n",
        ecdsa_vkey(&signer),
        w.verifier().to_text()
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.logs()[0].signature_type(), 0x02);
    assert_eq!(policy.logs()[0].key_id(), 2408765216);
    let note = signed(&checkpoint(ORIGIN), &[&signer], &[&w]);
    policy.verify_checkpoint(&note.to_bytes()).expect("valid");

    // The same key twice, under another name: a duplicate (the key ID of
    // ECDSA keys ignores the name).
    let renamed = EcdsaP256Signer::from_pem("other.example", REKOR_TILES_EC_KEY).expect("key");
    let text = format!(
        "log {}\nlog {}\nquorum none\n",
        ecdsa_vkey(&signer),
        ecdsa_vkey(&renamed)
    );
    assert_refused(text, 2, "already listed on line 1");

    // The key ID must be SHA-256 of the DER.
    let vkey = ecdsa_vkey(&signer).replace("8f92d720", "8f92d721");
    assert_refused(
        format!("log {vkey}\nquorum none\n"),
        1,
        "SHA-256 of its ECDSA key gives 8f92d720",
    );
    // The DER must be a P-256 key in the uncompressed form.
    let der = signer.verifier().to_spki_der();
    let compressed = {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::DecodePublicKey as _;
        let key = p256::PublicKey::from_public_key_der(&der).expect("key");
        // SPKI with the same algorithm identifier and the 33-byte point.
        let mut spki = vec![0x30, 0x39];
        spki.extend_from_slice(&der[2..23]);
        spki.extend_from_slice(&[0x03, 0x22, 0x00]);
        spki.extend_from_slice(key.to_encoded_point(true).as_bytes());
        spki
    };
    let mut material = vec![0x02];
    material.extend_from_slice(&compressed);
    let id = u32::from_be_bytes(sha256(&compressed)[..4].try_into().expect("4 bytes"));
    let vkey = format!("{ORIGIN}+{id:08x}+{}", encode_base64(&material));
    let (_, reason) = refusal(format!("log {vkey}\nquorum none\n"));
    assert!(reason.contains("ECDSA key"), "{reason}");
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[test]
fn debug_output_names_the_parts() {
    let policy = Policy::parse(spec_example().as_bytes()).expect("parses");
    let printed = format!("{policy:?}");
    assert!(printed.contains("\"X-and-Y\""), "{printed}");
    assert!(printed.contains(&lkey(ORIGIN, 1)), "{printed}");
    let _: &dyn NoteSigner = &log(ORIGIN, 1);
}

// ---- ML-DSA-44 keys (type 0x06) -------------------------------------------------

fn mldsa(name: &str, seed: u8) -> MlDsa44Signer {
    MlDsa44Signer::from_seed(name, &[seed; 32]).expect("ML-DSA-44 key")
}

#[test]
fn mldsa44_witnesses_cosign() {
    let w = [mldsa("pq1.example", 41), mldsa("pq2.example", 42)];
    let classic = witness("ed.example", 43);
    let text = format!(
        "log {}\nwitness P1 {}\nwitness P2 {}\nwitness E {}\ngroup G 2 P1 P2 E\nquorum G\n",
        lkey(ORIGIN, 1),
        w[0].verifier().to_text(),
        w[1].verifier().to_text(),
        classic.verifier().to_text()
    );
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.witnesses()[0].signature_type(), 0x06);
    let mut note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &[&classic]);
    note.add_signature(w[1].cosign(&note.text, 1700).expect("cosigns"))
        .expect("adds");
    let verified = policy.verify_checkpoint(&note.to_bytes()).expect("valid");
    let cosigned: Vec<(usize, u64)> = verified
        .witnesses
        .iter()
        .map(|cosigned| (cosigned.witness, cosigned.timestamp))
        .collect();
    assert_eq!(cosigned, [(1, 1700), (2, 1000)]);

    // A damaged ML-DSA-44 cosignature rejects the checkpoint.
    note.signatures.last_mut().expect("line").signature[100] ^= 1;
    let reason = unsatisfied(&policy, &note);
    assert!(
        reason.contains("witness \"P2\" (line 3), does not verify"),
        "{reason}"
    );
}

#[test]
fn mldsa44_log_keys_and_extension_lines() {
    let pq = mldsa(ORIGIN, 51);
    let ed = log(ORIGIN, 1);
    let text = format!("log {}\nquorum none\n", pq.verifier().to_text());
    let policy = Policy::parse(text.as_bytes()).expect("parses");
    assert_eq!(policy.logs()[0].signature_type(), 0x06);
    // The log's signature: the subtree/v1 signature of [0, size) by the key
    // named as the origin.
    let plain = checkpoint(ORIGIN);
    let mut note = stele_tiles::note::Note {
        text: plain.to_text(),
        signatures: Vec::new(),
    };
    note.add_signature(pq.cosign(&note.text, 1234).expect("signs"))
        .expect("adds");
    let verified = policy.verify_checkpoint(&note.to_bytes()).expect("valid");
    assert_eq!(verified.logs, [0]);

    // Extension lines are not covered by the ML-DSA-44 signature.
    let mut extended = checkpoint(ORIGIN);
    extended.extensions = vec!["an extension".to_owned()];
    let mut note = stele_tiles::note::Note {
        text: extended.to_text(),
        signatures: Vec::new(),
    };
    note.add_signature(pq.cosign(&note.text, 1234).expect("signs"))
        .expect("adds");
    let reason = unsatisfied(&policy, &note);
    assert!(reason.contains("extension lines"), "{reason}");

    // With the log's Ed25519 key listed beside it and signing too, they are.
    let text = format!(
        "log {}\nlog {}\nquorum none\n",
        pq.verifier().to_text(),
        ed.verifier().to_text()
    );
    let both = Policy::parse(text.as_bytes()).expect("parses");
    note.sign_with(&ed).expect("signs");
    let verified = both.verify_checkpoint(&note.to_bytes()).expect("valid");
    assert_eq!(verified.logs, [0, 1]);
}

#[test]
fn refuses_one_key_name_and_id_for_a_log_and_a_witness() {
    // One ML-DSA-44 key, one name, listed as the log and as a witness: its
    // signature lines would count for both.
    let pq = mldsa(ORIGIN, 51);
    let text = format!(
        "log {}\nwitness self {}\nquorum self\n",
        pq.verifier().to_text(),
        pq.verifier().to_text()
    );
    assert_refused(text, 2, "has the key name and key ID of the key on line 1");
    // Under another name it is another key ID: allowed, as for Ed25519.
    let text = format!(
        "log {}\nwitness self {}\nquorum self\n",
        pq.verifier().to_text(),
        mldsa("witness.example", 51).verifier().to_text()
    );
    Policy::parse(text.as_bytes()).expect("parses");
}

#[test]
fn refuses_two_mldsa44_witnesses_with_one_public_key() {
    let text = format!(
        "witness A {}\nwitness B {}\nquorum A\n",
        mldsa("a.example", 61).verifier().to_text(),
        mldsa("b.example", 61).verifier().to_text()
    );
    assert_refused(text, 2, "has the public key of witness \"A\"");
}

#[test]
fn the_fuzz_seeds_are_valid_policies() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/policy");
    let mut count = 0;
    for entry in std::fs::read_dir(&folder).expect("fuzz/seeds/policy") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        Policy::parse(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        count += 1;
    }
    assert!(count >= 3);
}
