//! The sync protocol on a connection: after the handshake, both sides run a
//! [`shouwang_core::sync::Session`] over their archive.
//!
//! The device greets the hub with its certificate; on `Welcome` it starts its session and the
//! hub starts its own, scoped to what the certificate's member may see. The device finishes its
//! half when both sessions are caught up (one-shot sync) — or, with `live`, says
//! [`Message::Live`], stays connected, sends changes made meanwhile when woken
//! ([`crate::transport::ConversationOptions::wake`]) and takes in what the hub passes on from
//! other devices.
//!
//! A one-shot sync ends as soon as the device holds what the hub held and the hub holds what the
//! device wrote: the hub leaves what other devices bring after the device's `Hello` for its next
//! sync (`Session::one_shot_peer`; `shouwang_core::sync::session`, point 7), listing those documents in its `Idle`. A sync
//! that has finished ignores frames still on their way from the hub: its half is closed, so it
//! could not answer them, and the next sync fetches what they carried.

use shouwang_core::Archive;
use shouwang_core::Error;
use shouwang_core::doc::DocId;
use shouwang_core::membership::Certificate;
use shouwang_core::sync::{Event, Progress, Session};

use crate::handshake::{MAGIC, Message, refused};
use crate::transport::{Conversation, Reply};

/// Called with the session's counters after every frame (for a progress display).
pub type ProgressHook = Box<dyn FnMut(&Progress) + Send>;

/// The device's side of a sync with the hub.
pub struct DeviceSync {
    archive: Archive,
    certificate: Vec<u8>,
    hub: String,
    session: Option<Session>,
    live: bool,
    caught_up: bool,
    /// One-shot: this side's half is finished.
    finished: bool,
    hook: Option<ProgressHook>,
}

impl std::fmt::Debug for DeviceSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSync")
            .field("hub", &self.hub)
            .field("live", &self.live)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl DeviceSync {
    /// A sync of `archive` with the hub whose endpoint id is `hub`.
    pub fn new(
        archive: Archive,
        certificate: &Certificate,
        hub: impl Into<String>,
        live: bool,
    ) -> DeviceSync {
        DeviceSync {
            archive,
            certificate: certificate.to_bytes(),
            hub: hub.into(),
            session: None,
            live,
            caught_up: false,
            finished: false,
            hook: None,
        }
    }

    /// Reports progress to `hook` after every frame.
    pub fn with_progress(mut self, hook: ProgressHook) -> DeviceSync {
        self.hook = Some(hook);
        self
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        self.session
            .as_ref()
            .map(Session::progress)
            .unwrap_or_default()
    }

    /// Whether the last exchange ended with both sides in sync.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// The archive back, after the conversation.
    pub fn into_archive(self) -> Archive {
        self.archive
    }

    /// Keeps a certificate the hub renewed (after its `Welcome`, over the authenticated
    /// connection): the same school, member and device key, issued no earlier (valid for
    /// longer, or naming the roles the member holds now, which can come within the second the
    /// last one was issued). The user sees nothing of it.
    fn renewed(&mut self, bytes: &[u8]) -> shouwang_core::Result<()> {
        let new = Certificate::from_bytes(bytes)?;
        let old = Certificate::from_bytes(&self.certificate)?;
        let (n, o) = (new.body(), old.body());
        if n.school_id != o.school_id || n.member != o.member || n.device != o.device {
            return Err(Error::Corrupt("学校服务器发来的新证书与本机不符".into()));
        }
        if (n.issued_at, n.expires_at) < (o.issued_at, o.expires_at) || n == o {
            return Ok(());
        }
        // Signed by the school key the invite pinned: a certificate that is not (a hub's bug,
        // a damaged frame) would have every peer and the hub refuse this phone until it joins
        // again. Judged at its own issue time: the hub's clock issued it, and this phone's may
        // be hours off.
        let invalid = || Error::Corrupt("学校服务器发来的新证书无效，继续使用原来的证书".into());
        let invite = self
            .archive
            .store()
            .meta(shouwang_core::membership::INVITE_META)?
            .ok_or_else(invalid)?;
        let invite = shouwang_core::membership::Invite::decode(&invite)?;
        new.verify(
            &invite.school_id,
            &invite.school_key,
            &n.device,
            n.issued_at,
        )
        .map_err(|_| invalid())?;
        let text = new.encode();
        self.archive.store().write(|b| {
            b.set_meta(crate::device::META_CERTIFICATE, &text);
            Ok(())
        })?;
        self.certificate = new.to_bytes();
        Ok(())
    }

    fn finish_if_done(
        &mut self,
        frames: Vec<Vec<u8>>,
        caught_up: bool,
    ) -> shouwang_core::Result<Reply> {
        self.caught_up = caught_up;
        if let (Some(hook), Some(session)) = (self.hook.as_mut(), self.session.as_ref()) {
            hook(&session.progress());
        }
        if caught_up {
            self.archive.record_sync_result(&self.hub, None)?;
            if !self.live {
                self.finished = true;
                return Ok(Reply::finish(frames));
            }
        }
        Ok(Reply::send(frames))
    }
}

impl Conversation for DeviceSync {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        let mut frames = vec![Message::Hello(self.certificate.clone()).encode()];
        if self.live {
            frames.push(Message::Live.encode());
        }
        Ok(Reply::send(frames))
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        if frame.first() == Some(&MAGIC) {
            return match Message::decode(frame)? {
                Message::Welcome(school) if self.session.is_none() => {
                    if &school != self.archive.school_id() {
                        return Err(Error::WrongSchool);
                    }
                    let mut session = self.archive.session(&self.hub, None)?;
                    let out = session.handle(self.archive.store(), Event::Start)?;
                    self.session = Some(session);
                    self.finish_if_done(out.frames, out.caught_up)
                }
                Message::Refused(reason) => {
                    let _ = self.archive.record_sync_result(&self.hub, Some(&reason));
                    Err(refused(&reason))
                }
                Message::Revoked => Err(Error::Revoked),
                Message::Certificate(bytes) if self.session.is_some() => {
                    // A renewal this phone cannot keep costs it nothing: the one it has stays.
                    if let Err(e) = self.renewed(&bytes) {
                        tracing::warn!("renewed certificate not kept: {e}");
                    }
                    Ok(Reply::nothing())
                }
                _ => Err(Error::Corrupt("握手顺序不对".into())),
            };
        }
        if self.finished {
            return Ok(Reply::nothing());
        }
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| Error::Corrupt("尚未握手就收到同步数据".into()))?;
        let school = if self.live {
            Some(self.archive.store().heads(&DocId::School)?)
        } else {
            None
        };
        let out = session.handle(self.archive.store(), Event::Frame(frame))?;
        // An erasure, a leave, an ended pairing or a withdrawn consent comes with the school
        // document: on a live connection, what this device may no longer hold goes now, not
        // when the connection ends (the app may be closed first, and the purge after the
        // conversation never run).
        if let Some(school) = school
            && self.archive.store().heads(&DocId::School)? != school
        {
            self.archive.purge_out_of_scope()?;
        }
        self.finish_if_done(out.frames, out.caught_up)
    }

    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        let Some(session) = self.session.as_mut() else {
            return Ok(Reply::nothing());
        };
        // Records the app wrote through its own connection to the store.
        let out = session.handle(self.archive.store(), Event::Poll)?;
        Ok(Reply::send(out.frames))
    }

    fn error_frame(&mut self, error: &Error) -> Option<Vec<u8>> {
        let _ = self
            .archive
            .record_sync_result(&self.hub, Some(&error.to_string()));
        Some(Message::Refused(error.to_string()).encode())
    }
}

/// Syncs `archive` with the hub once: greets with the certificate, exchanges until both sides
/// are caught up, and returns the archive with the session's counters.
pub async fn sync_once(
    node: &crate::transport::Node,
    hub: crate::transport::EndpointAddr,
    archive: Archive,
    certificate: &Certificate,
    opts: &crate::transport::ConversationOptions,
) -> Result<(Archive, Progress), crate::transport::TransportError> {
    sync_with_progress(node, hub, archive, certificate, opts, None).await
}

/// [`sync_once`], reporting progress after every frame.
pub async fn sync_with_progress(
    node: &crate::transport::Node,
    hub: crate::transport::EndpointAddr,
    archive: Archive,
    certificate: &Certificate,
    opts: &crate::transport::ConversationOptions,
    hook: Option<ProgressHook>,
) -> Result<(Archive, Progress), crate::transport::TransportError> {
    let mut conv = DeviceSync::new(archive, certificate, hub.id.to_string(), false);
    if let Some(hook) = hook {
        conv = conv.with_progress(hook);
    }
    let (conv, _stats) = node.converse(hub, conv, opts).await?;
    if !conv.caught_up() {
        return Err(crate::transport::TransportError::Protocol(
            "同步没有完成，请稍后再试".into(),
        ));
    }
    let progress = conv.progress();
    Ok((conv.into_archive(), progress))
}
