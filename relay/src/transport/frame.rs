//! Length-prefixed frames on a byte stream.
//!
//! ```text
//! frame = length:u32 (little-endian) | payload (length bytes)
//! ```
//!
//! A length over the limit is refused before anything is allocated, so a peer can never make
//! us reserve more than the limit. [`FrameReader`] keeps its progress in itself, so
//! [`FrameReader::next`] is cancel-safe and can sit in a `select!` beside timers.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::TransportError;

/// Largest frame payload accepted by default (16 MiB, the sync protocol's largest message).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest frame payload the hub accepts before it has welcomed the device (64 KiB): an
/// unauthenticated peer can make it reserve no more. Enrollment and certificates are far
/// smaller.
pub const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// How long an accepting side waits for an unauthenticated peer (a stream not yet opened, or
/// a conversation still limiting frames to [`HANDSHAKE_MAX_FRAME`]) before closing as idle.
/// An honest device sends its certificate or invite in its first packet after the QUIC
/// handshake; ten seconds covers an EDGE link losing a few of them.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads frames from a stream, one at a time.
#[derive(Debug)]
pub struct FrameReader {
    max: usize,
    header: [u8; HEADER_LEN],
    header_read: usize,
    /// The payload being read, once its length is known and accepted.
    body: Option<Vec<u8>>,
    body_read: usize,
}

impl FrameReader {
    /// A reader that refuses payloads longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameReader {
            max,
            header: [0; HEADER_LEN],
            header_read: 0,
            body: None,
            body_read: 0,
        }
    }

    /// Changes the limit for frames whose length has not been read yet.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Whether a frame has been started but not finished.
    pub fn in_frame(&self) -> bool {
        self.header_read > 0 || self.body.is_some()
    }

    /// The next frame, or `None` at a clean end of stream (between frames).
    ///
    /// Cancel-safe: dropping the future keeps what was read so far.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        while self.header_read < HEADER_LEN {
            let n = stream
                .read(&mut self.header[self.header_read..])
                .await
                .map_err(TransportError::io)?;
            if n == 0 {
                return if self.header_read == 0 {
                    Ok(None)
                } else {
                    Err(TransportError::Truncated)
                };
            }
            self.header_read += n;
        }
        if self.body.is_none() {
            let len = u32::from_le_bytes(self.header) as usize;
            if len > self.max {
                return Err(TransportError::FrameTooLarge { len, max: self.max });
            }
            self.body = Some(vec![0; len]);
            self.body_read = 0;
        }
        if let Some(body) = self.body.as_mut() {
            while self.body_read < body.len() {
                let n = stream
                    .read(&mut body[self.body_read..])
                    .await
                    .map_err(TransportError::io)?;
                if n == 0 {
                    return Err(TransportError::Truncated);
                }
                self.body_read += n;
            }
        }
        self.header_read = 0;
        self.body_read = 0;
        Ok(self.body.take())
    }
}

/// Writes one frame. Refuses (without writing anything) a payload over `max`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    stream: &mut W,
    payload: &[u8],
    max: usize,
) -> Result<(), TransportError> {
    if payload.len() > max || u32::try_from(payload.len()).is_err() {
        return Err(TransportError::FrameTooLarge {
            len: payload.len(),
            max,
        });
    }
    let header = (payload.len() as u32).to_le_bytes();
    stream
        .write_all(&header)
        .await
        .map_err(TransportError::io)?;
    stream
        .write_all(payload)
        .await
        .map_err(TransportError::io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn frames_round_trip_including_empty_ones() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for p in [&b"hello"[..], b"", &[7u8; 1000][..]] {
                write_frame(&mut a, p, 4096).await.unwrap();
            }
        });
        let mut r = FrameReader::new(4096);
        assert_eq!(r.next(&mut b).await.unwrap().unwrap(), b"hello");
        assert_eq!(r.next(&mut b).await.unwrap().unwrap(), b"");
        assert_eq!(r.next(&mut b).await.unwrap().unwrap(), vec![7u8; 1000]);
        writer.await.unwrap();
        assert!(r.next(&mut b).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        let mut r = FrameReader::new(1024);
        let err = r.next(&mut b).await.unwrap_err();
        assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
        assert!(r.body.is_none());
        // And the writer refuses to send one.
        let err = write_frame(&mut a, &[0; 1025], 1024).await.unwrap_err();
        assert!(matches!(err, TransportError::FrameTooLarge { .. }));
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error() {
        for cut in [2usize, 4, 6] {
            let (mut a, mut b) = tokio::io::duplex(64);
            let mut bytes = 5u32.to_le_bytes().to_vec();
            bytes.extend_from_slice(b"abcde");
            a.write_all(&bytes[..cut]).await.unwrap();
            drop(a);
            let mut r = FrameReader::new(1024);
            let err = r.next(&mut b).await.unwrap_err();
            assert!(
                matches!(err, TransportError::Truncated),
                "cut at {cut}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn reading_survives_cancellation_mid_frame() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let mut r = FrameReader::new(1024);
        a.write_all(&3u32.to_le_bytes()).await.unwrap();
        a.write_all(b"x").await.unwrap();
        // Not enough bytes yet: time out, which drops the future mid-frame.
        let t = tokio::time::timeout(std::time::Duration::from_millis(20), r.next(&mut b)).await;
        assert!(t.is_err());
        assert!(r.in_frame());
        a.write_all(b"yz").await.unwrap();
        assert_eq!(r.next(&mut b).await.unwrap().unwrap(), b"xyz");
    }
}
