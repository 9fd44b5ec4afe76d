//! [`Runtime`]: an [`Isolate`] on its own thread. The thread blocks on a bounded channel (with a
//! timeout at the next timer or promise deadline), so an idle runtime uses no CPU.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::JsError;
use crate::isolate::Isolate;
use crate::request::{
    Await, CompletionSink, Config, ModuleLoader, ModuleResolver, Op, Reply, Request, Response,
    Stats,
};
use crate::snapshot::Snapshot;
use crate::value::HostValue;

/// Requests queued per runtime before senders block (every queue is bounded).
const QUEUE: usize = 256;
/// How long a waiting side polls before it parks (requests and answers usually follow each
/// other within a few microseconds; an idle runtime parks after this). Off when the process may
/// use only one CPU (the other side could not run meanwhile); `TETHER_JS_SPIN_US` overrides it
/// (0 turns polling off).
fn spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let default = match std::thread::available_parallelism() {
            Ok(n) if n.get() > 1 => 30,
            _ => 0,
        };
        let us = std::env::var("TETHER_JS_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        Duration::from_micros(us.min(1000))
    })
}

/// Whether polling has been paying off at one waiting site: a poll that ran out its window
/// (the other side was slow or had no CPU, e.g. on a busy machine) turns polling off for the
/// next [`Gate::BACKOFF`] waits, after which one poll probes again. So a busy machine pays a
/// wasted window once per [`Gate::BACKOFF`] waits instead of on every call.
struct Gate(AtomicI32);

impl Gate {
    const BACKOFF: i32 = 32;

    const fn new() -> Gate {
        Gate(AtomicI32::new(0))
    }
}

/// Where the host waits for an answer.
static REPLY_GATE: Gate = Gate::new();
/// Where a worker waits for its next request.
static NEXT_GATE: Gate = Gate::new();

/// Polls `f` until it yields or `spin()` passes (reading the clock only every 64 tries), unless
/// recent polls at this `gate` ran out their window.
fn poll_briefly<T>(gate: &Gate, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let window = spin();
    if window.is_zero() {
        return None;
    }
    if gate.0.load(Ordering::Relaxed) < 0 {
        gate.0.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let until = Instant::now() + window;
    loop {
        for _ in 0..64 {
            if let Some(v) = f() {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            gate.0.store(-Gate::BACKOFF, Ordering::Relaxed);
            return None;
        }
    }
}

/// The worker thread's stack (the JS stack limit is set well below it).
const THREAD_STACK: usize = 8 * 1024 * 1024;

/// Runtime threads alive in this process (for leak checks in tests).
static ACTIVE_THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many runtime threads are running now (each `Runtime` has one until it is closed and
/// dropped).
pub fn active_runtime_threads() -> usize {
    ACTIVE_THREADS.load(Ordering::SeqCst)
}

enum Msg {
    Req(Request, Reply),
    Wake,
    Close,
}

/// Async op results waiting for the runtime thread. Not the request queue: a completion may come
/// from the runtime thread itself (which must never block on its own queue); it is bounded by
/// the number of op calls JS has in flight.
type Completions = Arc<Mutex<Vec<(u64, Result<HostValue, String>)>>>;

/// Settles the host ops that completed (from any thread) since the last call; whether any did.
fn apply_completions(iso: &mut Isolate, completions: &Completions) -> bool {
    let done = std::mem::take(&mut *lock(completions));
    let any = !done.is_empty();
    for (call, result) in done {
        iso.handle(Request::Complete { call, result }, Box::new(|_| {}));
    }
    any
}

/// The isolate and the timer deadline the worker is waiting for, shared by the worker and
/// callers that run a request inline while the worker is idle (blocked on the channel).
struct Shared {
    iso: Option<Isolate>,
    armed: Option<Instant>,
}

// SAFETY: an `Isolate` is `!Send` only because of the `Rc`/`Cell`/`RefCell` state inside it and
// inside its rquickjs runtime (not built with `parallel`). Every such value, and every clone of
// those `Rc`s, belongs to the isolate's own object graph: the isolate's fields, closures stored
// in its QuickJS runtime, and the thread-local re-entry stack, which holds clones only while a
// host op of this isolate runs below it on the same thread, i.e. while the thread holds the
// lock. So the graph moves between threads as a whole, and the `Mutex` in `Slot` makes sure
// only one thread touches it at a time. QuickJS itself is not tied to a thread, except for its
// stack limit, which [`Held`] re-bases on the current thread's stack each time it takes the
// lock.
unsafe impl Send for Shared {}

type Slot = Arc<Mutex<Shared>>;

thread_local! {
    /// Runtimes (their `Inner` addresses) whose isolate this thread holds, innermost last.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The locked isolate, registered as held by this thread while it lives.
struct Held<'a>(MutexGuard<'a, Shared>);

impl<'a> Held<'a> {
    fn new(key: usize, guard: MutexGuard<'a, Shared>) -> Self {
        HELD.with(|h| h.borrow_mut().push(key));
        if let Some(iso) = &guard.iso {
            iso.enter_thread();
        }
        Held(guard)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.borrow_mut().pop());
    }
}

/// How much stack this thread has left below the current frame (0 if unknown).
fn stack_room() -> usize {
    thread_local! {
        static LOW: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let low = LOW.with(|l| {
        if l.get() == usize::MAX {
            l.set(stack_low().unwrap_or(0));
        }
        l.get()
    });
    if low == 0 { 0 } else { sp.saturating_sub(low) }
}

/// The lowest address of this thread's stack.
#[cfg(target_os = "linux")]
fn stack_low() -> Option<usize> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read and destroyed
    // once; the out-pointers point to locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0 && !addr.is_null()).then_some(addr as usize)
    }
}

/// Elsewhere the stack size is unknown, so requests always go through the worker.
#[cfg(not(target_os = "linux"))]
fn stack_low() -> Option<usize> {
    None
}

/// Stack beyond QuickJS's limit that host code (conversions, callbacks) may use.
const STACK_MARGIN: usize = 512 * 1024;

struct Inner {
    tx: SyncSender<Msg>,
    completions: Completions,
    terminate: Arc<AtomicBool>,
    closed: AtomicBool,
    /// Set by [`Runtime::close_nowait`]: the worker stops after the message it is handling.
    stop: Arc<AtomicBool>,
    next_op: AtomicU32,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The isolate (`None` before start and after shutdown).
    slot: Slot,
    /// Requests queued and not yet handled (an inline request must not overtake them).
    queued: Arc<AtomicUsize>,
    /// The stack an inline request needs on the caller's thread (QuickJS's limit plus margin).
    stack_needed: usize,
}

impl Inner {
    fn key(&self) -> usize {
        self as *const Inner as usize
    }

    /// Queues a request without blocking; gives the reply back if the queue is full or gone.
    fn try_send_req(&self, req: Request, reply: Reply) -> Option<Reply> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(Msg::Req(req, reply)) {
            Ok(()) => None,
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                match m {
                    Msg::Req(_, reply) => Some(reply),
                    Msg::Wake | Msg::Close => None,
                }
            }
        }
    }

    /// Queues a request, blocking while the queue is full.
    fn send_req(&self, req: Request, reply: Reply) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.tx.send(Msg::Req(req, reply)) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            if let Msg::Req(_, reply) = e.0 {
                reply(Err(JsError::Closed));
            }
        }
    }

    /// Whether this thread holds this runtime's isolate (it runs JS or a host callback of it).
    fn held_here(&self) -> bool {
        let key = self.key();
        HELD.with(|h| h.borrow().contains(&key))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Msg::Close);
    }
}

/// A JS runtime on its own thread; cheap to clone (all clones drive the same runtime, which
/// stops when the last clone is dropped or [`Runtime::close`] is called).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Stops a runtime's JS from any thread (`while(true){}` included), leaving it terminated.
#[derive(Clone)]
pub struct Terminator {
    flag: Arc<AtomicBool>,
    inner: Weak<Inner>,
}

impl Terminator {
    /// Interrupts running JS and terminates the runtime; idempotent.
    pub fn terminate(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(inner) = self.inner.upgrade() {
            let _ = inner.tx.try_send(Msg::Wake);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runtime {
    /// Starts a runtime thread and waits until the isolate is ready (or failed to start).
    pub fn new(config: Config) -> Result<Self, JsError> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let terminate = Arc::new(AtomicBool::new(false));
        let completions: Completions = Arc::default();
        let inner = Arc::new(Inner {
            tx,
            completions: completions.clone(),
            terminate: terminate.clone(),
            closed: AtomicBool::new(false),
            stop: Arc::default(),
            next_op: AtomicU32::new(0),
            thread: Mutex::new(None),
            slot: Arc::new(Mutex::new(Shared {
                iso: None,
                armed: None,
            })),
            queued: Arc::default(),
            stack_needed: match config.max_stack_size {
                0 => usize::MAX,
                n => n.saturating_add(STACK_MARGIN),
            },
        });
        let (slot, key, queued) = (inner.slot.clone(), inner.key(), inner.queued.clone());
        let stop = inner.stop.clone();
        let weak = Arc::downgrade(&inner);
        let sink: CompletionSink = Arc::new(move |call, result| {
            if let Some(inner) = weak.upgrade() {
                lock(&inner.completions).push((call, result));
                // A full queue wakes the thread anyway.
                let _ = inner.tx.try_send(Msg::Wake);
            }
        });
        let (ready_tx, ready_rx) = sync_channel::<Result<(), JsError>>(1);
        let handle = std::thread::Builder::new()
            .name("tether-js".into())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                ACTIVE_THREADS.fetch_add(1, Ordering::SeqCst);
                struct Count;
                impl Drop for Count {
                    fn drop(&mut self) {
                        ACTIVE_THREADS.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _count = Count;
                match Isolate::new(config, terminate, sink) {
                    Ok(iso) => {
                        lock(&slot).iso = Some(iso);
                        let _ = ready_tx.send(Ok(()));
                        run(&slot, key, &queued, &stop, rx, completions);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| JsError::Other(format!("cannot start the runtime thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(JsError::Other(
                    "Runtime thread initialization failed".into(),
                ));
            }
        }
        *lock(&inner.thread) = Some(handle);
        Ok(Runtime { inner })
    }

    /// Whether this thread is running this runtime's JS (a host callback, on the runtime's
    /// thread or on a caller's thread running a request inline), where blocking calls would
    /// deadlock.
    pub fn on_worker_thread(&self) -> bool {
        self.inner.held_here()
    }

    /// Queues a request; `reply` runs with the answer on the thread holding the isolate.
    pub fn submit(&self, req: Request, reply: Reply) {
        if self.inner.closed.load(Ordering::SeqCst) {
            return reply(Err(JsError::Closed));
        }
        if self.on_worker_thread() {
            // From a host callback: never block on our own queue.
            if let Some(reply) = self.inner.try_send_req(req, reply) {
                reply(Err(JsError::Other(
                    "The runtime's request queue is full".into(),
                )));
            }
            return;
        }
        self.inner.send_req(req, reply);
    }

    /// Runs `req` on this thread if the worker is idle and nothing is queued; gives it back
    /// otherwise. Saves the hand-off to the worker (a futex wake and two context switches).
    fn request_inline(&self, req: Request) -> Result<Result<Response, JsError>, Request> {
        let inner = &*self.inner;
        if inner.queued.load(Ordering::SeqCst) != 0 || stack_room() < inner.stack_needed {
            return Err(req);
        }
        let guard = match inner.slot.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(req),
        };
        // Checked again under the lock: the worker counts a request as handled only once it
        // has handled it, under the lock.
        if guard.iso.is_none() || inner.queued.load(Ordering::SeqCst) != 0 {
            return Err(req);
        }
        let mut held = Held::new(inner.key(), guard);
        let (tx, rx) = sync_channel(1);
        let Some(iso) = held.0.iso.as_mut() else {
            return Err(req);
        };
        // Host ops that completed since the worker last ran settle first, with their promise
        // jobs, as they would have on the worker before this request.
        if apply_completions(iso, &inner.completions) {
            iso.poll();
        }
        iso.handle(
            req,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        apply_completions(iso, &inner.completions);
        let next = if iso.is_dead() { None } else { iso.poll() };
        // The worker must re-arm if a timer or deadline is now due before the one it waits for.
        let rearm = next.is_some_and(|n| held.0.armed.is_none_or(|a| n < a));
        drop(held);
        let answer = match rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Disconnected) => Some(Err(JsError::Closed)),
            Err(TryRecvError::Empty) => None,
        };
        if rearm || answer.is_none() {
            // A full queue wakes the worker anyway.
            let _ = inner.tx.try_send(Msg::Wake);
        }
        // Still pending (an awaited promise): the worker drives timers and host ops to it.
        Ok(answer.unwrap_or_else(|| rx.recv().unwrap_or(Err(JsError::Closed))))
    }

    /// Runs a request and blocks for the answer: inline on this thread when the runtime is idle
    /// and nothing is queued, else through the runtime's thread. From a host callback calls and
    /// evals run inline (re-entrantly) instead.
    pub fn request(&self, req: Request) -> Result<Response, JsError> {
        if self.on_worker_thread() {
            if self.inner.closed.load(Ordering::SeqCst) {
                return Err(JsError::Closed);
            }
            return crate::isolate::reentrant(req).unwrap_or_else(|| {
                Err(JsError::Other(
                    "Cannot wait for the runtime on its own thread outside a host callback".into(),
                ))
            });
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(JsError::Closed);
        }
        let req = match self.request_inline(req) {
            Ok(r) => return r,
            Err(req) => req,
        };
        let (tx, rx) = sync_channel(1);
        self.submit(
            req,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        // Most answers come within microseconds: poll briefly before parking (a futex sleep and
        // wake-up cost more than the eval itself).
        let polled = poll_briefly(&REPLY_GATE, || match rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Disconnected) => Some(Err(JsError::Closed)),
            Err(TryRecvError::Empty) => None,
        });
        match polled {
            Some(r) => r,
            None => rx.recv().unwrap_or(Err(JsError::Closed)),
        }
    }

    fn value(&self, req: Request) -> Result<HostValue, JsError> {
        match self.request(req)? {
            Response::Value(v) => Ok(v),
            other => Err(JsError::Other(format!("unexpected response {other:?}"))),
        }
    }

    /// Evaluates a script and returns its completion value (promises are not awaited).
    pub fn eval(&self, code: &str) -> Result<HostValue, JsError> {
        self.value(Request::Eval {
            code: code.into(),
            timeout: None,
            wait: Await::No,
        })
    }

    /// Evaluates a script and waits for the promise it returns, driving timers and host ops.
    pub fn eval_async(&self, code: &str, timeout: Option<Duration>) -> Result<HostValue, JsError> {
        self.value(Request::Eval {
            code: code.into(),
            timeout,
            wait: Await::Yes,
        })
    }

    /// Calls a function handle and waits for its promise, if it returns one.
    pub fn call(&self, func: u64, args: Vec<HostValue>) -> Result<HostValue, JsError> {
        self.value(Request::Call {
            func,
            args,
            timeout: None,
            wait: Await::Yes,
        })
    }

    /// Calls a function handle with one JSON argument and returns its (awaited) result as JSON.
    pub fn call_json(
        &self,
        func: u64,
        arg: serde_json::Value,
    ) -> Result<serde_json::Value, JsError> {
        Ok(self.call(func, vec![HostValue::from_json(&arg)])?.to_json())
    }

    /// Calls a function handle without blocking: `reply` runs on the runtime's thread (or a
    /// caller's thread running a request inline) with the (awaited) result. With tokio, send it
    /// through a `oneshot` channel and await that.
    pub fn call_with(
        &self,
        func: u64,
        args: Vec<HostValue>,
        reply: impl FnOnce(Result<HostValue, JsError>) + Send + 'static,
    ) {
        let req = Request::Call {
            func,
            args,
            timeout: None,
            wait: Await::Yes,
        };
        self.submit(
            req,
            Box::new(move |r| {
                reply(match r {
                    Ok(Response::Value(v)) => Ok(v),
                    Ok(other) => Err(JsError::Other(format!("unexpected response {other:?}"))),
                    Err(e) => Err(e),
                })
            }),
        );
    }

    /// [`Runtime::call_with`] with one JSON argument and a JSON result.
    pub fn call_json_with(
        &self,
        func: u64,
        arg: serde_json::Value,
        reply: impl FnOnce(Result<serde_json::Value, JsError>) + Send + 'static,
    ) {
        self.call_with(func, vec![HostValue::from_json(&arg)], move |r| {
            reply(r.map(|v| v.to_json()))
        });
    }

    /// Imports a module and returns its namespace (exports) as an object.
    pub fn eval_module(&self, specifier: &str) -> Result<HostValue, JsError> {
        self.value(Request::EvalModule {
            specifier: specifier.into(),
            timeout: None,
            is_async: true,
        })
    }

    /// Imports a module and returns the handle of one exported function (releasing the others).
    pub fn module_export(&self, specifier: &str, name: &str) -> Result<u64, JsError> {
        let ns = self.eval_module(specifier)?;
        let HostValue::Object(props) = ns else {
            return Err(JsError::Module(format!("{specifier} has no namespace")));
        };
        let mut found = None;
        for (k, v) in props {
            match v {
                HostValue::Function(id) if k == name => found = Some(id),
                HostValue::Function(id) => self.release(id),
                _ => {}
            }
        }
        found.ok_or_else(|| {
            JsError::Module(format!("{specifier} does not export a function {name}"))
        })
    }

    /// Sets `globalThis[name]`.
    pub fn set_global(&self, name: &str, value: HostValue) -> Result<(), JsError> {
        self.request(Request::SetGlobal {
            name: name.into(),
            value,
        })
        .map(|_| ())
    }

    /// Registers a host op and returns its id (ids count up from 0 per runtime).
    pub fn register_op(&self, name: &str, op: Op) -> Result<u32, JsError> {
        let id = self.inner.next_op.fetch_add(1, Ordering::SeqCst);
        self.request(Request::RegisterOp {
            id,
            name: name.into(),
            op,
        })?;
        Ok(id)
    }

    /// Makes `name`, `static:name` and `jsrun://static/name` import `source`.
    pub fn add_static_module(&self, name: &str, source: &str) -> Result<(), JsError> {
        self.request(Request::AddStaticModule {
            name: name.into(),
            source: source.into(),
        })
        .map(|_| ())
    }

    /// Sets the module resolver.
    pub fn set_resolver(&self, r: Option<ModuleResolver>) -> Result<(), JsError> {
        self.request(Request::SetResolver(r)).map(|_| ())
    }

    /// Sets the module loader.
    pub fn set_loader(&self, l: Option<ModuleLoader>) -> Result<(), JsError> {
        self.request(Request::SetLoader(l)).map(|_| ())
    }

    /// Drops a handle (fire and forget; never blocks).
    pub fn release(&self, handle: u64) {
        let _ = self
            .inner
            .try_send_req(Request::Release(handle), Box::new(|_| {}));
    }

    /// Counters and heap figures.
    pub fn stats(&self) -> Result<Stats, JsError> {
        match self.request(Request::Stats)? {
            Response::Stats(s) => Ok(s),
            other => Err(JsError::Other(format!("unexpected response {other:?}"))),
        }
    }

    /// A handle that terminates this runtime from any thread.
    pub fn terminator(&self) -> Terminator {
        Terminator {
            flag: self.inner.terminate.clone(),
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Interrupts running JS and terminates the runtime (later requests fail with
    /// `Terminated`).
    pub fn terminate(&self) {
        self.terminator().terminate();
    }

    /// Whether `terminate()` was called.
    pub fn is_terminated(&self) -> bool {
        self.inner.terminate.load(Ordering::SeqCst)
    }

    /// Whether `close()` was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Stops the thread and waits for it (pending requests fail); idempotent.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.on_worker_thread() {
            // From a host callback: the thread stops once the callback returns.
            let _ = self.inner.tx.try_send(Msg::Close);
            return;
        }
        // A blocking send: the worker drains the queue, so this cannot wait forever.
        let _ = self.inner.tx.send(Msg::Close);
        let handle = lock(&self.inner.thread).take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    /// Stops the thread without waiting for it, for drop paths that may hold a lock the thread
    /// needs first (the GIL, say): other clones of this runtime (handles kept by the host) no
    /// longer keep the thread and its heap alive. Requests still queued fail; idempotent.
    pub fn close_nowait(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // The flag first: if the queue is full, the worker is busy and sees it after its
        // current message; otherwise the Close message wakes it.
        self.inner.stop.store(true, Ordering::SeqCst);
        let _ = self.inner.tx.try_send(Msg::Close);
    }
}

fn run(
    slot: &Mutex<Shared>,
    key: usize,
    queued: &AtomicUsize,
    stop: &AtomicBool,
    rx: Receiver<Msg>,
    completions: Completions,
) {
    let mut next: Option<Instant> = None;
    let mut hot = false;
    loop {
        // Right after a request, the next one often follows at once: poll briefly first.
        let mut disconnected = false;
        let polled = if hot && next.is_none_or(|at| at > Instant::now() + spin()) {
            poll_briefly(&NEXT_GATE, || match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    Some(Msg::Wake)
                }
                Err(TryRecvError::Empty) => None,
            })
        } else {
            None
        };
        if disconnected {
            break;
        }
        let msg = if let Some(m) = polled {
            Some(m)
        } else {
            match next {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            }
        };
        hot = matches!(msg, Some(Msg::Req(..)));
        // The isolate is locked only while handling; callers may run requests inline meanwhile.
        let mut held = Held::new(key, lock(slot));
        if stop.load(Ordering::SeqCst) {
            // Closed while this message waited (for the lock, say): answer it as closed.
            if let Some(Msg::Req(_, reply)) = msg {
                queued.fetch_sub(1, Ordering::SeqCst);
                reply(Err(JsError::Closed));
            }
            break;
        }
        let shared = &mut *held.0;
        let Some(iso) = shared.iso.as_mut() else {
            break;
        };
        match msg {
            Some(Msg::Req(req, reply)) => {
                iso.handle(req, reply);
                // Counted as handled only now, under the lock (see `Runtime::request_inline`).
                queued.fetch_sub(1, Ordering::SeqCst);
            }
            Some(Msg::Wake) | None => {}
            Some(Msg::Close) => break,
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        apply_completions(iso, &completions);
        next = if iso.is_dead() { None } else { iso.poll() };
        shared.armed = next;
    }
    let iso = {
        let mut held = Held::new(key, lock(slot));
        if let Some(iso) = held.0.iso.as_mut() {
            iso.shutdown("Runtime has been shut down");
        }
        held.0.iso.take()
    };
    // Dropped here, on the runtime's thread, after the lock is released.
    drop(iso);
    // Answer anything still queued.
    while let Ok(m) = rx.try_recv() {
        if let Msg::Req(_, reply) = m {
            reply(Err(JsError::Closed));
        }
    }
}

/// Records bootstrap scripts (running each in a scratch runtime) and builds a [`Snapshot`].
pub struct SnapshotBuilder {
    rt: Runtime,
    snapshot: Snapshot,
}

impl SnapshotBuilder {
    /// Starts a scratch runtime.
    pub fn new(config: Config) -> Result<Self, JsError> {
        Ok(SnapshotBuilder {
            rt: Runtime::new(config)?,
            snapshot: Snapshot::default(),
        })
    }

    /// Compiles and runs a classic script; it is replayed in every runtime built from the
    /// snapshot.
    pub fn execute_script(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        match self.rt.request(Request::RunScript {
            name: name.into(),
            source: source.into(),
        })? {
            Response::Bytecode(code) => {
                self.snapshot.push(name.into(), code);
                Ok(())
            }
            other => Err(JsError::Other(format!("unexpected response {other:?}"))),
        }
    }

    /// The snapshot so far.
    pub fn build(self) -> Snapshot {
        self.rt.close();
        self.snapshot
    }
}
