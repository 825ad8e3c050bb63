"""The PII scrubber: exact outputs for every kind, things it must leave alone, and its guarantees.

No database: the scrubber is pure text processing keyed by settings.PII_HMAC_KEY.
"""

import random
import time

import pytest

from apps.audit import scrubbing
from apps.audit.scrubbing import pii_reference, scrub_text, scrub_value

TEST_KEY = "test-only-pii-hmac-key-0123456789abcdef"

# Realistic-looking but fake secrets (documentation examples or random filler).
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
    "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
JWT_2 = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJvcHNkYXNoIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXBhcnQ"
AZURE_KEY_1 = (
    "HYmABftinsX/4RFwAhAY9w5J6FHq6e+Jtcd/AWlM3an9HGgBSM6tr3ftw4D1r7GFKLCdx6S3KNPkeVIS+c8HAw=="
)
AZURE_KEY_2 = (
    "e17ukMHWkTbB3htu7YXy7oWi+RLTkYcF9hMWAhoEbkkz4wUjECKguKK6zpde1YK8oVIjrb3ihU7kZI7+8dUPXQ=="
)
AZURE_KEY_3 = "yKumpcQR6CdmGEGD985ncZM6/dRAnXq6+9F5aJdyvH0="
ANTHROPIC_1 = (
    "sk-ant-api03-Xk9mQ2vL7pR4tW8yB3nF6hJ1dS5gA0cE-uI2oP7qZ9xV4bN8mK3lT6rY1wU5_eH0jG2fD7sA9AA"
)
ANTHROPIC_2 = (
    "sk-ant-api03-b7Hq2LmN9pX4kR8vT1yW6cZ3fJ5dG0sA-eU2iO7nP4qB9xM3lK6rV1wY8tE5hC0jF2gD7aS1BB"
)
ANTHROPIC_3 = (
    "sk-ant-admin01-Q2w3E4r5T6y7U8i9O0pA1s2D3f4G5h6J7k8L9z0X1c2V3b4N5m6Q7w8E9r0T1y2U3i4O5pAA"
)
OPENAI_1 = "sk-proj-4fG7hJ2kL9mN3pQ6rS8tV1wX5yZ0aB2cD4eF6gH8iJ0kL2mN4oP6qR8sT0uV2wX4yZ6aB8c"
OPENAI_2 = "sk-1234567890abcdefGHIJKLMNOPqrstuvwxyzABCD"
OPENAI_3 = "sk-svcacct-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf9Ed8Cb7Aa6Zz5Yy4Xx3Ww2Vv1Uu0Tt"
PEM_RSA = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_PKCS8_ESCAPED = (
    "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n"
    "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNb\\n"
    "-----END PRIVATE KEY-----"
)
PEM_OPENSSH = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDm9t0kn3p0dzWZ0DmNmAVJXeZnsVjzsbbcD3EnT8ZqGQAAAJDf0QX93qEn\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
PEM_ENCRYPTED = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,2C5DB4A5C3E7D3E1A4F0B2C1D9E8F7A6\n"
    "\n"
    "kL0ZpMZ4wJ9P2mHcYxLzJbU1e8yBqQ3rT6vN0sD5fG7hK2jM4nP6qR8sT0uV2wX4\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_TRUNCATED = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oLxPm5vzG1nEoAoGCCqGSM49\n"


@pytest.fixture(autouse=True)
def _pii_key(settings):
    settings.PII_HMAC_KEY = TEST_KEY


def ref(kind: str, value: str) -> str:
    return pii_reference(kind, value)


def render(template: str, items: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The raw text (values filled in) and the expected text (references filled in)."""
    raw = expected = template
    for i, (kind, value) in enumerate(items):
        marker = f"§{i}§"
        assert marker in template
        raw = raw.replace(marker, value)
        expected = expected.replace(marker, ref(kind, value))
    return raw, expected


# (template, ((kind, value), ...)): §N§ marks where value N sits and its reference must appear.
POSITIVE = [
    # --- email
    (
        "2024-05-01T12:30:45Z WARN escalated INC-4411 to §0§ after 3 retries",
        (("email", "alice.smith@example.com"),),
    ),
    (
        '{"actor":"§0§","action":"approve","cc":["§1§"]}',
        (("email", "bob+oncall@corp.example.org"), ("email", "dana-ops@sub.mail.example.io")),
    ),
    (
        "Sure! I drafted the reply.\nTo: §0§\nSubject: your refund",
        (("email", "carol_o.neil@example.co.uk"),),
    ),
    (
        '{"prompt": "Email the report to \\"§0§\\" and to\\n§1§"}',
        (("email", "erin@example.net"), ("email", "frank@example.org")),
    ),
    # --- ipv4
    (
        "psql: error: connection to server at §0§:5432 failed: timeout",
        (("ipv4", "10.0.12.7"),),
    ),
    (
        "X-Forwarded-For: §0§, §1§",
        (("ipv4", "203.0.113.195"), ("ipv4", "198.51.100.17")),
    ),
    (
        '{"client_ip":"§0§","status":403,"path":"/admin"}',
        (("ipv4", "192.168.1.254"),),
    ),
    # --- ipv6
    (
        "upstream connect error: peer [§0§]:443 reset by peer",
        (("ipv6", "2001:db8::1"),),
    ),
    (
        "src=§0§%eth0 dst=§1§ proto=tcp",
        (("ipv6", "fe80::1ff:fe23:4567:890a"), ("ipv6", "::1")),
    ),
    (
        '{"remote_addr":"§0§","mapped":"§1§"}',
        (("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"), ("ipv6", "::ffff:192.0.2.128")),
    ),
    (
        "peer addr:§0§ closed",
        (("ipv6", "2001:db8:abcd:12::7"),),
    ),
    # --- phone
    (
        "Customer asked to be called back at §0§ tomorrow morning.",
        (("phone", "+14155550123"),),
    ),
    (
        "Office: §0§ (London), mobile §1§",
        (("phone", "+44 20 7946 0958"), ("phone", "+1 (212) 555-0188")),
    ),
    (
        "US support line §0§ or §1§.",
        (("phone", "(415) 555-0123"), ("phone", "415-555-0199")),
    ),
    # --- card
    (
        "payment failed for card §0§ exp 12/27",
        (("card", "4111 1111 1111 1111"),),
    ),
    (
        '{"pan":"§0§","amount":"12.34"}',
        (("card", "5555555555554444"),),
    ),
    (
        "Amex §0§ declined; Discover §1§.",
        (("card", "3782-822463-10005"), ("card", "6011111111111117")),
    ),
    # --- AWS access key ids
    (
        "aws_access_key_id = §0§",
        (("aws_key", "AKIAIOSFODNN7EXAMPLE"),),
    ),
    (
        '{"Credentials": {"AccessKeyId": "§0§", "Expiration": "2024-05-01T13:30:45Z"}}',
        (("aws_key", "ASIAY34FZKBOKMUTVV7A"),),
    ),
    (
        "export AWS_ACCESS_KEY_ID=§0§",
        (("aws_key", "AKIA2E0A8F3B244C9986"),),
    ),
    (
        '{"output": "credentials:\\n§0§\\n"}',
        (("aws_key", "AKIAZ7Q2W3E4R5T6Y7U9"),),
    ),
    # --- AWS secret access keys (labelled)
    (
        "[default]\naws_secret_access_key = §0§\nregion = eu-west-1",
        (("aws_secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),),
    ),
    (
        '{"Credentials": {"SecretAccessKey": "§0§"}}',
        (("aws_secret", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),),
    ),
    (
        "env: AWS_SECRET_ACCESS_KEY=§0§ AWS_REGION=us-east-1",
        (("aws_secret", "Xy12Ab34Cd56Ef78Gh90Ij12Kl34Mn56Op78Qr90"),),
    ),
    # --- GCP API keys
    (
        "GET https://maps.googleapis.com/maps/api/geocode/json?key=§0§&address=x",
        (("gcp_key", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"),),
    ),
    (
        '{"apiKey": "§0§", "projectId": "opsdash-prod"}',
        (("gcp_key", "AIzaSyB1x2y3z4A5B6C7D8E9F0g1h2i3j4k5l6m"),),
    ),
    (
        "GOOGLE_API_KEY=§0§",
        (("gcp_key", "AIzaSyC_9q8w7e6r5t4y3u2i1o0p-aSdFgHjKlZ"),),
    ),
    # --- Azure storage keys / connection strings
    (
        "DefaultEndpointsProtocol=https;AccountName=opsdashlogs;AccountKey=§0§;"
        "EndpointSuffix=core.windows.net",
        (("azure_key", AZURE_KEY_1),),
    ),
    (
        "Endpoint=sb://opsdash.servicebus.windows.net/;SharedAccessKeyName="
        "RootManageSharedAccessKey;SharedAccessKey=§0§",
        (("azure_key", AZURE_KEY_3),),
    ),
    (
        '{"storage": {"account_name": "opsdashlogs", "account_key": "§0§"}}',
        (("azure_key", AZURE_KEY_2),),
    ),
    # --- GitHub tokens
    (
        "git clone https://§0§@github.com/opsdash/infra.git",
        (("github_token", "ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3s12"),),
    ),
    (
        "GITHUB_TOKEN=§0§ gh pr list",
        (("github_token", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),),
    ),
    (
        "the agent used token §0§ to push",
        (
            (
                "github_token",
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
            ),
        ),
    ),
    # --- Slack tokens
    (
        "posting to #ops with §0§ failed: not_in_channel",
        (("slack_token", "xoxb-2048-4096-AbCdEfGhIjKlMnOpQrStUvWx"),),
    ),
    (
        "SLACK_TOKEN: §0§",
        (("slack_token", "xoxp-1234567890-0987654321-1122334455-abcdef0123456789"),),
    ),
    (
        "headers: {'Authorization': 'Bearer §0§'}",
        (("slack_token", "xoxb-9988776655-1234512345-ZyXwVuTsRqPoNmLkJiHg"),),
    ),
    # --- Anthropic keys
    (
        "x-api-key: §0§\nanthropic-version: 2023-06-01",
        (("anthropic_key", ANTHROPIC_1),),
    ),
    (
        "ANTHROPIC_API_KEY=§0§ python agent.py",
        (("anthropic_key", ANTHROPIC_2),),
    ),
    (
        "User: why does §0§ not work in the console?",
        (("anthropic_key", ANTHROPIC_3),),
    ),
    # --- OpenAI keys
    (
        "OPENAI_API_KEY=§0§",
        (("openai_key", OPENAI_1),),
    ),
    (
        "falling back to key §0§ for the embeddings call",
        (("openai_key", OPENAI_2),),
    ),
    (
        'headers={"Authorization": "Bearer §0§"}',
        (("openai_key", OPENAI_3),),
    ),
    # --- bearer tokens / Authorization headers
    (
        "curl -H 'Authorization: Bearer §0§' https://api.example.com/v1/runs",
        (("bearer", "8f14e45fceea167a5a36dedd4bea2543"),),
    ),
    (
        "> GET /metrics HTTP/1.1\n> Authorization: Basic §0§\n> Accept: */*",
        (("bearer", "dXNlcjpwYXNzd29yZA=="),),
    ),
    (
        "retrying the upload with bearer §0§ after 401",
        (("bearer", "ya29.a0AfH6SMBx3kTq-example_token_9f8e"),),
    ),
    (
        '{"headers": {"authorization": "Token §0§"}}',
        (("bearer", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),),
    ),
    # --- JWTs
    (
        "session cookie §0§ expired at 12:30:45",
        (("jwt", JWT),),
    ),
    (
        "Authorization: Bearer §0§",
        (("jwt", JWT_2),),
    ),
    (
        '{"id_token":"§0§","token_type":"Bearer"}',
        (("jwt", JWT),),
    ),
    # --- private keys
    (
        "Here is the key you asked me to install:\n§0§\nDo not share it.",
        (("private_key", PEM_RSA),),
    ),
    (
        '{"tls_key": "§0§", "tls_cert": "ok"}',
        (("private_key", PEM_PKCS8_ESCAPED),),
    ),
    (
        "cat ~/.ssh/id_ed25519\n§0§\n$ ",
        (("private_key", PEM_OPENSSH),),
    ),
    (
        "legacy key:\n§0§\n",
        (("private_key", PEM_ENCRYPTED),),
    ),
    (
        "log line cut at 128 bytes: §0§[truncated]",
        (("private_key", PEM_TRUNCATED),),
    ),
    # --- password-style secrets: the label stays, the value goes
    (
        "login failed for user=admin password=§0§ from §1§",
        (("secret", "hunter2"), ("ipv4", "10.0.0.5")),
    ),
    (
        '{"username": "svc-deploy", "password": "§0§"}',
        (("secret", "Tr0ub4dor&3 with spaces"),),
    ),
    (
        "DB_PASSWORD: '§0§'\nDB_HOST: db.internal",
        (("secret", "s3cr3t!"),),
    ),
    (
        "POST /oauth/token client_secret=§0§&grant_type=client_credentials",
        (("secret", "9f8e7d6c5b4a"),),
    ),
    (
        "pwd: §0§, passwd=§1§, api_key = '§2§', apikey:§3§",
        (
            ("secret", "correcthorse"),
            ("secret", "letmein"),
            ("secret", "abc123def456"),
            ("secret", "0a1b2c3d"),
        ),
    ),
    (
        "redis://:§0§@cache:6379/0 and postgres://app:§1§@db.internal:5432/app",
        (("secret", "r3d1sPass"), ("secret", "s3cret")),
    ),
    (
        '{\\"access_token\\": \\"§0§\\", \\"refresh_token\\": \\"§1§\\"}',
        (("secret", "at-7Hq2LmN9pX4k"), ("secret", "rt-b7Hq2LmN9pX4")),
    ),
    # --- opsdash's own agent / personal tokens
    (
        "agent authenticated with §0§",
        (("opsdash_token", "opsa_Zq3vN8xR2mK7pL4wT9yB6cF1hJ5dS0gA_-uE8iO3rW2"),),
    ),
    # --- several kinds in one LLM exchange
    (
        "Assistant: I found the problem. The service at §0§ rejects the key §1§ because the "
        "account §2§ was suspended. Call §3§ or rotate with password=§4§.",
        (
            ("ipv4", "172.16.4.20"),
            ("aws_key", "AKIAJ7Q2W3E4R5T6Y7U8"),
            ("email", "billing@example.com"),
            ("phone", "+49 30 1234567"),
            ("secret", "N3w-Pa55"),
        ),
    ),
]

NEGATIVE = [
    "2024-05-01T12:30:45.123Z INFO request finished in 1234 ms (p99 230ms, 12.5s total, 1h30m)",
    "Mon Jan 15 12:30:45 UTC 2024; 2023-12-31T23:59:59+00:00; 2024-05-01 10:00 +0530",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 parent=-",
    "uuid 550e8400-e29b-41d4-a716-446655440000 and 12345678-1234-1234-1234-123456789012",
    "upgraded chart 1.2.3 -> v10.20.30-rc.1 (build 2.0.0+20130313144700), kernel 5.15.0-1034",
    "version 1.2.3.4.5 and 10.0.0 and 1.2.3 are not addresses, neither is 300.1.2.3",
    "pod web-5d8f7c9b6-x2k9p in deployment api-server-7f9c4d on node ip-10-0-3-17.ec2.internal",
    "image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 pulled",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (HEAD -> main, origin/main)",
    "listening on port 8080, upstream localhost:5432, redis :6379, grpc 0:9090",
    "processed 12345678 rows; offset 1718035200123; snowflake 1789012345678901234; ns 1718035200123456789",
    "total $12.34 (was $1,299.99), refund of 5 EUR",
    "Please reset your password before Friday; the password policy needs 12 characters.",
    "time 12:30:45, mac 00:1a:2b:3c:4d:5e, ratio 3:2, std::vector::push_back, Foo::Bar::baz",
    '{"max_tokens": 1024, "prompt_tokens": 512, "tokens": 77, "token_type": null}',
    "kubectl get secret db-creds -o yaml; kind: Secret; secretName: tls-cert",
    "Bearer tokens must be rotated; the bearer of this note is trusted.",
    "k8s resources: cpu: 500m, memory: 2Gi, replicas: 3, maxSurge: 25%",
    "sklearn and sk-learn and task-runner-1 and desk-lamp are fine",
    "write to alice at example dot com; ping @channel; decorator @app.route('/health')",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "+1 vote, +100 points, rate +5.2%, diff +12 -3, tz +05:30, +1 2024-01-01",
    "isbn 978-0-13-110362-7, ticket OPS-1234-5678, phone ext 555-0123",
    "offset 0x7ffe5a3b, errno -13, exit status 137, 1234567890 bytes",
    '{"password": {"min_length": 12}, "token": null, "secret": true, "api_key": ""}',
    "password: ****  token=[REDACTED]  secret=<redacted>",
    "Authorization: the process of deciding access; authorization header missing",
    "eyJhbGciOiJIUzI1NiJ9 is just a JWT header, AKIA alone is not a key",
    "a Luhn-invalid card 4111 1111 1111 1112 and 4111111111111112 stay",
]


@pytest.mark.parametrize(("template", "items"), POSITIVE, ids=lambda v: str(v)[:40])
def test_scrubs_every_kind_exactly(template, items):
    raw, expected = render(template, items)
    assert scrub_text(raw) == expected


@pytest.mark.parametrize("text", NEGATIVE, ids=lambda v: v[:40])
def test_leaves_lookalikes_alone(text):
    assert scrub_text(text) is text


def test_every_kind_has_three_positive_examples():
    counts: dict[str, int] = {}
    for _template, items in POSITIVE:
        for kind, _value in items:
            counts[kind] = counts.get(kind, 0) + 1
    kinds = {
        "email", "ipv4", "ipv6", "phone", "card", "aws_key", "aws_secret", "gcp_key",
        "azure_key", "github_token", "slack_token", "anthropic_key", "openai_key", "bearer",
        "jwt", "private_key", "secret",
    }  # fmt: skip
    assert {kind for kind in kinds if counts.get(kind, 0) < 3} == set()


def test_reference_format_is_pinned():
    assert pii_reference("email", "alice@example.com") == "<pii:email:09c1b6ab>"
    assert scrub_text("password=hunter2") == "password=<pii:secret:720c05b1>"


def test_same_value_same_reference_different_value_different_reference():
    first = scrub_text("from alice@example.com")
    assert scrub_text("to alice@example.com!") == "to " + first.removeprefix("from ") + "!"
    assert ref("email", "alice@example.com") != ref("email", "alice@example.org")
    assert ref("email", "alice@example.com") != ref("secret", "alice@example.com")


def test_different_key_different_reference(settings):
    before = ref("email", "alice@example.com")
    settings.PII_HMAC_KEY = "another-test-only-pii-hmac-key-0123456789"
    after = ref("email", "alice@example.com")
    assert after != before
    assert scrub_text("mail alice@example.com") == f"mail {after}"


def test_unchanged_text_is_the_same_object():
    text = '{"event":"tool_call","tool":"kubectl","args":["get","pods"],"duration_ms":12}'
    assert scrub_text(text) is text
    assert scrub_text("") == ""


@pytest.mark.parametrize(("template", "items"), POSITIVE, ids=lambda v: str(v)[:40])
def test_idempotent(template, items):
    raw, _expected = render(template, items)
    once = scrub_text(raw)
    assert scrub_text(once) is once


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.5+44 20 7946 0958",
        "+44 20 7946 0958yteps@sub.mail.example.io",
        f"erin@example.net{PEM_RSA}xoxb-2048-4096-AbCdEfGhIjKlMnOpQrStUvWx",
        "connection to 10.0.12.7:54::1f refused",
        "dana@example.io+14155550123",
        "password=hunter2from 10.0.0.5",
    ],
)
def test_idempotent_when_items_touch(text):
    """A reference must act like the word it replaced, or a second pass would find more."""
    once = scrub_text(text)
    assert once != text
    assert scrub_text(once) is once


def test_triggers_never_hide_a_match(monkeypatch):
    """The cheap per-kind triggers are only a shortcut: forcing every kind on changes nothing."""
    fragments = [render(t, i)[0] for t, i in POSITIVE] + NEGATIVE
    fragments += [value for _t, items in POSITIVE for _k, value in items]
    noise = list(" \n.,:;=-_+()[]{}<>@'\"\\/0123456789abcdefABCDEFxyzJVk")
    rng = random.Random(20240501)
    texts = []
    for _ in range(4000):
        parts = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.5:
                fragment = rng.choice(fragments)
                a = rng.randint(0, len(fragment))
                parts.append(fragment[a : rng.randint(a, len(fragment))])
            else:
                parts.append("".join(rng.choice(noise) for _ in range(rng.randint(1, 8))))
        texts.append("".join(parts))
    with_triggers = [scrub_text(text) for text in texts]
    monkeypatch.setattr(scrubbing, "_triggered", lambda text: (1 << 18) - 1)
    assert [scrub_text(text) for text in texts] == with_triggers
    monkeypatch.undo()
    assert [scrub_text(text) for text in with_triggers] == with_triggers


def test_scrub_value_nested():
    event = {
        "actor": "alice@example.com",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "missing": None,
        "alice@example.com": "keys are kept",
        "steps": [
            {"cmd": "ssh root@10.0.0.7", "exit": 0},
            ("tuple from 10.0.0.8", 7),
            ["nested", ["deeper +14155550123"]],
        ],
        "credentials": {"password": "hunter2", "DB_PASSWORD": "p4ss", "api_key": ""},
        "aws": {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
        "headers": {"Authorization": "Bearer abc.def.ghi", "X-Request-Id": "r-1"},
    }
    out = scrub_value(event)
    assert out == {
        "actor": ref("email", "alice@example.com"),
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "missing": None,
        "alice@example.com": "keys are kept",
        "steps": [
            {"cmd": f"ssh root@{ref('ipv4', '10.0.0.7')}", "exit": 0},
            (f"tuple from {ref('ipv4', '10.0.0.8')}", 7),
            ["nested", [f"deeper {ref('phone', '+14155550123')}"]],
        ],
        "credentials": {
            "password": ref("secret", "hunter2"),
            "DB_PASSWORD": ref("secret", "p4ss"),
            "api_key": "",
        },
        "aws": {"SecretAccessKey": ref("aws_secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")},
        "headers": {
            "Authorization": f"Bearer {ref('bearer', 'abc.def.ghi')}",
            "X-Request-Id": "r-1",
        },
    }
    assert isinstance(out["steps"][1], tuple)
    assert event["actor"] == "alice@example.com"  # the input is not modified
    assert scrub_value(out) == out  # idempotent on structures too
    clean = {"a": [1, "two", {"b": None}]}
    assert scrub_value(clean) is clean
    assert scrub_value(42) == 42
    assert scrub_value(None) is None


def test_luhn_invalid_sixteen_digits_left_alone():
    assert scrub_text("card 4111111111111112 declined") == "card 4111111111111112 declined"
    valid = scrub_text("card 4111111111111111 declined")
    assert valid == f"card {ref('card', '4111111111111111')} declined"


def test_megabyte_of_text_runs_in_linear_time():
    """A guard against catastrophic backtracking, not a benchmark."""
    realistic = "\n".join(render(t, i)[0] for t, i in POSITIVE) + "\n" + "\n".join(NEGATIVE)
    hostile = "".join(
        [
            "1" * 5000,
            " " + "a" * 5000 + "@",
            " " + "a." * 2500 + "@",
            " a::" * 1000,
            " :" * 2000,
            " -----BEGIN PRIVATE KEY-----" * 200,
            " password=" * 500,
            " +1" * 1000,
            " 1.1.1" * 1000,
            " " + "ab:" * 2000,
            " @a." * 1000,
            " sk-" + "a" * 5000,
            " Bearer " * 500,
        ]
    )
    text = (realistic + "\n" + hostile + "\n") * 1
    while len(text) < 1_000_000:
        text += realistic + "\n" + hostile + "\n"
    started = time.perf_counter()
    out = scrub_text(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"scrubbing 1 MB took {elapsed:.2f}s"
    assert "alice.smith@example.com" not in out
