"""One normaliser per billing format, each turning its rows into FOCUS columns."""

from apps.billing.normalise.aws import AwsCur2Normaliser
from apps.billing.normalise.azure import AzureNormaliser
from apps.billing.normalise.base import LINE_FIELDS, Line, Normaliser
from apps.billing.normalise.focus import FocusNormaliser
from apps.billing.normalise.gcp import GcpNormaliser
from apps.billing.normalise.parsing import RowError

NORMALISERS: dict[str, type[Normaliser]] = {
    "focus": FocusNormaliser,
    "aws-cur2": AwsCur2Normaliser,
    "gcp": GcpNormaliser,
    "azure": AzureNormaliser,
}

__all__ = ["LINE_FIELDS", "NORMALISERS", "Line", "Normaliser", "RowError"]
