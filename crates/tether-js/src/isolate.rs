//! [`Isolate`]: one QuickJS runtime and context with its timers, host ops, handles, modules and
//! pending evaluations. It owns no thread: the adapter in `worker.rs` feeds it [`Request`]s and
//! calls [`Isolate::poll`] when the deadline it returned passes. It reads the clock and prints
//! console output itself (the crate doc says why). Its request types are in `request.rs`, its
//! module hooks in `modules.rs`.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ffi::CString;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::function::Rest;
use rquickjs::promise::PromiseState;
use rquickjs::{Coerced, Context, Ctx, Function, Module, Object, Persistent, Promise, Value, qjs};

use crate::code_cache::{CodeCache, ENTRY_OVERHEAD};
use crate::convert::{FromHost, Handles, Helpers, Limits, ToHost, call_with_this};
use crate::error::{Exception, JsError, parse_frames};
use crate::modules::{ModuleLoaderGlue, ModuleResolverGlue, Modules};
use crate::request::{
    Await, Completion, CompletionSink, Config, Op, Reply, Request, Response, Stats,
};
use crate::value::HostValue;

const BOOTSTRAP: &str = include_str!("bootstrap.js");
const READABLE_STREAM: &str = include_str!("readable_stream.js");

/// The bootstrap script compiled once per process (parsing it costs more than the rest of a
/// runtime's start).
static BOOTSTRAP_CODE: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();

/// The ReadableStream shim, compiled once per process and run on first use.
static READABLE_STREAM_CODE: std::sync::OnceLock<Result<Vec<u8>, String>> =
    std::sync::OnceLock::new();

/// `native.readableStream()`: evaluates the shim and returns the class.
fn readable_stream_class<'js>(ctx: Ctx<'js>) -> rquickjs::Result<Value<'js>> {
    let code = READABLE_STREAM_CODE
        .get_or_init(|| {
            crate::snapshot::compile_script(&ctx, "<tether:readable_stream>", READABLE_STREAM)
        })
        .as_ref()
        .map_err(|e| rquickjs::Exception::throw_internal(&ctx, e))?;
    let f = crate::snapshot::eval_bytecode(&ctx, code)?;
    let f = f
        .into_function()
        .ok_or_else(|| rquickjs::Exception::throw_internal(&ctx, "bad ReadableStream shim"))?;
    f.call(())
}

fn bootstrap_function<'js>(ctx: &Ctx<'js>) -> Result<Function<'js>, JsError> {
    let code = BOOTSTRAP_CODE
        .get_or_init(|| crate::snapshot::compile_script(ctx, "<tether:bootstrap>", BOOTSTRAP))
        .as_ref()
        .map_err(|e| JsError::Other(format!("bootstrap does not compile: {e}")))?;
    let v = crate::snapshot::eval_bytecode(ctx, code).map_err(|e| self_catch(ctx, e))?;
    v.into_function()
        .ok_or_else(|| JsError::Other("bootstrap did not return a function".into()))
}

/// What an evaluation produced before any waiting.
enum Outcome {
    /// A converted value.
    Value(HostValue),
    /// A promise to wait for (or hand out).
    Promise(Persistent<Value<'static>>),
}

struct Waiter {
    promise: Persistent<Value<'static>>,
    /// Label for a CPU timeout while waiting, and for a pending timeout (`None`: the eval
    /// wording "Evaluation timed out after …ms (promise still pending)").
    cpu_label: &'static str,
    pending_label: Option<&'static str>,
    deadline: Option<Instant>,
    ms: u64,
    module: Option<String>,
    reply: Reply,
}

/// Why the interrupt handler stopped JS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    None,
    Deadline,
    Terminate,
}

/// The resolve and reject functions of an async op's promise.
type Settlers = (Persistent<Function<'static>>, Persistent<Function<'static>>);

/// State shared with the native functions living inside the JS heap.
struct Core {
    ops: RefCell<HashMap<u32, (String, Op)>>,
    pending: RefCell<HashMap<u64, Settlers>>,
    next_call: Cell<u64>,
    sink: CompletionSink,
    timers: RefCell<BinaryHeap<Reverse<(Instant, u64, u64)>>>,
    timer_seq: Cell<u64>,
    handles: RefCell<Handles>,
    internals: RefCell<Option<Persistent<Object<'static>>>>,
    modules: Rc<RefCell<Modules>>,
    limits: Limits,
    deadline: Rc<Cell<Option<Instant>>>,
    stop: Rc<Cell<Stop>>,
    code_cache: RefCell<CodeCache<Compiled>>,
}

/// A compiled classic script (a `JS_TAG_FUNCTION_BYTECODE` value the cache holds one reference
/// to; freed by [`Isolate`] when evicted or dropped).
struct Compiled(qjs::JSValue);

/// The compile flags of `eval` (a sloppy-mode global script); part of the cache key.
const SCRIPT_FLAGS: i32 = qjs::JS_EVAL_TYPE_GLOBAL as i32;

/// One JS runtime (QuickJS runtime + context) with everything it needs between requests.
pub struct Isolate {
    core: Rc<Core>,
    waiters: Vec<Waiter>,
    config: Config,
    terminate: Arc<AtomicBool>,
    dead: Option<String>,
    stats: Stats,
    ctx: Context,
    rt: rquickjs::Runtime,
}

fn other(e: rquickjs::Error) -> JsError {
    JsError::Other(e.to_string())
}

impl Isolate {
    /// Creates a runtime; `terminate` stops it from any thread (the adapter also wakes it), and
    /// `sink` receives async op completions.
    pub fn new(
        config: Config,
        terminate: Arc<AtomicBool>,
        sink: CompletionSink,
    ) -> Result<Self, JsError> {
        let rt = rquickjs::Runtime::new().map_err(other)?;
        if let Some(limit) = config.memory_limit {
            rt.set_memory_limit(limit);
        }
        if let Some(t) = config.gc_threshold {
            rt.set_gc_threshold(t);
        }
        rt.set_max_stack_size(config.max_stack_size);
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        let stop = Rc::new(Cell::new(Stop::None));
        {
            let (deadline, stop, term) = (deadline.clone(), stop.clone(), terminate.clone());
            rt.set_interrupt_handler(Some(Box::new(move || {
                if term.load(Ordering::Relaxed) {
                    stop.set(Stop::Terminate);
                    return true;
                }
                match deadline.get() {
                    Some(d) if Instant::now() >= d => {
                        stop.set(Stop::Deadline);
                        true
                    }
                    _ => false,
                }
            })));
        }
        let ctx = Context::full(&rt).map_err(other)?;
        let core = Rc::new(Core {
            ops: RefCell::default(),
            pending: RefCell::default(),
            next_call: Cell::new(0),
            sink,
            timers: RefCell::default(),
            timer_seq: Cell::new(0),
            handles: RefCell::default(),
            internals: RefCell::new(None),
            modules: Rc::default(),
            limits: config.limits,
            deadline,
            stop,
            code_cache: RefCell::new(CodeCache::new(code_cache_limits(&config))),
        });
        rt.set_loader(
            ModuleResolverGlue(Rc::downgrade(&core.modules)),
            ModuleLoaderGlue(Rc::downgrade(&core.modules)),
        );
        let mut iso = Isolate {
            core,
            waiters: Vec::new(),
            config,
            terminate,
            dead: None,
            stats: Stats::default(),
            ctx,
            rt,
        };
        iso.bootstrap()?;
        Ok(iso)
    }

    fn bootstrap(&mut self) -> Result<(), JsError> {
        let core = self.core.clone();
        let console = self.config.console;
        self.ctx.with(|ctx| -> Result<(), JsError> {
            let native = Object::new(ctx.clone()).map_err(other)?;
            let c2 = core.clone();
            let schedule = Function::new(ctx.clone(), move |id: u64, ms: f64| {
                let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
                let at = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
                let seq = c2.timer_seq.get();
                c2.timer_seq.set(seq + 1);
                c2.timers.borrow_mut().push(Reverse((at, seq, id)));
            })
            .map_err(other)?;
            native.set("schedule", schedule).map_err(other)?;
            let print = Function::new(ctx.clone(), |stream: i32, text: String| {
                use std::io::Write;
                if stream == 2 {
                    let _ = writeln!(std::io::stderr(), "{text}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{text}");
                }
            })
            .map_err(other)?;
            native.set("print", print).map_err(other)?;
            native.set("consoleEnabled", console).map_err(other)?;
            let rs = Function::new(ctx.clone(), readable_stream_class).map_err(other)?;
            native.set("readableStream", rs).map_err(other)?;
            let f = bootstrap_function(&ctx)?;
            let internals: Object = f.call((native,)).map_err(|e| self_catch(&ctx, e))?;
            *core.internals.borrow_mut() = Some(Persistent::save(&ctx, internals));
            for (name, is_async) in [("__host_op_sync__", false), ("__host_op_async__", true)] {
                let func = op_entry_fn(&ctx, core.clone(), is_async).map_err(other)?;
                ctx.globals()
                    .prop(
                        name,
                        rquickjs::object::Property::from(func)
                            .writable()
                            .configurable(),
                    )
                    .map_err(other)?;
            }
            Ok(())
        })?;
        if let Some(snap) = self.config.snapshot.clone() {
            self.ctx
                .with(|ctx| snap.replay(&ctx))
                .map_err(|e| JsError::Other(format!("snapshot replay failed: {e}")))?;
        }
        if let Some(src) = self.config.bootstrap.clone() {
            self.eval_now(
                &src,
                "<bootstrap>",
                self.config.timeout,
                "Sync evaluation",
                Await::No,
                false,
            )
            .map_err(|e| JsError::Other(format!("bootstrap failed: {e}")))?;
        }
        Ok(())
    }

    /// Whether the runtime was terminated (by request or by the heap limit).
    pub fn is_dead(&self) -> bool {
        self.dead.is_some()
    }

    /// Re-bases QuickJS's stack limit on this thread's stack (the isolate may run on a caller's
    /// thread as well as on the runtime's own).
    pub(crate) fn enter_thread(&self) {
        self.ctx.with(|ctx| {
            // SAFETY: the runtime pointer comes from a live context of this isolate, which
            // this thread has locked (`Context::with`) for the duration of the call.
            unsafe {
                rquickjs::qjs::JS_UpdateStackTop(rquickjs::qjs::JS_GetRuntime(
                    ctx.as_raw().as_ptr(),
                ));
            }
        });
    }

    /// The reason the runtime is dead, if it is.
    pub fn dead_reason(&self) -> Option<&str> {
        self.dead.as_deref()
    }

    /// Handles a request; the reply runs now or, for awaited promises, during a later `poll`.
    pub fn handle(&mut self, req: Request, reply: Reply) {
        if let Some(reason) = &self.dead {
            reply(Err(JsError::Terminated(reason.clone())));
            return;
        }
        let started = Instant::now();
        let kind = match &req {
            Request::Eval {
                wait: Await::No, ..
            } => Some("eval_sync"),
            Request::Eval { .. } => Some("eval_async"),
            Request::EvalModule {
                is_async: false, ..
            } => Some("eval_module_sync"),
            Request::EvalModule { .. } => Some("eval_module_async"),
            Request::Call {
                wait: Await::IfSettled,
                ..
            } => Some("call_function_sync"),
            Request::Call { .. } => Some("call_function_async"),
            _ => None,
        };
        match req {
            Request::Eval {
                code,
                timeout,
                wait,
            } => {
                let timeout = timeout.or(self.config.timeout);
                let cpu = if wait == Await::No {
                    "Sync evaluation"
                } else {
                    "Async evaluation"
                };
                let r = self.eval_now(&code, "<eval>", timeout, cpu, wait, true);
                self.finish(r, timeout, wait, None, (cpu, None), reply);
            }
            Request::EvalModule {
                specifier,
                timeout,
                is_async,
            } => {
                let timeout = timeout.or(self.config.timeout);
                self.core.modules.borrow_mut().allow_async = is_async;
                self.core.modules.borrow_mut().last_error = None;
                let cpu = if is_async {
                    "Async module evaluation"
                } else {
                    "Sync module evaluation"
                };
                let r = self.import_now(&specifier, timeout, cpu);
                let labels = (cpu, Some("Module evaluation"));
                self.finish(r, timeout, Await::Yes, Some(specifier), labels, reply);
            }
            Request::Call {
                func,
                args,
                timeout,
                wait,
            } => {
                let timeout = timeout.or(self.config.timeout);
                let r = self.call_now(func, &args, timeout, wait);
                let labels = ("Function call", Some("Function call"));
                self.finish(r, timeout, wait, None, labels, reply);
            }
            Request::AwaitHandle { handle, timeout } => {
                let timeout = timeout.or(self.config.timeout);
                let h = self.core.handles.borrow_mut().map.remove(&handle);
                match h {
                    Some(h) => self.finish(
                        Ok(Outcome::Promise(h.value)),
                        timeout,
                        Await::Yes,
                        None,
                        ("Function call", Some("Function call")),
                        reply,
                    ),
                    None => reply(Err(JsError::Other("Unknown promise handle".into()))),
                }
            }
            Request::SetGlobal { name, value } => {
                let core = self.core.clone();
                let r = self.ctx.with(|ctx| -> Result<(), JsError> {
                    let v = host_to_js(&core, &ctx, &value).map_err(|e| self_catch(&ctx, e))?;
                    ctx.globals().set(name.as_str(), v).map_err(other)
                });
                reply(r.map(|_| Response::Done));
            }
            Request::RegisterOp { id, name, op } => {
                self.core.ops.borrow_mut().insert(id, (name, op));
                reply(Ok(Response::Done));
            }
            Request::Complete { call, result } => {
                self.complete(call, result);
            }
            Request::Release(id) => {
                self.core.handles.borrow_mut().map.remove(&id);
            }
            Request::AddStaticModule { name, source } => {
                self.core.modules.borrow_mut().statics.insert(name, source);
                reply(Ok(Response::Done));
            }
            Request::SetResolver(r) => {
                self.core.modules.borrow_mut().resolver = r;
                reply(Ok(Response::Done));
            }
            Request::SetLoader(l) => {
                self.core.modules.borrow_mut().loader = l;
                reply(Ok(Response::Done));
            }
            Request::Stats => {
                let s = self.stats();
                reply(Ok(Response::Stats(s)));
            }
            Request::RunScript { name, source } => {
                let code = self
                    .ctx
                    .with(|ctx| crate::snapshot::compile_script(&ctx, &name, &source));
                match code {
                    Err(msg) => reply(Err(JsError::Other(msg))),
                    Ok(code) => {
                        let timeout = self.config.timeout;
                        let r = self.eval_now(
                            &source,
                            &name,
                            timeout,
                            "Sync evaluation",
                            Await::No,
                            false,
                        );
                        match r {
                            Ok(_) => reply(Ok(Response::Bytecode(code))),
                            Err(e) => reply(Err(e)),
                        }
                    }
                }
            }
        }
        if let Some(kind) = kind {
            let ms = started.elapsed().as_millis() as u64;
            self.stats.last_execution_kind = Some(kind);
            self.stats.last_execution_time_ms = ms;
            self.stats.total_execution_time_ms += ms;
            match kind {
                "eval_sync" => self.stats.eval_sync_count += 1,
                "eval_async" => self.stats.eval_async_count += 1,
                "eval_module_sync" => self.stats.eval_module_sync_count += 1,
                "eval_module_async" => self.stats.eval_module_async_count += 1,
                "call_function_sync" => self.stats.call_function_sync_count += 1,
                _ => self.stats.call_function_async_count += 1,
            }
        }
    }

    /// The current statistics.
    pub fn stats(&mut self) -> Stats {
        let mut s = self.stats.clone();
        let mu = self.rt.memory_usage();
        s.heap_used_bytes = mu.memory_used_size.max(0) as u64;
        s.heap_total_bytes = match self.config.memory_limit {
            Some(l) => l as u64,
            None => mu.malloc_size.max(0) as u64,
        };
        s.active_async_ops = self.core.pending.borrow().len() as u64;
        s.open_resources = self.core.handles.borrow().map.len() as u64;
        let core = self.core.clone();
        let (t, i) = self.ctx.with(|ctx| {
            let Some(int) = internals(&core, &ctx) else {
                return (0, 0);
            };
            let get = |n: &str| -> u64 {
                int.get::<_, Function>(n)
                    .and_then(|f| f.call::<_, f64>(()))
                    .unwrap_or(0.0) as u64
            };
            (get("activeTimers"), get("activeIntervals"))
        });
        s.active_timers = t;
        s.active_intervals = i;
        s.code_cache = self.core.code_cache.borrow().counters();
        s
    }

    /// Runs due timers and microtasks, settles waiters, and returns when to call again (`None`:
    /// only when a request arrives).
    pub fn poll(&mut self) -> Option<Instant> {
        if self.dead.is_some() {
            return None;
        }
        for _ in 0..10_000 {
            self.run_jobs();
            self.settle_waiters();
            if self.dead.is_some() {
                return None;
            }
            let due = {
                let mut timers = self.core.timers.borrow_mut();
                match timers.peek() {
                    Some(Reverse((at, _, _))) if *at <= Instant::now() => {
                        timers.pop().map(|Reverse(t)| t.2)
                    }
                    _ => None,
                }
            };
            let Some(id) = due else { break };
            self.fire_timer(id);
        }
        let timer = self
            .core
            .timers
            .borrow()
            .peek()
            .map(|Reverse((at, _, _))| *at);
        let waiter = self.waiters.iter().filter_map(|w| w.deadline).min();
        match (timer, waiter) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stops everything and fails pending requests (after `terminate` or on close).
    pub fn shutdown(&mut self, reason: &str) {
        if self.dead.is_none() {
            self.dead = Some(reason.to_string());
        }
        for w in self.waiters.drain(..) {
            (w.reply)(Err(JsError::Terminated(reason.to_string())));
        }
    }

    fn fire_timer(&mut self, id: u64) {
        let core = self.core.clone();
        let timeout = self.config.timeout;
        self.with_deadline(timeout, |ctx| {
            if let Some(int) = internals(&core, ctx) {
                if let Ok(f) = int.get::<_, Function>("fire") {
                    if f.call::<_, Value>((id,)).is_err() {
                        let _ = ctx.catch();
                    }
                }
            }
        });
        self.check_fatal();
    }

    fn run_jobs(&mut self) {
        let deadline = self.waiters.iter().filter_map(|w| w.deadline).min();
        self.core
            .deadline
            .set(deadline.or_else(|| self.config.timeout.map(|t| Instant::now() + t)));
        self.ctx.with(|ctx| while ctx.execute_pending_job() {});
        self.core.deadline.set(None);
        match self.core.stop.replace(Stop::None) {
            Stop::Terminate => self.kill("Terminated by host request"),
            Stop::Deadline => {
                // Fail the waiter whose deadline passed; others keep waiting.
                let now = Instant::now();
                if let Some(i) = self
                    .waiters
                    .iter()
                    .position(|w| w.deadline.is_some_and(|d| d <= now))
                {
                    let w = self.waiters.remove(i);
                    (w.reply)(Err(JsError::Timeout {
                        what: w.cpu_label,
                        ms: w.ms,
                    }));
                }
            }
            Stop::None => self.check_fatal(),
        }
    }

    fn check_fatal(&mut self) {
        if self.terminate.load(Ordering::Relaxed) {
            self.kill("Terminated by host request");
        }
    }

    fn kill(&mut self, reason: &str) {
        self.shutdown(reason);
    }

    fn settle_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            let core = self.core.clone();
            let limits = self.core.limits;
            let heap_limited = self.config.memory_limit.is_some();
            let w = &self.waiters[i];
            let state = self.ctx.with(|ctx| -> Option<Result<Response, JsError>> {
                let v = w.promise.clone().restore(&ctx).ok()?;
                let p = v.as_promise()?.clone();
                match p.state() {
                    PromiseState::Pending => None,
                    PromiseState::Resolved => {
                        let r: rquickjs::Result<Value> = p.result()?;
                        let v = match r {
                            Ok(v) => v,
                            Err(e) => return Some(Err(self_catch(&ctx, e))),
                        };
                        let v = if w.module.is_some() {
                            namespace_of(&ctx, v)
                        } else {
                            v
                        };
                        Some(convert_out(&core, &ctx, v, limits).map(Response::Value))
                    }
                    PromiseState::Rejected => {
                        let _ = p.result::<Value>();
                        let ex = ctx.catch();
                        Some(Err(exception_error(&ctx, ex, heap_limited)))
                    }
                }
            });
            match state {
                Some(result) => {
                    let w = self.waiters.remove(i);
                    let result = match (result, &w.module) {
                        (Err(e), Some(spec)) if !e.is_fatal() => Err(self.module_error(spec, e)),
                        (r, _) => r,
                    };
                    if let Err(JsError::Terminated(r)) = &result {
                        let r = r.clone();
                        (w.reply)(result);
                        self.kill(&r);
                        return;
                    }
                    (w.reply)(result);
                }
                None if w.deadline.is_some_and(|d| d <= now) => {
                    let w = self.waiters.remove(i);
                    let err = match w.pending_label {
                        None => JsError::PendingTimeout { ms: w.ms },
                        Some(what) => JsError::Timeout { what, ms: w.ms },
                    };
                    (w.reply)(Err(err));
                }
                None => i += 1,
            }
        }
    }

    fn module_error(&self, spec: &str, e: JsError) -> JsError {
        let detail = match self.core.modules.borrow_mut().last_error.take() {
            Some(m) => m,
            None => e.to_string(),
        };
        JsError::Module(format!("Failed to load module '{spec}': {detail}"))
    }

    /// Runs `f` inside the context with the interrupt deadline set; reports why it stopped.
    fn with_deadline<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(&Ctx<'_>) -> R,
    ) -> (R, Stop) {
        self.core.deadline.set(timeout.map(|t| Instant::now() + t));
        self.core.stop.set(Stop::None);
        let r = self.ctx.with(|ctx| f(&ctx));
        self.core.deadline.set(None);
        (r, self.core.stop.replace(Stop::None))
    }

    fn interrupted(
        &mut self,
        stop: Stop,
        timeout: Option<Duration>,
        what: &'static str,
    ) -> Option<JsError> {
        match stop {
            Stop::None => None,
            Stop::Terminate => {
                self.kill("Terminated by host request");
                Some(JsError::Terminated("Terminated by host request".into()))
            }
            Stop::Deadline => Some(JsError::Timeout {
                what,
                ms: timeout.map_or(0, |t| t.as_millis() as u64),
            }),
        }
    }

    /// Evaluates code (through the code cache when `cached`); `Ok(Outcome::Promise(p))` is a
    /// promise to wait for when `wait` asks for it.
    fn eval_now(
        &mut self,
        code: &str,
        filename: &str,
        timeout: Option<Duration>,
        kind: &'static str,
        wait: Await,
        cached: bool,
    ) -> Result<Outcome, JsError> {
        let core = self.core.clone();
        let heap_limited = self.config.memory_limit.is_some();
        let (r, stop) = self.with_deadline(timeout, |ctx| {
            let evaluated = match cached {
                true => eval_cached(&core, ctx, code, filename),
                false => None,
            };
            let evaluated = evaluated.unwrap_or_else(|| {
                let mut opts = EvalOptions::default();
                opts.strict = false;
                opts.filename = Some(filename.to_string());
                ctx.eval_with_options::<Value, _>(code, opts)
            });
            match evaluated {
                Ok(v) => {
                    if wait != Await::No && v.is_promise() {
                        return Ok(Outcome::Promise(Persistent::save(ctx, v)));
                    }
                    // Run microtasks so `eval` sees their effects, like jsrun's event loop.
                    while ctx.execute_pending_job() {}
                    let out = convert_out(&core, ctx, v, core.limits)?;
                    Ok(Outcome::Value(out))
                }
                Err(e) => Err(self_catch_heap(ctx, e, heap_limited)),
            }
        });
        if let Some(e) = self.interrupted(stop, timeout, kind) {
            return Err(e);
        }
        self.fatal_from(r)
    }

    fn fatal_from<T>(&mut self, r: Result<T, JsError>) -> Result<T, JsError> {
        if let Err(JsError::Terminated(reason)) = &r {
            let reason = reason.clone();
            self.kill(&reason);
        }
        r
    }

    fn import_now(
        &mut self,
        specifier: &str,
        timeout: Option<Duration>,
        cpu: &'static str,
    ) -> Result<Outcome, JsError> {
        let heap_limited = self.config.memory_limit.is_some();
        let (r, stop) = self.with_deadline(timeout, |ctx| match Module::import(ctx, specifier) {
            Ok(p) => Ok(Outcome::Promise(Persistent::save(ctx, p.into_value()))),
            Err(e) => Err(self_catch_heap(ctx, e, heap_limited)),
        });
        if let Some(e) = self.interrupted(stop, timeout, cpu) {
            return Err(e);
        }
        let r = self.fatal_from(r);
        r.map_err(|e| self.module_error(specifier, e))
    }

    fn call_now(
        &mut self,
        func: u64,
        args: &[HostValue],
        timeout: Option<Duration>,
        wait: Await,
    ) -> Result<Outcome, JsError> {
        let core = self.core.clone();
        let heap_limited = self.config.memory_limit.is_some();
        let (r, stop) = self.with_deadline(timeout, |ctx| {
            let (f, this) = {
                let handles = core.handles.borrow();
                let Some(h) = handles.map.get(&func) else {
                    return Err(JsError::Other("Function has been closed".into()));
                };
                (h.value.clone(), h.this.clone())
            };
            let f: Value = f.restore(ctx).map_err(other)?;
            let Some(f) = f.as_function().cloned() else {
                return Err(JsError::Other("Handle is not a function".into()));
            };
            let this = match this {
                Some(t) => t.restore(ctx).map_err(other)?,
                None => Value::new_undefined(ctx.clone()),
            };
            let mut js_args = Vec::with_capacity(args.len());
            for a in args {
                js_args.push(host_to_js(&core, ctx, a).map_err(|e| self_catch(ctx, e))?);
            }
            match call_with_this(ctx, &f, this, js_args) {
                Ok(v) => {
                    if wait != Await::No && v.is_promise() {
                        while ctx.execute_pending_job() {}
                        return Ok(Outcome::Promise(Persistent::save(ctx, v)));
                    }
                    while ctx.execute_pending_job() {}
                    let out = convert_out(&core, ctx, v, core.limits)?;
                    Ok(Outcome::Value(out))
                }
                Err(e) => Err(self_catch_heap(ctx, e, heap_limited)),
            }
        });
        if let Some(e) = self.interrupted(stop, timeout, "Function call") {
            return Err(e);
        }
        self.fatal_from(r)
    }

    /// Routes an evaluation result: a stashed converted value replies now; a promise is awaited
    /// (or kept as a handle).
    fn finish(
        &mut self,
        r: Result<Outcome, JsError>,
        timeout: Option<Duration>,
        wait: Await,
        module: Option<String>,
        (cpu_label, pending_label): (&'static str, Option<&'static str>),
        reply: Reply,
    ) {
        let p = match r {
            Err(e) => return reply(Err(e)),
            Ok(Outcome::Value(v)) => return reply(Ok(Response::Value(v))),
            Ok(Outcome::Promise(p)) => p,
        };
        if wait == Await::IfSettled {
            let settled = self.ctx.with(|ctx| {
                p.clone()
                    .restore(&ctx)
                    .ok()
                    .and_then(|v| v.as_promise().map(|p| p.state() != PromiseState::Pending))
                    .unwrap_or(true)
            });
            if !settled {
                let core = self.core.clone();
                let id = self.ctx.with(|ctx| -> Option<u64> {
                    let v = p.clone().restore(&ctx).ok()?;
                    Some(core.handles.borrow_mut().insert(&ctx, v, None))
                });
                return match id {
                    Some(id) => reply(Ok(Response::Pending(id))),
                    None => reply(Err(JsError::Other("lost promise".into()))),
                };
            }
        }
        self.waiters.push(Waiter {
            promise: p,
            deadline: timeout.map(|t| Instant::now() + t),
            ms: timeout.map_or(0, |t| t.as_millis() as u64),
            cpu_label,
            pending_label,
            module,
            reply,
        });
        self.settle_waiters();
    }

    fn complete(&mut self, call: u64, result: Result<HostValue, String>) {
        let Some((resolve, reject)) = self.core.pending.borrow_mut().remove(&call) else {
            return;
        };
        let core = self.core.clone();
        self.ctx.with(|ctx| {
            let r = match result {
                Ok(v) => host_to_js(&core, &ctx, &v)
                    .and_then(|v| resolve.restore(&ctx)?.call::<_, Value>((v,))),
                Err(msg) => {
                    let err = make_error(&ctx, "TypeError", &msg);
                    reject
                        .restore(&ctx)
                        .and_then(|f| f.call::<_, Value>((err,)))
                }
            };
            if r.is_err() {
                let _ = ctx.catch();
            }
        });
    }
}

impl Drop for Isolate {
    fn drop(&mut self) {
        // Every persistent value must go before the runtime does.
        self.waiters.clear();
        self.core.pending.borrow_mut().clear();
        self.core.handles.borrow_mut().map.clear();
        *self.core.internals.borrow_mut() = None;
        self.core.ops.borrow_mut().clear();
        let m = std::mem::take(&mut *self.core.modules.borrow_mut());
        drop(m);
        let compiled = self.core.code_cache.borrow_mut().drain();
        if !compiled.is_empty() {
            self.ctx.with(|ctx| free_compiled(&ctx, compiled));
        }
    }
}

/// The cache limits for `config`: at most an eighth of a heap limit, since compiled code
/// lives on the JS heap and must not crowd out the program.
fn code_cache_limits(config: &Config) -> crate::CodeCacheLimits {
    let mut limits = config.code_cache;
    if let Some(heap) = config.memory_limit {
        limits.max_bytes = limits.max_bytes.min(heap / 8);
    }
    limits
}

/// Whether a compiled script may be run again for another `eval` of its source: a tagged
/// template's strings array is made once per compile (the spec wants a new one per parse), so
/// sources with a backtick are compiled every time.
fn cacheable(code: &str) -> bool {
    !code.as_bytes().contains(&b'`')
}

/// Evaluates `code` as a sloppy global script through the code cache: a hit runs the cached
/// bytecode, a miss compiles, caches and runs it. `None` when the cache is off or the source
/// is not cacheable (the caller evaluates it the plain way).
fn eval_cached<'js>(
    core: &Core,
    ctx: &Ctx<'js>,
    code: &str,
    filename: &str,
) -> Option<rquickjs::Result<Value<'js>>> {
    let raw = ctx.as_raw().as_ptr();
    let hit = {
        let mut cache = core.code_cache.borrow_mut();
        if !cache.enabled() {
            return None;
        }
        match cache.get(code, filename, SCRIPT_FLAGS) {
            // SAFETY: the cache holds a reference to a live bytecode value of this runtime;
            // the copy's reference is consumed by `run_compiled`.
            Some(f) => Some(unsafe { qjs::JS_DupValue(raw, f.0) }),
            None => {
                cache.miss();
                None
            }
        }
    };
    if let Some(f) = hit {
        // What a fresh `JS_Eval` does first at top level: forget the last uncaught error's
        // backtrace (the only engine state a compile touches besides the bytecode).
        // SAFETY: command 2 hands over (and clears) the context's saved backtrace, which we
        // then free once.
        unsafe {
            let mut saved = qjs::JS_UNDEFINED;
            qjs::js_std_cmd(2, raw, &mut saved as *mut qjs::JSValue);
            qjs::JS_FreeValue(raw, saved);
        }
        return Some(run_compiled(ctx, f));
    }
    if !cacheable(code)
        || !core
            .code_cache
            .borrow_mut()
            .admit(code, filename, SCRIPT_FLAGS)
    {
        return None;
    }
    let (Ok(src), Ok(name)) = (CString::new(code), CString::new(filename)) else {
        return None; // a NUL byte: the plain path reports it as before
    };
    // SAFETY: plain QuickJS calls on the locked context; `f` is owned here and each reference
    // is either consumed (`run_compiled`) or kept by the cache (freed on eviction or drop).
    unsafe {
        let f = qjs::JS_Eval(
            raw,
            src.as_ptr(),
            code.len() as _,
            name.as_ptr(),
            SCRIPT_FLAGS | qjs::JS_EVAL_FLAG_COMPILE_ONLY as i32,
        );
        if qjs::JS_IsException(f) {
            return Some(Err(rquickjs::Error::Exception));
        }
        if let Some(size) = bytecode_size(ctx, f) {
            let bytes = size + code.len() + filename.len() + ENTRY_OVERHEAD;
            let kept = Compiled(qjs::JS_DupValue(raw, f));
            let evicted =
                core.code_cache
                    .borrow_mut()
                    .insert(code, filename, SCRIPT_FLAGS, kept, bytes);
            free_compiled(ctx, evicted);
        }
        Some(run_compiled(ctx, f))
    }
}

/// How many bytes QuickJS serializes a compiled script to (what the cache counts it as).
fn bytecode_size(ctx: &Ctx<'_>, f: qjs::JSValue) -> Option<usize> {
    let raw = ctx.as_raw().as_ptr();
    let mut size: qjs::size_t = 0;
    // SAFETY: `f` is a live bytecode value; the buffer is freed once.
    unsafe {
        let buf = qjs::JS_WriteObject(raw, &mut size, f, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        if buf.is_null() {
            let _ = ctx.catch();
            return None;
        }
        qjs::js_free(raw, buf.cast());
    }
    Some(size as usize)
}

/// Runs a compiled script (consuming the reference) as a global script, as `JS_Eval` does.
fn run_compiled<'js>(ctx: &Ctx<'js>, f: qjs::JSValue) -> rquickjs::Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `f` is a bytecode value whose reference we own; `JS_EvalFunction` consumes it,
    // and the result is owned by the `Value` we wrap it in.
    unsafe {
        let r = qjs::JS_EvalFunction(raw, f);
        if qjs::JS_IsException(r) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), r))
    }
}

/// Drops the cache's references to evicted scripts.
fn free_compiled(ctx: &Ctx<'_>, compiled: Vec<Compiled>) {
    let raw = ctx.as_raw().as_ptr();
    for c in compiled {
        // SAFETY: each value holds exactly one reference, owned by the cache until now.
        unsafe { qjs::JS_FreeValue(raw, c.0) };
    }
}

fn internals<'js>(core: &Core, ctx: &Ctx<'js>) -> Option<Object<'js>> {
    core.internals
        .borrow()
        .as_ref()
        .and_then(|p| p.clone().restore(ctx).ok())
}

fn helpers<'js>(core: &Core, ctx: &Ctx<'js>) -> Result<Helpers<'js>, JsError> {
    let int =
        internals(core, ctx).ok_or_else(|| JsError::Other("runtime not initialised".into()))?;
    Helpers::from_object(&int).map_err(other)
}

fn convert_out<'js>(
    core: &Core,
    ctx: &Ctx<'js>,
    v: Value<'js>,
    limits: Limits,
) -> Result<HostValue, JsError> {
    if let Some(r) = crate::convert::convert_scalar(&v, limits) {
        return r;
    }
    let h = helpers(core, ctx)?;
    let r = ToHost::new(ctx, &h, &core.handles, limits).convert(v);
    if r.is_err() && ctx.has_exception() {
        let _ = ctx.catch();
    }
    r
}

fn host_to_js<'js>(core: &Rc<Core>, ctx: &Ctx<'js>, v: &HostValue) -> rquickjs::Result<Value<'js>> {
    let int = internals(core, ctx).ok_or(rquickjs::Error::Unknown)?;
    let h = Helpers::from_object(&int)?;
    let handles = &core.handles;
    let mut conv = FromHost {
        ctx,
        helpers: &h,
        handles,
        make_host_fn: |ctx: &Ctx<'js>, op: u32, name: &str| {
            let f = bound_op_fn(ctx, core.clone(), op)?;
            let _ = f.set_name(name);
            Ok(f)
        },
    };
    conv.convert(v)
}

/// `__host_op_sync__` / `__host_op_async__`: `(id, ...args)`.
fn op_entry_fn<'js>(
    ctx: &Ctx<'js>,
    core: Rc<Core>,
    is_async: bool,
) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, id: u32, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            call_op(&core, &ctx, id, args.0, Some(is_async))
        },
    )
}

/// A JS function bound to one op (what `bind_function` installs).
fn bound_op_fn<'js>(ctx: &Ctx<'js>, core: Rc<Core>, op: u32) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            call_op(&core, &ctx, op, args.0, None)
        },
    )
}

fn make_error<'js>(ctx: &Ctx<'js>, name: &str, msg: &str) -> Value<'js> {
    let ctor: rquickjs::Result<rquickjs::function::Constructor> = ctx.globals().get(name);
    match ctor.and_then(|c| c.construct::<_, Value>((msg,))) {
        Ok(v) => v,
        Err(_) => {
            let _ = ctx.catch();
            Value::new_undefined(ctx.clone())
        }
    }
}

/// Runs a host op from JS. `mode` is `Some(is_async)` for `__host_op_*__` and `None` for bound
/// functions (which follow the op's own kind).
fn call_op<'js>(
    core: &Rc<Core>,
    ctx: &Ctx<'js>,
    id: u32,
    args: Vec<Value<'js>>,
    mode: Option<bool>,
) -> rquickjs::Result<Value<'js>> {
    let entry = core.ops.borrow().get(&id).cloned();
    let Some((name, op)) = entry else {
        return Err(rquickjs::Exception::throw_type(
            ctx,
            &format!("Unknown op id {id}"),
        ));
    };
    let mut host_args = Vec::with_capacity(args.len());
    {
        let h =
            helpers(core, ctx).map_err(|e| rquickjs::Exception::throw_type(ctx, &e.to_string()))?;
        let mut conv = ToHost::new(ctx, &h, &core.handles, core.limits);
        for a in args {
            match conv.convert(a) {
                Ok(v) => host_args.push(v),
                Err(e) => {
                    drop(conv);
                    return Err(rquickjs::Exception::throw_type(ctx, &e.to_string()));
                }
            }
        }
    }
    match (op, mode) {
        (Op::Sync(f), None | Some(false)) => match reentrant_scope(core, ctx, || f(host_args)) {
            Ok(v) => host_to_js(core, ctx, &v),
            Err(msg) => Err(rquickjs::Exception::throw_type(ctx, &msg)),
        },
        (Op::Async(_), Some(false)) => Err(rquickjs::Exception::throw_type(
            ctx,
            &format!("Op {name} is not synchronous"),
        )),
        (Op::Sync(f), Some(true)) => {
            let (promise, resolve, reject) = ctx.promise()?;
            match reentrant_scope(core, ctx, || f(host_args)) {
                Ok(v) => {
                    let v = host_to_js(core, ctx, &v)?;
                    resolve.call::<_, Value>((v,))?;
                }
                Err(msg) => {
                    reject.call::<_, Value>((make_error(ctx, "TypeError", &msg),))?;
                }
            }
            Ok(promise.into_value())
        }
        (Op::Async(f), _) => {
            let (promise, resolve, reject) = ctx.promise()?;
            let call = core.next_call.get();
            core.next_call.set(call + 1);
            core.pending.borrow_mut().insert(
                call,
                (
                    Persistent::save(ctx, resolve),
                    Persistent::save(ctx, reject),
                ),
            );
            let sink = core.sink.clone();
            reentrant_scope(core, ctx, || f(host_args, Completion { call, sink }));
            Ok(promise.into_value())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Re-entry: a host op that calls back into its own runtime (a Python callback calling a JS
// function it was given) runs inline on the thread holding the isolate instead of queueing a
// request the
// busy thread would never read.

thread_local! {
    static REENTRY: RefCell<Vec<(Rc<Core>, std::ptr::NonNull<rquickjs::qjs::JSContext>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Runs a host op with its runtime registered for re-entry.
fn reentrant_scope<R>(core: &Rc<Core>, ctx: &Ctx<'_>, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            REENTRY.with(|r| r.borrow_mut().pop());
        }
    }
    REENTRY.with(|r| r.borrow_mut().push((core.clone(), ctx.as_raw())));
    let _pop = Pop;
    f()
}

/// Runs a request from inside a host op on the runtime's own thread: calls and evals run
/// inline (a pending promise cannot be waited for there); `None` outside any host op.
pub(crate) fn reentrant(req: Request) -> Option<Result<Response, JsError>> {
    let (core, raw) = REENTRY.with(|r| r.borrow().last().map(|(c, p)| (c.clone(), *p)))?;
    // SAFETY: the pointer is the context of the host op running below us on this thread, so
    // the runtime is locked by that op's `Context::with` for as long as we use it.
    let ctx = unsafe { Ctx::from_raw(raw) };
    Some(run_reentrant(&core, &ctx, req))
}

fn run_reentrant<'js>(core: &Rc<Core>, ctx: &Ctx<'js>, req: Request) -> Result<Response, JsError> {
    let (v, wait) = match req {
        Request::Call {
            func, args, wait, ..
        } => {
            let (f, this) = {
                let handles = core.handles.borrow();
                let h = handles
                    .map
                    .get(&func)
                    .ok_or_else(|| JsError::Other("Function has been closed".into()))?;
                (h.value.clone(), h.this.clone())
            };
            let f: Value = f.restore(ctx).map_err(other)?;
            let f = f
                .as_function()
                .cloned()
                .ok_or_else(|| JsError::Other("Handle is not a function".into()))?;
            let this = match this {
                Some(t) => t.restore(ctx).map_err(other)?,
                None => Value::new_undefined(ctx.clone()),
            };
            let mut js_args = Vec::with_capacity(args.len());
            for a in &args {
                js_args.push(host_to_js(core, ctx, a).map_err(|e| self_catch(ctx, e))?);
            }
            let v = call_with_this(ctx, &f, this, js_args).map_err(|e| self_catch(ctx, e))?;
            (v, wait)
        }
        Request::Eval { code, wait, .. } => {
            let mut opts = EvalOptions::default();
            opts.strict = false;
            opts.filename = Some("<eval>".into());
            let v = ctx
                .eval_with_options::<Value, _>(code.as_str(), opts)
                .map_err(|e| self_catch(ctx, e))?;
            (v, wait)
        }
        Request::Release(id) => {
            core.handles.borrow_mut().map.remove(&id);
            return Ok(Response::Done);
        }
        _ => {
            return Err(JsError::Other(
                "Only calls and evals can run inside a host callback".into(),
            ));
        }
    };
    if wait != Await::No {
        if let Some(p) = v.as_promise() {
            return match p.state() {
                PromiseState::Pending => Err(JsError::Other(
                    "A host callback cannot wait for a pending promise; return it to JS instead"
                        .into(),
                )),
                PromiseState::Resolved => {
                    let r: Value = p
                        .result()
                        .unwrap_or(Err(rquickjs::Error::Unknown))
                        .map_err(other)?;
                    convert_out(core, ctx, r, core.limits).map(Response::Value)
                }
                PromiseState::Rejected => {
                    let _ = p.result::<Value>();
                    Err(exception_error(ctx, ctx.catch(), false))
                }
            };
        }
    }
    convert_out(core, ctx, v, core.limits).map(Response::Value)
}

fn self_catch(ctx: &Ctx<'_>, e: rquickjs::Error) -> JsError {
    self_catch_heap(ctx, e, false)
}

fn self_catch_heap(ctx: &Ctx<'_>, e: rquickjs::Error, heap_limited: bool) -> JsError {
    if let rquickjs::Error::Exception = e {
        let ex = ctx.catch();
        exception_error(ctx, ex, heap_limited)
    } else {
        JsError::Other(e.to_string())
    }
}

/// Turns a thrown JS value into a [`JsError`] (heap exhaustion becomes `Terminated`).
fn exception_error<'js>(ctx: &Ctx<'js>, ex: Value<'js>, heap_limited: bool) -> JsError {
    let _ = ctx;
    if heap_limited && (ex.is_null() || is_oom(&ex)) {
        return JsError::Terminated("Heap limit exceeded".into());
    }
    if let Some(obj) = ex.as_object().filter(|_| ex.is_error()) {
        let name: Option<String> = obj.get::<_, Coerced<String>>("name").ok().map(|c| c.0);
        let message: String = obj
            .get::<_, Coerced<String>>("message")
            .map(|c| c.0)
            .unwrap_or_default();
        let raw_stack: Option<String> = obj.get::<_, Option<String>>("stack").ok().flatten();
        let header = format!("{}: {}", name.as_deref().unwrap_or("Error"), message);
        let frames = raw_stack.as_deref().map(parse_frames).unwrap_or_default();
        let stack = Some(match raw_stack {
            Some(s) if !s.is_empty() => format!("{header}\n{}", v8_style(s.trim_end())),
            _ => header,
        });
        return JsError::Exception(Exception {
            name,
            message,
            stack,
            frames,
        });
    }
    let text = ex
        .get::<Coerced<String>>()
        .map(|c| c.0)
        .unwrap_or_else(|_| "exception".to_string());
    let message = format!("Uncaught {text}");
    JsError::Exception(Exception {
        name: None,
        message: message.clone(),
        stack: Some(message),
        frames: Vec::new(),
    })
}

/// Rewrites QuickJS's `at <eval> (<eval>:2:1)` (a top-level frame) as V8's `at <eval>:2:1`.
fn v8_style(stack: &str) -> String {
    stack
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            match trimmed
                .strip_prefix("at <eval> (")
                .and_then(|r| r.strip_suffix(')'))
            {
                Some(loc) => format!("{indent}at {loc}"),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_oom(ex: &Value<'_>) -> bool {
    ex.as_object()
        .and_then(|o| o.get::<_, String>("message").ok())
        .is_some_and(|m| m == "out of memory")
}

/// The namespace object of an imported module (the import promise resolves to it already).
fn namespace_of<'js>(_ctx: &Ctx<'js>, v: Value<'js>) -> Value<'js> {
    v
}

#[allow(dead_code)]
fn _assert_promise(_p: Promise<'_>) {}

#[cfg(test)]
mod code_cache_tests {
    use std::sync::Mutex;

    use super::*;
    use crate::CodeCacheLimits;

    fn isolate(code_cache: CodeCacheLimits) -> Isolate {
        let config = Config {
            code_cache,
            ..Config::default()
        };
        Isolate::new(config, Arc::default(), Arc::new(|_, _| {})).expect("isolate")
    }

    fn eval(iso: &mut Isolate, code: &str) -> Result<HostValue, JsError> {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let req = Request::Eval {
            code: code.into(),
            timeout: None,
            wait: Await::No,
        };
        iso.handle(req, Box::new(move |r| *out.lock().unwrap() = Some(r)));
        let r = slot.lock().unwrap().take().expect("a reply");
        r.map(|r| match r {
            Response::Value(v) => v,
            other => panic!("{other:?}"),
        })
    }

    fn counters(iso: &mut Isolate) -> crate::CodeCacheCounters {
        iso.stats().code_cache
    }

    #[test]
    fn a_hit_returns_what_a_compile_returns() {
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        // Seen once, compiled into the cache the second time, then hits.
        for _ in 0..4 {
            assert_eq!(eval(&mut iso, "1+1").unwrap(), HostValue::Number(2.0));
        }
        let c = counters(&mut iso);
        assert_eq!((c.hits, c.misses, c.entries), (2, 2, 1));
        assert!(c.bytes > 3, "{c:?}");
    }

    #[test]
    fn errors_on_a_hit_keep_message_and_location() {
        let code = "function causeError() {\n  throw new TypeError('boom')\n}\ncauseError()";
        let mut off = isolate(CodeCacheLimits::OFF);
        let fresh = eval(&mut off, code).unwrap_err();
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        let miss = eval(&mut iso, code).unwrap_err();
        let cached = eval(&mut iso, code).unwrap_err();
        let hit = eval(&mut iso, code).unwrap_err();
        assert_eq!(counters(&mut iso).hits, 1);
        assert_eq!(miss, fresh);
        assert_eq!(cached, fresh);
        assert_eq!(hit, fresh);
        let JsError::Exception(e) = hit else {
            panic!("{hit:?}")
        };
        assert_eq!(e.message, "boom");
        assert_eq!(e.frames[0].function_name.as_deref(), Some("causeError"));
        assert_eq!((e.frames[0].line_number, e.frames[1].line_number), (2, 4));
        assert_eq!(e.frames[0].file_name, "<eval>");
        // A thrown non-Error, until it hits.
        let a = eval(&mut iso, "throw 42").unwrap_err();
        assert_eq!(a, eval(&mut iso, "throw 42").unwrap_err());
        assert_eq!(a, eval(&mut iso, "throw 42").unwrap_err());
        assert_eq!(counters(&mut iso).hits, 2);
        assert_eq!(a, eval(&mut off, "throw 42").unwrap_err());
    }

    #[test]
    fn syntax_errors_are_not_cached_and_repeat() {
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        let mut off = isolate(CodeCacheLimits::OFF);
        let a = eval(&mut iso, "1 +").unwrap_err();
        let b = eval(&mut iso, "1 +").unwrap_err();
        assert_eq!(a, b);
        assert_eq!(a, eval(&mut off, "1 +").unwrap_err());
        let c = counters(&mut iso);
        assert_eq!((c.hits, c.misses, c.entries), (0, 2, 0));
    }

    #[test]
    fn a_hit_runs_the_script_again_with_fresh_state() {
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        let code = "var runs = (globalThis.runs || 0) + 1;\n\
                    function defined() { return runs }\n\
                    globalThis.seen = globalThis.seen || [];\n\
                    (() => { const o = { n: 0 }; o.n++; seen.push(o); return [o.n, defined()] })()";
        for i in 1..=4 {
            let v = eval(&mut iso, code).unwrap();
            assert_eq!(
                v,
                HostValue::Array(vec![HostValue::Number(1.0), HostValue::Number(i as f64)])
            );
        }
        assert_eq!(counters(&mut iso).hits, 2);
        // Each run made its own object and its own closure.
        assert_eq!(
            eval(&mut iso, "seen[0] !== seen[1] && seen[1] !== seen[2]").unwrap(),
            HostValue::Bool(true)
        );
        // A top-level `let` is declared again on a hit, as on a recompile: the same error.
        let mut off = isolate(CodeCacheLimits::OFF);
        eval(&mut iso, "let once = 1").unwrap();
        eval(&mut off, "let once = 1").unwrap();
        let fresh = eval(&mut off, "let once = 1").unwrap_err();
        for _ in 0..2 {
            assert_eq!(eval(&mut iso, "let once = 1").unwrap_err(), fresh);
        }
        assert_eq!(counters(&mut iso).hits, 3);
    }

    #[test]
    fn tagged_templates_get_a_new_strings_array_every_time() {
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        eval(&mut iso, "var ws = new WeakSet(); function tag(s) { const had = ws.has(s); ws.add(s); return had }").unwrap();
        for _ in 0..3 {
            assert_eq!(eval(&mut iso, "tag`x`").unwrap(), HostValue::Bool(false));
        }
        assert_eq!(counters(&mut iso).hits, 0);
    }

    #[test]
    fn eviction_keeps_the_cache_within_its_bounds() {
        let limits = CodeCacheLimits {
            max_entries: 8,
            max_bytes: 4096,
        };
        let mut iso = isolate(limits);
        for i in 0..200 {
            // Twice: the second compile puts it in the cache.
            let code = format!("var v{i} = {i}; 'x'.repeat({}) + v{i}", i % 50);
            eval(&mut iso, &code).unwrap();
            eval(&mut iso, &code).unwrap();
            let c = counters(&mut iso);
            assert!(c.entries <= 8 && c.bytes <= 4096, "{c:?}");
        }
        let c = counters(&mut iso);
        assert_eq!(c.misses, 400);
        assert!(c.entries > 0);
        assert_eq!(c.evictions, 200 - c.entries);
        // The most recent script is still there.
        eval(&mut iso, "var v199 = 199; 'x'.repeat(49) + v199").unwrap();
        assert_eq!(counters(&mut iso).hits, 1);
        // A big source that can never fit is run and not kept.
        let big = format!("'{}'.length", "y".repeat(8000));
        for _ in 0..3 {
            assert_eq!(eval(&mut iso, &big).unwrap(), HostValue::Number(8000.0));
        }
        assert!(counters(&mut iso).bytes <= 4096);
    }

    #[test]
    fn one_off_sources_stay_out() {
        let mut iso = isolate(CodeCacheLimits::DEFAULT);
        for i in 0..1000 {
            assert_eq!(
                eval(&mut iso, &format!("{i} + 1")).unwrap(),
                HostValue::Number(i as f64 + 1.0)
            );
        }
        let c = counters(&mut iso);
        assert_eq!((c.misses, c.entries, c.evictions), (1000, 0, 0));
    }

    #[test]
    fn a_heap_limit_caps_the_cache() {
        let config = Config {
            memory_limit: Some(8 << 20),
            ..Config::default()
        };
        assert_eq!(code_cache_limits(&config).max_bytes, 1 << 20);
        let config = Config {
            memory_limit: Some(1 << 20),
            ..Config::default()
        };
        assert_eq!(code_cache_limits(&config).max_bytes, 128 << 10);
    }

    #[test]
    fn off_compiles_every_time_and_counts_nothing() {
        let mut iso = isolate(CodeCacheLimits::OFF);
        for _ in 0..3 {
            assert_eq!(eval(&mut iso, "1+1").unwrap(), HostValue::Number(2.0));
        }
        assert_eq!(counters(&mut iso), crate::CodeCacheCounters::default());
    }
}
