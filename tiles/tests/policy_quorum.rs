//! The quorum of a policy against a naive model: random group trees are
//! written as policy text, parsed, and asked about random sets of
//! witnesses; the model expands each name into every set of witnesses that
//! meets it (all k-combinations of a group's members, one way to meet each)
//! and checks whether one of those sets was cosigned. The policy evaluates
//! groups in one pass over their definitions, so the two share nothing but
//! the generated tree.

mod policy_support;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use policy_support::{ORIGIN, checkpoint, log, signed};
use proptest::prelude::*;
use stele_tiles::cosignature::CosignatureSigner;
use stele_tiles::policy::Policy;

const MAX_WITNESSES: usize = 7;

fn witnesses() -> &'static [CosignatureSigner] {
    static KEYS: OnceLock<Vec<CosignatureSigner>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..MAX_WITNESSES)
            .map(|index| policy_support::witness(&format!("w{index}.example"), 100 + index as u8))
            .collect()
    })
}

/// A name of the generated policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Witness(usize),
    Group(usize),
}

#[derive(Clone, Debug)]
struct Group {
    threshold: usize,
    /// How the threshold is written: `any`, `all` or the number.
    spelling: String,
    members: Vec<Name>,
}

#[derive(Clone, Debug)]
struct Tree {
    witnesses: usize,
    groups: Vec<Group>,
    quorum: Option<Name>,
}

/// Builds a tree from random numbers: each group takes a non-empty subset
/// of the names no group has taken yet (so each name is a member once), and
/// a threshold between 1 and its size.
fn build(witnesses: usize, group_seeds: &[(u64, u64)], quorum_seed: u64) -> Tree {
    let mut free: Vec<Name> = (0..witnesses).map(Name::Witness).collect();
    let mut groups = Vec::new();
    for &(pick, threshold_seed) in group_seeds {
        if free.is_empty() {
            break;
        }
        let mut members = Vec::new();
        let mut kept = Vec::new();
        for (position, name) in free.iter().enumerate() {
            if (pick >> (position % 64)) & 1 == 1 {
                members.push(*name);
            } else {
                kept.push(*name);
            }
        }
        if members.is_empty() {
            members.push(kept.remove(0));
        }
        // Members in a shuffled order: rotate by the seed.
        let rotate = (pick >> 32) as usize % members.len();
        members.rotate_left(rotate);
        let count = members.len();
        let threshold = 1 + (threshold_seed as usize % count);
        let spelling = match (threshold_seed >> 32) % 3 {
            0 if threshold == 1 => "any".to_owned(),
            1 if threshold == count => "all".to_owned(),
            _ => threshold.to_string(),
        };
        free = kept;
        free.push(Name::Group(groups.len()));
        groups.push(Group {
            threshold,
            spelling,
            members,
        });
    }
    // Half the time the last group, the root of the tallest tree; else any
    // name or none.
    let names = witnesses + groups.len();
    let choice = quorum_seed as usize % (names + 1);
    let quorum = if !groups.is_empty() && (quorum_seed >> 40) & 1 == 0 {
        Some(Name::Group(groups.len() - 1))
    } else if choice == names {
        None
    } else if choice < witnesses {
        Some(Name::Witness(choice))
    } else {
        Some(Name::Group(choice - witnesses))
    };
    Tree {
        witnesses,
        groups,
        quorum,
    }
}

fn name_text(name: Name) -> String {
    match name {
        Name::Witness(index) => format!("W{index}"),
        Name::Group(index) => format!("G{index}"),
    }
}

/// The policy text: witnesses, then groups in order, then the quorum.
fn render(tree: &Tree) -> String {
    let mut text = format!("log {}\n", log(ORIGIN, 1).verifier().to_text());
    for (index, key) in witnesses()[..tree.witnesses].iter().enumerate() {
        text.push_str(&format!("witness W{index} {}\n", key.verifier().to_text()));
    }
    for (index, group) in tree.groups.iter().enumerate() {
        let members: Vec<String> = group.members.iter().map(|m| name_text(*m)).collect();
        text.push_str(&format!(
            "group G{index} {} {}\n",
            group.spelling,
            members.join(" ")
        ));
    }
    match tree.quorum {
        None => text.push_str("quorum none\n"),
        Some(name) => text.push_str(&format!("quorum {}\n", name_text(name))),
    }
    text
}

/// Every k-combination of `0..n`.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    if n < k {
        return Vec::new();
    }
    // Those without n - 1, and those with it.
    let mut out = combinations(n - 1, k);
    for mut combination in combinations(n - 1, k - 1) {
        combination.push(n - 1);
        out.push(combination);
    }
    out
}

/// Every set of witnesses that meets `name`, by expansion.
fn satisfying_sets(tree: &Tree, name: Name) -> Vec<BTreeSet<usize>> {
    match name {
        Name::Witness(index) => vec![BTreeSet::from([index])],
        Name::Group(index) => {
            let group = &tree.groups[index];
            let mut out = Vec::new();
            for chosen in combinations(group.members.len(), group.threshold) {
                // One way to meet each chosen member, in every combination.
                let mut partial = vec![BTreeSet::new()];
                for member in chosen {
                    let ways = satisfying_sets(tree, group.members[member]);
                    partial = partial
                        .iter()
                        .flat_map(|so_far| {
                            ways.iter()
                                .map(move |way| so_far.union(way).copied().collect())
                        })
                        .collect();
                }
                out.extend(partial);
            }
            out
        }
    }
}

fn naive_quorum_met(tree: &Tree, cosigned: &BTreeSet<usize>) -> bool {
    match tree.quorum {
        None => true,
        Some(name) => satisfying_sets(tree, name)
            .iter()
            .any(|set| set.is_subset(cosigned)),
    }
}

fn tree_strategy() -> impl Strategy<Value = (Tree, BTreeSet<usize>)> {
    (
        1..=MAX_WITNESSES,
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..7),
        any::<u64>(),
        any::<u8>(),
    )
        .prop_map(|(witnesses, groups, quorum, mask)| {
            let tree = build(witnesses, &groups, quorum);
            let cosigned = (0..witnesses).filter(|w| (mask >> w) & 1 == 1).collect();
            (tree, cosigned)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn quorum_matches_the_naive_model((tree, cosigned) in tree_strategy()) {
        let text = render(&tree);
        let policy = Policy::parse(text.as_bytes()).expect("a generated policy parses");
        prop_assert_eq!(policy.groups().len(), tree.groups.len());
        let expected = naive_quorum_met(&tree, &cosigned);
        let names: Vec<String> = cosigned.iter().map(|w| format!("W{w}")).collect();
        prop_assert_eq!(policy.quorum_met(&names), expected, "{}\ncosigned {:?}", text, names);
        let flags: Vec<bool> = (0..tree.witnesses).map(|w| cosigned.contains(&w)).collect();
        prop_assert_eq!(policy.quorum_met_by_index(&flags), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The same with real cosignatures on a signed checkpoint.
    #[test]
    fn verified_cosignatures_meet_the_quorum_as_the_model_says(
        (tree, cosigned) in tree_strategy()
    ) {
        let text = render(&tree);
        let policy = Policy::parse(text.as_bytes()).expect("a generated policy parses");
        let signers: Vec<&CosignatureSigner> =
            cosigned.iter().map(|&w| &witnesses()[w]).collect();
        let note = signed(&checkpoint(ORIGIN), &[&log(ORIGIN, 1)], &signers);
        let result = policy.verify_checkpoint(&note.to_bytes());
        prop_assert_eq!(result.is_ok(), naive_quorum_met(&tree, &cosigned), "{}\n{:?}", text, result);
        if let Ok(verified) = result {
            let found: BTreeSet<usize> = verified.witnesses.iter().map(|c| c.witness).collect();
            prop_assert_eq!(found, cosigned);
        }
    }
}

#[test]
fn the_model_expands_as_expected() {
    // Two of (W0, any of (W1, W2)), by hand.
    let tree = Tree {
        witnesses: 3,
        groups: vec![
            Group {
                threshold: 1,
                spelling: "any".to_owned(),
                members: vec![Name::Witness(1), Name::Witness(2)],
            },
            Group {
                threshold: 2,
                spelling: "2".to_owned(),
                members: vec![Name::Witness(0), Name::Group(0)],
            },
        ],
        quorum: Some(Name::Group(1)),
    };
    let sets = satisfying_sets(&tree, Name::Group(1));
    assert_eq!(sets, [BTreeSet::from([0, 1]), BTreeSet::from([0, 2])]);
    assert_eq!(combinations(4, 2).len(), 6);
    let policy = Policy::parse(render(&tree).as_bytes()).expect("parses");
    for mask in 0u8..8 {
        let cosigned: BTreeSet<usize> = (0..3).filter(|w| (mask >> w) & 1 == 1).collect();
        let names: Vec<String> = cosigned.iter().map(|w| format!("W{w}")).collect();
        assert_eq!(
            policy.quorum_met(&names),
            naive_quorum_met(&tree, &cosigned),
            "{names:?}"
        );
    }
}
