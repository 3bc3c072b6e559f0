"""Unbound extension singletons, bound to the app in create_app()."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, Table

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))

# The base class of every model. At runtime it is ``db.Model``, which
# Flask-SQLAlchemy builds when ``db`` is created; type checkers cannot
# subclass an instance attribute (mypy reports "Name db.Model is not
# defined"), so they see a stand-in with the same surface: SQLAlchemy's
# declarative base (``__table__``, ``metadata``, the keyword constructor) plus
# Flask-SQLAlchemy's ``Model`` mixin (``query``).
if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel
    from sqlalchemy.orm import DeclarativeBase

    class Model(_FlaskModel, DeclarativeBase):
        """Typing stand-in for ``db.Model``."""

        __abstract__ = True
        # every model maps a declarative Table (DeclarativeBase only promises a FromClause)
        __table__: ClassVar[Table]

else:
    Model = db.Model

login_manager = LoginManager()
csrf = CSRFProtect()
