//! A connection's first bytes, within a deadline. hyper's automatic
//! HTTP/1-or-2 detection reads until it can tell the two apart and has no
//! timeout of its own, so a socket that sends nothing (or a few bytes)
//! would be held forever. The bytes read here are given back to hyper
//! first, through [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The stream, once enough bytes came to tell HTTP/1 from HTTP/2; `None`
/// when the deadline passed or the peer closed first.
pub async fn wait(mut stream: TcpStream, timeout: Duration) -> Option<Prefixed> {
    let mut prefix = Vec::with_capacity(H2_PREFACE.len());
    let read = async {
        let mut buf = [0u8; 24];
        loop {
            let want = H2_PREFACE.len() - prefix.len();
            let n = stream.read(&mut buf[..want]).await.ok()?;
            if n == 0 {
                return None;
            }
            prefix.extend_from_slice(&buf[..n]);
            // HTTP/1 as soon as the bytes leave the preface; HTTP/2 once
            // the whole preface is in.
            if !H2_PREFACE.starts_with(&prefix) || prefix.len() == H2_PREFACE.len() {
                return Some(());
            }
        }
    };
    tokio::time::timeout(timeout, read).await.ok()??;
    Some(Prefixed {
        prefix,
        at: 0,
        stream,
    })
}

/// A stream whose first bytes were already read: they are read again first.
pub struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let rest = &this.prefix[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn silence_and_a_partial_preface_time_out() {
        let (_quiet, server) = pair().await;
        assert!(wait(server, Duration::from_millis(200)).await.is_none());
        let (mut partial, server) = pair().await;
        partial.write_all(&H2_PREFACE[..10]).await.unwrap();
        assert!(wait(server, Duration::from_millis(200)).await.is_none());
    }

    #[tokio::test]
    async fn the_bytes_read_are_read_again() {
        let (mut client, server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut io = wait(server, Duration::from_secs(5)).await.unwrap();
        let mut got = [0u8; 16];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");
        let (mut client, server) = pair().await;
        client.write_all(H2_PREFACE).await.unwrap();
        let mut io = wait(server, Duration::from_secs(5)).await.unwrap();
        let mut got = [0u8; 24];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, H2_PREFACE);
    }
}
