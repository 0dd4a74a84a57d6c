//! A small HTTP/1.1 client for `supakeys doctor`: one request per connection
//! (`Connection: close`), a deadline for the whole exchange, and a response parser that is
//! a pure function of the bytes received (unit-tested without a network).
//!
//! Plain `http://` is all doctor needs inside the compose network. `https://` works when
//! supakeys is built with the `tls` feature (the default: rustls, trusting Mozilla's root
//! certificates, or one given CA with [`Roots::from_pem`] for a Kubernetes API server);
//! without it an https URL is refused up front with a clear error.
//!
//! Header values carry tokens and API keys: a [`Request`] never prints them (its `Debug`
//! shows names only) and wipes them when dropped.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The most header bytes accepted in a response.
const MAX_HEAD: usize = 64 * 1024;
/// The most body bytes accepted in a response (doctor reads small JSON answers).
pub const MAX_BODY: usize = 1024 * 1024;

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
    /// are refused: doctor appends its own paths to the base URL.
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
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("must not contain user information");
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or("has an unterminated [IPv6] host")?;
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("has text after the [IPv6] host")?,
                ),
            };
            (&v6[..end], port)
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
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("has a port that is not a number from 1 to 65535")?,
        };
        if !path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\'))
        {
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
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default {
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            }
        } else {
            self.authority()
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// One request. Header values may be secrets: they are wiped on drop and never printed.
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
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST with a JSON body.
    pub fn post_json(path: impl Into<String>, body: &str) -> Request {
        Request {
            method: Method::Post,
            path: path.into(),
            headers: vec![("Content-Type", Zeroizing::new("application/json".into()))],
            body: Some(Zeroizing::new(body.as_bytes().to_vec())),
        }
    }

    /// A PUT with a JSON body (the body may hold secrets: it is wiped on drop).
    pub fn put_json(path: impl Into<String>, body: &[u8]) -> Request {
        Request {
            method: Method::Put,
            ..Request::post_json(path, "")
        }
        .body(body)
    }

    /// Replaces the body.
    pub fn body(mut self, body: &[u8]) -> Request {
        self.body = Some(Zeroizing::new(body.to_vec()));
        self
    }

    /// Adds a header. Values must not contain CR or LF (tokens and keys never do).
    pub fn header(mut self, name: &'static str, value: &str) -> Request {
        assert!(
            !value.contains(['\r', '\n']),
            "header values never contain line breaks"
        );
        self.headers.push((name, Zeroizing::new(value.to_owned())));
        self
    }

    /// The bytes sent on the wire.
    pub fn encode(&self, target: &Target) -> Zeroizing<Vec<u8>> {
        let method = match self.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        };
        let mut head = Zeroizing::new(format!(
            "{method} {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: supakeys-doctor/{}\r\nAccept: application/json\r\nConnection: close\r\n",
            target.base_path,
            self.path,
            target.host_header(),
            env!("CARGO_PKG_VERSION"),
        ));
        for (name, value) in &self.headers {
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
        bytes
    }
}

/// A complete response. Its `Debug` shows the status and header names only: bodies and
/// headers can carry tokens (an anonymous sign-in answers with one).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values trimmed, in the order received.
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

/// Why a response could not be read; never contains request or response bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    StatusLine,
    HeaderLine,
    HeadTooLarge,
    BodyTooLarge,
    ContentLength,
    Chunk,
    /// The connection closed before the response was complete.
    Truncated,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::StatusLine => "the status line is not HTTP/1.x",
            Malformed::HeaderLine => "a header line is malformed",
            Malformed::HeadTooLarge => "the headers exceed 64 KiB",
            Malformed::BodyTooLarge => "the body exceeds 1 MiB",
            Malformed::ContentLength => "Content-Length is not a number",
            Malformed::Chunk => "the chunked body is malformed",
            Malformed::Truncated => "the connection closed before the response was complete",
        })
    }
}

/// Parses a response from the bytes received so far. `Ok(None)`: more bytes are needed;
/// `eof` says the peer closed the connection (a body without length then ends there).
/// Informational (1xx) responses before the final one are skipped.
pub fn parse_response(
    buf: &[u8],
    eof: bool,
    head_request: bool,
) -> Result<Option<Response>, Malformed> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let Some(end) = find(rest, b"\r\n\r\n") else {
            if rest.len() > MAX_HEAD {
                return Err(Malformed::HeadTooLarge);
            }
            return if eof {
                Err(Malformed::Truncated)
            } else {
                Ok(None)
            };
        };
        if end > MAX_HEAD {
            return Err(Malformed::HeadTooLarge);
        }
        let head = std::str::from_utf8(&rest[..end]).map_err(|_| Malformed::HeaderLine)?;
        let mut lines = head.split("\r\n");
        let status = parse_status_line(lines.next().unwrap_or_default())?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or(Malformed::HeaderLine)?;
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(Malformed::HeaderLine);
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let body_start = start + end + 4;
        if (100..200).contains(&status) && status != 101 {
            start = body_start;
            continue;
        }
        let response = |body: Vec<u8>| Response {
            status,
            headers: headers.clone(),
            body,
        };
        let body = &buf[body_start..];
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if head_request || status == 204 || status == 304 {
            return Ok(Some(response(Vec::new())));
        }
        if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            return match decode_chunked(body)? {
                Some(decoded) => Ok(Some(response(decoded))),
                None if eof => Err(Malformed::Truncated),
                None => Ok(None),
            };
        }
        if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|_| Malformed::ContentLength)?;
            if length > MAX_BODY {
                return Err(Malformed::BodyTooLarge);
            }
            return if body.len() >= length {
                Ok(Some(response(body[..length].to_vec())))
            } else if eof {
                Err(Malformed::Truncated)
            } else {
                Ok(None)
            };
        }
        if body.len() > MAX_BODY {
            return Err(Malformed::BodyTooLarge);
        }
        return if eof {
            Ok(Some(response(body.to_vec())))
        } else {
            Ok(None)
        };
    }
}

fn parse_status_line(line: &str) -> Result<u16, Malformed> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !(version == "HTTP/1.1" || version == "HTTP/1.0")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Malformed::StatusLine);
    }
    code.parse().map_err(|_| Malformed::StatusLine)
}

/// Decodes a complete chunked body; `Ok(None)` while the last chunk has not arrived.
fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, Malformed> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n") else {
            return if buf.len() > 1024 {
                Err(Malformed::Chunk)
            } else {
                Ok(None)
            };
        };
        let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| Malformed::Chunk)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| Malformed::Chunk)?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            // Trailers end with an empty line; doctor needs none of them.
            return Ok(find(buf, b"\r\n").map(|_| out));
        }
        if out.len() + size > MAX_BODY {
            return Err(Malformed::BodyTooLarge);
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(Malformed::Chunk);
        }
        out.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Why a request got no response. Carries host names and addresses, never request bytes.
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
    /// No complete response before the deadline.
    Timeout {
        seconds: u64,
    },
    /// The connection failed while sending or receiving.
    Io {
        detail: String,
    },
    Malformed(Malformed),
    /// An https URL, but this supakeys was built without TLS.
    TlsNotBuilt,
    Tls {
        detail: String,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::UnknownHost { host } => write!(f, "the host name {host} is unknown here"),
            HttpError::Resolve { host, detail } => write!(f, "cannot resolve {host}: {detail}"),
            HttpError::Refused { addr } => write!(f, "nothing listens on {addr}"),
            HttpError::ConnectTimeout { addr } => write!(f, "{addr} does not answer"),
            HttpError::Connect { addr, detail } => write!(f, "cannot connect to {addr}: {detail}"),
            HttpError::Timeout { seconds } => write!(f, "no complete answer within {seconds} s"),
            HttpError::Io { detail } => write!(f, "the connection failed: {detail}"),
            HttpError::Malformed(m) => write!(f, "the answer is not valid HTTP: {m}"),
            HttpError::TlsNotBuilt => f.write_str(
                "this supakeys was built without TLS (cargo feature `tls`); use an http:// URL",
            ),
            HttpError::Tls { detail } => write!(f, "TLS failed: {detail}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// True when this build can talk to https:// URLs.
pub const TLS_BUILT: bool = cfg!(feature = "tls");

/// The certificate authorities an https connection trusts.
#[derive(Clone)]
pub struct Roots {
    /// `None`: Mozilla's roots, for public URLs.
    #[cfg(feature = "tls")]
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Roots {
    /// Mozilla's root certificates (compiled in: the image has no CA store).
    pub fn public() -> Roots {
        Roots {
            #[cfg(feature = "tls")]
            config: None,
        }
    }

    /// Only the certificates of a PEM bundle (a Kubernetes cluster's `ca.crt`). Fails when
    /// the bundle holds no usable certificate, or this build has no TLS.
    #[cfg(feature = "tls")]
    pub fn from_pem(pem: &[u8]) -> Result<Roots, String> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("is not a PEM certificate bundle ({e})"))?;
            roots
                .add(cert)
                .map_err(|e| format!("holds a certificate rustls cannot use ({e})"))?;
        }
        if roots.is_empty() {
            return Err("holds no certificate".into());
        }
        Ok(Roots {
            config: Some(client_config(roots)?),
        })
    }

    #[cfg(not(feature = "tls"))]
    pub fn from_pem(_pem: &[u8]) -> Result<Roots, String> {
        Err("cannot be used: this supakeys was built without TLS (cargo feature `tls`)".into())
    }
}

#[cfg(feature = "tls")]
fn client_config(
    roots: rustls::RootCertStore,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| std::sync::Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
    .map_err(|e| e.to_string())
}

/// Sends `request` to `target` and reads the response, all within `timeout`.
pub fn send(target: &Target, request: &Request, timeout: Duration) -> Result<Response, HttpError> {
    send_with(target, request, timeout, &Roots::public())
}

/// [`send`], trusting `roots` for https.
pub fn send_with(
    target: &Target,
    request: &Request,
    timeout: Duration,
    roots: &Roots,
) -> Result<Response, HttpError> {
    if target.scheme == Scheme::Https && !TLS_BUILT {
        return Err(HttpError::TlsNotBuilt);
    }
    let deadline = Instant::now() + timeout;
    let stream = connect(target, deadline, timeout)?;
    let mut conn = wrap(stream, target, roots)?;
    let io_error = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HttpError::Timeout {
            seconds: timeout.as_secs().max(1),
        },
        // rustls reports handshake and certificate failures as InvalidData.
        io::ErrorKind::InvalidData if target.scheme == Scheme::Https => HttpError::Tls {
            detail: e.to_string(),
        },
        _ => HttpError::Io {
            detail: e.to_string(),
        },
    };
    conn.write_all(&request.encode(target)).map_err(io_error)?;
    conn.flush().map_err(io_error)?;
    let head_request = false;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Timeout {
                seconds: timeout.as_secs().max(1),
            });
        }
        conn.set_read_timeout(remaining).map_err(io_error)?;
        let n = match conn.read(&mut chunk) {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: treat as the end of the stream.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        match parse_response(&buf, n == 0, head_request) {
            Ok(Some(response)) => return Ok(response),
            Ok(None) => {}
            Err(m) => return Err(HttpError::Malformed(m)),
        }
    }
}

fn connect(target: &Target, deadline: Instant, timeout: Duration) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| resolve_error(&target.host, &e))?
        .collect();
    let mut last = HttpError::UnknownHost {
        host: target.host.clone(),
    };
    for addr in addrs {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Timeout {
                seconds: timeout.as_secs().max(1),
            });
        }
        match TcpStream::connect_timeout(&addr, remaining) {
            Ok(stream) => {
                // Requests are small and written at once; latency matters more than batching.
                let _ = stream.set_nodelay(true);
                stream
                    .set_write_timeout(Some(remaining))
                    .map_err(|e| HttpError::Io {
                        detail: e.to_string(),
                    })?;
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
                        detail: e.to_string(),
                    },
                };
            }
        }
    }
    Err(last)
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
            detail: text,
        }
    }
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.set_read_timeout(Some(timeout)),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.sock.set_read_timeout(Some(timeout)),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[cfg(not(feature = "tls"))]
fn wrap(stream: TcpStream, _target: &Target, _roots: &Roots) -> Result<Conn, HttpError> {
    Ok(Conn::Plain(stream))
}

#[cfg(feature = "tls")]
fn wrap(stream: TcpStream, target: &Target, roots: &Roots) -> Result<Conn, HttpError> {
    use std::sync::{Arc, OnceLock};
    if target.scheme == Scheme::Http {
        return Ok(Conn::Plain(stream));
    }
    static PUBLIC: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = match &roots.config {
        Some(config) => Arc::clone(config),
        None => PUBLIC
            .get_or_init(|| {
                client_config(rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })
            })
            .clone()
            .map_err(|detail| HttpError::Tls { detail })?,
    };
    let name = rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
        HttpError::Tls {
            detail: e.to_string(),
        }
    })?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| HttpError::Tls {
        detail: e.to_string(),
    })?;
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, stream))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Result<Option<Response>, Malformed> {
        parse_response(bytes, true, false)
    }

    #[test]
    fn urls() {
        let t = Target::parse("http://api-gw:8000").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port, t.base_path.as_str()),
            (Scheme::Http, "api-gw", 8000, "")
        );
        assert_eq!(t.to_string(), "http://api-gw:8000");
        let t = Target::parse("https://example.com/base/").unwrap();
        assert_eq!((t.port, t.base_path.as_str()), (443, "/base"));
        assert_eq!(t.to_string(), "https://example.com/base");
        let t = Target::parse("http://[::1]:8000/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority()),
            ("::1", "[::1]:8000".into())
        );
        for bad in [
            "api-gw:8000",
            "ftp://x",
            "http://",
            "http://x:0",
            "http://x:99999",
            "http://x/?a=1",
            "http://user:pw@x",
            "http://x/a b",
            "http://[::1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_bytes_carry_the_base_path_and_close_the_connection() {
        let t = Target::parse("http://kong:8000/prefix").unwrap();
        let r = Request::post_json("/auth/v1/signup", "{}").header("apikey", "k");
        let text = String::from_utf8(r.encode(&t).to_vec()).unwrap();
        assert!(text.starts_with("POST /prefix/auth/v1/signup HTTP/1.1\r\nHost: kong:8000\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.contains("\r\napikey: k\r\nContent-Length: 2\r\n\r\n{}"));
        // Debug never shows header values.
        assert!(!format!("{r:?}").contains("\"k\""));
    }

    #[test]
    fn content_length_bodies() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nContent-Length: 12\r\n\r\nUnauthorizedEXTRA";
        let r = parse_all(raw).unwrap().unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.body, b"Unauthorized");
        // Incomplete: wait for more unless the peer closed.
        assert_eq!(parse_response(&raw[..60], false, false), Ok(None));
        assert_eq!(
            parse_response(&raw[..60], true, false),
            Err(Malformed::Truncated)
        );
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        let r = parse_all(raw).unwrap().unwrap();
        assert_eq!(r.body, br#"{"a":1}"#);
        assert_eq!(r.json().unwrap()["a"], 1);
        assert_eq!(
            parse_response(&raw[..raw.len() - 2], false, false),
            Ok(None)
        );
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_all(bad), Err(Malformed::Chunk));
    }

    #[test]
    fn bodies_without_length_end_at_close() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(raw, false, false), Ok(None));
        assert_eq!(parse_all(raw).unwrap().unwrap().body, b"hello");
    }

    #[test]
    fn informational_responses_are_skipped() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n";
        let r = parse_response(raw, false, false).unwrap().unwrap();
        assert_eq!((r.status, r.header("x")), (204, Some("y")));
    }

    #[test]
    fn malformed_responses() {
        assert_eq!(
            parse_all(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(Malformed::StatusLine)
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(Malformed::StatusLine)
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
            Err(Malformed::HeaderLine)
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(Malformed::ContentLength)
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"),
            Err(Malformed::BodyTooLarge)
        );
        assert_eq!(parse_all(b""), Err(Malformed::Truncated));
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(
            parse_response(&huge, false, false),
            Err(Malformed::HeadTooLarge)
        );
    }

    #[test]
    fn resolver_texts() {
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            resolve_error("api-gw", &e),
            HttpError::UnknownHost {
                host: "api-gw".into()
            }
        );
        let e = io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert!(matches!(resolve_error("x", &e), HttpError::Resolve { .. }));
    }

    #[test]
    fn a_local_server_round_trip() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            // The answer arrives in two writes, chunked, and the connection stays open:
            // the client must stop at the last chunk, not wait for the close.
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b"0\r\n\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(500));
            request
        });
        let t = Target::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let started = Instant::now();
        let r = send(&t, &Request::get("/x"), Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert!(server.join().unwrap().starts_with("GET /x HTTP/1.1\r\n"));
    }

    #[test]
    fn refused_and_timed_out_connections() {
        use std::net::TcpListener;
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = Target::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(matches!(
            send(&t, &Request::get("/"), Duration::from_secs(2)),
            Err(HttpError::Refused { .. })
        ));
        // A server that accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let t = Target::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let started = Instant::now();
        let result = send(&t, &Request::get("/"), Duration::from_millis(300));
        assert!(
            matches!(result, Err(HttpError::Timeout { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn https_without_the_feature_is_refused_up_front() {
        if TLS_BUILT {
            return;
        }
        let t = Target::parse("https://127.0.0.1:1").unwrap();
        assert_eq!(
            send(&t, &Request::get("/"), Duration::from_secs(1)),
            Err(HttpError::TlsNotBuilt)
        );
    }
}
