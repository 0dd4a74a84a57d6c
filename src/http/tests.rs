use super::*;
use std::net::TcpListener;

fn malformed(e: ReadError) -> Malformed {
    match e {
        ReadError::Malformed(m) => m,
        ReadError::Io(e) => panic!("bytes in memory cannot fail to read: {e}"),
    }
}

/// The response in `bytes`, received at once, then the close.
fn parse_all(bytes: &[u8]) -> Result<Response, Malformed> {
    read_response(bytes).map_err(malformed)
}

/// A connection that delivers one byte per read.
struct Bytewise<'a>(&'a [u8]);

impl Read for Bytewise<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The same bytes received one at a time.
fn parse_bytewise(bytes: &[u8]) -> Result<Response, Malformed> {
    read_response(Bytewise(bytes)).map_err(malformed)
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
        "http://[::1]x",
        "http://x\u{1b}y",
    ] {
        assert!(Target::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn request_bytes_carry_the_base_path_and_close_the_connection() {
    let t = Target::parse("http://kong:8000/prefix").unwrap();
    let r = Request::new(Method::Post, "/auth/v1/signup")
        .json(b"{}")
        .header("apikey", "k");
    let text = String::from_utf8(r.encode(&t).unwrap().to_vec()).unwrap();
    assert!(text.starts_with("POST /prefix/auth/v1/signup HTTP/1.1\r\nHost: kong:8000\r\n"));
    assert!(text.contains("\r\nConnection: close\r\n"));
    assert!(text.contains("\r\napikey: k\r\nContent-Length: 2\r\n\r\n{}"));
    // Debug never shows header values.
    assert!(!format!("{r:?}").contains("\"k\""));
}

/// A value with a line break would end the header and start another (request smuggling):
/// refused when the request is sent, naming the header, never a panic.
#[test]
fn header_values_and_paths_with_line_breaks_are_refused() {
    let t = Target::parse("http://kong:8000").unwrap();
    for value in ["a\r\nX-Injected: 1", "a\nb", "a\u{1b}b", "é"] {
        let r = Request::get("/x").header("apikey", value);
        assert_eq!(
            r.encode(&t).map(|_| ()),
            Err(HttpError::InvalidRequest {
                what: "value of the apikey header".into()
            }),
            "{value:?}"
        );
    }
    assert!(matches!(
        Request::get("/x y").encode(&t),
        Err(HttpError::InvalidRequest { .. })
    ));
}

#[test]
fn content_length_bodies() {
    let raw = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nContent-Length: 12\r\n\r\nUnauthorizedEXTRA";
    let r = parse_all(raw).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.body, b"Unauthorized");
    assert_eq!(parse_bytewise(raw), Ok(r));
    assert_eq!(parse_all(&raw[..60]), Err(Malformed::Truncated));
    // The same length twice (or as a list) is one length.
    let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\n{}";
    assert_eq!(parse_all(twice).unwrap().body, b"{}");
}

#[test]
fn chunked_bodies() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n";
    let r = parse_all(raw).unwrap();
    assert_eq!(r.body, br#"{"a":1}"#);
    assert_eq!(r.json().unwrap()["a"], 1);
    assert_eq!(parse_bytewise(raw), Ok(r));
    assert_eq!(parse_all(&raw[..raw.len() - 2]), Err(Malformed::Truncated));
    // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
    let both = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_eq!(parse_all(both).unwrap().body, b"{}");
}

#[test]
fn bodies_without_length_end_at_close() {
    let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
    assert_eq!(parse_all(raw).unwrap().body, b"hello");
    assert_eq!(parse_bytewise(raw).unwrap().body, b"hello");
    // A coding other than chunked last: the body ends at the close too.
    let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz";
    assert_eq!(parse_all(gzip).unwrap().body, b"zz");
}

#[test]
fn informational_responses_are_skipped_up_to_a_bound() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n";
    let r = parse_all(raw).unwrap();
    assert_eq!(
        (r.status, r.header("x"), r.header("link")),
        (204, Some("y"), None)
    );
    let endless = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INFORMATIONAL + 1);
    assert_eq!(parse_all(&endless), Err(Malformed::Informational));
}

/// Sizes that overflowed the old hand-written parser (`usize` arithmetic on a received
/// chunk size), and every other way the framing can lie.
#[test]
fn malformed_responses() {
    let cases: &[(&[u8], Malformed)] = &[
        (
            b"SSH-2.0-OpenSSH\r\n\r\n",
            Malformed::Head(httparse::Error::Version),
        ),
        (
            b"HTTP/1.1 2000 OK\r\n\r\n",
            Malformed::Head(httparse::Error::Status),
        ),
        (
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            Malformed::Head(httparse::Error::HeaderName),
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\x1bb\r\n\r\n",
            Malformed::Head(httparse::Error::HeaderValue),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            Malformed::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
            Malformed::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
            Malformed::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
            Malformed::ContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
            Malformed::BodyTooLarge,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n",
            Malformed::BodyTooLarge,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nfffffffffffffff\r\n",
            Malformed::BodyTooLarge,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            Malformed::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            Malformed::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            Malformed::Chunk,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX",
            Malformed::Chunk,
        ),
        (b"", Malformed::Truncated),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
            Malformed::Truncated,
        ),
    ];
    for (bytes, want) in cases {
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(parse_all(bytes), Err(*want), "{text}");
        assert_eq!(parse_bytewise(bytes), Err(*want), "{text} (byte by byte)");
    }
    let huge = [&b"HTTP/1.1 200 OK\r\nX: "[..], &vec![b'a'; MAX_HEAD]].concat();
    assert_eq!(parse_all(&huge), Err(Malformed::HeadTooLarge));
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    assert_eq!(parse_all(&many), Err(Malformed::TooManyHeaders));
    let long_extension = [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;"[..],
        &vec![b'x'; MAX_CHUNK_LINE + 1],
    ]
    .concat();
    assert_eq!(parse_all(&long_extension), Err(Malformed::Chunk));
}

/// Every byte counts toward one bound, whatever the framing wastes (1-byte chunks with
/// long extensions, informational answers).
#[test]
fn received_bytes_are_bounded() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = [&b"1;"[..], &[b'x'; 1000], b"\r\na\r\n"].concat();
    let bytes = [&head[..], &chunk.repeat(MAX_RECEIVED / chunk.len() + 1)].concat();
    assert_eq!(parse_all(&bytes), Err(Malformed::TooLong));
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

fn client(url: &str, timeout: Duration) -> Client {
    Client::new(&Target::parse(url).unwrap(), Roots::mozilla(), timeout).unwrap()
}

#[test]
fn a_local_server_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        // The answer arrives in two writes, chunked, and the connection stays open until
        // the client has its answer: it must stop at the last chunk, not wait for a close.
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
            .unwrap();
        s.write_all(b"0\r\n\r\n").unwrap();
        let _ = done_rx.recv();
        request
    });
    let c = client(&format!("http://localhost:{port}"), Duration::from_secs(30));
    assert!(c.addresses().iter().all(|a| a.port() == port));
    let r = c.send(&Request::get("/x")).unwrap();
    done_tx.send(()).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert!(server.join().unwrap().starts_with("GET /x HTTP/1.1\r\n"));
}

#[test]
fn refused_silent_and_past_deadline_requests() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
    assert!(matches!(
        c.send(&Request::get("/")),
        Err(HttpError::Refused { .. })
    ));
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let c = client(&url, Duration::from_millis(300));
    assert_eq!(
        c.send(&Request::get("/")),
        Err(HttpError::Timeout {
            after: Duration::from_millis(300)
        })
    );
    // The same silent server behind https://: the TLS handshake ends at the timeout too.
    let https = format!("https://{}", listener.local_addr().unwrap());
    assert_eq!(
        client(&https, Duration::from_millis(300)).send(&Request::get("/")),
        Err(HttpError::Timeout {
            after: Duration::from_millis(300)
        })
    );
    // The client's deadline is over: nothing is sent.
    let c = client(&url, Duration::from_secs(5)).until(Instant::now());
    assert_eq!(c.send(&Request::get("/")), Err(HttpError::Deadline));
    drop(listener);
}

#[test]
fn pem_roots() {
    assert_eq!(
        Roots::from_pem(b"").map(|_| ()),
        Err("holds no PEM certificate".into())
    );
    let broken = b"-----BEGIN CERTIFICATE-----\n\x1b]52;c;x\x07\n-----END CERTIFICATE-----\n";
    let e = Roots::from_pem(broken).unwrap_err();
    assert!(e.starts_with("is not valid PEM"), "{e}");
    assert!(!e.chars().any(crate::escape::is_unsafe), "{e}");
}

#[test]
fn durations_in_messages() {
    assert_eq!(seconds(Duration::from_secs(5)), "5 s");
    assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
    assert_eq!(seconds(Duration::from_millis(12_500)), "12 s");
}
