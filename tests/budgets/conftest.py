"""The Admin API stand-in, for the key a halt switches off."""

from tests.costs.admin_api import admin_api, admin_on  # noqa: F401 (fixtures)
