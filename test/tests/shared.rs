//! The binary's shared runtime: tests that run at once on it are each
//! checked for the tasks that descend from their own body, and blame no
//! other test (nor the leaks other tests left behind).

use crate::common::GRACE;
use std::sync::Arc;
use std::time::Duration;
use taskscope_test::{Check, Error, SpawnedBy, Wait};
use tokio::sync::Barrier;

#[taskscope_test::test(shared)]
async fn a_shared_test_that_joins_its_tasks_passes() {
    let hs: Vec<_> = (0..16)
        .map(|_| tokio::spawn(async { tokio::task::yield_now().await }))
        .collect();
    for h in hs {
        h.await.unwrap();
    }
}

#[taskscope_test::test(shared, grace = "50ms")]
#[should_panic(expected = "1 task leaked by this test")]
async fn a_shared_test_that_leaks_fails() {
    // Left on the shared runtime for good: no other test may be blamed.
    taskscope_agent::spawn(std::future::pending::<()>());
}

/// A task whose parent ended still belongs to the test that spawned the
/// parent: the leaker's grandchild is named with its parent's place.
const PARENT: u32 = line!() + 3;
const CHILD: u32 = line!() + 3;
async fn leaky(barrier: Arc<Barrier>) {
    let h = tokio::spawn(async {
        taskscope_agent::spawn(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
    });
    h.await.unwrap();
    barrier.wait().await;
}

async fn clean(barrier: Arc<Barrier>) {
    let hs: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i % 4)).await;
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    // A task still running when the body ends, and ending within the
    // grace period: the test's own, and no leak.
    tokio::spawn(tokio::time::sleep(Duration::from_millis(20)));
    barrier.wait().await;
}

#[test]
fn parallel_tests_blame_only_themselves() {
    const TESTS: usize = 4;
    let barrier = Arc::new(Barrier::new(TESTS));
    let tests: Vec<_> = (0..TESTS)
        .map(|i| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let check = Check::new().grace(GRACE);
                if i == 0 {
                    check.run_shared(leaky(b))
                } else {
                    check.run_shared(clean(b))
                }
            })
        })
        .collect();
    let results: Vec<_> = tests.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, r) in results.iter().enumerate().skip(1) {
        assert!(r.is_ok(), "test {i} blamed: {}", r.as_ref().unwrap_err());
    }
    let leaks = match &results[0] {
        Err(Error::Leaks(l)) => l,
        other => panic!("the leaky test passed: {other:?}"),
    };
    assert_eq!(leaks.tasks, 1, "{leaks}");
    let g = &leaks.groups[0];
    assert_eq!(
        g.main_wait(),
        Some(&Wait::Captured(taskscope_test::Reason::Sleep))
    );
    assert!(
        g.location.starts_with(&format!("{}:{CHILD}:", file!())),
        "{leaks}"
    );
    assert!(
        matches!(&g.spawned_by[..], [(SpawnedBy::TasksOf(by), 1)] if by.starts_with(&format!("{}:{PARENT}:", file!()))),
        "{leaks}"
    );
}

#[test]
fn the_shared_runtime_serves_fixtures() {
    let rt = taskscope_test::shared_runtime().unwrap();
    // A task no test owns: no test's check sees it (the binary's does).
    rt.spawn(std::future::pending::<()>());
    Check::new()
        .grace(GRACE)
        .run_shared(async {
            tokio::task::yield_now().await;
        })
        .unwrap();
}
