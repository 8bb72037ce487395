//! The `add-checkpoint` request body (c2sp.org/tlog-witness).

use stele_tiles::Hash;
use stele_tiles::note::Note;

/// A parsed c2sp.org/tlog-witness `add-checkpoint` request body.
#[derive(Debug, Clone)]
pub struct AddRequest {
    /// The size the client believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The submitted checkpoint, with its signatures.
    pub note: Note,
}

/// Parses an `add-checkpoint` request body strictly; the error says what
/// was wrong, for a 400 answer.
pub fn parse_request(body: &[u8]) -> std::result::Result<AddRequest, String> {
    let mut rest = body;
    let mut next_line = |what: &str| -> std::result::Result<&[u8], String> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("{what} does not end in a newline"))?;
        let line = &rest[..end];
        rest = &rest[end + 1..];
        Ok(line)
    };
    let old = next_line("the old size line")?;
    let digits = old
        .strip_prefix(b"old ")
        .ok_or("the first line must be `old <size>`")?;
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err("the old size is not a decimal number without leading zeros".into());
    }
    let old_size: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or("the old size does not fit in 64 bits")?;
    let mut proof = Vec::new();
    loop {
        let line = next_line("a consistency proof line")?;
        if line.is_empty() {
            break;
        }
        if proof.len() == 63 {
            return Err("more than 63 consistency proof lines".into());
        }
        let hash = std::str::from_utf8(line)
            .ok()
            .and_then(|text| Hash::from_base64(text).ok())
            .ok_or("a consistency proof line is not base64 of 32 bytes")?;
        proof.push(hash);
    }
    let note = Note::parse(rest).map_err(|err| format!("checkpoint: {err}"))?;
    Ok(AddRequest {
        old_size,
        proof,
        note,
    })
}
