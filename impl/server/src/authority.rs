//! Repairs the HTTP/2 `:authority` that etcd 3.4's clients send on the connections they dial
//! to one endpoint (clientv3's `Dial`, used by `etcdctl endpoint status`, `snapshot save`,
//! `defrag`, `hashkv`...): the endpoint URL itself, e.g. `http://127.0.0.1:2379`, which is not
//! an authority. etcd's Go server ignores it; the Rust `h2` crate refuses such a request with
//! `PROTOCOL_ERROR` and has no option to accept it. [`AuthorityFix`] sits between the client's
//! byte stream (TCP, or TLS over it: the frames it reads are the plain ones) and the HTTP/2
//! server and rewrites those header blocks before `h2` decodes them.
//!
//! How: the client's bytes are parsed as HTTP/2 frames (after the connection preface). At the
//! first header block of the connection it decides, once:
//! - the authority is valid or absent (every ordinary client): the block and everything after
//!   it pass through untouched, and the wrapper only forwards reads from then on;
//! - it is not: from then on every header block (HEADERS and its CONTINUATIONs) is decoded with
//!   the client's HPACK context and re-encoded as literals without indexing (so the server's
//!   decoder table never changes and cannot drift from ours), with the authority replaced by
//!   the `host:port` inside it, or dropped if none parses. Other frames pass through.
//!
//! Invariants:
//! - Bytes the wrapper cannot make sense of (no preface, a frame longer than the server accepts,
//!   a header block HPACK cannot decode) pass through unchanged from that point on, so `h2`
//!   reports the error it would have reported without the wrapper.
//! - Writes (server to client) are never touched.
//! - Buffered input is bounded: a frame is at most [`FRAME_LEN_MAX`] bytes and a header block at
//!   most [`HEADER_BLOCK_LEN_MAX`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's length.
const FRAME_HEADER_LEN: usize = 9;
/// The largest frame payload the server accepts (HTTP/2's default `SETTINGS_MAX_FRAME_SIZE`,
/// which the server does not raise); also the largest frame the wrapper writes.
const FRAME_LEN_MAX: usize = 16_384;
/// The largest header block (HEADERS plus CONTINUATIONs) the wrapper rewrites.
const HEADER_BLOCK_LEN_MAX: usize = 256 * 1024;
/// Bytes read from the client at a time.
const READ_CHUNK_LEN: usize = 16 * 1024;

const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// What the wrapper does with the client's bytes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Waiting for the connection preface.
    Preface,
    /// Before the first header block: frames pass through; the first block decides.
    Deciding,
    /// Every header block is re-encoded (the client's authority is not one).
    Rewrite,
    /// Everything passes through.
    PassThrough,
}

/// A header block being collected: its first frame's stream and flags, and its fragments.
struct Block {
    stream: [u8; 4],
    flags: u8,
    /// The frames as received, for passing them through unchanged.
    raw: Vec<u8>,
    fragment: Vec<u8>,
}

/// A client stream whose HTTP/2 header blocks get a valid `:authority` (see the module doc).
pub(crate) struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    /// Client bytes read and not yet handled.
    input: Vec<u8>,
    /// Bytes ready for the HTTP/2 server, from `output_at` on.
    output: Vec<u8>,
    output_at: usize,
    block: Option<Block>,
    decoder: hpack::Decoder<'static>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub(crate) fn new(inner: S) -> AuthorityFix<S> {
        AuthorityFix {
            inner,
            mode: Mode::Preface,
            input: Vec::new(),
            output: Vec::new(),
            output_at: 0,
            block: None,
            decoder: hpack::Decoder::new(),
            eof: false,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Stops interpreting: everything buffered and everything after passes through.
    fn pass_through(&mut self) {
        if let Some(block) = self.block.take() {
            self.output.extend_from_slice(&block.raw);
        }
        self.output.append(&mut self.input);
        self.mode = Mode::PassThrough;
    }

    /// Moves what can be handled from `input` to `output`.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::PassThrough => {
                    self.output.append(&mut self.input);
                    return;
                }
                Mode::Preface => {
                    let n = self.input.len().min(PREFACE.len());
                    if self.input.get(..n) != PREFACE.get(..n) {
                        self.pass_through();
                        return;
                    }
                    if n < PREFACE.len() {
                        return;
                    }
                    self.output.extend(self.input.drain(..PREFACE.len()));
                    self.mode = Mode::Deciding;
                }
                Mode::Deciding | Mode::Rewrite => {
                    let Some((kind, flags, stream, len)) = frame_header(&self.input) else {
                        return;
                    };
                    if len > FRAME_LEN_MAX {
                        self.pass_through();
                        return;
                    }
                    if self.input.len() < FRAME_HEADER_LEN + len {
                        return;
                    }
                    let frame: Vec<u8> = self.input.drain(..FRAME_HEADER_LEN + len).collect();
                    self.frame(kind, flags, stream, frame);
                }
            }
        }
    }

    /// Handles one whole frame (header included).
    fn frame(&mut self, kind: u8, flags: u8, stream: [u8; 4], frame: Vec<u8>) {
        let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
        match (kind, self.block.as_mut()) {
            (TYPE_HEADERS, None) => {
                let Some(fragment) = headers_fragment(flags, payload) else {
                    self.output.extend_from_slice(&frame);
                    self.pass_through();
                    return;
                };
                self.block = Some(Block {
                    stream,
                    flags,
                    fragment: fragment.to_vec(),
                    raw: frame.clone(),
                });
                if flags & FLAG_END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            (TYPE_CONTINUATION, Some(block)) => {
                block.raw.extend_from_slice(&frame);
                block.fragment.extend_from_slice(payload);
                if block.raw.len() > HEADER_BLOCK_LEN_MAX {
                    self.pass_through();
                } else if flags & FLAG_END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            // A CONTINUATION without its HEADERS, or another frame inside a header block:
            // h2 reports the protocol error.
            (TYPE_CONTINUATION, None) | (_, Some(_)) => {
                self.output.extend_from_slice(&frame);
                self.pass_through();
            }
            (_, None) => self.output.extend_from_slice(&frame),
        }
    }

    /// A header block is complete: decide (first block) or rewrite it.
    fn finish_block(&mut self) {
        let Some(block) = self.block.take() else {
            return;
        };
        let Ok(headers) = self.decoder.decode(&block.fragment) else {
            self.output.extend_from_slice(&block.raw);
            self.pass_through();
            return;
        };
        if self.mode == Mode::Deciding {
            let valid = headers
                .iter()
                .filter(|(name, _)| name == b":authority")
                .all(|(_, value)| Authority::try_from(value.as_slice()).is_ok());
            if valid {
                self.output.extend_from_slice(&block.raw);
                self.pass_through();
                return;
            }
            tracing::debug!("a client sent an invalid :authority; rewriting its header blocks");
            self.mode = Mode::Rewrite;
        }
        let mut encoded = Vec::new();
        for (name, value) in &headers {
            if name == b":authority" {
                if let Some(fixed) = repaired(value) {
                    encode_literal(&mut encoded, name, &fixed);
                }
            } else {
                encode_literal(&mut encoded, name, value);
            }
        }
        write_block(
            &mut self.output,
            block.stream,
            block.flags & FLAG_END_STREAM,
            &encoded,
        );
    }
}

/// A frame header's type, flags, stream id and payload length, once 9 bytes are there.
fn frame_header(input: &[u8]) -> Option<(u8, u8, [u8; 4], usize)> {
    let header: &[u8; FRAME_HEADER_LEN] = input.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
    let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *header;
    let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
    Some((kind, flags, [s0, s1, s2, s3], len))
}

/// A HEADERS payload's header block fragment (padding and priority removed).
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<&[u8]> {
    let (pad, mut rest) = if flags & FLAG_PADDED != 0 {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    if flags & FLAG_PRIORITY != 0 {
        rest = rest.get(5..)?;
    }
    rest.get(..rest.len().checked_sub(pad)?)
}

/// The authority inside an endpoint URL (`http://host:port`, `https://host:port/...`,
/// etcd 3.5's `#initially=[http://host:port;...]`), if one parses.
fn repaired(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?;
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let host = after_scheme
        .split(['/', ';', ']', ','])
        .next()
        .unwrap_or_default();
    Authority::try_from(host)
        .ok()
        .map(|a| a.as_str().as_bytes().to_vec())
}

/// HPACK's "literal header field without indexing, new name", strings not Huffman-coded.
fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_string(out, name);
    encode_string(out, value);
}

fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_integer(out, bytes.len(), 7, 0x00);
    out.extend_from_slice(bytes);
}

/// HPACK's integer with an N-bit prefix (RFC 7541 § 5.1); `first` holds the bits above it.
fn encode_integer(out: &mut Vec<u8>, mut value: usize, prefix_bits: u32, first: u8) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes `block` as one HEADERS frame (END_HEADERS) or as HEADERS and CONTINUATIONs of at
/// most [`FRAME_LEN_MAX`] bytes each.
fn write_block(out: &mut Vec<u8>, stream: [u8; 4], end_stream: u8, block: &[u8]) {
    let mut chunks = block.chunks(FRAME_LEN_MAX).peekable();
    let mut kind = TYPE_HEADERS;
    let mut flags = end_stream;
    if chunks.peek().is_none() {
        write_frame(out, kind, flags | FLAG_END_HEADERS, stream, &[]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let end = if last { FLAG_END_HEADERS } else { 0 };
        write_frame(out, kind, flags | end, stream, chunk);
        kind = TYPE_CONTINUATION;
        flags = 0;
    }
}

fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: [u8; 4], payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream);
    out.extend_from_slice(payload);
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> S::ConnectInfo {
        self.get_ref().connect_info()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(ready) = this.output.get(this.output_at..).filter(|r| !r.is_empty()) {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(ready.get(..n).unwrap_or_default());
                this.output_at += n;
                if this.output_at == this.output.len() {
                    this.output.clear();
                    this.output_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::PassThrough && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.eof {
                // An incomplete frame at the end: hand it over as it is.
                if this.input.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.pass_through();
                continue;
            }
            let mut chunk = [0u8; READ_CHUNK_LEN];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.input.extend_from_slice(read.filled());
                        this.process();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A client's bytes: the preface, a SETTINGS frame, then a HEADERS frame per header list
    /// (HPACK-encoded with one encoder, as a client would).
    fn client_bytes(requests: &[&[(&[u8], &[u8])]]) -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        write_frame(&mut out, 0x4, 0, [0, 0, 0, 0], &[]);
        let mut encoder = hpack::Encoder::new();
        for (i, headers) in requests.iter().enumerate() {
            let block = encoder.encode(headers.iter().copied());
            let stream = u32::try_from(2 * i + 1).unwrap().to_be_bytes();
            write_frame(&mut out, TYPE_HEADERS, FLAG_END_HEADERS, stream, &block);
        }
        out
    }

    /// The header lists of every HEADERS frame in `bytes` (after the preface).
    fn header_lists(bytes: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut rest = &bytes[PREFACE.len()..];
        let mut decoder = hpack::Decoder::new();
        let mut lists = Vec::new();
        while let Some((kind, flags, _, len)) = frame_header(rest) {
            let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
            if kind == TYPE_HEADERS {
                let fragment = headers_fragment(flags, payload).unwrap();
                lists.push(decoder.decode(fragment).unwrap());
            }
            rest = &rest[FRAME_HEADER_LEN + len..];
        }
        lists
    }

    async fn through_fix(input: Vec<u8>) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut fixed = AuthorityFix::new(server);
        let mut out = Vec::new();
        fixed.read_to_end(&mut out).await.unwrap();
        out
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_valid_authority_passes_through_unchanged() {
        let headers: &[(&[u8], &[u8])] = &[
            (b":method", b"POST"),
            (b":authority", b"127.0.0.1:2379"),
            (b":path", b"/etcdserverpb.KV/Range"),
        ];
        let input = client_bytes(&[headers, headers]);
        assert_eq!(run(through_fix(input.clone())), input);
    }

    #[test]
    fn an_endpoint_url_authority_is_repaired_in_every_block() {
        let first: &[(&[u8], &[u8])] = &[
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", b"http://127.0.0.1:2379"),
            (b":path", b"/etcdserverpb.Maintenance/Status"),
            (b"te", b"trailers"),
        ];
        // The second request's headers come from the client's dynamic table.
        let input = client_bytes(&[first, first]);
        let lists = header_lists(&run(through_fix(input)));
        assert_eq!(lists.len(), 2);
        for list in lists {
            let authority: Vec<&[u8]> = list
                .iter()
                .filter(|(n, _)| n == b":authority")
                .map(|(_, v)| v.as_slice())
                .collect();
            assert_eq!(authority, [&b"127.0.0.1:2379"[..]]);
            assert_eq!(list.len(), 5);
        }
    }

    #[test]
    fn authorities_are_repaired_or_dropped() {
        assert_eq!(
            repaired(b"http://127.0.0.1:2379").as_deref(),
            Some(&b"127.0.0.1:2379"[..])
        );
        assert_eq!(
            repaired(b"#initially=[https://example.com:2379;http://b:1]").as_deref(),
            Some(&b"example.com:2379"[..])
        );
        assert_eq!(repaired(b"http://"), None);
    }

    #[test]
    fn garbage_passes_through() {
        let input = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(run(through_fix(input.clone())), input);
    }

    #[test]
    fn integers_follow_rfc_7541() {
        let mut out = Vec::new();
        encode_integer(&mut out, 10, 5, 0);
        assert_eq!(out, [10]);
        out.clear();
        encode_integer(&mut out, 1337, 5, 0);
        assert_eq!(out, [31, 154, 10]);
    }
}
