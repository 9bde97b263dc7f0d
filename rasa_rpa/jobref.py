"""A job's short reference: what a user is shown, quotes, and operators look up.

Job ids are 32 random hex digits: unreadable in a chat and untypeable from a
screenshot. The reference (``7K3-Q9X``) is the id's first 30 bits in
Crockford's base32, so it reads aloud without ambiguity and leads back to
the job by an id-prefix scan (:func:`ref_id_prefix`).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["job_ref", "ref_id_prefix"]

#: Crockford's base32: no I, L, O or U, so a reference read aloud or typed
#: from a screenshot is not mistaken (O/0, I/1) and spells no words.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REF_CHARS = 6  # 30 bits: two jobs of one deployment rarely share one
_REF_BITS = 5 * _REF_CHARS
_HEX_ID = re.compile(r"[0-9a-f]{32}")


def job_ref(job_id: str) -> str:
    """A short reference for the user and the operator, such as ``7K3-Q9X``.

    Taken from the first 30 bits of the (random, hex) job id, so
    :func:`ref_id_prefix` can find the job again by id prefix; an id that
    is not hex (ids are the store's, but tests and imports vary) is hashed.
    """
    source = job_id if _HEX_ID.fullmatch(job_id) else _digest(job_id)
    bits = int(source[:8], 16) >> (32 - _REF_BITS)
    chars = [_ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(_REF_CHARS))]
    half = _REF_CHARS // 2
    return "".join(chars[:half]) + "-" + "".join(chars[half:])


def ref_id_prefix(text: str) -> tuple[str, str] | None:
    """``(normalised reference, hex id prefix)`` for a typed reference, or None.

    Accepts what people type: any case, with or without the dash, and the
    look-alikes Crockford's alphabet folds (O for 0, I and L for 1). The
    prefix covers the reference's first 28 bits (seven hex digits); the
    caller filters the candidates by their full reference.
    """
    cleaned = text.strip().upper().replace("-", "")
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    if len(cleaned) != _REF_CHARS or any(c not in _ALPHABET for c in cleaned):
        return None
    bits = 0
    for char in cleaned:
        bits = (bits << 5) | _ALPHABET.index(char)
    prefix = f"{bits << (32 - _REF_BITS):08x}"[:7]
    half = _REF_CHARS // 2
    return cleaned[:half] + "-" + cleaned[half:], prefix


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
