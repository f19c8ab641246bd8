"""The outside world: Zipf-popular domains, their addresses, certificates and files.

A handful of real, very popular registered domains sit at the top of the Zipf
ranking (as in any proxy log, and so that top-list warninglists have something
to suppress); the long tail is made of plausible invented names under real
public suffixes. Each registered domain owns a few host names, one to four IPv4
addresses, sometimes IPv6, a certificate and a server TLS fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.synthetic.records import hex_strings, ipv4_strings, vocab
from detect.synthetic.sampling import AliasTable

POPULAR: tuple[str, ...] = (
    "google.com", "microsoft.com", "windowsupdate.com", "office.com", "apple.com",
    "amazonaws.com", "cloudflare.com", "akamaiedge.net", "github.com", "wikipedia.org",
    "youtube.com", "live.com", "linkedin.com", "gstatic.com", "googleapis.com",
    "bing.com", "mozilla.org", "digicert.com", "zoom.us", "slack.com", "dropbox.com",
    "adobe.com", "bbc.co.uk", "spiegel.de", "heise.de", "theguardian.com", "debian.org",
    "ubuntu.com", "python.org", "letsencrypt.org",
)
SUFFIXES: tuple[str, ...] = (
    "com", "net", "org", "de", "co.uk", "io", "fr", "nl", "eu", "info", "com.au", "ch",
)
_SUFFIX_WEIGHTS = np.array([52, 10, 8, 9, 5, 4, 3, 3, 2, 2, 1, 1], dtype=np.float64)
_SYLLABLES: tuple[str, ...] = (
    "ka", "lo", "mi", "tra", "ven", "sol", "dor", "nex", "ply", "qui", "ber", "gan", "tel",
    "ro", "sun", "mar", "fin", "lux", "zen", "cor", "bit", "net", "web", "data", "cloud",
    "shop", "news", "tech", "soft", "media", "hub", "ly", "ia", "go", "pro", "max", "star",
    "blue", "green", "north", "alpha", "nova", "terra", "mo", "vi", "sa", "el", "an",
)
HOST_LABELS: tuple[str, ...] = ("www", "", "api", "cdn", "static", "login", "img", "mail", "app")
_HOST_WEIGHTS = np.array([40, 20, 12, 10, 8, 4, 3, 2, 1], dtype=np.float64)
CA_ISSUERS: tuple[str, ...] = (
    "CN=R11,O=Let's Encrypt,C=US",
    "CN=E6,O=Let's Encrypt,C=US",
    "CN=WR2,O=Google Trust Services,C=US",
    "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc,C=US",
    "CN=Sectigo RSA Domain Validation Secure Server CA,O=Sectigo Limited,L=Salford,"
    "ST=Greater Manchester,C=GB",
    "CN=GlobalSign GCC R3 DV TLS CA 2020,O=GlobalSign nv-sa,C=BE",
)
MIME_FILES: tuple[tuple[str, str, float, float], ...] = (
    # mime, extension, log-normal mean of size, weight
    ("application/x-dosexec", "exe", 14.0, 2.0),
    ("application/pdf", "pdf", 12.0, 5.0),
    ("application/zip", "zip", 13.5, 3.0),
    ("image/png", "png", 10.0, 25.0),
    ("image/jpeg", "jpg", 11.0, 25.0),
    ("text/html", "html", 9.5, 20.0),
    ("application/javascript", "js", 10.5, 15.0),
    ("application/vnd.ms-cab-compressed", "cab", 15.0, 2.0),
    ("application/x-debian-package", "deb", 13.0, 1.0),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", 11.5, 2),
)


def is_public_ipv4(a: np.ndarray) -> np.ndarray:
    """True where a uint32 address is globally routable (no RFC1918, CGNAT, test nets...)."""
    a = np.asarray(a, dtype=np.uint32)

    def within(net: int, bits: int) -> np.ndarray:
        return (a >> np.uint32(32 - bits)) == np.uint32(net >> (32 - bits))

    bad = (a >> np.uint32(24) == 0) | (a >> np.uint32(24) == 10) | (a >> np.uint32(24) == 127)
    bad |= a >= np.uint32(224 << 24)
    for net, bits in (
        (0xAC100000, 12), (0xC0A80000, 16), (0x64400000, 10), (0xA9FE0000, 16),
        (0xC0000200, 24), (0xC6336400, 24), (0xCB007100, 24), (0xC6120000, 15),
        (0xC0000000, 24), (0xC0586300, 24),
    ):
        bad |= within(net, bits)
    return ~bad


def public_ipv4(rng: np.random.Generator, n: int, *, avoid: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct public IPv4 addresses (uint32), none of them in ``avoid``."""
    out = np.empty(0, dtype=np.uint32)
    if avoid is not None:  # membership by binary search: no hash table of ``avoid`` per call
        avoid = np.asarray(avoid, dtype=np.uint32)
        if len(avoid) > 1 and not bool(np.all(avoid[:-1] <= avoid[1:])):
            avoid = np.sort(avoid)
    while len(out) < n:
        cand = rng.integers(1 << 24, 224 << 24, size=2 * (n - len(out)) + 16, dtype=np.uint32)
        cand = cand[is_public_ipv4(cand)]
        if avoid is not None and len(avoid):
            pos = np.minimum(np.searchsorted(avoid, cand), len(avoid) - 1)
            cand = cand[avoid[pos] != cand]
        out = np.concatenate([out, cand])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:n]


def public_ipv6(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` global-unicast IPv6 addresses under a few real-looking provider prefixes."""
    prefixes = np.array(["2606:4700", "2a00:1450", "2a03:2880", "2620:1ec", "2a02:26f0"])
    p = prefixes[rng.integers(0, len(prefixes), size=n)]
    words = rng.integers(0, 1 << 16, size=(n, 3))
    text = [f"{a}:{b:x}:{c:x}::{d:x}" for a, (b, c, d) in zip(p.tolist(), words.tolist(),
                                                            strict=True)]
    return pa.array(text, type=pa.string())


def invented_names(rng: np.random.Generator, n: int, *, taken: set[str]) -> list[str]:
    """``n`` distinct plausible registered domains, none of them in ``taken``."""
    sp = _SUFFIX_WEIGHTS / _SUFFIX_WEIGHTS.sum()
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        k = n - len(out) + 8
        nsyl = rng.integers(2, 4, size=k)
        syl = rng.integers(0, len(_SYLLABLES), size=(k, 3))
        digits = rng.random(k) < 0.05
        suf = rng.choice(len(SUFFIXES), size=k, p=sp)
        for i in range(k):
            label = "".join(_SYLLABLES[s] for s in syl[i, : nsyl[i]])
            if digits[i]:
                label += str(int(syl[i, 0]) % 90 + 10)
            name = f"{label}.{SUFFIXES[suf[i]]}"
            if name not in seen:
                seen.add(name)
                out.append(name)
                if len(out) == n:
                    break
    return out


@dataclass(frozen=True)
class DomainCatalog:
    """Registered domains in popularity order and everything hanging off them."""

    registered: pa.Array  # string (D,)
    cdf: np.ndarray  # float64 (D,), Zipf cumulative popularity
    alias: AliasTable  # Zipf draws
    fqdn: pa.Array  # string (F,)
    fqdn_start: np.ndarray  # int64 (D,)
    fqdn_count: np.ndarray  # int64 (D,)
    fqdn_cdf: np.ndarray  # float64 (len(HOST_LABELS),) label choice
    ip4_pool: pa.Array  # string (P,)
    ip4_int: np.ndarray  # uint32 (P,)
    ip4_start: np.ndarray  # int64 (D,)
    ip4_count: np.ndarray  # int64 (D,)
    ip6_pool: pa.Array  # string (Q,)
    ip6_start: np.ndarray  # int64 (D,)
    ip6_count: np.ndarray  # int64 (D,), 0 where no IPv6
    answers4: pa.Array  # list<string> (D,)
    answers6: pa.Array  # list<string> (D,), null where no IPv6
    ttl4: pa.Array  # list<float64> (D,)
    ttl6: pa.Array  # list<float64> (D,)
    ja3s: pa.Array  # string (D,)
    cert_subject: pa.Array  # string (D,)
    cert_issuer: pa.Array  # string (D,)
    cert_sha1: pa.Array  # string (D,)
    cert_sha256: pa.Array  # string (D,)
    # a pool of downloadable files
    file_name: pa.Array
    file_path: pa.Array
    file_mime: pa.Array
    file_size: np.ndarray  # uint64
    file_md5: pa.Array
    file_sha1: pa.Array
    file_sha256: pa.Array
    file_cdf: np.ndarray
    file_alias: AliasTable
    nx_names: pa.Array  # names that do not resolve
    ntp_ip4: pa.Array  # public NTP servers
    internet_ip4: pa.Array  # random internet hosts (inbound noise)
    internet_ip4_int: np.ndarray

    @property
    def size(self) -> int:
        """Number of registered domains."""
        return len(self.registered)

    def all_ip4(self) -> np.ndarray:
        """Every public IPv4 the benign traffic can use (for keeping IOCs disjoint)."""
        return np.concatenate([self.ip4_int, self.internet_ip4_int])


def _lists(values: pa.Array, start: np.ndarray, count: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(start) + 1, dtype=np.int32)
    np.cumsum(count, out=offsets[1:])
    total = int(offsets[-1])
    idx = np.repeat(start - offsets[:-1], count) + np.arange(total)
    flat = values.take(pa.array(idx.astype(np.int64)))
    mask = pa.array(count == 0)
    return pa.ListArray.from_arrays(pa.array(offsets), flat, mask=mask)


def build_domains(
    rng: np.random.Generator, *, registered: int, zipf_s: float = 1.05
) -> DomainCatalog:
    """Draw the catalog; ``registered`` is the number of registered domains."""
    n = max(registered, len(POPULAR) + 10)
    names = list(POPULAR) + invented_names(rng, n - len(POPULAR), taken=set(POPULAR))
    reg = vocab(names)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    w = ranks ** -zipf_s
    cdf = np.cumsum(w) / w.sum()

    # host names: each domain has 1..4 of HOST_LABELS, always including www
    nlabels = rng.integers(1, 5, size=n)
    fq, fq_start = [], np.zeros(n, dtype=np.int64)
    for i, name in enumerate(names):
        fq_start[i] = len(fq)
        for label in HOST_LABELS[: nlabels[i]]:
            fq.append(f"{label}.{name}" if label else name)
    fqdn = pa.array(fq, type=pa.string())
    fq_count = nlabels.astype(np.int64)
    hw = _HOST_WEIGHTS / _HOST_WEIGHTS.sum()

    ip_count = rng.choice([1, 1, 2, 2, 3, 4], size=n).astype(np.int64)
    ip_start = np.concatenate([[0], np.cumsum(ip_count)[:-1]]).astype(np.int64)
    ip_int = public_ipv4(rng, int(ip_count.sum()))
    ip_pool = ipv4_strings(ip_int)
    has6 = rng.random(n) < np.where(ranks <= len(POPULAR), 0.9, 0.25)
    ip6_count = np.where(has6, rng.integers(1, 3, size=n), 0).astype(np.int64)
    ip6_start = np.concatenate([[0], np.cumsum(ip6_count)[:-1]]).astype(np.int64)
    ip6_pool = public_ipv6(rng, int(ip6_count.sum()))
    ttl_choices = np.array([60.0, 300.0, 300.0, 3600.0, 86400.0, 20.0])
    ttl = pa.array(ttl_choices[rng.integers(0, len(ttl_choices), size=n)])
    ttl4_vals = ttl.take(pa.array(np.repeat(np.arange(n), ip_count)))
    ttl6_vals = ttl.take(pa.array(np.repeat(np.arange(n), ip6_count)))

    issuer = vocab(CA_ISSUERS).take(pa.array(rng.integers(0, len(CA_ISSUERS), size=n)))
    subject = pc.binary_join_element_wise("CN=*", reg, ".")

    nf = 3000
    fw = np.array([m[3] for m in MIME_FILES], dtype=np.float64)
    kind = rng.choice(len(MIME_FILES), size=nf, p=fw / fw.sum())
    stems = invented_names(rng, nf, taken=set())
    fnames = [f"{s.split('.')[0]}-{i % 97}.{MIME_FILES[k][1]}" for i, (s, k)
              in enumerate(zip(stems, kind.tolist(), strict=True))]
    fsize = np.exp(rng.normal([MIME_FILES[k][2] for k in kind], 1.0)).astype(np.uint64) + 64
    franks = np.arange(1, nf + 1, dtype=np.float64) ** -1.0
    nx = invented_names(rng, 500, taken=set(names))
    ntp = ipv4_strings(public_ipv4(rng, 8, avoid=ip_int))
    internet = public_ipv4(rng, 20000, avoid=ip_int)
    return DomainCatalog(
        registered=reg,
        cdf=cdf,
        alias=AliasTable.from_weights(w),
        fqdn=fqdn,
        fqdn_start=fq_start,
        fqdn_count=fq_count,
        fqdn_cdf=np.cumsum(hw),
        ip4_pool=ip_pool,
        ip4_int=ip_int,
        ip4_start=ip_start,
        ip4_count=ip_count,
        ip6_pool=ip6_pool,
        ip6_start=ip6_start,
        ip6_count=ip6_count,
        answers4=_lists(ip_pool, ip_start, ip_count),
        answers6=_lists(ip6_pool, ip6_start, ip6_count),
        ttl4=pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(ip_count)]).astype(np.int32)), ttl4_vals
        ),
        ttl6=pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(ip6_count)]).astype(np.int32)), ttl6_vals,
            mask=pa.array(ip6_count == 0),
        ),
        ja3s=hex_strings(rng, 40, 16).take(pa.array(rng.integers(0, 40, size=n))),
        cert_subject=subject,
        cert_issuer=issuer,
        cert_sha1=hex_strings(rng, n, 20),
        cert_sha256=hex_strings(rng, n, 32),
        file_name=pa.array(fnames, type=pa.string()),
        file_path=pa.array([f"/downloads/{f}" for f in fnames], type=pa.string()),
        file_mime=vocab([MIME_FILES[k][0] for k in kind]),
        file_size=fsize,
        file_md5=hex_strings(rng, nf, 16),
        file_sha1=hex_strings(rng, nf, 20),
        file_sha256=hex_strings(rng, nf, 32),
        file_cdf=np.cumsum(franks) / franks.sum(),
        file_alias=AliasTable.from_weights(franks),
        nx_names=pa.array(nx, type=pa.string()),
        ntp_ip4=ntp,
        internet_ip4=ipv4_strings(internet),
        internet_ip4_int=internet,
    )
