use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
struct Count<F>(F, Arc<AtomicUsize>);
impl<F: std::future::Future + Unpin> std::future::Future for Count<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.1.fetch_add(1, Ordering::SeqCst);
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = Arc::new(AtomicUsize::new(0));
    let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(Count(rx, n.clone()));
    let n2 = Arc::new(AtomicUsize::new(0));
    tokio::spawn(Count(
        Box::pin(tokio::time::sleep(Duration::from_secs(100))),
        n2.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!(
        "before: {} {}",
        n.load(Ordering::SeqCst),
        n2.load(Ordering::SeqCst)
    );
    let h = tokio::runtime::Handle::current();
    let _ = h.dump().await;
    println!(
        "right after: {} {}",
        n.load(Ordering::SeqCst),
        n2.load(Ordering::SeqCst)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "200ms later: {} {}",
        n.load(Ordering::SeqCst),
        n2.load(Ordering::SeqCst)
    );
}
