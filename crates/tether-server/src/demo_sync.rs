//! The todo-sync demo (`examples/todo-sync/CONTRACT.md`): one todo list shared by every page
//! of `/demo/sync`, served on `/ws/sync/demo`; the first user of the [`crate::sync`] API.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tether_sync::{Config, SyncOptions, ToastKind};

use crate::sync::{Ctx, HandlerError, HandlerResult, SyncApp, SyncedObject};

/// The synced key.
pub const KEY: &str = "TODOS";
/// Time between two counts of `COUNT`.
const COUNT_STEP: Duration = Duration::from_millis(100);
/// Largest `n` a `COUNT` accepts (a minute and a half of counting).
const MAX_COUNT: u32 = 1000;

/// One todo item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Todo {
    id: u64,
    text: String,
    done: bool,
}

/// The state under `TODOS` (field order is the wire's key order).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Todos {
    todos: Vec<Todo>,
    next_id: u64,
    progress: f64,
}

impl Default for Todos {
    fn default() -> Self {
        Self {
            todos: vec![Todo {
                id: 1,
                text: "try tether".to_owned(),
                done: false,
            }],
            next_id: 2,
            progress: 0.0,
        }
    }
}

impl Todos {
    fn push(&mut self, text: String) {
        self.todos.push(Todo {
            id: self.next_id,
            text,
            done: false,
        });
        self.next_id += 1;
    }
}

#[derive(Deserialize)]
struct Add {
    text: String,
}

#[derive(Deserialize)]
struct ById {
    id: u64,
}

#[derive(Deserialize)]
struct Upload {
    #[serde(default = "default_name")]
    name: String,
}

fn default_name() -> String {
    "upload".to_owned()
}

#[derive(Deserialize)]
struct Count {
    n: u32,
}

/// The demo app with a fresh shared list.
pub fn app() -> Arc<SyncApp<Todos>> {
    let todos = SyncedObject::new(KEY, Todos::default());
    let app = SyncApp::new(todos)
        .options(SyncOptions {
            send_on_init: true,
            expose_running_tasks: true,
            running_tasks_key: "running_tasks".to_owned(),
            pull_state: false,
        })
        .config(Config::default())
        .action("ADD", |ctx: Ctx<Todos>, a: Add| async move {
            if a.text.trim().is_empty() {
                return Err(HandlerError::msg("text must not be empty"));
            }
            ctx.update(|t| t.push(a.text));
            Ok(())
        })
        .action("TOGGLE", |ctx: Ctx<Todos>, a: ById| async move {
            ctx.update(|t| {
                for todo in t.todos.iter_mut().filter(|todo| todo.id == a.id) {
                    todo.done = !todo.done;
                }
            });
            Ok(())
        })
        .action("REMOVE", |ctx: Ctx<Todos>, a: ById| async move {
            ctx.update(|t| t.todos.retain(|todo| todo.id != a.id));
            Ok(())
        })
        .action("CLEAR_DONE", |ctx: Ctx<Todos>, _: IgnoredAny| async move {
            ctx.update(|t| t.todos.retain(|todo| !todo.done));
            Ok(())
        })
        .action("UPLOAD", |ctx: Ctx<Todos>, a: Upload| async move {
            let data = ctx
                .binary()
                .ok_or_else(|| HandlerError::msg("UPLOAD needs binary data (sendBinary)"))?
                .to_vec();
            let text = format!("uploaded {} ({} bytes)", a.name, data.len());
            ctx.update(|t| t.push(text));
            let mut meta = Map::new();
            meta.insert("type".to_owned(), Value::from("ECHO"));
            meta.insert("name".to_owned(), Value::from(a.name));
            ctx.send_binary(meta, data.into_iter().rev().collect());
            Ok(())
        })
        .task("COUNT", |ctx: Ctx<Todos>, a: Count, _cancel| count(ctx, a))
        .on_cancel("COUNT", |ctx: Ctx<Todos>| async move {
            ctx.update(|t| t.progress = 0.0);
            ctx.toast(ToastKind::Info, "count cancelled");
        });
    Arc::new(app)
}

async fn count(ctx: Ctx<Todos>, a: Count) -> HandlerResult {
    if a.n > MAX_COUNT {
        return Err(HandlerError::msg(format!("n must be at most {MAX_COUNT}")));
    }
    for i in 1..=a.n {
        ctx.update(|t| t.progress = f64::from(i) / f64::from(a.n));
        tokio::time::sleep(COUNT_STEP).await;
    }
    ctx.toast(ToastKind::Success, format!("counted to {}", a.n));
    Ok(())
}

/// `GET /demo/sync`: the demo page.
pub async fn page() -> Response {
    crate::socket::page("demo-sync.html")
}
