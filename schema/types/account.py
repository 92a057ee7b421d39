"""Payloads of deleteAccount and exportMyData."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from services.library.account import AccountDeletion as AccountDeletionModel
from services.library.account import DataExport as DataExportModel


@strawberry.type(description="What deleteAccount did.")
class AccountDeletion:
    media_deleted: int = strawberry.field(
        description="Media moved to the trash now; purged after the retention window."
    )
    likes_removed: int = strawberry.field(description="Likes you had given, taken back.")

    @classmethod
    def from_model(cls, model: AccountDeletionModel) -> Self:
        return cls(media_deleted=model.media_deleted, likes_removed=model.likes_removed)


@strawberry.type(description="A JSON archive of your media metadata, with links to the originals.")
class DataExport:
    url: str = strawberry.field(description="Download URL of the archive (its links expire with it).")
    expires_at: datetime
    media_count: int

    @classmethod
    def from_model(cls, model: DataExportModel) -> Self:
        return cls(url=model.url, expires_at=model.expires_at, media_count=model.media_count)
