//! The resources views on a real console-subscriber target: a mutex held
//! forever with tasks queued on it, and a full bounded channel whose
//! producers wait on its internal semaphore. Grouped by location, one per
//! row, one resource with its waiting tasks, and Enter jumps to a task.

use crate::common::{self, DemoTarget};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};
use taskscope::analysis::Params;
use taskscope::ui::app::{App, Screen};
use taskscope::ui::{draw, input};

fn render(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(200, 30)).expect("terminal");
    term.draw(|f| draw::draw(f, app)).expect("draw");
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
                + "\n"
        })
        .collect()
}

fn key(app: &mut App, code: KeyCode) {
    input::on_key(app, KeyEvent::new(code, KeyModifiers::NONE), Instant::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_mutex_and_a_full_channel_show_their_waiters() {
    let demo = DemoTarget::start(&[
        "--scenarios",
        "mutex-wait,full-channel",
        "--leak-every",
        "100ms",
        "--no-agent",
    ]);
    let g = taskscope::headless::gather(
        demo.target(),
        taskscope::conn::Options::default(),
        Duration::from_secs(2),
        None,
    )
    .await
    .expect("gathered");
    let mut app = App::new(demo.addr.clone(), Params::default(), false);
    app.local = vec![g.state];
    app.recompute();
    app.page_rows = draw::list_rows(&app, 30);

    key(&mut app, KeyCode::Char('r'));
    let screen = render(&app);
    let mutex_line = common::spawn_line("mutex-wait");
    let mutex_row = screen
        .lines()
        .find(|l| l.contains("Mutex") && !l.contains("Semaphore"))
        .unwrap_or_else(|| panic!("no mutex group:\n{screen}"));
    assert!(
        screen.contains("Live") && screen.contains("Waiting"),
        "{screen}"
    );
    // One mutex, every lock-waiter queued on it.
    let cols: Vec<&str> = mutex_row.split_whitespace().collect();
    assert_eq!(cols[0], "1", "{mutex_row}");
    let waiting: u64 = cols[1].parse().unwrap();
    assert!(waiting >= 10, "{mutex_row}");
    // The full channel: its semaphore, waited on by the producers.
    let sem = screen
        .lines()
        .find(|l| l.contains("Semaphore"))
        .unwrap_or_else(|| panic!("no semaphore group:\n{screen}"));
    let sem_waiting: u64 = sem.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(sem_waiting >= 10, "{sem}");

    // Enter: the mutex group's resources; Enter: the mutex and its queue.
    let row = screen
        .lines()
        .skip(2)
        .position(|l| l == mutex_row)
        .expect("row");
    for _ in 0..row {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::ResourceList);
    let screen = render(&app);
    assert!(screen.contains("Attributes"), "{screen}");
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.screen, Screen::Resource(..)),
        "{:?}",
        app.screen
    );
    let screen = render(&app);
    assert!(
        screen.contains(&format!(
            "{waiting} waiting (Enter opens the selected task)"
        )),
        "{screen}"
    );
    assert!(screen.contains("lock-waiter"), "{screen}");
    assert!(screen.contains("Mutex"), "{screen}");
    // Enter jumps to the waiting task; Esc comes back.
    key(&mut app, KeyCode::Enter);
    let screen = render(&app);
    assert!(matches!(app.screen, Screen::Task(..)), "{screen}");
    assert!(
        screen.contains("lock-waiter") && screen.contains(&mutex_line),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(matches!(app.screen, Screen::Resource(..)));
}
