//! `http::read_response` on arbitrary bytes, received at once and in pieces of sizes the
//! input picks: it never panics, keeps its body bound, and where the bytes hold a response,
//! the pieces give the same one.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;
use supakeys::http::{MAX_BODY, read_response};

/// A connection that delivers `bytes` in pieces of the sizes in `sizes`, in turn.
struct Pieces<'a> {
    bytes: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let n = usize::from(size).min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let (sizes, bytes) = input.split_at(input.len().min(4));
    let whole = read_response(bytes);
    let pieces = if sizes.is_empty() {
        read_response(bytes)
    } else {
        read_response(Pieces { bytes, sizes, turn: 0 })
    };
    if let Ok(response) = &whole {
        assert!(response.body.len() <= MAX_BODY);
    }
    assert_eq!(whole.is_ok(), pieces.is_ok(), "{whole:?} / {pieces:?}");
    if let (Ok(a), Ok(b)) = (whole, pieces) {
        assert_eq!(a, b);
    }
});
