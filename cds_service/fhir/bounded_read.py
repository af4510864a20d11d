"""Reading an HTTP body from a server we do not control (a FHIR server, an EHR's key set): against one
deadline for the whole body and a size limit after decompression, one socket read at a time, so a server
that drips a byte at a time gets no longer than one that says nothing. Callers say what a failure means."""

from __future__ import annotations

import time

import requests
import urllib3.exceptions

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class BodyCutOff(Exception):
    """Shorter than its Content-Length, or the connection dropped mid-body: not a slow server."""


def read_bounded(response: requests.Response, deadline: float, limit: int) -> bytes:
    body = bytearray()
    try:
        while chunk := response.raw.read1(CHUNK, decode_content=True):  # what has arrived, one read
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(limit)
            if time.monotonic() > deadline:
                raise BodyTooSlow()
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        raise BodyTooSlow() from exc
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        if time.monotonic() > deadline:
            raise BodyTooSlow() from exc
        raise BodyCutOff() from exc
    return bytes(body)
