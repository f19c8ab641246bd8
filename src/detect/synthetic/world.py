"""Everything fixed for one generator run: population, domains, timeline, string pools.

Built once from the seed and shared, read-only, by the benign chunks and the
planted attacks. Its size depends on the number of hosts and domains, never on
how many events are drawn, which keeps memory flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.synthetic.domains import DomainCatalog, build_domains
from detect.synthetic.population import Population, build_population
from detect.synthetic.records import ipv4_strings, vocab
from detect.synthetic.timeline import Timeline

_PATH_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("/", "text/html"),
    ("/index.html", "text/html"),
    ("/favicon.ico", "image/x-icon"),
    ("/api/v1/items", "application/json"),
    ("/api/v2/status", "application/json"),
    ("/search", "text/html"),
    ("/login", "text/html"),
    ("/update/check", "application/json"),
    ("/static/js/app.{h}.js", "application/javascript"),
    ("/static/css/main.{h}.css", "text/css"),
    ("/images/{w}.png", "image/png"),
    ("/images/{w}.jpg", "image/jpeg"),
    ("/news/{w}-{n}.html", "text/html"),
    ("/products/{w}/{n}", "text/html"),
    ("/msdownload/update/v3/static/trustedr/en/{w}.cab", "application/vnd.ms-cab-compressed"),
    ("/ocsp/{h}", "application/ocsp-response"),
    ("/pki/crl/{w}.crl", "application/pkix-crl"),
    ("/connecttest.txt", "text/plain"),
)
_QUERY_TEMPLATES: tuple[str, ...] = (
    "q={w}", "id={n}", "page={n}", "lang=en", "v={h}", "ref={w}&utm_source=newsletter",
    "session={h}", "s={w}+{w2}",
)
_WORDS = (
    "alpha", "report", "summer", "river", "market", "energy", "travel", "garden", "music",
    "orbit", "pixel", "harbor", "winter", "forest", "cable", "silver", "rocket", "budget",
)


@dataclass(frozen=True)
class World:
    """Read-only state shared by benign and planted traffic."""

    population: Population
    domains: DomainCatalog
    timeline: Timeline
    host_ip: pa.Array  # concat(host_ip4, host_ip6): host h -> h, its v6 -> H + h
    resolver_ip: pa.Array  # concat(resolver4, resolver6): org o -> o, v6 -> O + o
    domain_ip: pa.Array  # concat(ip4_pool, ip6_pool)
    ptr_names: pa.Array  # reverse names of the internal hosts (H,)
    qname_pool: pa.Array  # concat(fqdn, ptr_names, nx_names, registered)
    answers_pool: pa.Array  # concat(answers4, answers6, [null])
    ttl_pool: pa.Array
    path_pool: pa.Array
    path_mime: pa.Array
    query_pool: pa.Array

    @property
    def qname_offsets(self) -> tuple[int, int, int]:
        """Where the ptr, nx and registered-domain sections of ``qname_pool`` start."""
        f = len(self.domains.fqdn)
        h = len(self.ptr_names)
        return f, f + h, f + h + len(self.domains.nx_names)


def _fill(template: str, rng: np.random.Generator) -> str:
    return template.format(
        h=f"{int(rng.integers(0, 1 << 32)):08x}",
        w=_WORDS[int(rng.integers(0, len(_WORDS)))],
        w2=_WORDS[int(rng.integers(0, len(_WORDS)))],
        n=int(rng.integers(1, 100000)),
    )


def build_world(
    rng: np.random.Generator, *, events: int, organizations: int, timeline: Timeline
) -> World:
    """Size the world to the run: more events mean more hosts and domains, up to a cap."""
    hosts_per_org = int(np.clip(events / 2000 / max(organizations, 1) * 3, 40, 4000))
    registered = int(np.clip(events / 100, 400, 40000))
    pop = build_population(rng, organizations=organizations, hosts_per_org=hosts_per_org)
    dom = build_domains(rng, registered=registered)
    a = pop.host_ip4_int
    rev = ipv4_strings(((a & 0xFF) << 24) | (((a >> 8) & 0xFF) << 16)
                       | (((a >> 16) & 0xFF) << 8) | (a >> 24))
    ptr = pc.binary_join_element_wise(rev, "in-addr.arpa", ".")
    null_list = pa.nulls(1, pa.list_(pa.string()))
    paths = [_PATH_TEMPLATES[int(rng.integers(0, len(_PATH_TEMPLATES)))] for _ in range(2000)]
    return World(
        population=pop,
        domains=dom,
        timeline=timeline,
        host_ip=pa.concat_arrays([pop.host_ip4, pop.host_ip6]),
        resolver_ip=pa.concat_arrays([pop.resolver_ip4, pop.resolver_ip6]),
        domain_ip=pa.concat_arrays([dom.ip4_pool, dom.ip6_pool]),
        ptr_names=ptr,
        qname_pool=pa.concat_arrays([dom.fqdn, ptr, dom.nx_names, dom.registered]),
        answers_pool=pa.concat_arrays([dom.answers4, dom.answers6, null_list]),
        ttl_pool=pa.concat_arrays([dom.ttl4, dom.ttl6, pa.nulls(1, pa.list_(pa.float64()))]),
        path_pool=pa.array([_fill(p, rng) for p, _ in paths], type=pa.string()),
        path_mime=vocab([m for _, m in paths]),
        query_pool=pa.array([_fill(_QUERY_TEMPLATES[i % len(_QUERY_TEMPLATES)], rng)
                             for i in range(500)], type=pa.string()),
    )
