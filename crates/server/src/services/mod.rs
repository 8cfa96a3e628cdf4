//! The use cases under the HTTP API, the console and SellerCenter's dialect: one function per use
//! case, taking typed input (and, where a tenant's objects are concerned, the caller) and
//! returning typed output or an [`crate::error::AppError`]. The routes are adapters over them: they
//! read the request, call the service, and write its answer.

pub mod deliveries;
pub mod events;
pub mod orders;
pub mod polling;
pub mod publish_event;
pub mod receive_webhook;
pub mod reconcile_settings;
pub mod reconciliation;
pub mod refusals;
pub mod rejections;
pub mod scope;
pub mod source_token;
pub mod sources;
pub mod subscription_controls;
pub mod subscriptions;
pub mod test_notification;
pub mod transformations;

use crate::error::{AppError, AppResult};

/// A page's size: 100 unless asked, 1 to 1,000.
pub(crate) fn page_limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(100).clamp(1, 1000)
}

/// The `nextBefore` of a page: its last row's id when the page is full, else none.
pub(crate) fn next_before<T, Id>(rows: &[T], limit: u32, id: impl Fn(&T) -> Id) -> Option<Id> {
    (rows.len() == limit as usize)
        .then(|| rows.last().map(id))
        .flatten()
}

/// An optional id a query names; one that is not a UUID is a 400 naming the field.
pub(crate) fn optional_uuid<Id: std::str::FromStr>(
    raw: Option<&str>,
    field: &str,
) -> AppResult<Option<Id>> {
    raw.map(|r| {
        r.parse()
            .map_err(|_| AppError::invalid(field, format!("{field} must be a UUID")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    /// The route modules, as compiled.
    const ROUTES: [(&str, &str); 12] = [
        ("api.rs", include_str!("../routes/api.rs")),
        ("ingest.rs", include_str!("../routes/ingest.rs")),
        ("metrics.rs", include_str!("../routes/metrics.rs")),
        ("mod.rs", include_str!("../routes/mod.rs")),
        ("orders.rs", include_str!("../routes/orders.rs")),
        ("params.rs", include_str!("../routes/params.rs")),
        (
            "sellercenter/mod.rs",
            include_str!("../routes/sellercenter/mod.rs"),
        ),
        (
            "sellercenter/actions.rs",
            include_str!("../routes/sellercenter/actions.rs"),
        ),
        (
            "sellercenter/documents.rs",
            include_str!("../routes/sellercenter/documents.rs"),
        ),
        ("sources.rs", include_str!("../routes/sources.rs")),
        ("token.rs", include_str!("../routes/token.rs")),
        ("webhooks.rs", include_str!("../routes/webhooks.rs")),
    ];

    /// The store calls a route may make itself: none touches a tenant's objects.
    const ALLOWED: [(&str, &str); 4] = [
        // Readiness: does the database answer.
        ("mod.rs", "ping"),
        // The operator's scrape: one count over all tenants.
        ("metrics.rs", "queue_depth"),
        // Client credentials, before any tenant is known.
        ("token.rs", "get_client"),
        ("sellercenter/mod.rs", "get_client"),
    ];

    /// Every `.store.<method>` (the call may be split over lines) in a source.
    fn store_calls(source: &str) -> Vec<String> {
        let mut calls = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(".store") {
            let after = rest[at + ".store".len()..].trim_start();
            if let Some(call) = after.strip_prefix('.') {
                let name: String = call
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                calls.push(name);
            }
            rest = &rest[at + ".store".len()..];
        }
        calls
    }

    #[test]
    fn routes_reach_tenant_data_only_through_the_services() {
        let mut found = Vec::new();
        for (file, source) in ROUTES {
            for call in store_calls(source) {
                if !ALLOWED.contains(&(file, call.as_str())) {
                    found.push(format!("{file}: store.{call}"));
                }
            }
        }
        assert!(
            found.is_empty(),
            "routes calling the store themselves: {found:?}"
        );
        // Every module of `routes` is read (nine of them today, and sellercenter's two).
        let mut modules = 0;
        for line in ROUTES[3].1.lines() {
            let module = ["pub(crate) mod ", "pub mod ", "mod "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
                .and_then(|m| m.strip_suffix(';'));
            if let Some(module) = module {
                let (file, dir) = (format!("{module}.rs"), format!("{module}/mod.rs"));
                assert!(
                    ROUTES.iter().any(|(f, _)| *f == file || *f == dir),
                    "routes::{module} is not checked here"
                );
                modules += 1;
            }
        }
        assert_eq!(modules, 9, "the module declarations were found");
        let sellercenter = ROUTES[6].1;
        assert!(sellercenter.contains("mod actions;") && sellercenter.contains("mod documents;"));
        // The check finds what is there.
        assert_eq!(
            store_calls("state\n        .store\n        .get_event(id)"),
            ["get_event"]
        );
    }

    /// Every `.rs` file under `src/`, read from disk (so a new module is read too).
    fn server_sources() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .expect("src is readable")
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source is readable");
                    let name = path
                        .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src/"))
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    out.push((name, text));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
            &mut out,
        );
        out
    }

    /// Every tenant-owned read and write takes a scope: the request path reaches the store
    /// through `TenantStore::scoped` (whose methods apply the scope) and the few methods that
    /// belong to no tenant; the whole store (`unscoped`) only where the hub works for every
    /// partner, and `Scope::All` only for admins (in the store) and inbound requests.
    #[test]
    fn every_tenant_owned_read_takes_a_scope() {
        const UNSCOPED_ALLOWED: [&str; 4] = [
            // Retention purges every partner's old rows.
            "lib.rs",
            // The performance scheduler runs for every partner.
            "performance.rs",
            // A source's refusal spike is announced as the dispatcher announces its events.
            "services/refusals.rs",
            // The reconciler lists every source that reconciles (each run then works within
            // its source's partners).
            "services/reconciliation.rs",
        ];
        let sources = server_sources();
        assert!(
            sources.len() > 40,
            "the sources were read: {}",
            sources.len()
        );
        let mut found = Vec::new();
        for (file, text) in &sources {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            if code.contains(".unscoped()") && !UNSCOPED_ALLOWED.contains(&file.as_str()) {
                found.push(format!("{file}: store.unscoped()"));
            }
            if code.contains("Scope::All") && file != "services/scope.rs" {
                found.push(format!("{file}: Scope::All"));
            }
        }
        assert!(
            found.is_empty(),
            "tenant data reached without a scope: {found:?}"
        );
        // The check reads what is there.
        assert!(
            sources
                .iter()
                .any(|(f, t)| f == "lib.rs" && t.contains(".unscoped()"))
        );
    }
}
