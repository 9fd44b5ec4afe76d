//! An idle runtime blocks on its channel: ten of them use no measurable CPU (own process, so
//! other tests' threads do not count).

use std::time::Duration;

use tether_js::{Config, Runtime};

fn rt() -> Runtime {
    Runtime::new(Config::default()).expect("runtime")
}

fn thread_cpu_ticks() -> u64 {
    let mut total = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some(rest) = stat.rsplit(')').next() else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields after the name: state is [0]; utime and stime are fields 14 and 15 overall.
            total += f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

#[test]
fn idle_runtimes_use_no_cpu() {
    let rts: Vec<Runtime> = (0..10).map(|_| rt()).collect();
    for r in &rts {
        r.eval("setTimeout(() => {}, 100000)").unwrap();
    }
    let before = thread_cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = thread_cpu_ticks().saturating_sub(before);
    // Ticks are 10 ms; ten idle runtimes over one second must stay near zero.
    assert!(used <= 2, "idle runtimes used {used} ticks");
    drop(rts);
}
