"""Which department, if any, accepts a calling AE title from a peer's address."""

import ipaddress
import socket

from studies.models import DicomCaller


def caller_for(*, ae_title: str, address: str) -> DicomCaller | None:
    """Return the caller row that accepts this AE title from this address.

    A row bound to a host (an address or a name resolving to it) wins over the
    row of the same AE title that accepts any host; a row bound to another
    host accepts nothing from here.
    """
    rows = list(
        DicomCaller.objects.filter(ae_title=ae_title.strip()).select_related(
            "department"
        )
    )
    bound = [row for row in rows if row.host and _same_host(row.host, address)]
    if bound:
        return bound[0]
    return next((row for row in rows if not row.host), None)


def _same_host(host: str, address: str) -> bool:
    host = host.strip()
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        pass
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return address in resolved
