"""Sigma logsource -> the ``event.dataset`` values a rule reads (issue 4, section 2).

========================  ===========================
logsource                 event.dataset
========================  ===========================
category: dns             dns
category: proxy           http
category: webserver       http
category: firewall        conn, flow
product: zeek, service X  X (``ssl`` -> ``tls``)
product: zeek             any row
product: suricata, svc X  the dataset of EVE event type X (``fileinfo`` -> ``files``,
                          ``netflow`` -> ``flow``); an unknown type: any row
product: suricata         any row
anything else             any row
========================  ===========================

A category wins over a product (``category: dns, product: zeek`` -> ``dns``). The field
names of each log source are mapped by :mod:`detect.sigma.pipelines`, whose Zeek and
Suricata tables follow the same readers (``detect.readers.zeek_fields``,
``detect.readers.suricata_eve``), so a mapped field is read from rows that have it.
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
# EVE event_type -> event.dataset, as the Suricata reader sets it (a test keeps them equal).
SURICATA_EVENT_DATASETS: dict[str, str] = {
    "flow": "flow",
    "netflow": "flow",
    "dns": "dns",
    "http": "http",
    "tls": "tls",
    "fileinfo": "files",
    "alert": "alert",
}


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
    if product == "suricata" and service in SURICATA_EVENT_DATASETS:
        return frozenset({SURICATA_EVENT_DATASETS[service]})
    return None
