use std::time::Duration;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 8];
        use tokio::io::AsyncReadExt;
        let _ = s.read(&mut b).await;
    });
    let _c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
    tokio::spawn(async move {
        rx.recv().await;
    });
    let n = std::sync::Arc::new(tokio::sync::Notify::new());
    let n2 = n.clone();
    tokio::spawn(async move {
        n2.notified().await;
    });
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(100)).await;
    });
    let h = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(100)).await;
    });
    tokio::spawn(async move {
        let _ = h.await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    for _ in 0..n {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
        });
    }
    let handle = tokio::runtime::Handle::current();
    let r = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Ok::<_, String>(taskscope_agent::dump::resolve(
            rt.block_on(taskscope_agent::dump::capture(&handle)),
        ))
    })
    .join()
    .unwrap()
    .unwrap();
    println!(
        "tasks {} traces {} capture {:?} resolve {:?} bytes {}",
        r.tasks.len(),
        r.traces.len(),
        Duration::from_nanos(r.capture_ns),
        Duration::from_nanos(r.resolve_ns),
        prost::Message::encoded_len(&r)
    );
    if n == 0 {
        for t in &r.tasks {
            println!("task {} -> trace {}", t.id, t.trace);
        }
        for (i, t) in r.traces.iter().enumerate() {
            println!("== trace {i}");
            for l in &t.leaves {
                println!("  leaf:");
                for f in &l.frames {
                    println!("    {f}");
                }
            }
        }
    }
}
