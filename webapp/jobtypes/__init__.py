"""The job-type registry: one module per type."""

from __future__ import annotations

from functools import cache
from typing import ClassVar

from webapp.jobtypes.annual_receipts import AnnualReceipts
from webapp.jobtypes.base import JobType
from webapp.jobtypes.batch_receipts import BatchReceipts
from webapp.jobtypes.email_bounces import EmailBounces
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.jobtypes.export_service import ExportService
from webapp.jobtypes.import_service import ImportService
from webapp.jobtypes.job_group import JobGroup
from webapp.jobtypes.receipt_inventory import ReceiptInventory
from webapp.jobtypes.supporter_delete import SupporterDelete
from webapp.jobtypes.transaction_import import TransactionImport
from webapp.jobtypes.transaction_report import TransactionReport
from webapp.jobtypes.transaction_rollback import TransactionRollback
from webapp.jobtypes.user_data_export import UserDataExport
from webapp.jobtypes.user_data_import import UserDataImport

REGISTRY: dict[str, JobType] = {
    t.key: t()
    for t in (
        UserDataImport,
        UserDataExport,
        EmailCampaign,
        JobGroup,
        EmailBounces,
        SupporterDelete,
        ImportService,
        ExportService,
        TransactionImport,
        TransactionRollback,
        TransactionReport,
        BatchReceipts,
        AnnualReceipts,
        ReceiptInventory,
    )
}


class UnknownJobType(KeyError):
    """A run names a job type this installation does not have."""


class _Missing(JobType):
    """What screens show for a run of a type this installation no longer has: its key as its
    label, no actions beyond Stop, no counts. Key and label are class attributes of a job type,
    so each missing key gets a subclass of its own (_missing)."""

    key = "missing"
    label = "Unknown type"
    can_be_step = False
    listed_as_job = False
    count_labels: ClassVar[dict[str, str]] = {}


@cache
def _missing(key: str) -> JobType:
    """The stand-in for the missing type `key` (made once per key)."""
    attributes = {"key": key, "label": key.replace("_", " ").title()}
    stand_in: type[_Missing] = type(f"_Missing[{key}]", (_Missing,), attributes)
    return stand_in()


def register(job_type: type[JobType]) -> JobType:
    """Add a job type to the registry (the built-in ones are added here; a test may add its own)."""
    REGISTRY[job_type.key] = instance = job_type()
    return instance


def job_type_for(key: str) -> JobType:
    """The job type called `key`, or a stand-in that shows an unknown type plainly."""
    return REGISTRY.get(key) or _missing(key)


def types_where(capability: str) -> list[str]:
    """The keys of the types that have a capability (`drives_chain`, `can_be_step`, …)."""
    return [key for key, job_type in REGISTRY.items() if getattr(job_type, capability)]


def get_job_type(key: str) -> JobType:
    """The registered job type called `key`."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownJobType(f"no job type {key!r}") from None


def lane_of(key: str) -> str:
    """The line a job type's runs wait in ("data" or "email")."""
    return job_type_for(key).lane


def lane_types(lane: str) -> list[str]:
    """The job type keys whose runs wait in `lane`."""
    return [key for key, job_type in REGISTRY.items() if job_type.lane == lane]


def type_label(key: str) -> str:
    """The monitor's Type column for a job type key."""
    return job_type_for(key).label
