"""The job-type registry: one module per type."""

from __future__ import annotations

from webapp.jobtypes.base import JobType
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.jobtypes.job_group import JobGroup
from webapp.jobtypes.user_data_export import UserDataExport
from webapp.jobtypes.user_data_import import UserDataImport

REGISTRY: dict[str, JobType] = {t.key: t() for t in (UserDataImport, UserDataExport, EmailCampaign, JobGroup)}


class UnknownJobType(KeyError):
    """A run names a job type this installation does not have."""


def get_job_type(key: str) -> JobType:
    """The registered job type called `key`."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownJobType(f"no job type {key!r}") from None


def lane_of(key: str) -> str:
    """The line a job type's runs wait in ("data" or "email")."""
    job_type = REGISTRY.get(key)
    return job_type.lane if job_type else "data"


def lane_types(lane: str) -> list[str]:
    """The job type keys whose runs wait in `lane`."""
    return [key for key, job_type in REGISTRY.items() if job_type.lane == lane]


def type_label(key: str) -> str:
    """The monitor's Type column for a job type key."""
    job_type = REGISTRY.get(key)
    return job_type.label if job_type else key.replace("_", " ").title()
