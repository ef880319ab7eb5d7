//! A fleet of members' phones for the reconnect storm (`relay/benches/storm.rs`): each phone
//! has its own device key and iroh endpoint, enrolls with a real invite, keeps its store open
//! between syncs as the app does, and writes records offline; helpers run every phone with a
//! bound on how many at a time, and sync them until all hold what the hub holds.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use automerge::ChangeHash;
use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::membership::{Certificate, Invite};
use shouwang_relay::handshake;
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{
    ConversationOptions, EndpointAddr, Node, NodeConfig, RelayUrl, SecretKey,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::big_school::{MemberPlan, SchoolPlan, record_input};
use crate::phone::now;
use crate::seeded::Xorshift;

/// A member's phone: its device key, certificate and store, and what it wrote for the storm.
pub struct Phone {
    pub idx: usize,
    pub plan: MemberPlan,
    pub member_id: String,
    pub secret: SecretKey,
    pub cert: Option<Certificate>,
    pub path: PathBuf,
    pub archive: Option<Archive>,
    /// Records written for the storm.
    pub storm_records: Vec<String>,
    /// The change bytes of those records, as the hub stores them (doc key, bytes).
    pub storm_changes: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("idx", &self.idx)
            .field("member_id", &self.member_id)
            .field("path", &self.path)
            .field("enrolled", &self.cert.is_some())
            .field("open", &self.archive.is_some())
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// The certificate it enrolled with.
    pub fn cert(&self) -> &Certificate {
        self.cert.as_ref().unwrap()
    }

    /// The phone's endpoint (a future that does not borrow the phone, which is not `Sync`).
    pub fn bind(&self, relay: &RelayUrl) -> impl Future<Output = Node> + Send + use<> {
        let config = NodeConfig::loopback(self.secret.clone()).with_relay(relay.clone());
        async move { Node::bind(config).await.unwrap() }
    }

    /// The archive, reopened if a failed sync consumed it.
    pub async fn take_archive(&mut self) -> Archive {
        match self.archive.take() {
            Some(a) => a,
            None => {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || Archive::open(&path))
                    .await
                    .unwrap()
                    .unwrap()
            }
        }
    }

    /// Writes `n` new records, offline; remembers their ids and change bytes (read from the
    /// documents: a write may fold a document's change rows into its snapshot).
    /// (A phone names the child: only 班主任 and leaders see 学籍号, which are private.)
    pub fn write_records(&mut self, children: &[String], n: usize, seed: u64) -> Vec<String> {
        let a = self.archive.as_mut().unwrap();
        let before: BTreeMap<DocId, String> = a.store().all_heads().unwrap().into_iter().collect();
        let mut rng = Xorshift(seed ^ (self.idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut ids = Vec::new();
        for k in 0..n {
            let child = self.plan.children[k % self.plan.children.len()];
            let input = record_input(&mut rng, &self.plan, k, &children[child]);
            ids.push(a.add_record(&input).unwrap().0);
        }
        self.storm_changes.clear();
        for (id, heads) in a.store().all_heads().unwrap() {
            let was: Vec<ChangeHash> = match before.get(&id) {
                Some(h) if *h == heads => continue,
                Some(h) => shouwang_core::store::parse_heads(h).expect("the store's own heads"),
                None => Vec::new(),
            };
            let doc = a.store().doc(&id).unwrap().unwrap();
            for change in doc.get_changes(&was) {
                self.storm_changes
                    .push((id.key(), change.raw_bytes().to_vec()));
            }
        }
        assert_eq!(self.storm_changes.len(), n, "one change per record");
        ids
    }
}

/// The conversation options every phone of the fleet uses (the defaults).
pub fn opts() -> ConversationOptions {
    ConversationOptions::default()
}

/// Runs `f` over every phone with at most `limit` at a time; the phones come back in order.
pub async fn each<T, F, Fut>(phones: Vec<Phone>, limit: usize, f: F) -> Vec<(Phone, T)>
where
    T: Send + 'static,
    F: Fn(Phone) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Phone, T)> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(limit));
    let mut set = JoinSet::new();
    for p in phones {
        let (sem, f) = (sem.clone(), f.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            f(p).await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out.sort_by_key(|(p, _)| p.idx);
    out
}

/// One sync; the phone keeps its archive.
pub async fn sync_phone(
    mut p: Phone,
    node: &Node,
    hub: EndpointAddr,
) -> (Phone, Result<u64, String>) {
    let archive = p.take_archive().await;
    match sync_once(node, hub, archive, p.cert(), &opts()).await {
        Ok((a, progress)) => {
            p.archive = Some(a);
            (p, Ok(progress.frames_sent))
        }
        Err(e) => (p, Err(e.to_string())),
    }
}

/// Syncs every phone (`limit` at a time) until a whole round is a no-op for all of them (one
/// `Hello` each way): then every phone and the hub hold the same documents.
pub async fn settle(
    mut phones: Vec<Phone>,
    relay: &RelayUrl,
    hub: &EndpointAddr,
    limit: usize,
) -> Vec<Phone> {
    for round in 1..=10 {
        let t = Instant::now();
        let (relay, hub) = (relay.clone(), hub.clone());
        let done = each(phones, limit, move |p| {
            let (relay, hub) = (relay.clone(), hub.clone());
            async move {
                let node = p.bind(&relay).await;
                let mut errors = Vec::new();
                let mut r = sync_phone(p, &node, hub.clone()).await;
                while let Err(e) = &r.1
                    && errors.len() < 5
                {
                    errors.push(e.clone());
                    r = sync_phone(r.0, &node, hub.clone()).await;
                }
                node.shutdown().await;
                (r.0, (r.1, errors))
            }
        })
        .await;
        let quiet = done
            .iter()
            .filter(|(_, (r, e))| *r == Ok(1) && e.is_empty())
            .count();
        let failed: Vec<String> = done
            .iter()
            .filter_map(|(_, (r, _))| r.as_ref().err().cloned())
            .collect();
        let retried: Vec<String> = done.iter().flat_map(|(_, (_, e))| e.clone()).collect();
        phones = done.into_iter().map(|(p, _)| p).collect();
        eprintln!(
            "  settle round {round}: {} phones, {quiet} already in sync, {} attempts failed, {:.1} s",
            phones.len(),
            retried.len(),
            t.elapsed().as_secs_f64()
        );
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &retried {
            *reasons.entry(e.as_str()).or_default() += 1;
        }
        for (e, n) in reasons {
            eprintln!("    {n} × {e}");
        }
        // A phone still failing is synced again in the next round.
        if failed.is_empty() && quiet == phones.len() {
            return phones;
        }
    }
    panic!("phones did not settle");
}

/// Enrolls a phone for each of the first `invites.len()` members of `plan` (`member_ids` in the
/// same order), 8 at a time: each binds its own endpoint, enrolls with its invite over the
/// network (`handshake::enroll`) and opens its store, in `dir`, from the bundle it received.
pub async fn enroll(
    plan: &SchoolPlan,
    member_ids: &[String],
    invites: Vec<Invite>,
    relay: &RelayUrl,
    dir: &Path,
) -> Vec<Phone> {
    let devices = invites.len();
    let phones: Vec<Phone> = (0..devices)
        .map(|i| Phone {
            idx: i,
            plan: plan.members[i].clone(),
            member_id: member_ids[i].clone(),
            secret: SecretKey::generate(),
            cert: None,
            path: dir.join(format!("phone{i:03}.db")),
            archive: None,
            storm_records: Vec::new(),
            storm_changes: Vec::new(),
        })
        .collect();
    let invites = Arc::new(invites);
    each(phones, 8, {
        let relay = relay.clone();
        move |mut p| {
            let (relay, invites) = (relay.clone(), invites.clone());
            async move {
                let node = p.bind(&relay).await;
                let invite = &invites[p.idx];
                let enrolled = handshake::enroll(&node, invite, now(), &opts())
                    .await
                    .unwrap();
                node.shutdown().await;
                let (path, member) = (p.path.clone(), p.member_id.clone());
                let archive = tokio::task::spawn_blocking(move || {
                    Archive::join_enrolled(&path, &enrolled.bundle, &member, &Default::default())
                })
                .await
                .unwrap()
                .unwrap();
                p.cert = Some(enrolled.certificate);
                p.archive = Some(archive);
                (p, ())
            }
        }
    })
    .await
    .into_iter()
    .map(|(p, ())| p)
    .collect()
}
