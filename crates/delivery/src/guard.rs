//! The target-address guard: webhooks must not become a way into the hub's own network (SSRF).
//!
//! Names are resolved by [`GuardedResolver`], which drops every forbidden address before the
//! connector sees it, so the check applies to the address actually connected to (no DNS
//! rebinding window). IP-literal hosts skip resolvers, so [`AddressGuard::check_url`] checks them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Decides which addresses deliveries may connect to.
#[derive(Debug, Clone, Copy)]
pub struct AddressGuard {
    /// `SWITCHYARD_ALLOW_PRIVATE_TARGETS`: allow internal addresses (tests, private networks).
    pub allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuardError(pub String);

impl AddressGuard {
    /// Whether an address is internal: loopback, private, link-local, CGNAT, multicast,
    /// documentation, unspecified, broadcast, ULA, NAT64 and IPv4-mapped forms of these.
    pub fn is_forbidden(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => forbidden_v4(v4),
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return forbidden_v4(v4);
                }
                forbidden_v6(v6)
            }
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || !Self::is_forbidden(ip)
    }

    /// Checks a URL before anything is resolved or connected: an IP-literal host (the connector
    /// skips resolvers for those), and the names that always mean this machine (`localhost`,
    /// `*.localhost`, in any case, with or without the root's trailing dot). Other names are
    /// checked at resolution.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(name)) => {
                let name = canonical_name(name);
                if !self.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
                    return Err(GuardError(format!(
                        "{name} is this machine (set SWITCHYARD_ALLOW_PRIVATE_TARGETS=true to \
                         allow)"
                    )));
                }
                return Ok(());
            }
            None => return Err(GuardError("the URL has no host".into())),
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(GuardError(format!(
                "{ip} is a private, loopback or link-local address (set \
                 SWITCHYARD_ALLOW_PRIVATE_TARGETS=true to allow)"
            )))
        }
    }
}

/// A host name as resolvers see it: lowercase, without the root's trailing dot (`localhost.` is
/// `localhost`).
pub fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || a >= 240 // reserved 240/4
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x0064 && seg[1] == 0xff9b) // NAT64 64:ff9b::/96 and /48
        || (seg[0] == 0x2002) // 6to4 can embed any IPv4 address
        || ip.to_ipv4().is_some_and(|v4| seg[..6].iter().all(|s| *s == 0) && forbidden_v4(v4))
}

/// A resolver that hands the connector only allowed addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: AddressGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        Box::pin(async move {
            // Resolved without the trailing dot, so that `localhost.` finds what `localhost`
            // finds (the hosts file) and is refused the same way.
            let host = canonical_name(name.as_str());
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| guard.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                let err = GuardError(format!(
                    "{host} resolves only to private, loopback or link-local addresses (set \
                     SWITCHYARD_ALLOW_PRIVATE_TARGETS=true to allow)"
                ));
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(guard: AddressGuard) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { guard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        AddressGuard::is_forbidden(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "198.18.0.1",
        ] {
            assert!(forbidden(ip), "{ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "203.0.114.1",
        ] {
            assert!(!forbidden(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked_and_the_switch_allows_them() {
        let strict = AddressGuard {
            allow_private: false,
        };
        let open = AddressGuard {
            allow_private: true,
        };
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::1]/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(strict.check_url(&url).is_err(), "{url}");
            assert!(open.check_url(&url).is_ok(), "{url}");
        }
        let named = reqwest::Url::parse("https://example.com/x").unwrap();
        assert!(strict.check_url(&named).is_ok());
    }

    #[test]
    fn this_machines_names_are_refused_before_resolving_in_every_spelling() {
        let guard = AddressGuard {
            allow_private: false,
        };
        for url in [
            "http://localhost:8080/hook",
            "http://localhost.:8080/hook",
            "http://LocalHost./hook",
            "http://api.localhost/hook",
            "http://api.localhost./hook",
            "http://127.0.0.1./hook",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(guard.check_url(&parsed).is_err(), "{url}");
        }
        let fine = reqwest::Url::parse("http://example.com./hook").unwrap();
        assert!(guard.check_url(&fine).is_ok());
        let allowed = AddressGuard {
            allow_private: true,
        };
        let local = reqwest::Url::parse("http://localhost.:8080/").unwrap();
        assert!(allowed.check_url(&local).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let resolver = GuardedResolver {
            guard: AddressGuard {
                allow_private: false,
            },
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(resolver.resolve(name).await.is_err());
        let open = GuardedResolver {
            guard: AddressGuard {
                allow_private: true,
            },
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
