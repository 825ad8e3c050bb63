"""Bearer-token mechanics shared by agent and personal tokens.

Tokens are long random strings, so a fast SHA-256 digest is as safe as a slow password hash
and costs microseconds instead of ~100 ms per request.
"""

import hashlib
import secrets

AGENT_TOKEN_PREFIX = "opsa_"
PERSONAL_TOKEN_PREFIX = "opsp_"


def token_generate(prefix: str) -> str:
    """A new token: a recognisable prefix (for secret scanners) and 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()
