//! Accept loop shared by the test servers: one thread per connection, and a `Drop`
//! that stops accepting, shuts every open socket down (which ends blocked reads in the
//! handlers) and joins all threads, so no server outlives its test.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

#[derive(Default)]
struct Tracker {
    next_id: usize,
    /// Clones of live connections, so `Drop` can shut them down.
    open: HashMap<usize, TcpStream>,
    workers: Vec<JoinHandle<()>>,
    /// Handlers that panicked: a harness bug, reported when the server drops.
    panics: usize,
}

fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listening socket on 127.0.0.1 (ephemeral port) running `handler` per connection.
pub struct TcpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    tracker: Arc<Mutex<Tracker>>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Binds and starts accepting. Panics only if the loopback bind fails.
    pub fn start<H>(handler: H) -> TcpServer
    where
        H: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let stop = Arc::new(AtomicBool::new(false));
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let handler = Arc::new(handler);
        let acceptor = {
            let (stop, tracker) = (stop.clone(), tracker.clone());
            thread::spawn(move || accept_loop(&listener, &stop, &tracker, &handler))
        };
        TcpServer {
            addr,
            stop,
            tracker,
            acceptor: Some(acceptor),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn accept_loop<H>(
    listener: &TcpListener,
    stop: &AtomicBool,
    tracker: &Arc<Mutex<Tracker>>,
    handler: &Arc<H>,
) where
    H: Fn(TcpStream) + Send + Sync + 'static,
{
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let mut t = lock(tracker);
        let id = t.next_id;
        t.next_id += 1;
        if let Ok(clone) = stream.try_clone() {
            t.open.insert(id, clone);
        }
        t.workers.retain(|w| !w.is_finished());
        let (tracker, handler) = (tracker.clone(), handler.clone());
        t.workers.push(thread::spawn(move || {
            let panicked = panic::catch_unwind(AssertUnwindSafe(|| handler(stream))).is_err();
            let mut t = lock(&tracker);
            t.open.remove(&id);
            t.panics += usize::from(panicked);
        }));
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The acceptor blocks in accept(); a connection wakes it to see `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let workers = {
            let mut t = lock(&self.tracker);
            for s in t.open.values() {
                let _ = s.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut t.workers)
        };
        for w in workers {
            let _ = w.join();
        }
        let panics = lock(&self.tracker).panics;
        if panics > 0 && !thread::panicking() {
            panic!("{panics} test server connection handler(s) panicked (see output above)");
        }
    }
}
