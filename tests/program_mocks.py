"""Helpers for the program tests: the prod stack's config with test secrets, and evaluation.

The program runs under Pulumi's mock runtime (freescout.offline_plan.evaluate with its
RecordingMonitor, a MockMonitor subclass that keeps every RegisterResourceRequest).
FakeCloud stands in for the providers: these tests prove what the program asks the engine
for (resources, options, inputs, dependencies), not what AWS or Cloudflare would do with it.
"""

from __future__ import annotations

from typing import Any

from freescout import modules as catalog
from freescout import settings as config
from freescout.offline_plan import Evaluation, FakeCloud, evaluate, load_stack_config
from tests.conftest import PROJECT_ROOT

TEST_ZONE_ID = "0123456789abcdef0123456789abcdef"
TEST_KEY = "-----TEST KEY (not a key)-----"


def test_license(short: str, version: int = 1) -> str:
    """A fake license key, different per module and per version."""
    return f"TEST-LICENSE-{short}-v{version}"


def prod_config(**overrides: Any) -> tuple[dict[str, Any], set[str]]:
    """Pulumi.prod.yaml's values plus test secrets and a zone id; overrides win (None removes)."""
    stack = load_stack_config(PROJECT_ROOT, "prod")
    values: dict[str, Any] = dict(stack.values)
    secret_keys = set(stack.secret_keys)
    values[f"{config.NS}:cloudflare_zone_id"] = TEST_ZONE_ID
    values["cloudflare:apiToken"] = "TEST-CLOUDFLARE-TOKEN"
    secret_keys.add("cloudflare:apiToken")
    for module in catalog.CATALOG:
        key = f"{config.NS}:{module.license_key}"
        values[key] = test_license(module.short)
        secret_keys.add(key)
    for key, value in overrides.items():
        full = key if ":" in key else f"{config.NS}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return values, secret_keys


def prod_settings(**overrides: Any) -> config.Settings:
    """Validated settings of the prod stack with test secrets (see prod_config)."""
    values, secret_keys = prod_config(**overrides)
    return config.from_mapping(values, secret_keys, stack="prod")


def run(settings: config.Settings | None = None, **cloud: Any) -> Evaluation:
    """Evaluate the real program under mocks; `cloud` goes to FakeCloud."""
    return evaluate(settings or prod_settings(), private_key=TEST_KEY, cloud=FakeCloud(**cloud))
