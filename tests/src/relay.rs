//! A lossy UDP relay for tests: it sits between one QUIC client and one
//! server and drops, delays, duplicates and reorders their datagrams, in
//! both directions, at the rates a [`Faults`] gives; it can also be cut
//! (every datagram dropped) and restored.
//!
//! Jitter and reordering are separate faults, as on a real path: jitter
//! varies each datagram's delay but keeps their order (a datagram never
//! leaves before one that arrived before it in the same direction), and
//! only `reorder` lets later datagrams overtake the few it holds back.
//!
//! The client dials [`Relay::addr`] instead of the server. The relay runs
//! on a thread of its own with a blocking socket, so that it serves a
//! client and a server on any runtime and keeps its pace when theirs is
//! busy. Each direction decides the fate of its n-th datagram with its own
//! [`Prng`] seeded from the relay's seed, so a seed gives the same
//! decisions run after run (what the peers send, and when, is up to them).
//! [`Relay::stats`] counts what was done, so that a test can check that
//! the faults it asked for really happened.
//!
//! ```no_run
//! # fn example(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use std::time::Duration;
//! use dockwire_tests::relay::{Faults, Relay};
//!
//! let faults = Faults::none()
//!     .with_loss(0.05)
//!     .with_jitter(Duration::from_millis(50));
//! let relay = Relay::start(server, faults, 42)?;
//! // ... dial relay.addr(), run the test ...
//! let stats = relay.stats();
//! assert!(stats.to_server.dropped > 0 && stats.to_client.dropped > 0);
//! # Ok(())
//! # }
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Prng;

/// What the relay does to each datagram, the same in both directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// The chance that a datagram is dropped.
    pub loss: f64,
    /// The chance that a datagram that is not dropped is sent twice (the
    /// copy with a delay of its own).
    pub duplicate: f64,
    /// Every datagram is held back a uniformly random time up to this,
    /// or longer if one that arrived before it in the same direction is
    /// due later: jitter never reorders (the delay of a busy direction
    /// so tends to the maximum, as a queue's does).
    pub jitter: Duration,
    /// The chance that a datagram is held back [`hold`](Self::hold) longer
    /// than its jitter, for later ones to overtake.
    pub reorder: f64,
    /// How much longer a reordered datagram is held.
    pub hold: Duration,
}

impl Faults {
    /// A perfect link: every datagram forwarded at once.
    pub fn none() -> Self {
        Faults {
            loss: 0.0,
            duplicate: 0.0,
            jitter: Duration::ZERO,
            reorder: 0.0,
            hold: Duration::from_millis(10),
        }
    }

    /// With this chance of loss.
    #[must_use]
    pub fn with_loss(mut self, chance: f64) -> Self {
        self.loss = chance;
        self
    }

    /// With this chance of duplication.
    #[must_use]
    pub fn with_duplicates(mut self, chance: f64) -> Self {
        self.duplicate = chance;
        self
    }

    /// With delays random up to `max`, order kept.
    #[must_use]
    pub fn with_jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// With this chance of holding a datagram back `hold` longer.
    #[must_use]
    pub fn with_reorder(mut self, chance: f64, hold: Duration) -> Self {
        self.reorder = chance;
        self.hold = hold;
        self
    }
}

/// What one direction's datagrams went through. Every received datagram
/// is counted once in `forwarded`, `dropped` or `cut`, or is still on its
/// way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Datagrams the relay received.
    pub received: u64,
    /// Datagrams sent on (each once; its copies are `duplicated`).
    pub forwarded: u64,
    /// Datagrams dropped by the loss rate (and those from the server
    /// before the client was heard from: they have nowhere to go).
    pub dropped: u64,
    /// Datagrams dropped because the link was cut when they arrived or
    /// were due.
    pub cut: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Datagrams held back before they were sent.
    pub delayed: u64,
    /// Datagrams sent after one that arrived after them.
    pub reordered: u64,
    /// Bytes of the datagrams sent on, copies not included.
    pub bytes: u64,
}

/// Both directions' [`Counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// From the client to the server.
    pub to_server: Counts,
    /// From the server to the client.
    pub to_client: Counts,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, c) in [("to server", self.to_server), ("to client", self.to_client)] {
            writeln!(
                f,
                "{name}: received {}, forwarded {} ({} bytes), dropped {}, cut {}, \
                 duplicated {}, delayed {}, reordered {}",
                c.received,
                c.forwarded,
                c.bytes,
                c.dropped,
                c.cut,
                c.duplicated,
                c.delayed,
                c.reordered
            )?;
        }
        Ok(())
    }
}

/// A running relay; dropping it stops it.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Relays between `server` and whoever else sends to [`addr`](Self::addr)
    /// (the client: the last address other than the server's heard from),
    /// applying `faults` with decisions drawn from `seed`.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> io::Result<Relay> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        // A burst from a peer must meet the faults asked for, not the
        // kernel's queue overflowing while the relay thread waits for a
        // core: as much buffer as the system allows.
        let raw = socket2::SockRef::from(&socket);
        let _ = raw.set_recv_buffer_size(RECV_BUFFER);
        let _ = raw.set_send_buffer_size(RECV_BUFFER);
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared::default());
        let mut worker = Worker {
            socket,
            server,
            client: None,
            faults,
            directions: [Direction::new(seed), Direction::new(!seed)],
            queue: BinaryHeap::new(),
            pushed: 0,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("lossy-relay".into())
            .spawn(move || worker.run())?;
        Ok(Relay {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// Where the client dials to reach the server through the relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every datagram, in both directions, until [`restore`](Self::restore)
    /// (those already on their way included).
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
    }

    /// Undoes [`cut`](Self::cut).
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// What has been done so far.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ------------------------------------------------------------- internals

/// The socket buffers asked for (Linux caps them at `rmem_max`/`wmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// The longest the thread waits before looking at `stop` again.
const TICK: Duration = Duration::from_millis(20);
/// The largest UDP datagram fits.
const MAX_DATAGRAM: usize = 65536;

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    stats: Mutex<Stats>,
}

/// One direction's decisions and arrival order.
struct Direction {
    rng: Prng,
    /// Arrival number of the next datagram.
    arrived: u64,
    /// The highest arrival number sent so far.
    highest_sent: Option<u64>,
    /// When the latest datagram queued in order is due: none queued
    /// after it may be due earlier.
    last_due: Option<Instant>,
}

impl Direction {
    fn new(seed: u64) -> Self {
        // xorshift never leaves zero.
        Direction {
            rng: Prng(seed | 1),
            arrived: 0,
            highest_sent: None,
            last_due: None,
        }
    }
}

/// A datagram on its way.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due: Instant,
    /// Tie-break: datagrams due at once go in the order they were queued.
    pushed: u64,
    to_server: bool,
    arrival: u64,
    copy: bool,
    bytes: Vec<u8>,
}

struct Worker {
    socket: UdpSocket,
    server: SocketAddr,
    client: Option<SocketAddr>,
    faults: Faults,
    /// To the server, to the client.
    directions: [Direction; 2],
    queue: BinaryHeap<Reverse<Pending>>,
    pushed: u64,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(&mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.shared.stop.load(Ordering::SeqCst) {
            self.send_due();
            let wait = match self.queue.peek() {
                Some(Reverse(next)) => next.due.saturating_duration_since(Instant::now()),
                None => TICK,
            };
            // A zero timeout means "block forever" to the socket.
            let wait = wait.clamp(Duration::from_micros(50), TICK);
            if self.socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.arrive(&buf[..n], from),
                // Timeouts, and whatever else a peer's socket going away
                // makes the kernel report: the relay carries on.
                Err(_) => continue,
            }
        }
    }

    fn arrive(&mut self, datagram: &[u8], from: SocketAddr) {
        let to_server = from != self.server;
        if to_server {
            self.client = Some(from);
        }
        let faults = self.faults;
        let d = &mut self.directions[usize::from(!to_server)];
        let arrival = d.arrived;
        d.arrived += 1;
        // Every decision is drawn, whatever the others and the cut, so
        // that the n-th datagram's fate depends on the seed and n alone.
        let lost = d.rng.chance(faults.loss);
        let duplicated = d.rng.chance(faults.duplicate);
        let held = d.rng.chance(faults.reorder);
        let jitter = d.rng.up_to(faults.jitter);
        let copy_jitter = d.rng.up_to(faults.jitter);
        let mut stats = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        let counts = counts(&mut stats, to_server);
        counts.received += 1;
        if !to_server && self.client.is_none() {
            // From the server before any client spoke: nowhere to go.
            counts.dropped += 1;
            return;
        }
        if self.shared.cut.load(Ordering::SeqCst) {
            counts.cut += 1;
            return;
        }
        if lost {
            counts.dropped += 1;
            return;
        }
        // In order: not before the one queued before it. The due time
        // stays within the jitter of now, as the earlier one's was within
        // the jitter of its (earlier) arrival.
        let now = Instant::now();
        let in_order = |jitter: Duration, last: Option<Instant>| {
            let due = now + jitter;
            last.map_or(due, |last| due.max(last))
        };
        let due = in_order(jitter, d.last_due);
        d.last_due = Some(due);
        // A copy travels the same path: in order too.
        let copy_due = in_order(copy_jitter, d.last_due);
        if duplicated {
            d.last_due = Some(copy_due);
        }
        // Held back after its place in the order is taken, so that the
        // ones behind it overtake it.
        let due = match held {
            true => due + faults.hold,
            false => due,
        };
        if due > now {
            counts.delayed += 1;
        }
        drop(stats);
        self.push(due, to_server, arrival, false, datagram);
        if duplicated {
            self.push(copy_due, to_server, arrival, true, datagram);
        }
    }

    fn push(&mut self, due: Instant, to_server: bool, arrival: u64, copy: bool, bytes: &[u8]) {
        self.pushed += 1;
        self.queue.push(Reverse(Pending {
            due,
            pushed: self.pushed,
            to_server,
            arrival,
            copy,
            bytes: bytes.to_vec(),
        }));
    }

    fn send_due(&mut self) {
        let now = Instant::now();
        while self.queue.peek().is_some_and(|Reverse(p)| p.due <= now) {
            let Some(Reverse(p)) = self.queue.pop() else {
                return;
            };
            // A datagram for the client is only queued once it is known.
            let to = match p.to_server {
                true => Some(self.server),
                false => self.client,
            };
            let mut stats = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
            let counts = counts(&mut stats, p.to_server);
            if self.shared.cut.load(Ordering::SeqCst) {
                if !p.copy {
                    counts.cut += 1;
                }
                continue;
            }
            let Some(to) = to else { continue };
            // A send the kernel refuses is a loss like any other; QUIC
            // recovers from it.
            let _ = self.socket.send_to(&p.bytes, to);
            if p.copy {
                counts.duplicated += 1;
                continue;
            }
            counts.forwarded += 1;
            counts.bytes += p.bytes.len() as u64;
            let d = &mut self.directions[usize::from(!p.to_server)];
            match d.highest_sent {
                Some(highest) if highest > p.arrival => counts.reordered += 1,
                _ => d.highest_sent = Some(p.arrival),
            }
        }
    }
}

fn counts(stats: &mut Stats, to_server: bool) -> &mut Counts {
    match to_server {
        true => &mut stats.to_server,
        false => &mut stats.to_client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A client and a server socket, and a relay between them.
    struct Ends {
        client: UdpSocket,
        server: UdpSocket,
        relay: Relay,
    }

    fn socket() -> UdpSocket {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECV_BUFFER);
        socket
    }

    fn ends(faults: Faults, seed: u64) -> Ends {
        let server = socket();
        let relay = Relay::start(server.local_addr().unwrap(), faults, seed).unwrap();
        Ends {
            client: socket(),
            server,
            relay,
        }
    }

    /// What one direction of `relay` has counted.
    fn counted(relay: &Relay, to_server: bool) -> Counts {
        let stats = relay.stats();
        match to_server {
            true => stats.to_server,
            false => stats.to_client,
        }
    }

    /// Sends datagrams numbered `0..n` from `from` through the relay and
    /// returns the numbers `to` received, in order, once it heard nothing
    /// for a second. Never more than 64 datagrams ahead of the relay, so
    /// that no kernel buffer overflows (a loss the relay would not count).
    fn through(ends: &Ends, to_server: bool, n: u32) -> Vec<u32> {
        let (from, to) = match to_server {
            true => (&ends.client, &ends.server),
            false => (&ends.server, &ends.client),
        };
        let to = to.try_clone().unwrap();
        to.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while let Ok(k) = to.recv(&mut buf) {
                assert_eq!(k, 4);
                got.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
            }
            got
        });
        let before = counted(&ends.relay, to_server).received;
        let relay = ends.relay.addr();
        for i in 0..n {
            while u64::from(i) > counted(&ends.relay, to_server).received - before + 64 {
                std::thread::sleep(Duration::from_millis(1));
            }
            from.send_to(&i.to_le_bytes(), relay).unwrap();
        }
        receiver.join().unwrap()
    }

    /// How many datagrams came after one with a higher number.
    fn overtaken(got: &[u32]) -> usize {
        let mut highest = None;
        let mut n = 0;
        for &i in got {
            match highest {
                Some(h) if h > i => n += 1,
                _ => highest = Some(i),
            }
        }
        n
    }

    #[test]
    fn a_faultless_relay_forwards_every_datagram_in_order_both_ways() {
        let ends = ends(Faults::none(), 1);
        let all: Vec<u32> = (0..500).collect();
        assert_eq!(through(&ends, true, 500), all);
        assert_eq!(through(&ends, false, 500), all);
        let clean = Counts {
            received: 500,
            forwarded: 500,
            bytes: 2000,
            ..Counts::default()
        };
        let stats = ends.relay.stats();
        assert_eq!(stats.to_server, clean);
        assert_eq!(stats.to_client, clean);
    }

    #[test]
    fn the_relay_drops_delays_duplicates_and_reorders_both_ways_as_it_counts() {
        let faults = Faults::none()
            .with_loss(0.05)
            .with_jitter(Duration::from_millis(50))
            .with_duplicates(0.02)
            .with_reorder(0.02, Duration::from_millis(20));
        let ends = ends(faults, 7);
        for to_server in [true, false] {
            let got = through(&ends, to_server, 2000);
            let c = counted(&ends.relay, to_server);
            let distinct: BTreeSet<u32> = got.iter().copied().collect();
            assert_eq!(c.received, 2000);
            assert_eq!(c.forwarded, distinct.len() as u64, "{c:?}");
            assert_eq!(c.dropped, 2000 - distinct.len() as u64, "{c:?}");
            assert_eq!(c.duplicated, (got.len() - distinct.len()) as u64, "{c:?}");
            assert_eq!(c.cut, 0);
            // 5% of 2000, 2% of the rest: the seed decides, within reason.
            assert!((50..=150).contains(&c.dropped), "{c:?}");
            assert!((15..=60).contains(&c.duplicated), "{c:?}");
            // Nearly every delay is above zero.
            assert!(c.delayed > 1800, "{c:?}");
            // Only the 2% held back are overtaken (the last ones may
            // have had nothing behind them to do it).
            assert!((10..=60).contains(&c.reordered), "{c:?}");
            assert_eq!(overtaken(&got), c.reordered as usize, "{c:?}");
        }
    }

    #[test]
    fn jitter_delays_datagrams_but_keeps_their_order_copies_included() {
        let faults = Faults::none()
            .with_loss(0.05)
            .with_jitter(Duration::from_millis(50))
            .with_duplicates(0.05);
        let ends = ends(faults, 7);
        for to_server in [true, false] {
            let got = through(&ends, to_server, 2000);
            let c = counted(&ends.relay, to_server);
            assert!(c.delayed > 1800, "{c:?}");
            assert!(c.dropped > 50 && c.duplicated > 50, "{c:?}");
            assert_eq!(c.reordered, 0, "{c:?}");
            // Each copy right after its original or a later datagram,
            // never before an earlier one.
            assert!(got.is_sorted(), "{got:?}");
        }
    }

    #[test]
    fn reordering_comes_from_holding_back_alone() {
        let faults = Faults::none().with_reorder(0.05, Duration::from_millis(20));
        let ends = ends(faults, 7);
        for to_server in [true, false] {
            let got = through(&ends, to_server, 2000);
            let c = counted(&ends.relay, to_server);
            // Only the held ones are delayed and only they are overtaken.
            assert!((50..=150).contains(&c.delayed), "{c:?}");
            assert!(c.reordered > 25 && c.reordered <= c.delayed, "{c:?}");
            assert_eq!(overtaken(&got), c.reordered as usize);
            assert_eq!(got.len(), 2000);
        }
    }

    #[test]
    fn the_same_seed_drops_the_same_datagrams() {
        let missing = |seed| {
            let ends = ends(Faults::none().with_loss(0.1), seed);
            let got: BTreeSet<u32> = through(&ends, true, 300).into_iter().collect();
            (0..300).filter(|i| !got.contains(i)).collect::<Vec<_>>()
        };
        let first = missing(11);
        assert!(!first.is_empty());
        assert_eq!(missing(11), first);
        assert_ne!(missing(12), first);
    }

    #[test]
    fn a_cut_relay_drops_everything_until_restored() {
        let ends = ends(Faults::none(), 1);
        assert_eq!(through(&ends, true, 10).len(), 10);
        ends.relay.cut();
        assert_eq!(through(&ends, true, 100), Vec::<u32>::new());
        assert_eq!(through(&ends, false, 100), Vec::<u32>::new());
        let stats = ends.relay.stats();
        assert_eq!((stats.to_server.cut, stats.to_client.cut), (100, 100));
        ends.relay.restore();
        let all: Vec<u32> = (0..100).collect();
        assert_eq!(through(&ends, false, 100), all);
        assert_eq!(through(&ends, true, 100), all);
    }
}
