//! Helpers shared by the runtime test files.

use std::sync::{Arc, mpsc};

use tether_js::{HostValue, Op, Runtime};

/// Registers `f` as a sync op and exposes it as the global function `name`.
pub fn global_op(
    rt: &Runtime,
    name: &str,
    f: impl Fn(Vec<HostValue>) -> Result<HostValue, String> + Send + Sync + 'static,
) {
    let op = rt.register_op(name, Op::Sync(Arc::new(f))).expect("op");
    rt.set_global(
        name,
        HostValue::HostFunction {
            op,
            name: name.into(),
        },
    )
    .expect("global");
}

/// Registers a sync op (as global `name`) that sends on the returned channel each time JS calls
/// it: how a test learns that JS got somewhere without evaluating anything itself.
#[allow(dead_code)] // not every test file uses every helper
pub fn signal(rt: &Runtime, name: &str) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    global_op(rt, name, move |_| {
        let _ = tx.send(());
        Ok(HostValue::Null)
    });
    rx
}
