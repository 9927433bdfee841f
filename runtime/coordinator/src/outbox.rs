//! The way out to one peer: frames are written straight into the socket by the central task
//! when nothing is queued (one `sendto`, no task wake-up, which matters when a barrier release
//! goes to 10,000 peers), and handed to the peer's writer task otherwise, keeping their order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// One encoded frame, shared between all the peers it is broadcast to.
pub type Frame = Arc<[u8]>;

/// Held by the central task. Dropping it lets the writer drain its queue and close the socket.
pub struct Outbox {
    wr: Arc<OwnedWriteHalf>,
    queue: mpsc::UnboundedSender<Frame>,
    /// Frames handed to the writer and not yet completely written.
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// Creates the outbox and the writer future that must be spawned beside it. `guard` is held
    /// by the writer until its queue is drained (the shutdown waits for it).
    pub fn new<G: Send + 'static>(
        wr: OwnedWriteHalf,
        guard: G,
    ) -> (Outbox, impl Future<Output = ()> + Send + 'static) {
        let wr = Arc::new(wr);
        let (queue, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = writer(wr.clone(), rx, queued.clone(), guard);
        (Outbox { wr, queue, queued }, writer)
    }

    pub fn send(&self, frame: Frame) {
        let mut frame = frame;
        // Only this task enqueues, and the writer counts a frame down after writing all of it,
        // so zero here means nothing is pending and writing now keeps the order.
        if self.queued.load(Ordering::Acquire) == 0 {
            match self.wr.try_write(&frame) {
                Ok(n) if n == frame.len() => return,
                Ok(n) => frame = frame[n..].into(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // The peer is gone; its reader reports the disconnect.
                Err(_) => return,
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.queue.send(frame);
    }
}

async fn writer<G>(
    wr: Arc<OwnedWriteHalf>,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
    _guard: G,
) {
    while let Some(frame) = rx.recv().await {
        let mut at = 0;
        while at < frame.len() {
            if wr.writable().await.is_err() {
                return;
            }
            match wr.try_write(&frame[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        queued.fetch_sub(1, Ordering::AcqRel);
    }
    // Dropping the last handle of the write half shuts the connection down for writing.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn frames_arrive_in_order_even_when_the_socket_is_full() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (_rd, wr) = server.into_split();
        let (out, writer) = Outbox::new(wr, ());
        let task = tokio::spawn(writer);
        // Far more than the socket buffers hold, so some frames must go through the queue.
        let mut expected = Vec::new();
        for i in 0..2000u32 {
            let frame: Vec<u8> = std::iter::repeat_n((i % 251) as u8, 4096).collect();
            expected.extend_from_slice(&frame);
            out.send(frame.into());
        }
        drop(out);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes arrive in the order they were sent");
        task.await.unwrap();
    }
}
