"""SQLAlchemy models, one module per area."""

from webapp.models.audit import AuditEntry
from webapp.models.campaigns import (
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SavedFilter,
    Suppression,
)
from webapp.models.groups import GroupStep
from webapp.models.jobs import Job
from webapp.models.money import (
    ImportRollback,
    Receipt,
    ReceiptCounter,
    ReceiptItem,
    ReceiptTemplate,
    SupporterChange,
    Transaction,
)
from webapp.models.people import SUPPORTER_FIELDS, Supporter
from webapp.models.runs import Run, RunLogLine, RunRejection
from webapp.models.schedules import Blackout, JobSchedule
from webapp.models.settings import AccountSettings
from webapp.models.tokens import ApiToken
from webapp.models.users import Role, User

__all__ = [
    "AccountSettings",
    "ApiToken",
    "AuditEntry",
    "Blackout",
    "Campaign",
    "CampaignStatus",
    "Recipient",
    "RecipientStatus",
    "SavedFilter",
    "Suppression",
    "GroupStep",
    "ImportRollback",
    "Job",
    "JobSchedule",
    "Receipt",
    "ReceiptCounter",
    "ReceiptItem",
    "ReceiptTemplate",
    "Role",
    "Run",
    "RunLogLine",
    "RunRejection",
    "SUPPORTER_FIELDS",
    "Supporter",
    "SupporterChange",
    "Transaction",
    "User",
]
