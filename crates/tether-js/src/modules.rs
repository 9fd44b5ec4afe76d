//! Module resolution and loading: the static modules, the host's resolver and loader, and the
//! glue QuickJS calls for every `import`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Weak;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Module};

use crate::request::{ModuleLoader, ModuleResolver, STATIC_PREFIX};

/// The modules an isolate can import and the hooks that find the others.
#[derive(Default)]
pub(crate) struct Modules {
    pub(crate) statics: HashMap<String, String>,
    pub(crate) resolver: Option<ModuleResolver>,
    pub(crate) loader: Option<ModuleLoader>,
    pub(crate) allow_async: bool,
    pub(crate) last_error: Option<String>,
}

/// The resolver QuickJS calls (it holds the isolate's modules weakly: they go with the isolate).
pub(crate) struct ModuleResolverGlue(pub(crate) Weak<RefCell<Modules>>);
/// The loader QuickJS calls.
pub(crate) struct ModuleLoaderGlue(pub(crate) Weak<RefCell<Modules>>);

fn static_name(spec: &str) -> &str {
    let s = spec.strip_prefix("jsrun://runtime/").unwrap_or(spec);
    let s = s.strip_prefix(STATIC_PREFIX).unwrap_or(s);
    s.strip_prefix("static:").unwrap_or(s)
}

impl Resolver for ModuleResolverGlue {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let Some(modules) = self.0.upgrade() else {
            return Err(rquickjs::Error::new_resolving(base, name));
        };
        let mut m = modules.borrow_mut();
        let (resolved, had_resolver) = match m.resolver.as_mut() {
            Some(r) => match r(name, base) {
                Ok(Some(url)) if !url.is_empty() => (Some(url), true),
                Ok(_) => (None, true),
                Err(msg) => {
                    // The host's message is final (e.g. "Module resolution failed for x: …").
                    m.last_error = Some(msg.clone());
                    return Err(rquickjs::Exception::throw_type(ctx, &msg));
                }
            },
            None => (None, false),
        };
        if let Some(url) = resolved {
            return Ok(url);
        }
        // `jsrun://static/x` names are what resolution produces; only bare names and
        // `static:` names resolve here (as jsrun does).
        let key = if name.starts_with(STATIC_PREFIX) {
            name
        } else {
            static_name(name)
        };
        if m.statics.contains_key(key) {
            return Ok(format!("{STATIC_PREFIX}{key}"));
        }
        if base.starts_with(STATIC_PREFIX) && name.starts_with(STATIC_PREFIX) {
            let k = &name[STATIC_PREFIX.len()..];
            if m.statics.contains_key(k) {
                return Ok(name.to_string());
            }
        }
        let msg = if had_resolver {
            format!(
                "Module resolution denied for {name}. Resolver returned None and no static module was found."
            )
        } else {
            format!("Module resolution denied for {name}. Did you call add_static_module()?")
        };
        m.last_error = Some(msg.clone());
        Err(rquickjs::Exception::throw_type(ctx, &msg))
    }
}

impl Loader for ModuleLoaderGlue {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let Some(modules) = self.0.upgrade() else {
            return Err(rquickjs::Error::new_loading(name));
        };
        let source = {
            let mut m = modules.borrow_mut();
            let stat = name
                .strip_prefix(STATIC_PREFIX)
                .and_then(|k| m.statics.get(k).cloned());
            match stat {
                Some(s) => Ok(s),
                None => {
                    let allow_async = m.allow_async;
                    match m.loader.as_mut() {
                        Some(l) => l(name, allow_async),
                        None => Err(format!(
                            "Module loading denied for {name}. Did you call set_module_loader()?"
                        )),
                    }
                }
            }
        };
        match source {
            Ok(src) => Module::declare(ctx.clone(), name, src),
            Err(msg) => {
                modules.borrow_mut().last_error = Some(msg.clone());
                Err(rquickjs::Exception::throw_type(ctx, &msg))
            }
        }
    }
}
