//! A few threads for the CPU-bound work of the transfer engine (payload hashes for SigV4,
//! checksums of downloaded files), so its event loop keeps moving bytes meanwhile. Each
//! job's result comes back through a channel and wakes the loop.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use mio::Waker;

type Job<R> = Box<dyn FnOnce() -> R + Send>;

pub struct Workers<R: Send + 'static> {
    jobs: Option<Sender<(u64, Job<R>)>>,
    done: Receiver<(u64, R)>,
    threads: Vec<thread::JoinHandle<()>>,
    pending: usize,
}

impl<R: Send + 'static> Workers<R> {
    /// Starts `count` threads; `waker` is woken after each finished job.
    pub fn new(count: usize, waker: Arc<Waker>) -> std::io::Result<Workers<R>> {
        let (jobs, queue) = mpsc::channel::<(u64, Job<R>)>();
        let queue = Arc::new(Mutex::new(queue));
        let (results, done) = mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let queue = queue.clone();
            let results = results.clone();
            let waker = waker.clone();
            let handle = thread::Builder::new()
                .name(format!("sidewire-work-{i}"))
                .spawn(move || loop {
                    let next = queue.lock().map(|q| q.recv());
                    let Ok(Ok((id, job))) = next else { return };
                    if results.send((id, job())).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                })?;
            threads.push(handle);
        }
        Ok(Workers {
            jobs: Some(jobs),
            done,
            threads,
            pending: 0,
        })
    }

    pub fn submit(&mut self, id: u64, job: impl FnOnce() -> R + Send + 'static) {
        if let Some(jobs) = &self.jobs {
            if jobs.send((id, Box::new(job))).is_ok() {
                self.pending += 1;
            }
        }
    }

    /// Jobs submitted and not yet collected.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The next finished job's result, if any.
    pub fn try_next(&mut self) -> Option<(u64, R)> {
        let got = self.done.try_recv().ok();
        if got.is_some() {
            self.pending -= 1;
        }
        got
    }
}

impl<R: Send + 'static> Drop for Workers<R> {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_and_wake_the_loop() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(9)).unwrap());
        let mut w = Workers::new(2, waker).unwrap();
        for i in 0..10u64 {
            w.submit(i, move || i * i);
        }
        let mut got = Vec::new();
        let mut events = mio::Events::with_capacity(8);
        while got.len() < 10 {
            poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
                .unwrap();
            assert!(!events.is_empty(), "no wake-up");
            while let Some(r) = w.try_next() {
                got.push(r);
            }
        }
        got.sort();
        assert_eq!(got, (0..10).map(|i| (i, i * i)).collect::<Vec<_>>());
        assert_eq!(w.pending(), 0);
    }
}
