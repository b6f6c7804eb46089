//! Fetching `https://` (and, when allowed, `http://`) image URLs with a byte
//! cap, a timeout and a redirect cap. By default a URL whose host resolves to
//! a loopback, private, link-local (cloud metadata), CGNAT or otherwise
//! non-public address is refused; the check runs after DNS resolution and the
//! connection is pinned to the vetted addresses, so DNS cannot be rebound in
//! between. Every redirect hop is checked the same way.

use super::error::VisionError;
use futures::StreamExt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The remote-image policy, from the configuration.
#[derive(Debug, Clone)]
pub struct RemotePolicy {
    pub enabled: bool,
    pub allow_http: bool,
    pub allow_private: bool,
    /// Non-public addresses fetched all the same (a LAN image server),
    /// while every other non-public address stays refused.
    pub allow_ips: Vec<AddrRange>,
    pub timeout: Duration,
    pub max_redirects: usize,
}

/// An address or a CIDR block: `10.0.0.5`, `10.0.0.0/8`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for AddrRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = ip
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0..={max}"))?,
        };
        Ok(AddrRange { base, prefix })
    }
}

impl AddrRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((base, width), (other, other_width)) = (bits(self.base), bits(ip));
        if width != other_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        host_bits >= width || (base >> host_bits) == (other >> host_bits)
    }
}

impl Default for RemotePolicy {
    fn default() -> Self {
        RemotePolicy {
            enabled: true,
            allow_http: false,
            allow_private: false,
            allow_ips: Vec::new(),
            timeout: Duration::from_secs(10),
            max_redirects: 3,
        }
    }
}

/// True for addresses a public image host never has.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| embedded_v4(v6)) {
                return is_non_public_v4(v4);
            }
            let seg = v6.segments();
            let seg0 = seg[0];
            v6.is_loopback()
                || (seg0 & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed inside)
                || (seg0 == 0x64 && seg[1] == 0xff9b && seg[2] == 1) // local-use NAT64 64:ff9b:1::/48
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS IMDS v6
        }
    }
}

/// The IPv4 address a translation scheme carries inside an IPv6 one: NAT64
/// (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible (::a.b.c.d). A
/// request to such an address reaches the IPv4 host, so that host is vetted.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    // ::a.b.c.d, but not :: and ::1 (handled as IPv6 unspecified/loopback).
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        return Some(v4(s[6], s[7]));
    }
    None
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, incl. 169.254.169.254 metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240 // reserved
}

/// What a client hears when an image host cannot be fetched from.
const UNREACHABLE: &str = "the image URL's host cannot be fetched from this server: it does not resolve, or only to addresses that are not allowed (private addresses can be permitted with --image-fetch-allow-ip or --allow-private-image-urls)";

fn refused(msg: String) -> VisionError {
    VisionError::RemoteRefused(msg)
}

/// Resolves `url`'s host and checks every address against the policy.
async fn vet(url: &reqwest::Url, policy: &RemotePolicy) -> Result<Vec<SocketAddr>, VisionError> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(refused(
                "plain http:// image URLs are refused; use https:// (or start the server with --allow-http-image-urls)".into(),
            ));
        }
        other => {
            return Err(refused(format!(
                "the URL scheme `{other}` is not supported"
            )));
        }
    }
    let host = url
        .host_str()
        .ok_or_else(|| refused("the image URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
    // One message for a name that does not resolve and one that resolves
    // to a refused address, without the addresses: a client learns
    // nothing about the server's network; the log has the details.
    let unreachable = |detail: String| {
        tracing::warn!(host = %host, %detail, "image URL refused");
        refused(UNREACHABLE.into())
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_for_lookup, port))
        .await
        .map_err(|e| unreachable(format!("cannot resolve: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(unreachable("no address".into()));
    }
    let refused_ip = |ip: IpAddr| {
        !policy.allow_private
            && is_non_public(ip)
            && !policy.allow_ips.iter().any(|r| r.contains(ip))
    };
    if let Some(bad) = addrs.iter().find(|a| refused_ip(a.ip())) {
        return Err(unreachable(format!("non-public address {}", bad.ip())));
    }
    Ok(addrs)
}

/// Bytes a request's downloads may still take, shared by its fetches so
/// that the request's total holds while they run, not after.
#[derive(Debug)]
pub struct Allowance {
    left: std::sync::atomic::AtomicUsize,
    total: usize,
}

impl Allowance {
    pub fn new(total: usize) -> Self {
        Allowance {
            left: total.into(),
            total,
        }
    }

    /// Takes `n` bytes, or fails (taking none) when fewer are left.
    pub fn take(&self, n: usize) -> Result<(), VisionError> {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .map(drop)
            .map_err(|_| VisionError::RequestTooManyBytes { limit: self.total })
    }
}

/// Downloads an image, following at most `max_redirects` redirects.
pub async fn fetch(
    url: &str,
    max_bytes: usize,
    allowance: &Allowance,
    policy: &RemotePolicy,
) -> Result<Vec<u8>, VisionError> {
    if !policy.enabled {
        return Err(refused(
            "remote image URLs are switched off on this server; send the image as a base64 data URL".into(),
        ));
    }
    tokio::time::timeout(
        policy.timeout,
        fetch_inner(url, max_bytes, allowance, policy),
    )
    .await
    .map_err(|_| {
        VisionError::Fetch(format!(
            "the image download took longer than {} s",
            policy.timeout.as_secs_f32()
        ))
    })?
}

async fn fetch_inner(
    url: &str,
    max_bytes: usize,
    allowance: &Allowance,
    policy: &RemotePolicy,
) -> Result<Vec<u8>, VisionError> {
    let mut url = reqwest::Url::parse(url).map_err(|e| refused(format!("invalid URL: {e}")))?;
    for _hop in 0..=policy.max_redirects {
        let addrs = vet(&url, policy).await?;
        let host = url.host_str().unwrap_or_default().to_string();
        // No proxy: a proxy would connect to the host itself, bypassing the
        // addresses vetted above (HTTP(S)_PROXY are ignored here).
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve_to_addrs(&host, &addrs)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| VisionError::Fetch(e.to_string()))?;
        let resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| VisionError::Fetch(format!("cannot download the image: {e}")))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| VisionError::Fetch(format!("HTTP {status} without a Location")))?;
            url = url
                .join(location)
                .map_err(|e| VisionError::Fetch(format!("bad redirect target: {e}")))?;
            continue;
        }
        if !status.is_success() {
            return Err(VisionError::Fetch(format!(
                "the image host answered HTTP {status}"
            )));
        }
        if let Some(len) = resp.content_length()
            && len > max_bytes as u64
        {
            return Err(VisionError::TooManyBytes {
                bytes: len as usize,
                limit: max_bytes,
            });
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| VisionError::Fetch(format!("download failed: {e}")))?;
            if body.len() + chunk.len() > max_bytes {
                return Err(VisionError::TooManyBytes {
                    bytes: body.len() + chunk.len(),
                    limit: max_bytes,
                });
            }
            allowance.take(chunk.len())?;
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Err(VisionError::Empty);
        }
        return Ok(body);
    }
    Err(VisionError::Fetch(format!(
        "more than {} redirects",
        policy.max_redirects
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_fetches_share_one_allowance() {
        let a = Allowance::new(10);
        assert!(a.take(6).is_ok());
        assert!(matches!(
            a.take(5),
            Err(VisionError::RequestTooManyBytes { limit: 10 })
        ));
        assert!(a.take(4).is_ok());
        assert!(a.take(1).is_err());
    }

    #[test]
    fn address_ranges_parse_and_match() {
        let r: AddrRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.200.1.1".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        let one: AddrRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: AddrRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        let all: AddrRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<AddrRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn classifies_addresses() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::1",       // local-use NAT64
            "2002:7f00:1::1",     // 6to4 of 127.0.0.1
            "2002:c0a8:101::",    // 6to4 of 192.168.1.1
            "::7f00:1",           // IPv4-compatible 127.0.0.1
            "::a00:1",            // IPv4-compatible 10.0.0.1
            "fec0::1",            // site-local
        ] {
            assert!(is_non_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
        ] {
            assert!(!is_non_public(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn refuses_loopback_and_plain_http_by_default() {
        let policy = RemotePolicy::default();
        let err = fetch(
            "https://127.0.0.1:9/x.png",
            100,
            &Allowance::new(100),
            &policy,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, VisionError::RemoteRefused(ref m) if m == UNREACHABLE),
            "{err}"
        );
        let err = fetch(
            "http://example.com/x.png",
            100,
            &Allowance::new(100),
            &policy,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, VisionError::RemoteRefused(ref m) if m.contains("http://")),
            "{err}"
        );
        let off = RemotePolicy {
            enabled: false,
            ..RemotePolicy::default()
        };
        let err = fetch("https://example.com/x.png", 100, &Allowance::new(100), &off)
            .await
            .unwrap_err();
        assert!(matches!(err, VisionError::RemoteRefused(ref m) if m.contains("switched off")));
    }
}
