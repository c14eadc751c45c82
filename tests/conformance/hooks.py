"""schemathesis hooks for tests/conformance/run.sh.

The generator draws `Idempotency-Key` values from a small space ("0", "00", ...), so unrelated
requests share a key and the server rightly answers `422 idempotency_conflict` (a key names
one request). A valid generated key is made unique per request, keeping it valid; an invalid
one (negative testing) is left as it is, so its rejection is still checked.
"""

import itertools
import re

import schemathesis

_VALID = re.compile(r"^[ -~]{1,255}$")
_COUNTER = itertools.count(1)


@schemathesis.hook
def map_headers(context, headers):
    if not headers:
        return headers
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and _VALID.match(value):
                headers[name] = f"{value[:200]}-{next(_COUNTER)}"
    return headers
