//! The HTTP client over TLS, against a local rustls server whose certificate (for localhost
//! and 127.0.0.1) comes from a test CA (tests/fixtures/tls: made for these tests only, valid
//! until 2126): trusted through `Roots::from_pem`, as the Kubernetes store trusts a
//! cluster's CA; refused with Mozilla's roots; a handshake that never completes ends at the
//! timeout.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use supakeys::http::{Client, HttpError, Request, Roots, Target};

const CA: &[u8] = include_bytes!("fixtures/tls/ca.pem");
const LEAF: &[u8] = include_bytes!("fixtures/tls/leaf.pem");
const LEAF_KEY: &[u8] = include_bytes!("fixtures/tls/leaf.key");

/// Serves one TLS connection on a local port: answers any request with 200 "ok".
fn serve_once() -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(LEAF).unwrap()],
            PrivateKeyDer::from_pem_slice(LEAF_KEY).unwrap(),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, socket);
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    port
}

fn get(url: &str, roots: Roots) -> Result<Vec<u8>, HttpError> {
    let target = Target::parse(url).unwrap();
    let client = Client::new(&target, roots, Duration::from_secs(10))?;
    client.send(&Request::get("/x")).map(|r| r.body)
}

#[test]
fn a_server_of_a_given_ca_is_trusted_by_name_and_by_address() {
    for host in ["localhost", "127.0.0.1"] {
        let port = serve_once();
        let roots = Roots::from_pem(CA).unwrap();
        assert_eq!(
            get(&format!("https://{host}:{port}"), roots),
            Ok(b"ok".to_vec())
        );
    }
}

#[test]
fn a_server_of_an_unknown_ca_is_refused() {
    let port = serve_once();
    let result = get(&format!("https://localhost:{port}"), Roots::mozilla());
    assert!(
        matches!(&result, Err(HttpError::Tls { detail }) if detail.contains("UnknownIssuer")),
        "{result:?}"
    );
}

#[test]
fn a_handshake_that_never_completes_ends_at_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = Target::parse(&format!("https://{}", listener.local_addr().unwrap())).unwrap();
    let client = Client::new(
        &target,
        Roots::from_pem(CA).unwrap(),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(
        client.send(&Request::get("/")),
        Err(HttpError::Timeout {
            after: Duration::from_millis(300)
        })
    );
}
