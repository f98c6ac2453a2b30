//! A complete framework in one file: launches three `echo` tasks, prints
//! their updates, and tears itself down when all have finished.
//!
//! `cargo run --example hello -p agora-sdk -- 127.0.0.1:5050`

use agora_common::task_state::is_terminal;
use agora_sdk::{Scheduler, SchedulerConfig, SchedulerEvent, TaskBuilder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let master = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5050".to_string());
    let config = SchedulerConfig::new(master, "hello").auto_acknowledge(true);
    let (scheduler, mut events) = Scheduler::subscribe(config).await?;
    let mut to_launch = 3;
    let mut done = 0;
    while let Some(event) = events.recv().await {
        match event {
            SchedulerEvent::Subscribed { framework_id, .. } => {
                println!("subscribed as {framework_id}")
            }
            SchedulerEvent::Offers(offers) => {
                for offer in offers {
                    if to_launch == 0 {
                        scheduler
                            .decline(offer.id.clone().into_iter().collect(), None)
                            .await?;
                        continue;
                    }
                    let task =
                        TaskBuilder::new(format!("hello-{to_launch}"), "echo hello from $HOST")
                            .cpus(0.1)
                            .mem(32.0)
                            .build(&offer);
                    scheduler.launch(&offer, vec![task]).await?;
                    to_launch -= 1;
                }
            }
            SchedulerEvent::Update(status) => {
                let id = status
                    .task_id
                    .as_ref()
                    .map(|t| t.value.as_str())
                    .unwrap_or("?");
                println!("{id}: {}", status.state().as_str_name());
                if is_terminal(status.state()) {
                    done += 1;
                    if done == 3 {
                        break;
                    }
                }
            }
            SchedulerEvent::Error(message) => anyhow::bail!("refused: {message}"),
            _ => {}
        }
    }
    scheduler.teardown().await?;
    Ok(())
}
