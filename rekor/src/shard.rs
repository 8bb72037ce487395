//! Shard names: the one rule the sequencer's configuration and the submit
//! function share (docs/shards.md).
//!
//! A shard's name is the first segment of its URLs (`/<name>/checkpoint`,
//! `/<name>/api/v2/log/entries`) and its storage prefix, so it is plain
//! lowercase ASCII that needs no escaping anywhere, and never `.` or `..`.

/// Longest shard name, in bytes: one DNS label's worth.
pub const MAX_NAME_LEN: usize = 63;

/// Whether `name` is a valid shard name: `[a-z0-9][a-z0-9._-]*`, at most
/// [`MAX_NAME_LEN`] bytes.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if bytes.len() <= MAX_NAME_LEN => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name of up to three bytes over an alphabet wider than the
    /// allowed one, against the rule written out as a regular expression
    /// would read it.
    #[test]
    fn names_follow_the_documented_rule() {
        let alphabet: Vec<char> = "az09._-A/ %é".chars().collect();
        let naive = |name: &str| {
            let mut chars = name.chars();
            let head = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            let tail = |c: char| head(c) || c == '.' || c == '_' || c == '-';
            chars.next().is_some_and(head) && chars.all(tail) && name.len() <= 63
        };
        let mut names = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = names
                .iter()
                .flat_map(|name| alphabet.iter().map(move |c| format!("{name}{c}")))
                .collect();
            names.extend(longer);
        }
        names.sort();
        names.dedup();
        for name in &names {
            assert_eq!(valid_name(name), naive(name), "{name:?}");
        }
        for name in ["2026", "a", "log-2027.b_c", &"x".repeat(63)] {
            assert!(valid_name(name), "{name:?}");
        }
        for name in [
            "",
            ".",
            "..",
            ".stele",
            "-a",
            "_a",
            "A",
            "a/b",
            &"x".repeat(64),
        ] {
            assert!(!valid_name(name), "{name:?}");
        }
    }
}
