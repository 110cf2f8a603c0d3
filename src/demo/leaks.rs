//! Slow leaks beside churn: the shape of the report that found the hooks
//! source's verdict dropping leaks after 45 s of watching.

use super::traced::Builder;
use std::time::Duration;

/// Six leaks, each at its own spawn site, at 2, 1, 1/2, 1/4 and 1/8 a
/// `every`, and one every 60 `every`s (with the default `--leak-every
/// 1s`: from two a second to one a minute). Each leaked task waits
/// forever on its own kind of thing.
pub fn slow_leaks(every: Duration, max: usize) {
    site(every / 2, max, || {
        // spawn: slow-leak-1 (2/s)
        let _ = Builder::new()
            .name("slow-leak-1")
            .spawn(tokio::time::sleep(Duration::from_secs(86_400 * 365)));
    });
    site(every, max, || {
        // spawn: slow-leak-2 (1/s)
        let _ = Builder::new()
            .name("slow-leak-2")
            .spawn(std::future::pending::<()>());
    });
    site(every * 2, max, || {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // spawn: slow-leak-3 (1/2 s): a reply that never comes
        let _ = Builder::new().name("slow-leak-3").spawn(async move {
            let _keep = tx;
            let _ = rx.await;
        });
    });
    site(every * 4, max, || {
        // spawn: slow-leak-4 (1/4 s)
        let _ = Builder::new().name("slow-leak-4").spawn(async {
            let notify = tokio::sync::Notify::new();
            notify.notified().await;
        });
    });
    site(every * 8, max, || {
        // spawn: slow-leak-5 (1/8 s)
        let _ = Builder::new().name("slow-leak-5").spawn(async {
            let (_tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
            let _ = rx.recv().await;
        });
    });
    site(every * 60, max, || {
        // spawn: slow-leak-6 (1/min)
        let _ = Builder::new().name("slow-leak-6").spawn(async {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    });
}

/// A spawner calling `spawn` every `every`, at most `max` times.
fn site(every: Duration, max: usize, spawn: impl Fn() + Send + 'static) {
    let every = every.max(Duration::from_millis(1));
    let _ = Builder::new().name("slow-leak-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            spawn();
        }
        std::future::pending::<()>().await;
    });
}
