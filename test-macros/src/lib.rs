//! `#[taskscope_test::test]`: `#[tokio::test]` with a leak check at the
//! test's end. Use it through the `taskscope-test` crate, whose docs say
//! what it checks; this crate only turns the attribute into a call of
//! `taskscope_test::__private::run_*`.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, ReturnType, Token, parse_macro_input};

/// `#[tokio::test]` that fails the test when tasks it spawned are still
/// alive at its end (after a grace period). See the `taskscope-test`
/// crate's documentation.
///
/// Arguments, all optional: `flavor = "current_thread"` (the default) or
/// `"multi_thread"` with `worker_threads = N`; `shared` (run on the test
/// binary's one shared runtime, the test's tasks told from the others' by
/// spawn ancestry); `ignore = ["src/pool.rs", "my_crate::background"]`
/// (spawn locations or functions of a task's captured stack); `grace =
/// "200ms"` (how long tasks may take to end; default 1 s).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args with Punctuated::<Meta, Token![,]>::parse_terminated);
    let item = parse_macro_input!(item as ItemFn);
    match Options::parse(args).and_then(|o| expand(o, item)) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

enum Flavor {
    CurrentThread,
    MultiThread(Option<usize>),
    Shared,
}

struct Options {
    flavor: Flavor,
    ignore: Vec<String>,
    grace_ms: Option<u64>,
}

fn err<T>(span: Span, msg: impl std::fmt::Display) -> syn::Result<T> {
    Err(syn::Error::new(span, msg))
}

const KNOWN: &str = "flavor = \"current_thread\" | \"multi_thread\", worker_threads = N, shared, ignore = [\"PATTERN\", …], grace = \"200ms\"";

impl Options {
    fn parse(args: Punctuated<Meta, Token![,]>) -> syn::Result<Options> {
        let mut flavor: Option<(String, Span)> = None;
        let mut workers: Option<(usize, Span)> = None;
        let mut shared: Option<Span> = None;
        let mut ignore = Vec::new();
        let mut grace_ms = None;
        for arg in args {
            let span = syn::spanned::Spanned::span(&arg);
            let name = arg
                .path()
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match (name.as_str(), &arg) {
                ("shared", Meta::Path(_)) => shared = Some(span),
                ("flavor", Meta::NameValue(nv)) => flavor = Some((string(&nv.value)?, span)),
                ("worker_threads", Meta::NameValue(nv)) => {
                    let n = int(&nv.value)?;
                    if n == 0 {
                        return err(span, "worker_threads must be at least 1");
                    }
                    workers = Some((n, span));
                }
                ("ignore", Meta::NameValue(nv)) => ignore.extend(strings(&nv.value)?),
                ("grace", Meta::NameValue(nv)) => {
                    let s = string(&nv.value)?;
                    match millis(&s) {
                        Some(ms) => grace_ms = Some(ms),
                        None => {
                            return err(
                                span,
                                format!(
                                    "grace = \"{s}\": write a duration like \"200ms\" or \"1.5s\""
                                ),
                            );
                        }
                    }
                }
                ("start_paused" | "crate" | "unhandled_panic", _) => {
                    return err(
                        span,
                        format!(
                            "`{name}` is a #[tokio::test] option taskscope_test::test does not take; it takes: {KNOWN}"
                        ),
                    );
                }
                _ => {
                    return err(
                        span,
                        format!("unknown argument; taskscope_test::test takes: {KNOWN}"),
                    );
                }
            }
        }
        let flavor = if shared.is_some() {
            if let Some(span) = flavor.as_ref().map(|(_, s)| *s).or(workers.map(|(_, s)| s)) {
                return err(
                    span,
                    "`shared` runs the test on the binary's shared runtime: it takes no flavor or worker_threads",
                );
            }
            Flavor::Shared
        } else {
            match flavor.as_ref().map(|(f, s)| (f.as_str(), *s)) {
                None | Some(("current_thread", _)) => {
                    if let Some((_, span)) = workers {
                        return err(
                            span,
                            "worker_threads needs flavor = \"multi_thread\" (the default flavor is current_thread, as #[tokio::test]'s)",
                        );
                    }
                    Flavor::CurrentThread
                }
                Some(("multi_thread", _)) => Flavor::MultiThread(workers.map(|(n, _)| n)),
                Some((other, span)) => {
                    return err(
                        span,
                        format!(
                            "flavor = \"{other}\": taskscope_test::test takes \"current_thread\" or \"multi_thread\""
                        ),
                    );
                }
            }
        };
        Ok(Options {
            flavor,
            ignore,
            grace_ms,
        })
    }
}

fn lit(e: &Expr) -> Option<&Lit> {
    match e {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

fn string(e: &Expr) -> syn::Result<String> {
    match lit(e) {
        Some(Lit::Str(s)) => Ok(s.value()),
        _ => err(syn::spanned::Spanned::span(e), "expected a string literal"),
    }
}

fn int(e: &Expr) -> syn::Result<usize> {
    match lit(e) {
        Some(Lit::Int(i)) => i.base10_parse(),
        _ => err(syn::spanned::Spanned::span(e), "expected an integer"),
    }
}

/// `"pattern"` or `["a", "b"]`.
fn strings(e: &Expr) -> syn::Result<Vec<String>> {
    match e {
        Expr::Array(a) => a.elems.iter().map(string).collect(),
        _ => Ok(vec![string(e)?]),
    }
}

/// `"250ms"`, `"1s"`, `"1.5s"`, `"500us"` in milliseconds (rounded up).
fn millis(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, per_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * per_ms < 1e12).then(|| (v * per_ms).ceil() as u64)
}

fn expand(o: Options, item: ItemFn) -> syn::Result<Tokens> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let span = sig.fn_token.span;
    if sig.asyncness.is_none() {
        return err(
            span,
            "#[taskscope_test::test] goes on an `async fn`, as #[tokio::test]",
        );
    }
    if !sig.inputs.is_empty() || !sig.generics.params.is_empty() {
        return err(
            span,
            "a test function takes no arguments and no generic parameters",
        );
    }
    let name = &sig.ident;
    let output = &sig.output;
    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let ignores = o.ignore.iter().map(|p| quote!(.ignore(#p)));
    let grace = o
        .grace_ms
        .map(|ms| quote!(.grace(::core::time::Duration::from_millis(#ms))));
    // The body as one type per output type (`Pin<&mut dyn Future>`, as
    // #[tokio::test] does): a suite of many tests does not compile a copy
    // of the runtime's `block_on` for each. It also gives the body's `?`
    // its error type.
    let (body, run) = match o.flavor {
        Flavor::CurrentThread => (
            quote!(
                let __body = async move #block;
                let __body = ::core::pin::pin!(__body);
                let __body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #ret>> = __body;
            ),
            quote!(::taskscope_test::__private::run_current_thread(
                __check, __body
            )),
        ),
        Flavor::MultiThread(w) => {
            let w = match w {
                Some(n) => quote!(::core::option::Option::Some(#n)),
                None => quote!(::core::option::Option::None),
            };
            (
                quote!(
                    let __body = async move #block;
                    let __body = ::core::pin::pin!(__body);
                    let __body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #ret>> = __body;
                ),
                quote!(::taskscope_test::__private::run_multi_thread(__check, #w, __body)),
            )
        }
        // A task of the shared runtime: `Send + 'static`, boxed.
        Flavor::Shared => (
            quote!(
                let __body: ::core::pin::Pin<::std::boxed::Box<
                    dyn ::core::future::Future<Output = #ret> + ::core::marker::Send + 'static,
                >> = ::std::boxed::Box::pin(async move #block);
            ),
            quote!(::taskscope_test::__private::run_shared(__check, __body)),
        ),
    };
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() #output {
            let __check = ::taskscope_test::Check::new() #(#ignores)* #grace;
            #body
            #run
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{Flavor, ItemFn, Meta, Options, Punctuated, Token, Tokens, expand, millis};
    use quote::quote;
    use syn::parse::Parser;

    fn options(args: Tokens) -> Result<Options, String> {
        let args = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(args)
            .map_err(|e| e.to_string())?;
        Options::parse(args).map_err(|e| e.to_string())
    }

    #[test]
    fn arguments_read_as_tokio_test_reads_them() {
        let o = options(quote!()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(o.flavor, Flavor::CurrentThread));
        let o = options(quote!(
            flavor = "multi_thread",
            worker_threads = 2,
            ignore = ["a.rs", "b::c"],
            grace = "200ms"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(o.flavor, Flavor::MultiThread(Some(2))));
        assert_eq!(o.ignore, ["a.rs", "b::c"]);
        assert_eq!(o.grace_ms, Some(200));
        let o = options(quote!(shared, ignore = "x.rs")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(o.flavor, Flavor::Shared));
        assert_eq!(o.ignore, ["x.rs"]);
    }

    #[test]
    fn wrong_arguments_are_told_what_to_write() {
        for (args, says) in [
            (
                quote!(worker_threads = 2),
                "needs flavor = \"multi_thread\"",
            ),
            (quote!(shared, flavor = "multi_thread"), "takes no flavor"),
            (
                quote!(flavor = "local"),
                "\"current_thread\" or \"multi_thread\"",
            ),
            (quote!(grace = "soon"), "like \"200ms\""),
            (quote!(start_paused = true), "#[tokio::test] option"),
            (quote!(timeout = "1s"), "unknown argument"),
            (
                quote!(flavor = "multi_thread", worker_threads = 0),
                "at least 1",
            ),
        ] {
            match options(args.clone()) {
                Ok(_) => panic!("{args} accepted"),
                Err(e) => assert!(e.contains(says), "{args}: {e}"),
            }
        }
    }

    #[test]
    fn only_an_async_fn_without_arguments_is_a_test() {
        let o = || options(quote!()).unwrap_or_else(|e| panic!("{e}"));
        let sync: ItemFn = syn::parse_quote!(
            fn t() {}
        );
        assert!(expand(o(), sync).is_err());
        let args: ItemFn = syn::parse_quote!(
            async fn t(x: u8) {}
        );
        assert!(expand(o(), args).is_err());
        let ok: ItemFn = syn::parse_quote!(
            async fn t() -> Result<(), E> {
                Ok(())
            }
        );
        let out = expand(o(), ok)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        assert!(out.contains("run_current_thread"), "{out}");
    }

    #[test]
    fn graces_read_as_people_write_them() {
        assert_eq!(millis("200ms"), Some(200));
        assert_eq!(millis("1s"), Some(1000));
        assert_eq!(millis("1.5s"), Some(1500));
        assert_eq!(millis(" 500us "), Some(1));
        assert_eq!(millis("0s"), Some(0));
        assert_eq!(millis("1"), None);
        assert_eq!(millis("-1s"), None);
        assert_eq!(millis("soon"), None);
    }
}
