//! supakeys' one HTTP client: HTTP/1.1 over TCP or TLS, one request per connection
//! (`Connection: close`), for `doctor` (the gateway) and the Kubernetes store (the API
//! server). The whole public API:
//!
//! - [`Target::parse`]: an `http://` or `https://` URL (host, port, base path).
//! - [`Roots`]: what a TLS server's chain must end in: [`Roots::mozilla`] (compiled in; the
//!   image has no CA store) or [`Roots::from_pem`] (a CA file, e.g. a cluster's `ca.crt`).
//! - [`Client::new`]`(target, roots, timeout)`: resolves the host once, waiting at most
//!   `timeout`; [`Client::until`] adds a deadline every request ends by.
//! - [`Client::send`]`(&Request) -> Result<Response, HttpError>`: a [`Request`] (method,
//!   path, headers, optional JSON body) and its [`Response`] (status, headers, body).
//!
//! Every wait is bounded: the lookup by the timeout (it runs in a thread that is no longer
//! waited for), each request's connect, TLS handshake, writes and reads by the timeout from
//! its start or the client's deadline, whichever comes first.
//!
//! Bytes received are parsed by `httparse` (hyper's parser, fuzzed upstream): the status
//! line and headers, chunk sizes and trailers. This module frames the body (RFC 9112 §6.3)
//! with checked arithmetic and bounds what it reads: 64 KiB of headers, 1 MiB of body, 16
//! informational answers, 4 MiB in all. [`read_response`] reads from any `Read`, so the
//! parsing is tested and fuzzed on bytes in memory.
//!
//! Header values and bodies carry tokens and keys: a [`Request`] never prints them (its
//! `Debug` shows header names only) and wipes them when dropped; a [`Response`]'s `Debug`
//! shows its status and header names only.

use crate::escape;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The most header bytes accepted in one response head.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers in one response head.
const MAX_HEADERS: usize = 100;
/// The most body bytes accepted (doctor reads small JSON answers; a Kubernetes Secret
/// holds at most 1 MiB).
pub const MAX_BODY: usize = 1024 * 1024;
/// The most informational (1xx) answers before the final one.
const MAX_INFORMATIONAL: usize = 16;
/// The longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 1024;
/// The most bytes read for one response, framing included.
const MAX_RECEIVED: usize = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where requests go: scheme, host, port and a base path that every request path extends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// The host as written in the URL (an IPv6 literal without its brackets).
    pub host: String,
    pub port: u16,
    /// The URL's path without a trailing slash (`""` for the root).
    pub base_path: String,
}

impl Target {
    /// Parses `http://host[:port][/path]` or `https://…`. Query, fragment and user info
    /// are refused: requests append their own paths to the base URL.
    pub fn parse(url: &str) -> Result<Target, &'static str> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err("must start with http:// or https://");
        };
        if rest.contains(['?', '#']) {
            return Err("must not have a query or a fragment");
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err("must not contain user information");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or("has an unterminated [IPv6] host")?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("has text after the [IPv6] host")?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err("has no valid host name");
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("has a port that is not a number from 1 to 65535")?,
        };
        if !path.bytes().all(path_byte) {
            return Err("has a path with characters that need encoding");
        }
        Ok(Target {
            scheme,
            host: host.to_owned(),
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// `host:port` for messages (brackets around IPv6 literals).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The Host header: the port only when it is not the scheme's default.
    fn host_header(&self) -> String {
        if self.port != self.scheme.default_port() {
            self.authority()
        } else if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host_header(), self.base_path)
    }
}

/// A byte a request path may hold as it is (visible ASCII but `"<>\`).
fn path_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// One request. Header values and the body may be secrets: they are wiped on drop and
/// never printed.
pub struct Request {
    pub method: Method,
    /// The path below the target's base path, starting with `/`.
    pub path: String,
    headers: Vec<(&'static str, Zeroizing<String>)>,
    body: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path)
    }

    /// A JSON body (wiped on drop: it may hold secrets), with its `Content-Type`.
    pub fn json(mut self, body: &[u8]) -> Request {
        self.headers
            .push(("Content-Type", Zeroizing::new("application/json".into())));
        self.body = Some(Zeroizing::new(body.to_vec()));
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Request {
        self.headers.push((name, Zeroizing::new(value.to_owned())));
        self
    }

    /// The bytes sent on the wire. A path or header value with a byte HTTP does not allow
    /// there (a line break would start another header) is refused, naming where it is.
    fn encode(&self, target: &Target) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        if !self.path.starts_with('/') || !self.path.bytes().all(path_byte) {
            return Err(HttpError::InvalidRequest {
                what: "path".into(),
            });
        }
        // RFC 9110 §5.5: visible ASCII, spaces and tabs (obs-text is never ours to send).
        let field_byte = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
        let mut head = Zeroizing::new(format!(
            "{} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: supakeys/{}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.method.as_str(),
            target.base_path,
            self.path,
            target.host_header(),
            env!("CARGO_PKG_VERSION"),
        ));
        for (name, value) in &self.headers {
            if !value.bytes().all(field_byte) {
                return Err(HttpError::InvalidRequest {
                    what: format!("value of the {name} header"),
                });
            }
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        if let Some(body) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = Zeroizing::new(head.as_bytes().to_vec());
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        Ok(bytes)
    }
}

/// A complete response. Its `Debug` shows the status and header names only: bodies and
/// headers can carry tokens (an anonymous sign-in answers with one).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values trimmed (bytes that are not UTF-8 as U+FFFD), in
    /// the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why an answer is not HTTP/1.1 supakeys can read; never contains the bytes received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// httparse refused the status line or a header.
    Head(httparse::Error),
    HeadTooLarge,
    TooManyHeaders,
    Informational,
    ContentLength,
    Chunk,
    BodyTooLarge,
    TooLong,
    /// The connection closed before the response was complete.
    Truncated,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Head(e) => write!(f, "the status line or a header is malformed ({e})"),
            Malformed::HeadTooLarge => write!(f, "the headers exceed {} KiB", MAX_HEAD / 1024),
            Malformed::TooManyHeaders => write!(f, "there are more than {MAX_HEADERS} headers"),
            Malformed::Informational => write!(
                f,
                "it sends more than {MAX_INFORMATIONAL} informational (1xx) answers"
            ),
            Malformed::ContentLength => {
                f.write_str("Content-Length is not one decimal number below 2^64")
            }
            Malformed::Chunk => f.write_str(
                "the chunked body is malformed (a chunk size that is not a hexadecimal number below 2^64, or a chunk without its line end)",
            ),
            Malformed::BodyTooLarge => write!(f, "the body exceeds {} MiB", MAX_BODY >> 20),
            Malformed::TooLong => write!(f, "the answer exceeds {} MiB", MAX_RECEIVED >> 20),
            Malformed::Truncated => {
                f.write_str("the connection closed before the response was complete")
            }
        }
    }
}

/// Why reading a response failed: the connection, or the bytes received on it.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Malformed(Malformed),
}

impl From<Malformed> for ReadError {
    fn from(m: Malformed) -> Self {
        ReadError::Malformed(m)
    }
}

/// Reads one response from `source` (a connection, or bytes in memory): the final answer
/// after at most 16 informational (1xx) answers, and its body framed as RFC 9112 §6.3
/// says for a response to a GET, POST or PUT.
pub fn read_response(source: impl Read) -> Result<Response, ReadError> {
    let mut input = Input {
        source,
        pending: Vec::new(),
        received: 0,
    };
    let mut informational = 0;
    let (status, headers) = loop {
        let (status, headers) = input.parse(MAX_HEAD, Malformed::HeadTooLarge, head)?;
        if !(100..200).contains(&status) || status == 101 {
            break (status, headers);
        }
        informational += 1;
        if informational > MAX_INFORMATIONAL {
            return Err(Malformed::Informational.into());
        }
    };
    let body = match framing(status, &headers)? {
        Body::None => Vec::new(),
        Body::Length(n) => input.take(n)?,
        Body::UntilClose => input.rest(MAX_BODY)?,
        Body::Chunked => chunked(&mut input)?,
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

type Parsed<T> = Result<httparse::Status<(usize, T)>, Malformed>;

/// The status line and headers (names in lower case, values as text).
fn head(bytes: &[u8]) -> Parsed<(u16, Vec<(String, String)>)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(httparse::Status::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(Malformed::TooManyHeaders),
        Err(e) => return Err(Malformed::Head(e)),
    };
    let status = response
        .code
        .ok_or(Malformed::Head(httparse::Error::Status))?;
    let headers = response
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    Ok(httparse::Status::Complete((used, (status, headers))))
}

/// A chunked body (RFC 9112 §7.1): sizes read by httparse, the total kept under
/// [`MAX_BODY`] with checked arithmetic, trailers read and dropped.
fn chunked<R: Read>(input: &mut Input<R>) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let size = input.parse(MAX_CHUNK_LINE, Malformed::Chunk, |bytes| {
            // httparse reads an empty size as 0; a size is at least one hex digit.
            if bytes.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return Err(Malformed::Chunk);
            }
            httparse::parse_chunk_size(bytes).map_err(|_| Malformed::Chunk)
        })?;
        if size == 0 {
            input.parse(MAX_HEAD, Malformed::HeadTooLarge, |bytes| {
                let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match httparse::parse_headers(bytes, &mut trailers) {
                    Ok(httparse::Status::Complete((used, _))) => {
                        Ok(httparse::Status::Complete((used, ())))
                    }
                    Ok(httparse::Status::Partial) => Ok(httparse::Status::Partial),
                    Err(httparse::Error::TooManyHeaders) => Err(Malformed::TooManyHeaders),
                    Err(e) => Err(Malformed::Head(e)),
                }
            })?;
            return Ok(body);
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|size| body.len().checked_add(*size).is_some_and(|t| t <= MAX_BODY))
            .ok_or(Malformed::BodyTooLarge)?;
        body.extend_from_slice(&input.take(size)?);
        if input.take(2)? != b"\r\n" {
            return Err(Malformed::Chunk.into());
        }
    }
}

/// How a body is framed.
enum Body {
    None,
    Length(usize),
    UntilClose,
    Chunked,
}

/// RFC 9112 §6.3: no body for 1xx, 204 and 304; `Transfer-Encoding` wins over
/// `Content-Length` and means chunked when chunked is its last coding (otherwise the body
/// ends at the close); every `Content-Length` must be the same decimal number; without
/// either the body ends at the close.
fn framing(status: u16, headers: &[(String, String)]) -> Result<Body, Malformed> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Body::None);
    }
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    };
    if let Some(last) = values("transfer-encoding").next_back() {
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Body::Chunked
        } else {
            Body::UntilClose
        });
    }
    let mut length = None;
    for value in values("content-length") {
        let n: u64 = Some(value)
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse().ok())
            .ok_or(Malformed::ContentLength)?;
        if length.is_some_and(|l| l != n) {
            return Err(Malformed::ContentLength);
        }
        length = Some(n);
    }
    match length.map(usize::try_from) {
        None => Ok(Body::UntilClose),
        Some(Ok(n)) if n <= MAX_BODY => Ok(Body::Length(n)),
        Some(_) => Err(Malformed::BodyTooLarge),
    }
}

/// The bytes of a connection, read as the parser needs them, [`MAX_RECEIVED`] in all.
struct Input<R> {
    source: R,
    /// Received and not consumed yet.
    pending: Vec<u8>,
    received: usize,
}

impl<R: Read> Input<R> {
    /// Reads more bytes; `Truncated` at the end of the stream.
    fn more(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.source.read(&mut chunk) {
                Ok(0) => return Err(Malformed::Truncated.into()),
                Ok(n) => {
                    self.received = self.received.saturating_add(n);
                    if self.received > MAX_RECEIVED {
                        return Err(Malformed::TooLong.into());
                    }
                    self.pending
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A TLS peer that closes without close_notify: the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Malformed::Truncated.into());
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.pending.len() < n {
            self.more()?;
        }
        let rest = self.pending.split_off(n);
        Ok(std::mem::replace(&mut self.pending, rest))
    }

    /// Every byte up to the end of the stream, at most `limit` of them.
    fn rest(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        while self.pending.len() <= limit {
            match self.more() {
                Ok(()) => {}
                Err(ReadError::Malformed(Malformed::Truncated)) => {
                    return Ok(std::mem::take(&mut self.pending));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Malformed::BodyTooLarge.into())
    }

    /// Runs `parse` (an httparse reading of the pending bytes) until it is complete within
    /// `limit` bytes, reading more while it is partial; `too_long` beyond the limit.
    fn parse<T>(
        &mut self,
        limit: usize,
        too_long: Malformed,
        parse: impl Fn(&[u8]) -> Parsed<T>,
    ) -> Result<T, ReadError> {
        loop {
            match parse(&self.pending)? {
                httparse::Status::Complete((used, value)) if used <= limit => {
                    self.pending.drain(..used.min(self.pending.len()));
                    return Ok(value);
                }
                httparse::Status::Partial if self.pending.len() <= limit => self.more()?,
                _ => return Err(too_long.into()),
            }
        }
    }
}

/// Why a request got no response. Carries host names, addresses and descriptions (escaped:
/// a certificate's names or an OS message), never request or response bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The resolver does not know the host name.
    UnknownHost {
        host: String,
    },
    /// The resolver failed (no DNS server reachable, …).
    Resolve {
        host: String,
        detail: String,
    },
    /// The resolver gave no answer within the timeout.
    ResolveTimeout {
        host: String,
        after: Duration,
    },
    /// Nothing listens at the address.
    Refused {
        addr: String,
    },
    /// No answer to the connection attempt in time.
    ConnectTimeout {
        addr: String,
    },
    /// Another connection failure (network unreachable, …).
    Connect {
        addr: String,
        detail: String,
    },
    /// No complete response within the timeout of the request.
    Timeout {
        after: Duration,
    },
    /// The client's deadline ([`Client::until`]) passed before a complete response.
    Deadline,
    /// The connection failed while sending or receiving.
    Io {
        detail: String,
    },
    Malformed(Malformed),
    Tls {
        detail: String,
    },
    /// The request itself holds a byte HTTP does not allow (`what`: where).
    InvalidRequest {
        what: String,
    },
}

/// A duration as doctor's messages show it: whole seconds, or tenths below ten seconds.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 || d.as_secs() >= 10 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::UnknownHost { host } => write!(f, "the host name {host} is unknown here"),
            HttpError::Resolve { host, detail } => write!(f, "cannot resolve {host}: {detail}"),
            HttpError::ResolveTimeout { host, after } => write!(
                f,
                "cannot resolve {host}: no answer from the name server within {}",
                seconds(*after)
            ),
            HttpError::Refused { addr } => write!(f, "nothing listens on {addr}"),
            HttpError::ConnectTimeout { addr } => write!(f, "{addr} does not answer"),
            HttpError::Connect { addr, detail } => write!(f, "cannot connect to {addr}: {detail}"),
            HttpError::Timeout { after } => {
                write!(f, "no complete answer within {}", seconds(*after))
            }
            HttpError::Deadline => {
                f.write_str("no complete answer before the deadline set for all requests")
            }
            HttpError::Io { detail } => write!(f, "the connection failed: {detail}"),
            HttpError::Malformed(m) => write!(f, "the answer is not valid HTTP: {m}"),
            HttpError::Tls { detail } => write!(f, "TLS failed: {detail}"),
            HttpError::InvalidRequest { what } => write!(
                f,
                "the request's {what} holds a character HTTP does not allow there"
            ),
        }
    }
}

impl std::error::Error for HttpError {}

/// A description from the OS or rustls, safe to show (a certificate's names are the
/// server's text).
fn detail(e: &dyn fmt::Display) -> String {
    escape::text(&e.to_string()).into_owned()
}

/// The certificates a TLS server's chain must end in.
#[derive(Clone, Debug)]
pub struct Roots(rustls::RootCertStore);

impl Roots {
    /// Mozilla's root certificates, compiled in (`webpki-roots`): the image has no CA store.
    pub fn mozilla() -> Roots {
        Roots(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    }

    /// The certificates of a PEM file (`-----BEGIN CERTIFICATE-----` sections; other
    /// sections are skipped), e.g. a Kubernetes cluster's CA. The caller reads the file
    /// with its own size bound. Errors say what is wrong, without the file's bytes.
    pub fn from_pem(pem: &[u8]) -> Result<Roots, String> {
        let mut store = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("is not valid PEM ({})", detail(&e)))?;
            store
                .add(cert)
                .map_err(|e| format!("holds a certificate rustls cannot use ({})", detail(&e)))?;
        }
        if store.is_empty() {
            return Err("holds no PEM certificate".into());
        }
        Ok(Roots(store))
    }
}

/// Requests to one target: the host resolved once, TLS prepared once.
#[derive(Debug)]
pub struct Client {
    target: Target,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    deadline: Option<Instant>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// Resolves the target's host (an IP literal needs no lookup), waiting at most
    /// `timeout`, and prepares TLS for an `https://` target. `timeout` also bounds each
    /// request sent with [`Client::send`].
    pub fn new(target: &Target, roots: Roots, timeout: Duration) -> Result<Client, HttpError> {
        // Instants stay far from overflowing.
        let timeout = timeout.min(Duration::from_secs(86_400));
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(tls_config(roots)?),
        };
        Ok(Client {
            addrs: resolve(&target.host, target.port, timeout)?,
            target: target.clone(),
            timeout,
            deadline: None,
            tls,
        })
    }

    /// Every request ends by `deadline`, however much of its own timeout is left.
    pub fn until(mut self, deadline: Instant) -> Client {
        self.deadline = Some(deadline);
        self
    }

    /// The addresses the host resolved to, in the order they are tried.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends `request` and reads the response: connecting, the TLS handshake, writing and
    /// reading all end by the request's timeout (from now) or the client's deadline.
    pub fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let bytes = request.encode(&self.target)?;
        let now = Instant::now();
        let own = now + self.timeout;
        let (deadline, expired) = match self.deadline {
            Some(d) if d < own => (d, HttpError::Deadline),
            _ => (
                own,
                HttpError::Timeout {
                    after: self.timeout,
                },
            ),
        };
        if deadline <= now {
            return Err(expired);
        }
        let stream = Timed {
            socket: self.connect(deadline, &expired)?,
            deadline,
        };
        let mut conn = match &self.tls {
            None => Conn::Plain(stream),
            Some(config) => {
                let name = ServerName::try_from(self.target.host.clone())
                    .map_err(|e| HttpError::Tls { detail: detail(&e) })?;
                let tls = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| HttpError::Tls { detail: detail(&e) })?;
                Conn::Tls(Box::new(rustls::StreamOwned::new(tls, stream)))
            }
        };
        let tls = self.tls.is_some();
        let io_error = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => expired.clone(),
            // rustls reports handshake and certificate failures as InvalidData.
            io::ErrorKind::InvalidData if tls => HttpError::Tls { detail: detail(&e) },
            _ => HttpError::Io { detail: detail(&e) },
        };
        conn.write_all(&bytes).map_err(io_error)?;
        conn.flush().map_err(io_error)?;
        read_response(&mut conn).map_err(|e| match e {
            ReadError::Io(e) => io_error(e),
            ReadError::Malformed(m) => HttpError::Malformed(m),
        })
    }

    fn connect(&self, deadline: Instant, expired: &HttpError) -> Result<TcpStream, HttpError> {
        let mut last = HttpError::UnknownHost {
            host: self.target.host.clone(),
        };
        for addr in &self.addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(expired.clone());
            }
            match TcpStream::connect_timeout(addr, left) {
                Ok(stream) => {
                    // Requests are small and written at once; latency matters more.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => {
                    let addr = addr.to_string();
                    last = match e.kind() {
                        io::ErrorKind::ConnectionRefused => HttpError::Refused { addr },
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                            HttpError::ConnectTimeout { addr }
                        }
                        _ => HttpError::Connect {
                            addr,
                            detail: detail(&e),
                        },
                    };
                }
            }
        }
        Err(last)
    }
}

/// Looks `host` up, waiting at most `timeout`. `getaddrinfo` cannot be interrupted: it
/// runs in its own thread, which is left to finish (or to end with the process) when the
/// wait is over.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, HttpError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let result = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>());
            let _ = tx.send(result);
        })
        .map_err(|e| HttpError::Resolve {
            host: host.into(),
            detail: detail(&e),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(HttpError::UnknownHost { host: host.into() }),
        Ok(Err(e)) => Err(resolve_error(host, &e)),
        Err(_) => Err(HttpError::ResolveTimeout {
            host: host.into(),
            after: timeout,
        }),
    }
}

/// Tells "no such name" (the usual case outside the compose network) from other resolver
/// failures, from the texts of glibc's and musl's resolvers.
fn resolve_error(host: &str, e: &io::Error) -> HttpError {
    let text = e.to_string();
    let unknown = [
        "not known",
        "does not resolve",
        "No address associated",
        "nodename nor servname",
    ];
    if unknown.iter().any(|u| text.contains(u)) {
        HttpError::UnknownHost { host: host.into() }
    } else {
        HttpError::Resolve {
            host: host.into(),
            detail: escape::text(&text).into_owned(),
        }
    }
}

fn tls_config(roots: Roots) -> Result<Arc<rustls::ClientConfig>, HttpError> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots.0).with_no_client_auth()))
        .map_err(|e| HttpError::Tls { detail: detail(&e) })
}

/// A socket whose every read and write ends by the deadline: the timeout is set to what is
/// left before each call. TLS runs over it, so the handshake is bounded too.
struct Timed {
    socket: TcpStream,
    deadline: Instant,
}

impl Timed {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.set_read_timeout(Some(self.left()?))?;
        self.socket.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.set_write_timeout(Some(self.left()?))?;
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// A plain or TLS connection.
enum Conn {
    Plain(Timed),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests;
