//! The link emulator's behaviour, asserted on counters and order. Timings are only checked as
//! lower bounds (the emulator never delivers early) or with generous upper bounds: the machine
//! is shared and noisy.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout};

use super::*;

fn any() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// A UDP echo server on loopback; returns its address.
async fn echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind(any()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// A UDP sink on loopback that records the first 4 bytes (a sequence number) of each datagram.
async fn sink() -> (SocketAddr, mpsc::UnboundedReceiver<(u32, Instant)>) {
    let socket = UdpSocket::bind(any()).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            if n >= 4 {
                let seq = u32::from_le_bytes(buf[..4].try_into().unwrap());
                if tx.send((seq, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    (addr, rx)
}

fn datagram(seq: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0xAB; len.max(4)];
    d[..4].copy_from_slice(&seq.to_le_bytes());
    d
}

/// Sends `count` datagrams of `len` bytes through `link` and collects what arrives until
/// nothing has arrived for `quiet`.
async fn blast(
    link: &Link,
    rx: &mut mpsc::UnboundedReceiver<(u32, Instant)>,
    count: u32,
    len: usize,
    quiet: Duration,
) -> Vec<(u32, Instant)> {
    let client = UdpSocket::bind(any()).await.unwrap();
    for seq in 0..count {
        client
            .send_to(&datagram(seq, len), link.addr())
            .await
            .unwrap();
        if seq % 10 == 9 {
            // Paced, so that no socket buffer overflows on the way in.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut got = Vec::new();
    while let Ok(Some(x)) = timeout(quiet, rx.recv()).await {
        got.push(x);
    }
    got
}

#[tokio::test]
async fn forwards_both_ways_and_counts() {
    let (target, _echo) = echo().await;
    let link = Link::start(LinkConfig::ideal(any(), target)).await.unwrap();
    let client = UdpSocket::bind(any()).await.unwrap();
    let mut buf = [0u8; 2048];
    for seq in 0..50u32 {
        client
            .send_to(&datagram(seq, 100), link.addr())
            .await
            .unwrap();
        let (n, from) = timeout(Duration::from_secs(10), client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, link.addr(), "replies come from the link's address");
        assert_eq!(&buf[..n], datagram(seq, 100).as_slice());
    }
    let s = link.stats();
    for d in [s.up, s.down] {
        assert_eq!(d.offered_datagrams, 50);
        assert_eq!(d.delivered_datagrams, 50);
        assert_eq!(d.delivered_bytes, 5_000);
        assert_eq!(d.lost + d.dropped_down + d.dropped_queue, 0);
    }
    // A second client gets its own mapping and its own replies.
    let other = UdpSocket::bind(any()).await.unwrap();
    other.send_to(b"second", link.addr()).await.unwrap();
    let (n, _) = timeout(Duration::from_secs(10), other.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"second");
}

#[tokio::test]
async fn delay_is_applied_each_way() {
    let (target, _echo) = echo().await;
    let mut config = LinkConfig::ideal(any(), target);
    config.up.delay = Duration::from_millis(150);
    config.down.delay = Duration::from_millis(100);
    let link = Link::start(config).await.unwrap();
    let client = UdpSocket::bind(any()).await.unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let sent = Instant::now();
        client.send_to(b"ping", link.addr()).await.unwrap();
        timeout(Duration::from_secs(10), client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        // A lower bound only: the link never delivers early.
        assert!(sent.elapsed() >= Duration::from_millis(250));
    }
}

#[tokio::test]
async fn jitter_never_reorders() {
    let (target, mut rx) = sink().await;
    let mut config = LinkConfig::ideal(any(), target);
    config.up.delay = Duration::from_millis(40);
    config.up.jitter = Duration::from_millis(35);
    let link = Link::start(config).await.unwrap();
    let got = blast(&link, &mut rx, 300, 200, Duration::from_secs(2)).await;
    let seqs: Vec<u32> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn loss_follows_the_seed() {
    let mut delivered = Vec::new();
    for _ in 0..2 {
        let (target, mut rx) = sink().await;
        let mut config = LinkConfig::ideal(any(), target);
        config.up.loss = 0.3;
        config.seed = 42;
        let link = Link::start(config).await.unwrap();
        let got = blast(&link, &mut rx, 1_000, 50, Duration::from_secs(1)).await;
        let s = link.stats().up;
        assert_eq!(s.offered_datagrams, 1_000);
        assert_eq!(s.delivered_datagrams + s.lost, 1_000);
        assert_eq!(got.len() as u64, s.delivered_datagrams);
        assert!((200..400).contains(&s.lost), "lost {}", s.lost);
        delivered.push(got.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>());
    }
    assert_eq!(
        delivered[0], delivered[1],
        "the same seed loses the same datagrams"
    );
}

#[tokio::test]
async fn the_rate_is_honoured() {
    let (target, mut rx) = sink().await;
    let mut config = LinkConfig::ideal(any(), target);
    // 80 kbit/s: 40 datagrams of 1000 bytes (+28 overhead) take 4.1 s.
    config.up.rate_bps = Some(80_000);
    let link = Link::start(config).await.unwrap();
    let start = Instant::now();
    let got = blast(&link, &mut rx, 40, 1_000, Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 40, "a queue large enough drops nothing");
    let seqs: Vec<u32> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<_>>());
    let serialised = link
        .config()
        .up
        .serialisation(40_000, 40, IPV4_UDP_OVERHEAD);
    assert!(serialised > Duration::from_secs(4));
    let last = got.last().unwrap().1 - start;
    // Never faster than the rate (the first datagram leaves after its own serialisation);
    // the upper bound is generous, only to catch a limiter that is badly off.
    assert!(last >= serialised, "{last:?} < {serialised:?}");
    assert!(last < serialised * 3, "{last:?}");
}

#[tokio::test]
async fn a_full_bottleneck_queue_drops_the_tail() {
    let (target, mut rx) = sink().await;
    let mut config = LinkConfig::ideal(any(), target);
    config.up.rate_bps = Some(80_000);
    config.up.queue_bytes = 5_000;
    let link = Link::start(config).await.unwrap();
    let got = blast(&link, &mut rx, 50, 1_000, Duration::from_millis(1500)).await;
    let s = link.stats().up;
    assert_eq!(s.delivered_datagrams + s.dropped_queue, 50);
    assert_eq!(got.len() as u64, s.delivered_datagrams);
    // The queue holds 4 datagrams; a few more drain while the burst is sent.
    assert!(s.dropped_queue >= 30, "{s:?}");
    assert!(s.delivered_datagrams >= 4, "{s:?}");
    let seqs: Vec<u32> = got.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(
        seqs[..4],
        [0, 1, 2, 3],
        "the head of the burst gets through"
    );
}

#[tokio::test]
async fn nothing_passes_while_down() {
    let (target, mut rx) = sink().await;
    let mut config = LinkConfig::ideal(any(), target);
    config.up.delay = Duration::from_millis(300);
    let link = Link::start(config).await.unwrap();
    // Down by hand: nothing is delivered, and every datagram is counted as dropped.
    link.set_up(false);
    assert!(!link.is_up());
    let got = blast(&link, &mut rx, 20, 100, Duration::from_millis(800)).await;
    assert!(got.is_empty());
    assert_eq!(link.stats().up.dropped_down, 20);
    // Up again: everything passes.
    link.set_up(true);
    let got = blast(&link, &mut rx, 20, 100, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 20);
    // In flight when the link goes down: lost too.
    let client = UdpSocket::bind(any()).await.unwrap();
    for seq in 0..10 {
        client
            .send_to(&datagram(seq, 100), link.addr())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    link.set_up(false);
    let late = timeout(Duration::from_millis(800), rx.recv()).await;
    assert!(late.is_err(), "{late:?}");
    let s = link.stats().up;
    assert_eq!(s.offered_datagrams, 50);
    assert_eq!(s.delivered_datagrams, 20);
    assert_eq!(s.dropped_down, 30);
}

#[tokio::test]
async fn a_schedule_takes_the_link_down_and_up() {
    let f = Flapping {
        down: Duration::from_secs(30),
        up: Duration::from_secs(30),
    };
    let s = Duration::from_secs;
    assert!(!f.is_up_after(s(0)));
    assert!(!f.is_up_after(s(29)));
    assert!(f.is_up_after(s(30)));
    assert!(f.is_up_after(s(59)));
    assert!(!f.is_up_after(s(60)));
    assert!(f.is_up_after(s(95)));
    // A link started with a schedule is down first; set_up ends the schedule.
    let (target, mut rx) = sink().await;
    let mut config = LinkConfig::ideal(any(), target);
    config.schedule = Some(f);
    let link = Link::start(config).await.unwrap();
    assert!(!link.is_up());
    assert!(
        blast(&link, &mut rx, 5, 10, Duration::from_millis(300))
            .await
            .is_empty()
    );
    link.set_up(true);
    assert_eq!(
        blast(&link, &mut rx, 5, 10, Duration::from_secs(2))
            .await
            .len(),
        5
    );
    link.flap(f);
    assert!(!link.is_up());
}

#[tokio::test]
async fn dropping_the_link_frees_its_socket() {
    let (target, _echo) = echo().await;
    let link = Link::start(LinkConfig::ideal(any(), target)).await.unwrap();
    let addr = link.addr();
    drop(link);
    // The tasks are aborted; the port can be bound again.
    let mut bound = false;
    for _ in 0..50 {
        if UdpSocket::bind(addr).await.is_ok() {
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bound);
}
