"""The HTTP gateway: the lease API for frontends and the reference volunteer page.

``tokens`` (volunteer bearer tokens), ``models`` (request and answer shapes), ``api``
(routes, auth, lease calls, status codes), ``server`` (HTTP, page, probes, /metrics),
``service`` (the ``phonebank gateway`` command). See docs/gateway.md.
"""
