//! The frame loop both sides run over one bidirectional stream (see the module docs of
//! [`crate::transport`]).

use iroh::endpoint::{Connection, ConnectionError, RecvStream, SendStream, VarInt};
use std::time::Duration;
use tokio::sync::watch;

use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::frame::{FrameReader, HANDSHAKE_TIMEOUT, HEADER_LEN, write_frame};
use super::node::AUTHENTICATED_WINDOW;
use super::{
    Conversation, ConversationOptions, Reply, Stats, TransportError, TransportMetrics, Wake, close,
};

/// The slowest link a phone is expected to sync over, in bytes a second: 2G at its worst
/// (GPRS gives 4 KB/s on a good day). What this side has sent may take this long to reach
/// the peer, during which nothing moves on the connection that this side could observe.
const SLOWEST_LINK: f64 = 1_000.0;

/// How often a dialer waiting to dial again looks whether its handshake is confirmed.
pub(crate) const CONFIRM_POLL: Duration = Duration::from_millis(20);

/// The shortest round trip on which a dialer sends tail probes (module docs, point 9): on a
/// faster link QUIC's own probe timeout is short enough.
const TAIL_PROBE_RTT: Duration = Duration::from_millis(200);

/// The largest flight a tail probe follows (a few datagrams of payload).
const TAIL_PROBE_FLIGHT: usize = 16 * 1024;

/// The longest close reason sent (QUIC packets are small; reasons are one sentence).
const MAX_REASON: usize = 400;

/// One side of a conversation in progress.
pub(crate) struct Driver<'a, C> {
    pub conn: &'a Connection,
    pub send: SendStream,
    pub recv: RecvStream,
    pub opts: &'a ConversationOptions,
    pub metrics: Option<&'a TransportMetrics>,
    /// Cancelled when the node shuts down.
    pub shutdown: Option<CancellationToken>,
    /// `Some` while the conversation is not on the blocking pool.
    pub conversation: Option<C>,
    pub stats: Stats,
    pub side: Side,
    /// Our conversation has nothing more to send.
    pub local_done: bool,
    /// We have read the peer's end of stream.
    pub remote_done: bool,
    /// Our half of the stream is finished.
    pub finished: bool,
    /// Bytes written since the last frame read: the peer may still be receiving them (see
    /// [`Driver::quiet_limit`]).
    pub unread_out: u64,
    /// An acceptor's: leave the connection open when both halves are finished, for the next
    /// stream (a warm connection, point 6 of the module docs), rather than wait for the
    /// dialer's close. A dialer always returns once its own half is finished
    /// ([`Ended::unread`]); its node keeps the connection or closes it.
    pub keep_open: bool,
    /// A dialer on a connection it just made: if QUIC has not seen the handshake confirmed by
    /// then, and no frame came, the driver returns [`Ended::redial`] (module docs, point 8).
    pub redial_by: Option<Instant>,
    /// A dialer's tail probe after the frames it wrote last (module docs, point 9): when to
    /// send it, and the stream data received by then, which an answer moves.
    pub tail_probe: Option<(Instant, u64)>,
}

/// A conversation that ended well.
pub(crate) struct Ended<C> {
    pub conversation: C,
    pub stats: Stats,
    /// A dialer returns as soon as its conversation is done and its half of the stream
    /// finished: it has heard what it needed, and the close (the acceptor reading our end,
    /// then finishing its own) would cost the user one more round trip. What is left of the
    /// acceptor's half, answers to our last frames at most, is read and dropped in the
    /// background ([`drain`]) on the connection still open, so the acceptor can finish; a
    /// connection not kept warm is closed after that.
    pub unread: Option<RecvStream>,
    /// The handshake was not confirmed by [`Driver::redial_by`] and nothing came: the
    /// conversation has sent its opening only, and its node runs it again, opening and all,
    /// on a new connection. (Only ever set for a dialer given `redial_by`.)
    pub redial: bool,
}

/// Reads `recv` to its end (or for at most `limit`), dropping what comes.
pub(crate) async fn drain(mut recv: RecvStream, limit: Duration) {
    let _ = timeout(limit, async {
        while let Ok(Some(_)) = recv.read_chunk(64 * 1024).await {}
    })
    .await;
}

/// Which end of the connection a driver is; decides who closes a finished conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Dialer,
    Acceptor,
}

/// STREAM frames sent and received so far on `conn`: it moves while a frame is being
/// delivered (the receiver gets data, the sender sends and resends it), and not for keep-alive
/// pings or acknowledgements alone.
fn stream_frames(conn: &Connection) -> u64 {
    let stats = conn.stats();
    stats.frame_rx.stream + stats.frame_tx.stream
}

/// Whether the peer has confirmed the QUIC handshake (a client hears HANDSHAKE_DONE; RFC 9001
/// §4.1.2): until then a lost `Finished` of ours holds up everything we send.
pub(crate) fn handshake_confirmed(conn: &Connection) -> bool {
    conn.stats().frame_rx.handshake_done > 0
}

/// Whether the peer has confirmed the handshake or sent stream data (a large first frame still
/// arriving also shows the handshake complete on its side): no redial then.
fn answered(conn: &Connection) -> bool {
    handshake_confirmed(conn) || conn.stats().frame_rx.stream > 0
}

/// Resolves at the next wake; never, without a listener or once the [`Wake`] is gone.
async fn woken(wake: &mut Option<watch::Receiver<u64>>) {
    if let Some(listener) = wake.as_mut()
        && listener.changed().await.is_ok()
    {
        return;
    }
    *wake = None;
    std::future::pending::<()>().await
}

pub(crate) fn is_done(closed: &ConnectionError) -> bool {
    is_closed_with(closed, close::DONE)
}

/// Whether the peer closed with `code`.
pub(crate) fn is_closed_with(closed: &ConnectionError, code: u32) -> bool {
    matches!(closed, ConnectionError::ApplicationClosed(ac)
        if ac.error_code.into_inner() == u64::from(code))
}

impl<'a, C: Conversation> Driver<'a, C> {
    /// Runs the conversation to its end. On success the conversation is handed back, and,
    /// for a dialer, the stream's receiving half if the acceptor's end has not been read yet
    /// (see [`Ended::unread`]).
    pub async fn run(mut self) -> Result<Ended<C>, TransportError> {
        let result = self.run_inner().await;
        if let Some(m) = self.metrics {
            m.ended(result.as_ref().map(|_| ()));
        }
        let (stats, redial) = result?;
        let unread = (!self.remote_done && !redial).then_some(self.recv);
        match self.conversation.take() {
            Some(conversation) => Ok(Ended {
                conversation,
                stats,
                unread,
                redial,
            }),
            None => Err(TransportError::io("会话状态丢失")),
        }
    }

    /// The conversation's stats, and whether it is to run again on a new connection
    /// ([`Ended::redial`]).
    async fn run_inner(&mut self) -> Result<(Stats, bool), TransportError> {
        // Wakes from here on count: the opening covers everything before.
        let mut wake = self.opts.wake.as_ref().map(Wake::listen);
        let reply = self.call(|c| c.opening()).await;
        self.after(reply).await?;
        let mut reader = FrameReader::new(self.opts.max_frame);
        reader.set_max(self.frame_limit());
        let shutdown = self.shutdown.clone().unwrap_or_default();
        let mut deadline = Instant::now() + self.quiet_limit();
        let mut last_moved = stream_frames(self.conn);
        let mut widened = false;
        let conn = self.conn;
        let mut redial_by = self.redial_by;
        // Until then the peer's next frame is not read ([`Conversation::hold_off`]).
        let mut resume_at: Option<Instant> = None;
        loop {
            if self.local_done && self.finished && (self.side == Side::Dialer || self.keep_open) {
                // Our half is finished (the acceptor's only after reading all of ours) and the
                // connection stays open to deliver it; a dialer leaves the rest of the
                // acceptor's half to `Ended::unread`, and the connection to its node.
                return Ok((self.stats, false));
            }
            tokio::select! {
                biased;
                closed = conn.closed() => {
                    if self.local_done && self.remote_done && is_done(&closed) {
                        return Ok((self.stats, false));
                    }
                    // The peer closed while we still had something to say or hear.
                    return Err(peer_close(conn).unwrap_or_else(|| TransportError::io(closed)));
                }
                _ = shutdown.cancelled() => {
                    conn.close(VarInt::from_u32(close::SHUTDOWN), "服务器正在关闭".as_bytes());
                    return Err(TransportError::ShuttingDown);
                }
                _ = sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => {
                    resume_at = None;
                    // Held back by this side: the wait is not the peer's silence.
                    deadline = deadline.max(Instant::now() + self.quiet_limit());
                }
                read = reader.next(&mut self.recv), if !self.remote_done && resume_at.is_none() => {
                    match read {
                        Ok(Some(frame)) => {
                            self.count_in(frame.len());
                            self.unread_out = 0;
                            let reply = self.call(move |c| c.on_frame(&frame)).await;
                            self.after(reply).await?;
                            reader.set_max(self.frame_limit());
                            if !widened && self.side == Side::Acceptor && self.authenticated() {
                                // Authenticated: the connection may use a full window now.
                                conn.set_receive_window(VarInt::from_u32(AUTHENTICATED_WINDOW));
                                widened = true;
                            }
                            deadline = Instant::now() + self.quiet_limit();
                            if let Some(wait) = self.conversation.as_mut().and_then(C::hold_off) {
                                let until = Instant::now() + wait;
                                resume_at = Some(until);
                                deadline = deadline.max(until + self.quiet_limit());
                            }
                        }
                        Ok(None) => {
                            self.remote_done = true;
                            // The dialer decides when a conversation is over: once it has
                            // finished, the acceptor has answered everything it sent.
                            if self.side == Side::Acceptor {
                                self.local_done = true;
                            }
                            self.finish_if_due();
                        }
                        Err(e) => return Err(self.read_failed(e)),
                    }
                }
                // Not while a redial may come: only the opening may be replayed.
                _ = woken(&mut wake), if wake.is_some() && (redial_by.is_none() || answered(conn)) && !self.local_done && self.listening() => {
                    let reply = self.call(|c| c.on_wake()).await;
                    self.after(reply).await?;
                    deadline = Instant::now() + self.quiet_limit();
                }
                // Looked at every `CONFIRM_POLL` until then: wakes wait for the answer.
                _ = sleep_until(redial_by.map_or(deadline, |by| by.min(Instant::now() + CONFIRM_POLL))), if redial_by.is_some() => {
                    if answered(conn) {
                        redial_by = None;
                    } else if redial_by.is_some_and(|by| Instant::now() >= by) {
                        return Ok((self.stats, true));
                    }
                }
                _ = sleep_until(self.tail_probe.map_or(deadline, |(at, _)| at)), if self.tail_probe.is_some() => {
                    if let Some((_, seen)) = self.tail_probe.take()
                        && conn.stats().frame_rx.stream == seen
                    {
                        // Ack-eliciting; nobody reads it (a node buffers at most
                        // `DATAGRAM_BUFFER` bytes of them).
                        let _ = conn.send_datagram(bytes::Bytes::from_static(&[0]));
                    }
                }
                _ = sleep_until(deadline) => {
                    // Quiet means no stream data moving either way, not "no whole frame":
                    // on 2G one frame can take longer to cross than the idle timeout.
                    let moved = stream_frames(conn);
                    if self.trusts_slow_frames() && moved != last_moved {
                        last_moved = moved;
                        deadline = Instant::now() + self.quiet_limit();
                        continue;
                    }
                    conn.close(VarInt::from_u32(close::IDLE), "空闲超时".as_bytes());
                    return Err(TransportError::Idle);
                }
            }
        }
    }

    /// Finishes our half of the stream when the close rule allows: the dialer as soon as its
    /// conversation is done; the acceptor only once it has also read the dialer's end, so that
    /// the dialer, on reading the acceptor's end, knows both sides have everything.
    fn finish_if_due(&mut self) {
        if self.local_done && !self.finished && (self.side == Side::Dialer || self.remote_done) {
            self.finished = true;
            // Only fails if already finished, which `finished` rules out.
            let _ = self.send.finish();
        }
    }

    /// How long the connection may stay quiet: the idle timeout, or, while the conversation
    /// has not authenticated the peer (it limits frames to the handshake's size), at most
    /// [`HANDSHAKE_TIMEOUT`], so a stranger holds a connection slot for seconds, not a minute.
    /// (Once this side has finished, say after sending an enrolling device its bundle, the
    /// strict limit no longer applies, whatever the peer's standing.)
    ///
    /// A trusted peer is also allowed the time what we sent since its last frame takes to
    /// cross [`SLOWEST_LINK`]: once written, our frames sit in the network's buffers, and on
    /// 2G a large one takes minutes to arrive while this side sees nothing move.
    fn quiet_limit(&self) -> Duration {
        if !self.trusts_slow_frames() {
            self.opts.idle_timeout.min(HANDSHAKE_TIMEOUT)
        } else {
            self.opts.idle_timeout + Duration::from_secs_f64(self.unread_out as f64 / SLOWEST_LINK)
        }
    }

    /// Whether stream data still moving keeps the connection from being idle: once the peer
    /// is authenticated, or once this side has said all it had to. A stranger must finish its
    /// small handshake frames within [`HANDSHAKE_TIMEOUT`], however slowly it trickles them.
    fn trusts_slow_frames(&self) -> bool {
        self.authenticated() || self.local_done
    }

    /// Whether the conversation has authenticated the peer (it no longer limits frames).
    fn authenticated(&self) -> bool {
        self.conversation
            .as_ref()
            .is_some_and(|c| c.max_frame().is_none())
    }

    /// The largest frame the conversation accepts now.
    fn frame_limit(&self) -> usize {
        self.conversation
            .as_ref()
            .and_then(C::max_frame)
            .map_or(self.opts.max_frame, |m| m.min(self.opts.max_frame))
    }

    /// Whether the conversation takes wakes now (see [`Conversation::listening`]).
    fn listening(&self) -> bool {
        self.conversation.as_ref().is_some_and(C::listening)
    }

    /// Runs a conversation callback on the blocking pool.
    async fn call<F>(&mut self, f: F) -> shouwang_core::Result<Reply>
    where
        F: FnOnce(&mut C) -> shouwang_core::Result<Reply> + Send + 'static,
    {
        let Some(mut conv) = self.conversation.take() else {
            return Err(shouwang_core::Error::NotPermitted("会话已结束".into()));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let r = f(&mut conv);
            (conv, r)
        })
        .await;
        match joined {
            Ok((conv, r)) => {
                self.conversation = Some(conv);
                r
            }
            Err(e) => Err(shouwang_core::Error::NotPermitted(format!(
                "会话内部出错：{e}"
            ))),
        }
    }

    /// Sends a reply, or refuses the peer if the conversation failed.
    async fn after(&mut self, reply: shouwang_core::Result<Reply>) -> Result<(), TransportError> {
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(e).await),
        };
        if self.local_done && !reply.frames.is_empty() {
            self.abort(close::PROTOCOL, "会话结束后仍要发送消息");
            return Err(TransportError::Protocol("会话结束后仍要发送消息".into()));
        }
        let seen = self.conn.stats().frame_rx.stream;
        let mut written = 0;
        for f in &reply.frames {
            if let Err(e) = write_frame(&mut self.send, f, self.opts.max_frame).await {
                return Err(self.write_failed(e));
            }
            self.count_out(f.len());
            written += f.len();
        }
        // Armed once the flight is queued; not for a large one, which is still leaving when
        // the probe is due and whose later packets show a loss anyway.
        if self.side == Side::Dialer
            && (1..=TAIL_PROBE_FLIGHT).contains(&written)
            && let Some(rtt) = super::node::selected_rtt(self.conn)
                .or_else(|| self.conn.rtt(iroh::endpoint::PathId::ZERO))
                .filter(|r| *r >= TAIL_PROBE_RTT)
        {
            self.tail_probe = Some((Instant::now() + rtt / 4, seen));
        }
        if reply.done {
            self.local_done = true;
            self.finish_if_due();
        }
        Ok(())
    }

    /// Sends the conversation's error frame and closes with the error as the reason.
    async fn refuse(&mut self, error: shouwang_core::Error) -> TransportError {
        let frame = self
            .conversation
            .as_mut()
            .and_then(|c| c.error_frame(&error));
        if !self.finished {
            if !self.local_done
                && let Some(f) = frame
                && write_frame(&mut self.send, &f, self.opts.max_frame)
                    .await
                    .is_ok()
            {
                self.count_out(f.len());
            }
            self.local_done = true;
            self.finished = true;
            let _ = self.send.finish();
            // Give the peer a moment to read the error frame before the close discards it.
            let _ = timeout(self.opts.close_timeout, self.send.stopped()).await;
        }
        self.abort(close::REFUSED, &error.to_string());
        TransportError::Conversation(error)
    }

    fn abort(&self, code: u32, reason: &str) {
        self.conn.close(
            VarInt::from_u32(code),
            truncate(reason, MAX_REASON).as_bytes(),
        );
    }

    fn read_failed(&mut self, e: TransportError) -> TransportError {
        match e {
            TransportError::FrameTooLarge { .. } => {
                self.abort(close::TOO_LARGE, &e.to_string());
                e
            }
            other => {
                let from_peer = peer_close(self.conn);
                if from_peer.is_none() {
                    self.abort(close::PROTOCOL, &other.to_string());
                }
                from_peer.unwrap_or(other)
            }
        }
    }

    fn write_failed(&mut self, e: TransportError) -> TransportError {
        if let TransportError::FrameTooLarge { .. } = e {
            // Our own conversation produced it: a bug on this side, but the peer must not
            // wait for a frame that never comes.
            self.abort(close::PROTOCOL, "消息过大");
            return e;
        }
        peer_close(self.conn).unwrap_or(e)
    }

    fn count_in(&mut self, len: usize) {
        let bytes = (len + HEADER_LEN) as u64;
        self.stats.frames_in += 1;
        self.stats.bytes_in += bytes;
        if let Some(m) = self.metrics {
            TransportMetrics::add(&m.frames_in, 1);
            TransportMetrics::add(&m.bytes_in, bytes);
        }
    }

    fn count_out(&mut self, len: usize) {
        let bytes = (len + HEADER_LEN) as u64;
        self.unread_out += bytes;
        self.stats.frames_out += 1;
        self.stats.bytes_out += bytes;
        if let Some(m) = self.metrics {
            TransportMetrics::add(&m.frames_out, 1);
            TransportMetrics::add(&m.bytes_out, bytes);
        }
    }
}

/// How the peer closed the connection, if it did, as an error.
pub(crate) fn peer_close(conn: &Connection) -> Option<TransportError> {
    match conn.close_reason()? {
        ConnectionError::ApplicationClosed(ac) => {
            let reason = String::from_utf8_lossy(&ac.reason).into_owned();
            let code = ac.error_code.into_inner();
            Some(match u32::try_from(code).unwrap_or(u32::MAX) {
                close::DONE => TransportError::Io("对方已结束会话".into()),
                close::IDLE => TransportError::Idle,
                close::REFUSED => TransportError::Refused(reason),
                close::SHUTDOWN => TransportError::ShuttingDown,
                close::BUSY | close::STRANGER => TransportError::Refused(reason),
                close::TOO_LARGE => {
                    TransportError::Protocol(format!("对方拒收过大的消息：{reason}"))
                }
                close::PROTOCOL => TransportError::Protocol(reason),
                close::REDIAL => TransportError::Redialed,
                _ => TransportError::Io(format!("对方以代码 {code} 关闭：{reason}")),
            })
        }
        ConnectionError::LocallyClosed => None,
        other => Some(TransportError::io(other)),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
