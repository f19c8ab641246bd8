"""Sigma logsource -> the ``event.dataset`` values a rule reads (issue 4, section 2).

========================  ===========================
logsource                 event.dataset
========================  ===========================
category: dns             dns
category: proxy           http
category: webserver       http
category: firewall        conn, flow
product: zeek, service X  X (``ssl`` -> ``tls``)
product: suricata         any row
anything else             any row
========================  ===========================
"""

from __future__ import annotations

from sigma.rule import SigmaLogSource

CATEGORY_DATASETS: dict[str, frozenset[str]] = {
    "dns": frozenset({"dns"}),
    "proxy": frozenset({"http"}),
    "webserver": frozenset({"http"}),
    "firewall": frozenset({"conn", "flow"}),
}
ZEEK_SERVICE_DATASETS: dict[str, str] = {"ssl": "tls"}


def datasets(logsource: SigmaLogSource | None) -> frozenset[str] | None:
    """The ``event.dataset`` values selected by ``logsource``; ``None`` means every row."""
    if logsource is None:
        return None
    category = (logsource.category or "").lower()
    product = (logsource.product or "").lower()
    service = (logsource.service or "").lower()
    if category in CATEGORY_DATASETS:
        return CATEGORY_DATASETS[category]
    if product == "zeek" and service:
        return frozenset({ZEEK_SERVICE_DATASETS.get(service, service)})
    return None
