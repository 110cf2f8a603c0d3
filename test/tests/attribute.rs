//! `#[taskscope_test::test]` in place of `#[tokio::test]`: what passes,
//! and what fails the test with the report as its panic.

use std::time::Duration;

#[taskscope_test::test]
async fn a_test_that_joins_its_tasks_passes() {
    let h = taskscope_agent::spawn(async { tokio::task::yield_now().await });
    h.await.unwrap();
}

#[taskscope_test::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_thread_test_that_joins_its_tasks_passes() {
    let hs: Vec<_> = (0..8)
        .map(|i| tokio::spawn(async move { tokio::time::sleep(Duration::from_millis(i)).await }))
        .collect();
    for h in hs {
        h.await.unwrap();
    }
}

#[taskscope_test::test]
async fn a_test_can_return_a_result() -> Result<(), std::io::Error> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    l.local_addr()?;
    Ok(())
}

#[taskscope_test::test(grace = "50ms")]
#[should_panic(expected = "1 task leaked by this test (still alive 50ms after it ended)")]
async fn a_leak_fails_the_test() {
    taskscope_agent::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

#[taskscope_test::test(flavor = "multi_thread", worker_threads = 2, grace = "50ms")]
#[should_panic(expected = "sleeping (captured), spawned by the test body")]
async fn a_leak_fails_a_multi_thread_test() {
    taskscope_agent::spawn(tokio::time::sleep(Duration::from_secs(3600)));
}

#[taskscope_test::test(grace = "50ms", ignore = ["attribute::background"])]
async fn a_leak_ignored_by_function_passes() {
    taskscope_agent::spawn(background());
}

#[taskscope_test::test(grace = "50ms", ignore = ["tests/attribute.rs"])]
async fn a_leak_ignored_by_place_passes() {
    tokio::spawn(std::future::pending::<()>());
}

/// A function ignore reads the task's captured stack, which reaches as
/// far as a tokio wait.
async fn background() {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// A panic of the body is the test's own (the check does not run).
#[taskscope_test::test]
#[should_panic(expected = "the body's own panic")]
async fn the_bodys_panic_is_the_tests() {
    tokio::spawn(std::future::pending::<()>());
    panic!("the body's own panic");
}

#[taskscope_test::test(shared)]
async fn a_shared_test_can_return_a_boxed_error() -> Result<(), Box<dyn std::error::Error + Send>> {
    let n: u32 = "7"
        .parse()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send>)?;
    assert_eq!(n, 7);
    Ok(())
}

#[taskscope_test::test(flavor = "multi_thread")]
async fn a_test_can_return_a_boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    tokio::net::TcpListener::bind(addr).await?;
    Ok(())
}
