//! A Rust program using glibc and threads: four workers sum their share of
//! 1..=1_000_000 and the main thread joins them.
use std::sync::mpsc;
use std::thread;

fn main() {
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    let sum: u64 = (1..=1_000_000u64).filter(|n| n % 4 == w).sum();
                    tx.send((w, sum)).unwrap();
                })
                .unwrap()
        })
        .collect();
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
    let mut parts: Vec<(u64, u64)> = rx.iter().collect();
    parts.sort();
    let total: u64 = parts.iter().map(|p| p.1).sum();
    println!("{} threads, sum 1..=1000000 = {total}", parts.len());
}
