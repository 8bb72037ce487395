//! A small raw HTTP/1.1 client for the tests that drive the real binary:
//! raw, so that malformed, slow, cut-off and half-sent requests reach the
//! server exactly as written.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use stele_tiles::checkpoint::Checkpoint;
use stele_tiles::cosignature::WitnessPolicy;
use stele_tiles::note::{Ed25519Verifier, Note, NoteVerifier};
use stele_tiles::receipt::Receipt;

/// Socket read and write timeout: far above any answer a test waits for.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection with the test timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// Reads one response; the request asked for `Connection: close`, or the
/// server closes after it.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

/// Parses a whole response (head and body); panics on anything else.
pub fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(length) = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Sends `request` on a new connection and reads the answer.
pub fn send(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send request");
    read_response(&mut stream)
}

/// A request head with `Connection: close` and the `extra` header lines
/// (each ending in CRLF).
pub fn request_head(method: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: stele.test\r\nConnection: close\r\n{extra}\r\n")
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, request_head("GET", path, "").as_bytes())
}

/// `POST /add` of raw entry bytes.
pub fn post_add(addr: SocketAddr, entry: &[u8]) -> Response {
    post(addr, "/add", "application/octet-stream", "", entry)
}

/// `POST path` with a body of `content_type` and `extra` header lines.
pub fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> Response {
    let mut request = request_head(
        "POST",
        path,
        &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n{extra}",
            body.len()
        ),
    )
    .into_bytes();
    request.extend_from_slice(body);
    send(addr, &request)
}

/// The value of an unlabelled metric (or of a labelled one, with `name`
/// written with its labels) from a `/metrics` text; `None` if absent.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The log's verifier key, as `stele serve` wrote it to `DATA/log.vkey`.
pub fn log_verifier(data: &Path) -> Ed25519Verifier {
    let text = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    Ed25519Verifier::from_text(text.trim_end()).expect("log.vkey parses")
}

/// The published tree size, from `GET /checkpoint` checked against the
/// key in `DATA/log.vkey`.
pub fn tree_size(addr: SocketAddr, data: &Path) -> u64 {
    let response = get(addr, "/checkpoint");
    assert_eq!(response.status, 200, "{}", response.text());
    let note = Note::parse(&response.body).expect("checkpoint note");
    let verifier = log_verifier(data);
    let verified = stele_tiles::note::verify_note(&note, &[&verifier as &dyn NoteVerifier])
        .expect("checkpoint signed by the log key");
    assert!(!verified.is_empty());
    Checkpoint::parse(&note.text).expect("checkpoint").size
}

/// Checks a 200 answer carrying the receipt for `entry`: the receipt
/// verified offline against the key in `DATA/log.vkey`, and its index the
/// one in `X-Log-Index`. Returns the index.
pub fn check_receipt(data: &Path, entry: &[u8], response: &Response) -> u64 {
    assert_eq!(response.status, 200, "{}", response.text());
    let receipt = Receipt::parse(&response.body).expect("receipt parses");
    let verifier = log_verifier(data);
    let policy = WitnessPolicy::new(Vec::new(), 0).expect("empty policy");
    let checkpoint = receipt
        .verify(entry, verifier.name(), &verifier, &policy)
        .expect("receipt verifies offline");
    assert!(receipt.index < checkpoint.size);
    let header: u64 = response
        .header("x-log-index")
        .expect("X-Log-Index")
        .parse()
        .expect("numeric X-Log-Index");
    assert_eq!(header, receipt.index);
    receipt.index
}
