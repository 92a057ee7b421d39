"""deleteAccount, exportMyData."""

from __future__ import annotations

from schema.types.account import AccountDeletion, DataExport
from schema.types.context import Info
from services.library.account import AccountService


def _accounts(info: Info) -> AccountService:
    return info.context.services.accounts


async def delete_account(info: Info) -> AccountDeletion:
    return AccountDeletion.from_model(await _accounts(info).delete_account(info.context.principal))


async def export_my_data(info: Info) -> DataExport:
    return DataExport.from_model(await _accounts(info).export(info.context.principal))
