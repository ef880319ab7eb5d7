//! The frame loop between two real iroh endpoints on 127.0.0.1: no relay, no server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shouwang_core::Error;
use shouwang_relay::transport::{
    Conversation, ConversationFactory, ConversationOptions, DATAGRAM_BUFFER, EndpointId, Node,
    NodeConfig, PRIMING_DATAGRAMS, Reply, SecretKey, TransportError, TransportMetrics, Wake,
};

/// Counts down: each side answers a number with the number minus one; whoever sends or
/// receives 0 is done.
#[derive(Debug)]
struct Countdown {
    start: Option<u32>,
    seen: Vec<u32>,
}

impl Conversation for Countdown {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(match self.start.take() {
            Some(n) => Reply::send(vec![n.to_le_bytes().to_vec()]),
            None => Reply::nothing(),
        })
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        let n = u32::from_le_bytes(
            frame
                .try_into()
                .map_err(|_| Error::Corrupt("not a number".into()))?,
        );
        self.seen.push(n);
        Ok(match n {
            0 => Reply::finish(vec![]),
            1 => Reply::finish(vec![0u32.to_le_bytes().to_vec()]),
            n => Reply::send(vec![(n - 1).to_le_bytes().to_vec()]),
        })
    }
}

/// Makes countdowns and remembers who connected and what they saw.
#[derive(Debug, Default)]
struct Factory {
    remotes: Mutex<Vec<EndpointId>>,
    refuse_with: Option<String>,
}

impl ConversationFactory for Factory {
    fn start(&self, remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        self.remotes.lock().unwrap().push(remote);
        if let Some(reason) = &self.refuse_with {
            return Err(Error::NotPermitted(reason.clone()));
        }
        Ok(Box::new(Countdown {
            start: None,
            seen: vec![],
        }))
    }
}

/// Refuses whatever it hears with a Chinese reason.
#[derive(Debug)]
struct Grumpy;

impl Conversation for Grumpy {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::nothing())
    }

    fn on_frame(&mut self, _frame: &[u8]) -> shouwang_core::Result<Reply> {
        Err(Error::NotPermitted("不认识你".into()))
    }
}

#[derive(Debug)]
struct GrumpyFactory;

impl ConversationFactory for GrumpyFactory {
    fn start(&self, _remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        Ok(Box::new(Grumpy))
    }
}

async fn server(factory: Arc<dyn ConversationFactory>, opts: ConversationOptions) -> Node {
    Node::serve(
        NodeConfig::loopback(SecretKey::generate()),
        factory,
        opts,
        Arc::new(TransportMetrics::default()),
    )
    .await
    .unwrap()
}

async fn client() -> Node {
    Node::bind(NodeConfig::loopback(SecretKey::generate()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_run_the_same_loop_and_close_cleanly() {
    let factory = Arc::new(Factory::default());
    let hub = server(factory.clone(), ConversationOptions::default()).await;
    let phone = client().await;
    let conv = Countdown {
        start: Some(9),
        seen: vec![],
    };
    let (conv, stats) = phone
        .converse(hub.addr(), conv, &ConversationOptions::default())
        .await
        .unwrap();
    assert_eq!(conv.seen, vec![8, 6, 4, 2, 0]);
    assert_eq!(stats.frames_out, 5);
    assert_eq!(stats.frames_in, 5);
    assert_eq!(stats.bytes_in, 5 * 8);
    assert_eq!(stats.remote, hub.id());
    // The factory saw the authenticated endpoint id of the phone.
    assert_eq!(*factory.remotes.lock().unwrap(), vec![phone.id()]);
    let m = hub.metrics().unwrap().clone();
    // The hub counts the conversation once its side has closed too.
    for _ in 0..50 {
        if TransportMetrics::get(&m.conversations_done) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(TransportMetrics::get(&m.conversations_done), 1);
    assert_eq!(TransportMetrics::get(&m.conversations_failed), 0);
    assert_eq!(TransportMetrics::get(&m.frames_in), 5);
    phone.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_the_peer_with_its_reason() {
    let hub = server(Arc::new(GrumpyFactory), ConversationOptions::default()).await;
    let phone = client().await;
    let conv = Countdown {
        start: Some(3),
        seen: vec![],
    };
    let err = phone
        .converse(hub.addr(), conv, &ConversationOptions::default())
        .await
        .unwrap_err();
    match &err {
        TransportError::Refused(reason) => assert!(reason.contains("不认识你"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("对方拒绝"), "{err}");

    // A factory that refuses before any frame is answered the same way.
    let factory = Arc::new(Factory {
        refuse_with: Some("今天不营业".into()),
        ..Factory::default()
    });
    let hub2 = server(factory, ConversationOptions::default()).await;
    let conv = Countdown {
        start: Some(3),
        seen: vec![],
    };
    let err = phone
        .converse(hub2.addr(), conv, &ConversationOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("今天不营业"), "{err}");
    phone.shutdown().await;
    hub.shutdown().await;
    hub2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connecting_side_must_open_with_a_frame() {
    let hub = server(Arc::new(Factory::default()), ConversationOptions::default()).await;
    let phone = client().await;
    let conv = Countdown {
        start: None,
        seen: vec![],
    };
    let err = phone
        .converse(hub.addr(), conv, &ConversationOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Protocol(_)), "{err:?}");
    phone.shutdown().await;
    hub.shutdown().await;
}

/// Says hello, then waits; every wake sends one more frame; the third wake finishes.
#[derive(Debug, Default)]
struct Live {
    wakes: u32,
}

impl Conversation for Live {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::send(vec![b"hello".to_vec()]))
    }

    fn on_frame(&mut self, _frame: &[u8]) -> shouwang_core::Result<Reply> {
        Ok(Reply::nothing())
    }

    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        self.wakes += 1;
        let frame = vec![self.wakes as u8];
        Ok(if self.wakes == 3 {
            Reply::finish(vec![frame])
        } else {
            Reply::send(vec![frame])
        })
    }
}

/// Counts what it hears and finishes when the peer has finished.
#[derive(Debug, Default)]
struct Listener {
    heard: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Conversation for Listener {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::nothing())
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        self.heard.lock().unwrap().push(frame.to_vec());
        Ok(if frame == [3] {
            Reply::finish(vec![])
        } else {
            Reply::nothing()
        })
    }
}

#[derive(Debug, Default)]
struct ListenerFactory {
    heard: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ConversationFactory for ListenerFactory {
    fn start(&self, _remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        Ok(Box::new(Listener {
            heard: self.heard.clone(),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waking_a_conversation_sends_live_frames_and_idle_ones_are_closed() {
    let factory = Arc::new(ListenerFactory::default());
    let short = ConversationOptions {
        idle_timeout: Duration::from_millis(1500),
        ..ConversationOptions::default()
    };
    let hub = server(factory.clone(), short.clone()).await;
    let phone = client().await;

    // Live: three wakes, three frames.
    let wake = Wake::new();
    let opts = ConversationOptions {
        wake: Some(wake.clone()),
        ..ConversationOptions::default()
    };
    let poker = {
        let (wake, heard) = (wake.clone(), factory.clone());
        tokio::spawn(async move {
            // Wakes count once the conversation is under way (the hub heard its opening).
            while heard.heard.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                wake.wake();
            }
        })
    };
    let (live, _) = phone
        .converse(hub.addr(), Live::default(), &opts)
        .await
        .unwrap();
    poker.await.unwrap();
    assert_eq!(live.wakes, 3);
    // The phone is done once its half is finished; the hub reads the last frame after.
    let all = vec![b"hello".to_vec(), vec![1], vec![2], vec![3]];
    assert!(eventually(|| *factory.heard.lock().unwrap() == all).await);

    // Idle: nobody wakes the conversation, so the hub closes it after its idle timeout.
    let err = phone
        .converse(hub.addr(), Live::default(), &ConversationOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Idle), "{err:?}");
    let m = hub.metrics().unwrap();
    assert_eq!(TransportMetrics::get(&m.idle_closed), 1);
    phone.shutdown().await;
    hub.shutdown().await;
}

/// Waits (at most 5 s) until `f` holds.
async fn eventually(f: impl FnMut() -> bool) -> bool {
    shouwang_tests::wait::eventually(Duration::from_secs(5), f).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_connection_carries_several_conversations_and_is_closed_when_idle() {
    let factory = Arc::new(Factory::default());
    let hub_opts = ConversationOptions {
        warm: Duration::from_secs(2),
        ..ConversationOptions::default()
    };
    let hub = server(factory.clone(), hub_opts).await;
    let m = hub.metrics().unwrap().clone();
    let phone = client().await;
    let warm = ConversationOptions {
        warm: Duration::from_secs(1),
        ..ConversationOptions::default()
    };
    let countdown = |n| Countdown {
        start: Some(n),
        seen: vec![],
    };

    // 1. Connected ahead: the handshake is done, no conversation yet. (With no admission
    //    every remote is known: the hub waits its warm time for the first stream too.)
    phone.warm_up(hub.addr(), &warm).await.unwrap();
    assert!(phone.is_warm(hub.id()));
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 1).await);

    //    It has been primed: the one-byte datagrams went out and the hub sent each back, so
    //    both ends' loss recovery has more round-trip samples than the handshake gave.
    let primed = phone.warm_stats(hub.id()).unwrap();
    assert_eq!(primed.frame_tx.datagram, PRIMING_DATAGRAMS);
    assert_eq!(
        primed.frame_rx.datagram, PRIMING_DATAGRAMS,
        "the hub sent each datagram back"
    );

    // 2. Two syncs, one connection.
    let (a, _) = phone
        .converse(hub.addr(), countdown(9), &warm)
        .await
        .unwrap();
    let (b, _) = phone
        .converse(hub.addr(), countdown(5), &warm)
        .await
        .unwrap();
    assert_eq!(a.seen, vec![8, 6, 4, 2, 0]);
    assert_eq!(b.seen, vec![4, 2, 0]);
    assert!(eventually(|| TransportMetrics::get(&m.conversations_done) == 2).await);
    assert_eq!(TransportMetrics::get(&m.connections_total), 1);
    assert_eq!(
        factory.remotes.lock().unwrap().len(),
        2,
        "a conversation each"
    );

    // 3. Past the phone's warm time it connects anew; the hub closes the idle one.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!phone.is_warm(hub.id()));
    let (c, _) = phone
        .converse(hub.addr(), countdown(3), &warm)
        .await
        .unwrap();
    assert_eq!(c.seen, vec![2, 0]);
    assert_eq!(TransportMetrics::get(&m.connections_total), 2);

    // 4. The hub's warm wait runs out: it closes the connection, and the phone, finding it
    //    closed, connects anew without an error.
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 0).await);
    let long = ConversationOptions {
        warm: Duration::from_secs(30),
        ..ConversationOptions::default()
    };
    phone.warm_up(hub.addr(), &long).await.unwrap();
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 1).await);
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 0).await);
    // The hub's close reaches the phone (a sync that raced it would fail, and the phone API
    // would try it once more on a new connection: `tests/tests/warm_link.rs`).
    assert!(eventually(|| !phone.is_warm(hub.id())).await);
    let (d, _) = phone
        .converse(hub.addr(), countdown(1), &long)
        .await
        .unwrap();
    assert_eq!(d.seen, vec![0]);
    assert_eq!(TransportMetrics::get(&m.connections_total), 4);
    assert_eq!(TransportMetrics::get(&m.conversations_failed), 0);

    // 5. A phone that does not keep connections closes after its conversation, as before.
    let other = client().await;
    other
        .converse(hub.addr(), countdown(3), &ConversationOptions::default())
        .await
        .unwrap();
    assert!(!other.is_warm(hub.id()));
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 1).await);
    other.shutdown().await;
    phone.shutdown().await;
    assert!(eventually(|| TransportMetrics::get(&m.connections_open) == 0).await);
    hub.shutdown().await;
}

/// A node takes QUIC datagrams only as large as the one-byte ones that prime a connection made
/// ahead: it never reads them, and QUIC's default would let every connection, a stranger's
/// too, park 1.25 MB of them in the hub's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_no_datagram_larger_than_what_primes_a_connection() {
    let hub = server(Arc::new(Factory::default()), ConversationOptions::default()).await;
    let stranger = client().await;
    let conn = stranger
        .endpoint()
        .connect(hub.addr(), shouwang_relay::transport::ALPN)
        .await
        .unwrap();
    let largest = conn.max_datagram_size().unwrap();
    assert!(largest <= DATAGRAM_BUFFER, "{largest} bytes");
    conn.send_datagram(vec![0u8; largest + 1].into())
        .unwrap_err();
    conn.send_datagram(vec![0u8].into()).unwrap();
    stranger.shutdown().await;
    hub.shutdown().await;
}
