//! A small raw HTTP/1.1 client for the tests that drive the real binary:
//! raw, so that malformed, slow, cut-off and half-sent requests reach the
//! server exactly as written.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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
